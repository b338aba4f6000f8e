"""A simulated caller: dials a number and follows our TwiML the way Twilio would.

Every request is a signed webhook (X-Twilio-Signature over the full URL and the form), sent
either to an app in this process (Flask test client) or to a running server over HTTP. The
caller hears <Say> text, presses keys or "speaks" (sent as SpeechResult, matched by the same
phrase matcher live speech uses), and the walk stops when the call reaches a person, dials out,
hangs up, or waits for input.
"""

from __future__ import annotations

import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit

from twilio.request_validator import RequestValidator

# (url, form, signature) -> (HTTP status, body)
Transport = Callable[[str, dict, str], tuple[int, str]]
MAX_REDIRECTS = 30


@dataclass
class Turn:
    """What the caller heard since their last action, and what the call is waiting for."""

    said: list[str] = field(default_factory=list)
    played: list[str] = field(default_factory=list)
    waiting: str = ""  # "gather", "queue", "dial", "record", "hangup", "error"
    gather_action: str = ""
    gather_digits: int = 0
    continue_url: str = ""  # where Twilio goes when the Gather gets nothing
    queue: str = ""
    queue_wait_url: str = ""
    dial_number: str = ""
    dial_action: str = ""
    record_action: str = ""
    streams: list[str] = field(default_factory=list)
    status: int = 200
    documents: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        return " ".join(self.said)


