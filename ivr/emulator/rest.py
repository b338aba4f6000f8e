"""The emulator over HTTP: Twilio's REST API (Calls, Queues, Members, Recordings) and a small
control API for the far ends (`/_emulator/...`, used by `ivr simulate` and tests).

Point the real twilio client at it (`client.api.base_url = <this app's URL>`, which is what
`TWILIO_API_BASE` does) and it answers as api.twilio.com would: HTTP basic auth with the
account SID and auth token, form-encoded requests, Twilio's JSON resources and error bodies.
"""

from __future__ import annotations

import base64
import hmac
import logging
import socket

from flask import Flask, Response, g, jsonify, request

from ivr.emulator.cloud import API_PREFIX, ApiError, TwilioEmulator
from ivr.emulator.parties import ScriptedParty

log = logging.getLogger(__name__)

ACCOUNT = API_PREFIX + "/Accounts/<account>"
PAGE_SIZE = 50


def create_emulator_app(emulator: TwilioEmulator) -> Flask:
    """A WSGI app serving `emulator`; mount it anywhere (its paths are relative)."""
    app = Flask("ivr.emulator")
    app.config["EMULATOR"] = emulator

    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError):
        response = jsonify(exc.body())
        response.status_code = exc.status
        return response

    @app.before_request
    def _authenticate():
        expected = base64.b64encode(
            f"{emulator.account_sid}:{emulator.auth_token}".encode()).decode()
        given = request.headers.get("Authorization", "")
        if not hmac.compare_digest(given.encode(), f"Basic {expected}".encode()):
            raise ApiError(401, 20003, "Authenticate")
        account = (request.view_args or {}).get("account")
        if account is not None and account != emulator.account_sid:
            raise ApiError(404, 20404, "The requested resource was not found")
        chaos = emulator.webhooks.chaos
        if chaos is not None and request.path.startswith(API_PREFIX):
            g.lost = chaos.rest_fate()
            if g.lost == "before":  # the request never reached Twilio's API
                _drop_connection()
                return Response("", status=504)

    @app.after_request
    def _lose_answer(response: Response) -> Response:
        if g.get("lost") == "after":  # acted on, but the answer never reaches the client
            _drop_connection()
        return response

    def form() -> dict[str, list[str]]:
        source = request.args if request.method == "GET" else request.form
        return {key: source.getlist(key) for key in source}

    def page(key: str, items: list[dict]) -> dict:
        return {key: items[:PAGE_SIZE], "page": 0, "page_size": PAGE_SIZE, "start": 0,
                "end": max(0, min(len(items), PAGE_SIZE) - 1), "uri": request.path,
                "first_page_uri": request.path, "next_page_uri": None,
                "previous_page_uri": None}

    # --- Calls ----------------------------------------------------------------------------

    @app.post(ACCOUNT + "/Calls.json")
    def create_call(account: str):
        return jsonify(emulator.create_call(form())), 201

    @app.get(ACCOUNT + "/Calls.json")
    def list_calls(account: str):
        calls = emulator.list_calls(form())
        return jsonify(page("calls", [c.resource(API_PREFIX) for c in calls]))

    @app.get(ACCOUNT + "/Calls/<sid>.json")
    def fetch_call(account: str, sid: str):
        return jsonify(emulator.get(sid).resource(API_PREFIX))

    @app.post(ACCOUNT + "/Calls/<sid>.json")
    def update_call(account: str, sid: str):
        return jsonify(emulator.update_call(sid, form()).resource(API_PREFIX))

    # --- Queues ---------------------------------------------------------------------------

    @app.get(ACCOUNT + "/Queues.json")
    def list_queues(account: str):
        queues = list(emulator.bridging.queues.values())
        return jsonify(page("queues", [q.resource(API_PREFIX) for q in queues]))

    @app.get(ACCOUNT + "/Queues/<qsid>.json")
    def fetch_queue(account: str, qsid: str):
        return jsonify(_queue(emulator, qsid).resource(API_PREFIX))

    @app.get(ACCOUNT + "/Queues/<qsid>/Members.json")
    def list_members(account: str, qsid: str):
        queue = _queue(emulator, qsid)
        members = [queue.member_resource(m, API_PREFIX) for m in list(queue.members)]
        return jsonify(page("queue_members", members))

    @app.route(ACCOUNT + "/Queues/<qsid>/Members/<member>.json", methods=["GET", "POST"])
    def member(account: str, qsid: str, member: str):
        queue = _queue(emulator, qsid)
        with emulator.bridging.lock:
            members = list(queue.members)
        found = members[0] if member == "Front" and members else next(
            (m for m in members if m.call.sid == member), None)
        if found is None:
            raise ApiError(404, 20404, f"The requested resource {member} was not found")
        body = queue.member_resource(found, API_PREFIX)
        if request.method == "POST":  # dequeue: the member leaves for `Url`
            url = request.form.get("Url", "")
            if not url:
                raise ApiError(400, 21205, "Url parameter is required.")
            emulator.update_call(found.call.sid, {"Url": [url],
                                                  "Method": [request.form.get("Method", "POST")]})
        return jsonify(body)

    # --- Recordings -----------------------------------------------------------------------

    @app.get(ACCOUNT + "/Recordings/<name>")
    def recording(account: str, name: str):
        sid, _, ext = name.partition(".")
        rec = emulator.recordings.get(sid)
        if rec is None:
            raise ApiError(404, 20404, f"The requested resource {sid} was not found")
        if ext in ("", "wav"):
            return Response(rec.wav, mimetype="audio/x-wav")
        raise ApiError(404, 20404, f"Recording format {ext!r} is not available here")

    # --- control API: the far ends --------------------------------------------------------

    @app.get("/_emulator")
    def info():
        chaos = emulator.webhooks.chaos
        return jsonify(account_sid=emulator.account_sid, numbers=list(emulator.numbers),
                       timing=vars(emulator.timing), last_event=emulator.journal.last,
                       chaos=None if chaos is None else {
                           **vars(chaos.settings), **chaos.counts()})

    @app.post("/_emulator/calls")
    def dial_in():
        data = request.get_json(silent=True) or {}
        call = emulator.dial_in(str(data.get("from") or "+14155550123"), str(data.get("to")))
        return jsonify(sid=call.sid), 201

    @app.get("/_emulator/calls/<sid>")
    def call_state(sid: str):
        call = emulator.get(sid)
        party = call.party
        return jsonify(sid=call.sid, status=call.status.value,
                       waiting_for_input=bool(getattr(party, "waiting", None)
                                              and party.waiting.is_set()))

    @app.post("/_emulator/calls/<sid>/act")
    def act(sid: str):
        data = request.get_json(silent=True) or {}
        emulator.act(sid, str(data.get("action", "")))
        return jsonify(ok=True)

    @app.get("/_emulator/events")
    def events():
        since = request.args.get("since", type=int, default=0)
        wait = min(30.0, request.args.get("wait", type=float, default=0.0))
        return jsonify(events=emulator.journal.since(since, wait=wait))

    @app.put("/_emulator/parties/<path:address>")
    def party(address: str):
        data = request.get_json(silent=True) or {}
        emulator.set_party(address, ScriptedParty(
            answers=str(data.get("answers", "human")),
            ring_seconds=float(data.get("ring_seconds", emulator.timing.ring_seconds)),
            digits=[str(d) for d in data.get("digits", ["1"])],
            talk=None if data.get("talk_seconds", 5.0) is None else float(
                data.get("talk_seconds", 5.0))))
        return jsonify(ok=True)

    return app


def _queue(emulator: TwilioEmulator, qsid: str):
    queue = emulator.bridging.queue_by_sid(qsid)
    if queue is None:
        raise ApiError(404, 20404, f"The requested resource {qsid} was not found")
    return queue


def _drop_connection() -> None:
    """Close the client's connection with no answer, as a time-out or a reset looks to it.
    Served by werkzeug (`ivr serve`) the socket is at hand; elsewhere the answer is sent."""
    sock = request.environ.get("werkzeug.socket")
    if sock is None:
        log.warning("chaos: no socket to drop for %s (not served by werkzeug)", request.path)
        return
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
