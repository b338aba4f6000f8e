"""A local stand-in for Twilio's REST API (Calls), on a real socket, for the real twilio Client.

    cloud = TwilioCloud(account_sid, auth_token, deliver=flask_deliver(client, BASE_URL))
    with cloud:                                   # serves http://127.0.0.1:<port>
        client = Client(account_sid, auth_token)
        client.api.base_url = cloud.base_url      # what TWILIO_API_BASE does
        ...
        cloud.placed[0].to, cloud.placed[0].url   # every call, as Twilio received it
        cloud.drive_pending()                     # play calls out: signed webhooks to the app

Speaks `POST /2010-04-01/Accounts/{Sid}/Calls.json` (create), `POST .../Calls/{Sid}.json`
(update: Url, Status=completed|canceled), `GET .../Calls/{Sid}.json` (fetch) and
`GET .../Calls.json` (list, filter To), with Twilio-shaped JSON and errors, checks HTTP basic
auth, and records every request. Calls are played out by
`tests.support.call_driver.CallDriver` with a per-number `CallScript`: at once in a thread
(`autodrive=True`) or when the test says so.
"""

from __future__ import annotations

import base64
import email.utils
import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from tests.support.call_driver import (
    CallDriver,
    CallScript,
    Deliver,
    PlacedCall,
    http_deliver,
    new_call_sid,
)

API = "/2010-04-01/Accounts/"
_CALLS = re.compile(r"^/2010-04-01/Accounts/(?P<account>AC\w+)/Calls(?:/(?P<sid>CA\w+))?\.json$")
_RECORDING = re.compile(r"^/2010-04-01/Accounts/(?P<account>AC\w+)/Recordings/(?P<sid>RE\w+)"
                        r"\.wav$")


@dataclass
class RecordedRequest:
    """One HTTP request the stand-in received."""

    method: str
    path: str
    form: dict[str, list[str]]
    authorized: bool
    at: float = field(default_factory=time.time)

    def value(self, key: str) -> str | None:
        """The first value of form field `key`."""
        values = self.form.get(key)
        return values[0] if values else None