class SimulatedCall:
    """One call walked through the real webhooks."""

    def __init__(self, transport: Transport, base_url: str, auth_token: str, *,
                 caller: str = "+14155550123", called: str = "+18005550100",
                 account_sid: str = "AC" + "0" * 32) -> None:
        self.transport = transport
        self.base_url = base_url.rstrip("/")
        self.validator = RequestValidator(auth_token)
        self.params = {
            "CallSid": "CA" + uuid.uuid4().hex,
            "AccountSid": account_sid,
            "From": caller,
            "Caller": caller,
            "To": called,
            "Called": called,
            "CallStatus": "in-progress",
            "Direction": "inbound",
            "ApiVersion": "2010-04-01",
        }
        self.turn: Turn | None = None
        self.log: list[Turn] = []
        # While the caller is in a hold queue: (queue, wait URL, Enqueue action URL).
        self.queue: tuple[str, str, str] | None = None
        self.queued_at = 0.0

    @property
    def call_sid(self) -> str:
        return self.params["CallSid"]

    # --- caller actions ----------------------------------------------------------------------

    def dial(self) -> Turn:
        """Place the call: Twilio requests the voice URL."""
        self.params["CallStatus"] = "ringing"
        turn = self._fetch(self.base_url + "/voice/incoming", {})
        self.params["CallStatus"] = "in-progress"
        return turn

    def press(self, digits: str) -> Turn:
        """Press keys while a <Gather> listens."""
        turn = self._require("gather")
        return self._fetch(turn.gather_action, {"Digits": digits, "FinishedOnKey": ""})

    def say(self, text: str, confidence: float = 0.9) -> Turn:
        """Speak while a <Gather> listens (typed speech)."""
        turn = self._require("gather")
        return self._fetch(turn.gather_action,
                           {"SpeechResult": text, "Confidence": f"{confidence:.2f}"})

    def wait(self) -> Turn:
        """Stay silent until the <Gather> times out (in a hold queue: the wait URL again)."""
        turn = self._require("gather")
        if turn.continue_url:
            return self._fetch(turn.continue_url, {})
        return self.hold() if self.queue else turn

    def dial_result(self, status: str = "completed") -> Turn:
        """Finish a <Dial> with DialCallStatus `status`."""
        turn = self._require("dial")
        return self._fetch(turn.dial_action, {"DialCallStatus": status})

    def record(self, seconds: int = 7) -> Turn:
        """Leave a voicemail of `seconds`."""
        turn = self._require("record")
        return self._fetch(turn.record_action, {
            "RecordingUrl": f"https://api.twilio.com/recordings/RE{uuid.uuid4().hex}",
            "RecordingDuration": str(seconds),
        })

    def hang_up(self, duration: int = 30) -> int:
        """The caller hangs up: Twilio posts the final status callback."""
        self.params["CallStatus"] = "completed"
        status, _ = self._post(self.base_url + "/voice/status", {"CallDuration": str(duration)})
        return status

    def hold(self, position: int = 1, queue_time: int | None = None) -> Turn:
        """Request the hold queue's wait URL, as Twilio does while the caller waits."""
        if self.queue is None:
            raise RuntimeError("the call is not in a hold queue")
        if queue_time is None:
            queue_time = int(time.monotonic() - self.queued_at)
        return self._fetch(self.queue[1], {
            "QueuePosition": str(position), "QueueTime": str(queue_time),
            "AvgQueueTime": "0", "CurrentQueueSize": str(position), "QueueSid": "QU" + "0" * 32,
        })

    # --- following TwiML ---------------------------------------------------------------------

    def _require(self, waiting: str) -> Turn:
        if self.turn is None or self.turn.waiting != waiting:
            got = self.turn.waiting if self.turn else "nothing"
            raise RuntimeError(f"the call is not waiting for {waiting} (it is at {got})")
        return self.turn

    def _post(self, url: str, extra: dict) -> tuple[int, str]:
        form = {**self.params, **extra}
        signature = self.validator.compute_signature(url, form)
        return self.transport(url, form, signature)

    def _fetch(self, url: str, extra: dict) -> Turn:
        turn = Turn()
        for _ in range(MAX_REDIRECTS):
            if self.queue and url == self.queue[2]:
                self.queue = None  # the Enqueue action: the caller has left the queue
            status, body = self._post(url, extra)
            turn.status = status
            turn.documents.append(body)
            if status != 200:
                turn.waiting = "error"
                break
            following = self._run(ET.fromstring(body), url, turn)
            if following is None:
                break
            url, extra = following
        if self.queue and turn.waiting == "end":
            # A wait-URL document that runs out just loops: the caller is still holding.
            turn.waiting = "queue"
        elif turn.waiting == "end":
            turn.waiting = "hangup"  # Twilio hangs up when a document ends without waiting.
        if self.queue and turn.waiting == "queue":
            turn.queue, turn.queue_wait_url = self.queue[0], self.queue[1]
        self.turn = turn
        self.log.append(turn)
        return turn

    def _run(self, doc: ET.Element, url: str, turn: Turn) -> tuple[str, dict] | None:
        """Play one TwiML document; return the next (URL, form) to fetch, or None to stop."""
        verbs = list(doc)
        for i, verb in enumerate(verbs):
            tag = verb.tag
            if tag == "Say":
                turn.said.append(verb.text or "")
            elif tag == "Play":
                turn.played.append(verb.text or "")
            elif tag == "Start":
                turn.streams += [s.get("url", "") for s in verb.iter("Stream")]
            elif tag == "Gather":
                for child in verb:
                    if child.tag == "Say":
                        turn.said.append(child.text or "")
                    elif child.tag == "Play":
                        turn.played.append(child.text or "")
                turn.waiting = "gather"
                turn.gather_action = urljoin(url, verb.get("action") or url)
                turn.gather_digits = int(verb.get("numDigits") or 0)
                turn.continue_url = self._continue_after(verbs[i + 1:], url)
                return None
            elif tag == "Redirect":
                return urljoin(url, (verb.text or "").strip()), {}
            elif tag == "Enqueue":
                turn.waiting = "queue"
                turn.queue = (verb.text or "").strip()
                turn.queue_wait_url = urljoin(url, verb.get("waitUrl") or "")
                self.queue = (turn.queue, turn.queue_wait_url,
                              urljoin(url, verb.get("action") or ""))
                self.queued_at = time.monotonic()
                return None
            elif tag == "Leave" and self.queue:
                # Twilio takes the caller out of the queue and requests the Enqueue action.
                _, _, action = self.queue
                waited = int(time.monotonic() - self.queued_at)
                self.queue = None
                return action, {"QueueResult": "leave", "QueueTime": str(waited)}
            elif tag == "Dial":
                turn.waiting = "dial"
                turn.dial_number = "".join(verb.itertext()).strip()
                turn.dial_action = urljoin(url, verb.get("action") or url)
                return None
            elif tag == "Record":
                turn.waiting = "record"
                turn.record_action = urljoin(url, verb.get("action") or url)
                return None
            elif tag == "Hangup":
                turn.waiting = "hangup"
                return None
        turn.waiting = turn.waiting or "end"
        return None

    @staticmethod
    def _continue_after(rest: list[ET.Element], url: str) -> str:
        for verb in rest:
            if verb.tag == "Redirect":
                return urljoin(url, (verb.text or "").strip())
        return ""


def flask_transport(test_client, base_url: str) -> Transport:
    """Send webhooks to an in-process app through its test client."""

    def send(url: str, form: dict, signature: str) -> tuple[int, str]:
        parts = urlsplit(url)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        resp = test_client.post(path, data=form, headers={"X-Twilio-Signature": signature})
        return resp.status_code, resp.get_data(as_text=True)

    return send


def http_transport(timeout: float = 15.0) -> Transport:
    """Send webhooks over HTTP to a running server."""
    import requests

    session = requests.Session()

    def send(url: str, form: dict, signature: str) -> tuple[int, str]:
        resp = session.post(url, data=form, headers={"X-Twilio-Signature": signature},
                            timeout=timeout)
        return resp.status_code, resp.text

    return send
