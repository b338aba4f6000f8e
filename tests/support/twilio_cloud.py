"""Twilio's cloud for the tests: the project's emulator (`ivr.emulator`), on a real socket, for
the real twilio Client, with the test's hands on the far ends.

    cloud = TwilioCloud(account_sid, auth_token, deliver=flask_deliver(client, BASE_URL))
    with cloud:                                   # serves http://127.0.0.1:<port>
        client = Client(account_sid, auth_token)
        client.api.base_url = cloud.base_url      # what TWILIO_API_BASE does
        ...
        cloud.placed[0].to, cloud.placed[0].url   # every call placed through the REST API
        cloud.drive_pending()                     # its far ends pick up: the calls play out

Everything Twilio does is the emulator's, as Twilio documents it: the REST contract and its
refusals (relative URLs, error 21220 for a finished call), TwiML as Twilio runs it, status
callbacks sent asynchronously with SequenceNumber and Timestamp, signed webhooks. This module
adds only what a test needs around it:
- the far ends follow a `CallScript` per number (who answers, what they press, how long they
  talk), and a placed call rings until the test drives it (`drive`, `drive_pending`) unless
  `autodrive` is set;
- webhooks go where `deliver` says (over HTTP, or to a Flask test client), and every TwiML
  document a call fetched is kept (`documents`);
- a log of every REST request (`requests`, `creates()`, `updates()`), and provider trouble to
  order: `fail_creates` (answered 500), `create_delay` (a slow answer), `hold_updates` (call
  updates answered only when the test says), and `interrupted` (answers the client never
  read: it died while waiting).
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

import requests
from flask import Response, g, request
from werkzeug.serving import WSGIRequestHandler, make_server

from ivr.emulator import Reply, Timing, TwilioEmulator, create_emulator_app
from ivr.emulator.calls import Call, Listen, Status
from ivr.emulator.delivery import Answer
from tests.support.deliveries import Deliver, http_deliver

# The account's own number (the service's TWILIO_FROM_NUMBER default): calls go out from it.
ACCOUNT_NUMBER = "+18005550100"
# Twilio's timers run at 1/100 speed here: a Gather's 5 s time-out is 50 ms.
FAST = Timing(scale=0.01, play_seconds=0.02, say_rate=0.0, ring_seconds=0.0)


@dataclass
class CallScript:
    """How the far end of one call behaves."""

    answer: str = "human"  # human | machine | no-answer | busy | failed
    digits: str = "1"  # pressed at each <Gather>; "" = no input
    talk_seconds: float = 42  # once bridged, on Twilio's clock (scaled like its timers)


@dataclass
class RecordedRequest:
    """One REST request the cloud received."""

    method: str
    path: str
    form: dict[str, list[str]]
    authorized: bool
    at: float = field(default_factory=time.time)

    def value(self, key: str) -> str | None:
        """The first value of form field `key`."""
        values = self.form.get(key)
        return values[0] if values else None


class PlacedCall:
    """A call placed through the REST API, as the emulator knows it, and what it did."""

    def __init__(self, cloud: TwilioCloud, call: Call) -> None:
        self._cloud, self.call = cloud, call

    sid = property(lambda self: self.call.sid)
    to = property(lambda self: self.call.to)
    from_ = property(lambda self: self.call.from_)
    url = property(lambda self: self.call.url)
    status_callback = property(lambda self: self.call.status_callback)
    machine_detection = property(lambda self: self.call.machine_detection)
    timeout = property(lambda self: self.call.timeout)
    status = property(lambda self: self.call.status.value)

    @property
    def events(self) -> tuple[str, ...]:
        """The status callback events it asked for."""
        return self.call.status_events

    @events.setter
    def events(self, value: tuple[str, ...]) -> None:  # a test losing its status callbacks
        self.call.status_events = tuple(value)

    @property
    def said(self) -> list[str]:
        """What its far end heard (<Say>), in order."""
        return list(self.call.heard)

    @property
    def documents(self) -> list[str]:
        """Every TwiML document this call fetched, in order."""
        return self._cloud.documents_of(self.sid)

    @property
    def whispered(self) -> list[str]:
        """What the far end of each leg it dialled heard before being joined (a whisper)."""
        return [text for child in self._cloud.children(self.sid) for text in child.heard]

    def __repr__(self) -> str:
        return f"PlacedCall({self.sid} to {self.to}, {self.status})"


class _ScriptedFarEnd:
    """Every number's far end: follows the number's scripts, one per call (the last repeats),
    and, for a call placed through the REST API, picks up only once the test drives it."""

    def __init__(self, cloud: TwilioCloud, address: str) -> None:
        self.cloud, self.address = cloud, address
        self._scripts: dict[str, CallScript] = {}
        self._lock = threading.Lock()

    def script(self, call: Call) -> CallScript:
        with self._lock:
            if call.sid not in self._scripts:
                self._scripts[call.sid] = self.cloud._next_script(self.address)
            return self._scripts[call.sid]

    def answer(self, call: Call) -> tuple[str, float]:
        script = self.script(call)
        if call.direction == "outbound-api":
            self.cloud._await_drive(call)
        return script.answer, 0.0

    def listen(self, call: Call, listen: Listen) -> Reply | None:
        if call.wait(listen.prompt_seconds):
            return None
        digits = self.script(call).digits
        if listen.in_queue or not digits:
            call.wait(listen.timeout)
            return None
        return Reply(digits=digits)

    def record(self, call: Call, max_length: float) -> float:
        return min(max_length, 3.0)

    def talk_seconds(self, call: Call) -> float | None:
        return self.script(call).talk_seconds


class _Handler(WSGIRequestHandler):
    cloud: TwilioCloud

    def log_request(self, *args) -> None:  # quiet
        pass

    def connection_dropped(self, error, environ=None) -> None:
        with self.cloud._lock:
            self.cloud.interrupted += 1


def _is_update(method: str, path: str) -> bool:
    """A call update: `POST /Calls/{Sid}.json` (a redirect, a hang-up)."""
    return method == "POST" and "/Calls/" in path


class TwilioCloud:
    """The emulated cloud on a free port of 127.0.0.1; a context manager, or start()/stop()."""

    def __init__(self, account_sid: str, auth_token: str, *, deliver: Deliver | None = None,
                 autodrive: bool = False,
                 timing: Timing = FAST) -> None:
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.deliver: Deliver = deliver or http_deliver
        self.autodrive = autodrive
        self.default_script = CallScript()
        self.scripts: dict[str, list[CallScript]] = {}
        self.requests: list[RecordedRequest] = []
        self.fail_creates = 0  # answer this many creates with a 500 (provider trouble)
        self.create_delay = 0.0  # seconds to hold each create's answer (a slow provider)
        self.interrupted = 0  # answers the client never read (it died while waiting)
        self.creating = 0  # create answers being held by `create_delay` right now
        # An Event: each call update (a redirect, a hang-up) is taken and recorded, and its
        # answer held until the Event is set (a provider slow to answer); `updating` says
        # how many a client has in flight at once.
        self.hold_updates: threading.Event | None = None
        self.updating = 0
        self.emulator = TwilioEmulator(account_sid, auth_token, timing=timing,
                                       transport=self._transport,
                                       default_party=lambda a: _ScriptedFarEnd(self, a))
        self.emulator.verify_caller_id(ACCOUNT_NUMBER)
        self._placed: list[str] = []
        self._documents: dict[str, list[str]] = {}
        self._gates: dict[str, threading.Event] = {}
        self._driven: set[str] = set()
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._server = None

    # --- lifecycle ------------------------------------------------------------------------

    def start(self) -> TwilioCloud:
        """Serve the emulator's REST API in a background thread."""
        app = create_emulator_app(self.emulator)
        app.before_request_funcs.setdefault(None, []).insert(0, self._before)
        app.after_request(self._after)
        handler = type("Handler", (_Handler,), {"cloud": self})
        self._server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=handler)
        self.emulator.public_url = self.base_url
        threading.Thread(target=self._server.serve_forever, daemon=True,
                         name="twilio-cloud").start()
        return self

    def stop(self) -> None:
        """End every call, stop serving."""
        self._stopping.set()
        self.emulator.hang_up_all()
        self.emulator.wait_idle(timeout=10)
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> TwilioCloud:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        """Where the twilio Client should send its requests (TWILIO_API_BASE)."""
        assert self._server is not None, "the cloud is not started"
        return f"http://127.0.0.1:{self._server.server_port}"

    # --- the far ends ---------------------------------------------------------------------

    def script(self, number: str, *scripts: CallScript) -> None:
        """Calls to `number` follow these scripts in turn (the last one repeats)."""
        with self._lock:
            self.scripts[number] = list(scripts)

    def _next_script(self, number: str) -> CallScript:
        with self._lock:
            queue = self.scripts.get(number)
            if not queue:
                return self.default_script
            return queue.pop(0) if len(queue) > 1 else queue[0]

    def _gate(self, sid: str) -> threading.Event:
        with self._lock:
            return self._gates.setdefault(sid, threading.Event())

    def _await_drive(self, call: Call) -> None:
        if self.autodrive:
            return
        gate = self._gate(call.sid)
        while not gate.wait(0.02):
            if call.is_hung_up or self._stopping.is_set():
                return

    def drive(self, call: PlacedCall, timeout: float = 30.0) -> None:
        """The far end picks up: play the call out, and wait until it and its status
        callbacks are done."""
        with self._lock:
            self._driven.add(call.sid)
        self._gate(call.sid).set()
        self._wait_done(call.sid, timeout)

    def drive_pending(self) -> int:
        """Drive every call not driven yet (including ones placed meanwhile); return how many."""
        count = 0
        while True:
            with self._lock:
                waiting = [sid for sid in self._placed if sid not in self._driven]
            if not waiting:
                return count
            self.drive(self._view(waiting[0]))
            count += 1

    def wait_idle(self, timeout: float = 30.0) -> None:
        """Wait until every call has ended and its status callbacks were sent."""
        self.emulator.wait_idle(timeout)

    def _wait_done(self, sid: str, timeout: float) -> None:
        # A call's thread plays its <Dial> legs too: when it ends, they have.
        deadline = time.monotonic() + timeout
        thread = self.emulator._threads.get(sid)
        if thread is not None:
            thread.join(timeout)
        self.emulator.webhooks.drain(max(0.1, deadline - time.monotonic()))

    def deliver_sent(self, timeout: float = 10.0) -> None:
        """Wait until every status callback sent so far has reached the service."""
        self.emulator.webhooks.drain(timeout)

    def inbound_call(self, sid: str, *, to: str, from_: str) -> PlacedCall:
        """A live call that came in through webhooks the test sends itself (so the REST API
        can redirect or end it); its TwiML is the test's to play."""
        call = Call(sid=sid, account_sid=self.account_sid, to=to, from_=from_,
                    direction="inbound", party=_ScriptedFarEnd(self, from_),
                    status=Status.IN_PROGRESS, answered_at=time.time())
        with self.emulator._lock:
            self.emulator.calls[sid] = call
        return PlacedCall(self, call)

    def add_recording(self, wav: bytes) -> str:
        """Serve `wav` as a new recording; returns its RecordingUrl (without `.wav`)."""
        owner = Call(sid="CA" + uuid.uuid4().hex, account_sid=self.account_sid, to="", from_="",
                     direction="inbound", party=_ScriptedFarEnd(self, ""),
                     status=Status.COMPLETED)
        return self.emulator.add_recording(owner, 1.0, wav).url

    # --- queries --------------------------------------------------------------------------

    def _view(self, sid: str) -> PlacedCall:
        return PlacedCall(self, self.emulator.get(sid))

    @property
    def placed(self) -> list[PlacedCall]:
        """Every call placed through the REST API, in order."""
        with self._lock:
            sids = list(self._placed)
        return [self._view(sid) for sid in sids]

    def calls_to(self, number: str) -> list[PlacedCall]:
        """Every call placed to `number`, in order."""
        return [c for c in self.placed if c.to == number]

    def children(self, sid: str) -> list[Call]:
        """The legs a call's <Dial> placed."""
        return [c for c in list(self.emulator.calls.values()) if c.parent_sid == sid]

    def documents_of(self, sid: str) -> list[str]:
        with self._lock:
            return list(self._documents.get(sid, []))

    def creates(self) -> list[RecordedRequest]:
        """Every create request received (authorized or not)."""
        with self._lock:
            return [r for r in self.requests
                    if r.method == "POST" and r.path.endswith("/Calls.json")]

    def updates(self, call_sid: str | None = None) -> list[RecordedRequest]:
        """Every update request received, optionally for one call."""
        with self._lock:
            return [r for r in self.requests if _is_update(r.method, r.path)
                    and (call_sid is None or call_sid in r.path)]

    # --- the REST side (server threads) ---------------------------------------------------

    def _before(self):
        source = request.args if request.method == "GET" else request.form
        form = {key: source.getlist(key) for key in source}
        auth = request.authorization
        authorized = bool(auth and auth.username == self.account_sid
                          and auth.password == self.auth_token)
        with self._lock:
            self.requests.append(RecordedRequest(request.method, request.path, form, authorized))
        g.creating = request.method == "POST" and request.path.endswith("/Calls.json")
        g.updating = _is_update(request.method, request.path)
        if g.creating and authorized:
            with self._lock:
                if self.fail_creates > 0:
                    self.fail_creates -= 1
                    return Response('{"code": 20500, "message": "Internal Server Error", '
                                    '"status": 500}', status=500, mimetype="application/json")
        return None

    def _after(self, response: Response) -> Response:
        if g.get("creating") and response.status_code == 201:
            sid = response.get_json()["sid"]
            with self._lock:
                self._placed.append(sid)
            self._gate(sid)
            if self.create_delay:
                with self._lock:
                    self.creating += 1
                try:
                    time.sleep(self.create_delay)
                finally:
                    with self._lock:
                        self.creating -= 1
        held = self.hold_updates
        if g.get("updating") and held is not None:
            with self._lock:
                self.updating += 1
            try:
                held.wait(timeout=30)
            finally:
                with self._lock:
                    self.updating -= 1
        return response

    # --- webhooks (call threads) ----------------------------------------------------------

    def _transport(self, method: str, url: str, params: dict, headers: dict) -> Answer:
        try:
            status, body = self.deliver(method, url, params, headers)
        except requests.RequestException:
            return Answer(0, "", 11205)
        sid = params.get("CallSid") or (parse_qs(urlsplit(url).query).get("CallSid") or [""])[0]
        if sid and body.lstrip().startswith("<"):
            with self._lock:
                self._documents.setdefault(sid, []).append(body)
        return Answer(status, body, None if 200 <= status < 300 else 11200)