class TwilioCloud:
    """The stand-in server; use as a context manager or call start()/stop()."""

    def __init__(self, account_sid: str, auth_token: str, *, deliver: Deliver = http_deliver,
                 autodrive: bool = False, drive_delay: float = 0.0) -> None:
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.driver = CallDriver(auth_token, account_sid=account_sid, deliver=deliver)
        self.autodrive = autodrive
        self.drive_delay = drive_delay
        self.default_script = CallScript()
        self.scripts: dict[str, list[CallScript]] = {}
        self.requests: list[RecordedRequest] = []
        self.placed: list[PlacedCall] = []
        self.calls: dict[str, PlacedCall] = {}
        self.fail_creates = 0  # answer this many creates with a 500 (provider trouble)
        self.create_delay = 0.0  # seconds to hold each create's answer (a slow provider)
        self.interrupted = 0  # answers the client never read (it died while waiting)
        self.recordings: dict[str, bytes] = {}  # RecordingSid -> WAV bytes
        self._pending: list[PlacedCall] = []
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._server: ThreadingHTTPServer | None = None

    # --- lifecycle ------------------------------------------------------------------------

    def start(self) -> TwilioCloud:
        """Listen on a free port of 127.0.0.1 in a background thread."""
        cloud = self

        class Handler(_Handler):
            owner = cloud

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True,
                         name="twilio-cloud").start()
        return self

    def stop(self) -> None:
        """Stop serving and wait for calls being played out."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        for thread in list(self._threads):
            thread.join(timeout=10)

    def __enter__(self) -> TwilioCloud:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        """Where the twilio Client should send its requests (TWILIO_API_BASE)."""
        assert self._server is not None, "the stand-in is not started"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    # --- behaviour ------------------------------------------------------------------------

    def script(self, number: str, *scripts: CallScript) -> None:
        """Calls to `number` follow these scripts in turn (the last one repeats)."""
        with self._lock:
            self.scripts[number] = list(scripts)

    def _script_for(self, number: str) -> CallScript:
        with self._lock:
            queue = self.scripts.get(number)
            if not queue:
                return self.default_script
            return queue.pop(0) if len(queue) > 1 else queue[0]

    def drive(self, call: PlacedCall) -> None:
        """Play one call out now, in this thread."""
        self.driver.run(call, self._script_for(call.to))

    def drive_pending(self) -> int:
        """Play out every call not played yet (including ones placed meanwhile); return how many."""
        count = 0
        while True:
            with self._lock:
                if not self._pending:
                    return count
                call = self._pending.pop(0)
            self.drive(call)
            count += 1

    def wait_idle(self, timeout: float = 30.0) -> None:
        """Wait until every auto-driven call has finished."""
        deadline = time.monotonic() + timeout
        for thread in list(self._threads):
            thread.join(timeout=max(0.0, deadline - time.monotonic()))

    def inbound_call(self, sid: str, *, to: str, from_: str) -> PlacedCall:
        """Know a call that came in (dialled by a test through webhooks), so it can be updated."""
        call = PlacedCall(sid=sid, to=to, from_=from_, url="", status="in-progress")
        with self._lock:
            self.calls[sid] = call
        return call

    def add_recording(self, wav: bytes) -> str:
        """Serve `wav` as a new recording; returns its RecordingUrl (without `.wav`)."""
        sid = "RE" + new_call_sid()[2:]
        with self._lock:
            self.recordings[sid] = wav
        return f"{self.base_url}{API}{self.account_sid}/Recordings/{sid}"

    # --- queries --------------------------------------------------------------------------

    def calls_to(self, number: str) -> list[PlacedCall]:
        """Every call placed to `number`, in order."""
        with self._lock:
            return [c for c in self.placed if c.to == number]

    def creates(self) -> list[RecordedRequest]:
        """Every create request received (authorized or not)."""
        with self._lock:
            return [r for r in self.requests
                    if r.method == "POST" and r.path.endswith("/Calls.json")]

    def updates(self, call_sid: str | None = None) -> list[RecordedRequest]:
        """Every update request received, optionally for one call."""
        with self._lock:
            return [r for r in self.requests if r.method == "POST" and "/Calls/" in r.path
                    and (call_sid is None or call_sid in r.path)]

    # --- request handling (called from server threads) ------------------------------------

    def _record(self, req: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(req)

    def _create(self, form: dict[str, list[str]]) -> tuple[int, dict]:
        def one(key: str) -> str | None:
            values = form.get(key)
            return values[0] if values else None

        to, from_ = one("To"), one("From")
        if not to:
            return 400, _error(21201, "No 'To' number is specified", 400)
        if not from_:
            return 400, _error(21603, "A 'From' phone number is required.", 400)
        if not one("Url") and not one("Twiml") and not one("ApplicationSid"):
            return 400, _error(21205, "Url parameter is required.", 400)
        with self._lock:
            if self.fail_creates > 0:
                self.fail_creates -= 1
                return 500, _error(20500, "Internal Server Error", 500)
        call = PlacedCall(
            sid=new_call_sid(), to=to, from_=from_, url=one("Url") or "",
            status_callback=one("StatusCallback") or "",
            events=tuple(form.get("StatusCallbackEvent") or ["completed"]),
            machine_detection=one("MachineDetection"),
            timeout=int(one("Timeout")) if one("Timeout") else None,
        )
        with self._lock:
            self.placed.append(call)
            self.calls[call.sid] = call
            if not self.autodrive:
                self._pending.append(call)
        if self.autodrive:
            thread = threading.Thread(target=self._drive_later, args=(call,), daemon=True)
            with self._lock:
                self._threads.append(thread)
            thread.start()
        if self.create_delay:
            time.sleep(self.create_delay)
        return 201, self._resource(call)

    def _drive_later(self, call: PlacedCall) -> None:
        if self.drive_delay:
            time.sleep(self.drive_delay)
        self.drive(call)

    def _update(self, sid: str, form: dict[str, list[str]]) -> tuple[int, dict]:
        call = self.calls.get(sid)
        if call is None:
            return 404, _error(20404, f"The requested resource {sid} was not found", 404)
        status = (form.get("Status") or [None])[0]
        url = (form.get("Url") or [None])[0]
        if status in ("completed", "canceled"):
            call.hangup_requested = True
            if call.status in ("queued", "ringing", "in-progress"):
                call.status = status
        elif url:
            call.url = url
        return 200, self._resource(call)

    def _resource(self, call: PlacedCall) -> dict:
        now = email.utils.formatdate(usegmt=True)
        uri = f"{API}{self.account_sid}/Calls/{call.sid}.json"
        return {
            "sid": call.sid, "account_sid": self.account_sid, "parent_call_sid": None,
            "date_created": now, "date_updated": now, "start_time": None, "end_time": None,
            "to": call.to, "to_formatted": call.to, "from": call.from_,
            "from_formatted": call.from_, "phone_number_sid": None,
            "status": call.status, "duration": None, "price": None, "price_unit": "USD",
            "direction": "outbound-api", "answered_by": None, "api_version": "2010-04-01",
            "forwarded_from": None, "group_sid": None, "caller_name": None, "queue_time": "0",
            "trunk_sid": None, "uri": uri,
            "subresource_uris": {
                "notifications": uri.replace(".json", "/Notifications.json"),
                "recordings": uri.replace(".json", "/Recordings.json"),
            },
        }


class _Handler(BaseHTTPRequestHandler):
    owner: TwilioCloud
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - the base class's name
        pass

    def _authorized(self) -> bool:
        header = self.headers.get("Authorization", "")
        expected = base64.b64encode(
            f"{self.owner.account_sid}:{self.owner.auth_token}".encode()
        ).decode()
        return header == f"Basic {expected}"

    def _handle(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode() if length else ""
        parts = urlsplit(self.path)
        form = parse_qs(body, keep_blank_values=True)
        if method == "GET":
            form = parse_qs(parts.query, keep_blank_values=True)
        authorized = self._authorized()
        self.owner._record(RecordedRequest(method, parts.path, form, authorized))
        recording = _RECORDING.match(parts.path)
        if recording and method == "GET":
            return self._send_recording(recording["sid"] if authorized else None)
        match = _CALLS.match(parts.path)
        if not authorized:
            status, payload = 401, _error(20003, "Authenticate", 401)
        elif match is None or match["account"] != self.owner.account_sid:
            status, payload = 404, _error(20404, "The requested resource was not found", 404)
        elif method == "POST" and match["sid"] is None:
            status, payload = self.owner._create(form)
        elif method == "POST":
            status, payload = self.owner._update(match["sid"], form)
        elif match["sid"] is not None:
            call = self.owner.calls.get(match["sid"])
            status, payload = (
                (200, self.owner._resource(call)) if call
                else (404, _error(20404, "The requested resource was not found", 404))
            )
        else:
            to = (form.get("To") or [None])[0]
            listed = [self.owner._resource(c) for c in self.owner.placed if not to or c.to == to]
            status, payload = 200, {"calls": listed, "page": 0, "page_size": 50,
                                    "next_page_uri": None, "previous_page_uri": None}
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        try:
            self.end_headers()
            self.wfile.write(data)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            with self.owner._lock:
                self.owner.interrupted += 1

    def _send_recording(self, sid: str | None) -> None:
        # Twilio's media URLs need HTTP basic auth when the account enforces it, as here.
        data = self.owner.recordings.get(sid) if sid else None
        status = 200 if data is not None else (404 if sid else 401)
        error = (_error(20404, "The requested resource was not found", 404) if sid
                 else _error(20003, "Authenticate", 401))
        body = data if data is not None else json.dumps(error).encode()
        self.send_response(status)
        self.send_header("Content-Type", "audio/x-wav" if data is not None else "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        self._handle("POST")

    def do_GET(self) -> None:  # noqa: N802
        self._handle("GET")


def _error(code: int, message: str, status: int) -> dict:
    return {"code": code, "message": message, "status": status,
            "more_info": f"https://www.twilio.com/docs/errors/{code}"}


def flask_deliver(test_client, public_base: str) -> Deliver:
    """Deliver webhooks for URLs under `public_base` to a Flask test client in this process."""
    public_base = public_base.rstrip("/")

    def deliver(url: str, params: dict, headers: dict) -> tuple[int, str]:
        assert url.startswith(public_base), f"webhook to an unexpected host: {url}"
        resp = test_client.post(url[len(public_base):], data=params, headers=headers)
        return resp.status_code, resp.get_data(as_text=True)

    return deliver


def rewriting_deliver(public_base: str, actual_base: str) -> Deliver:
    """Deliver over HTTP to `actual_base` webhooks addressed (and signed) for `public_base`."""
    public_base, actual_base = public_base.rstrip("/"), actual_base.rstrip("/")

    def deliver(url: str, params: dict, headers: dict) -> tuple[int, str]:
        target = actual_base + url[len(public_base):] if url.startswith(public_base) else url
        return http_deliver(target, params, headers)

    return deliver


def dial_counts(cloud: TwilioCloud, key: Callable[[PlacedCall], str]) -> dict[str, int]:
    """How many calls the stand-in received per `key(call)` (e.g. per attempt)."""
    counts: dict[str, int] = {}
    for call in list(cloud.placed):
        k = key(call)
        counts[k] = counts.get(k, 0) + 1
    return counts
