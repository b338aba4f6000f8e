"""Plays out an outbound call for the tests' REST stand-in (tests/support/twilio_cloud.py).

`CallDriver` sends the status callbacks (signed with the auth token), fetches the call's TwiML,
follows <Gather>, <Dial action>, <Redirect> and <Hangup>, and reports the end. `ivr serve` does
not use it: it runs the Twilio emulator (`ivr.emulator`).
"""

from __future__ import annotations

import logging
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urljoin

import requests
from twilio.request_validator import RequestValidator

log = logging.getLogger(__name__)

# (url, form params, headers) -> (HTTP status, body)
Deliver = Callable[[str, dict, dict], tuple[int, str]]
MAX_DOCUMENTS = 25


@dataclass
class CallScript:
    """How the far end behaves: who answers, what they press, how a <Dial> leg ends."""

    answer: str = "human"  # human | machine | no-answer | busy | failed
    digits: str = "1"  # pressed at a <Gather>; "" = no input
    dial_status: str = "completed"  # DialCallStatus of a <Dial> leg
    talk_seconds: int = 42


@dataclass
class PlacedCall:
    """An outbound call as the provider knows it."""

    sid: str
    to: str
    from_: str
    url: str
    status_callback: str = ""
    events: tuple[str, ...] = ("completed",)
    machine_detection: str | None = None
    timeout: int | None = None
    status: str = "queued"
    said: list[str] = field(default_factory=list)
    documents: list[str] = field(default_factory=list)
    # What the far end of a <Dial> heard from its noun's `url` (a whisper) before joining.
    whispered: list[str] = field(default_factory=list)
    hangup_requested: bool = False


def new_call_sid() -> str:
    """A Twilio-shaped call SID."""
    return "CA" + uuid.uuid4().hex


def http_deliver(url: str, params: dict, headers: dict) -> tuple[int, str]:
    """POST a webhook over HTTP."""
    resp = requests.post(url, data=params, headers=headers, timeout=15)
    return resp.status_code, resp.text


class CallDriver:
    """Walks one placed call through its webhooks."""

    def __init__(self, auth_token: str, *, account_sid: str = "AC" + "0" * 32,
                 deliver: Deliver = http_deliver) -> None:
        self.validator = RequestValidator(auth_token)
        self.account_sid = account_sid
        self.deliver = deliver

    def post(self, url: str, params: dict) -> tuple[int, str]:
        """Send one signed webhook, as Twilio signs it."""
        headers = {"X-Twilio-Signature": self.validator.compute_signature(url, params)}
        try:
            return self.deliver(url, params, headers)
        except requests.RequestException as exc:
            log.warning("webhook delivery failed", extra={"url": url, "error": str(exc)})
            return 599, ""

    def base_params(self, call: PlacedCall) -> dict:
        return {
            "CallSid": call.sid,
            "AccountSid": self.account_sid,
            "From": call.from_,
            "To": call.to,
            "Direction": "outbound-api",
            "ApiVersion": "2010-04-01",
        }

    def status(self, call: PlacedCall, status: str, **extra: str) -> None:
        """Send a status callback if the call asked for this event."""
        call.status = status
        event = {"in-progress": "answered", "queued": "initiated"}.get(status, status)
        if status in ("busy", "no-answer", "failed", "canceled"):
            event = "completed"  # Twilio reports these as the completed event
        if not call.status_callback or event not in call.events:
            return
        params = self.base_params(call) | {"CallStatus": status} | extra
        self.post(call.status_callback, params)

    def run(self, call: PlacedCall, script: CallScript) -> None:
        """Play the whole call out: ring, answer or not, follow the TwiML, end."""
        self.status(call, "initiated")
        self.status(call, "ringing")
        if call.hangup_requested:
            self.status(call, "canceled", CallDuration="0")
            return
        if script.answer in ("no-answer", "busy", "failed"):
            self.status(call, script.answer, CallDuration="0")
            return
        extra = {}
        if call.machine_detection:
            extra["AnsweredBy"] = "machine_start" if script.answer == "machine" else "human"
        self.status(call, "in-progress", **extra)
        self.follow(call, call.url, script, extra)
        self.status(call, "completed", CallDuration=str(script.talk_seconds))

    def follow(self, call: PlacedCall, url: str, script: CallScript, extra: dict) -> None:
        """Fetch `url` and act on its TwiML until the call ends."""
        params = self.base_params(call) | {"CallStatus": "in-progress"} | extra
        for _ in range(MAX_DOCUMENTS):
            if call.hangup_requested:
                return
            code, body = self.post(url, params)
            call.documents.append(body)
            if code != 200:
                return
            nxt = self._interpret(call, url, body, script)
            if nxt is None:
                return
            url, more = nxt
            params = self.base_params(call) | {"CallStatus": "in-progress"} | extra | more

    def _whisper(self, call: PlacedCall, url: str, dial: ET.Element) -> None:
        """A noun's `url` runs on the answered leg before it is joined (Twilio requests it with
        the child call's parameters, ParentCallSid among them)."""
        for noun in dial:
            if not noun.get("url"):
                continue
            params = self.base_params(call) | {
                "CallSid": new_call_sid(), "ParentCallSid": call.sid, "Direction": "outbound-api",
                "To": (noun.text or "").strip(), "CallStatus": "in-progress"}
            code, body = self.post(urljoin(url, noun.get("url")), params)
            if code == 200:
                with_say = ET.fromstring(body).iter("Say")
                call.whispered.extend((s.text or "").strip() for s in with_say)

    def _interpret(self, call: PlacedCall, url: str, body: str,
                   script: CallScript) -> tuple[str, dict] | None:
        try:
            root = ET.fromstring(body)
        except ET.ParseError:
            return None
        for verb in root:
            tag = verb.tag
            if tag in ("Say", "Play"):
                call.said.append((verb.text or "").strip())
            elif tag == "Gather":
                for child in verb:
                    if child.tag == "Say":
                        call.said.append((child.text or "").strip())
                if script.digits:
                    return urljoin(url, verb.get("action") or url), {"Digits": script.digits}
            elif tag == "Dial":
                if script.dial_status == "completed":
                    self._whisper(call, url, verb)
                action = verb.get("action")
                if action:
                    more = {
                        "DialCallStatus": script.dial_status,
                        "DialCallSid": new_call_sid(),
                        "DialCallDuration": str(
                            script.talk_seconds if script.dial_status == "completed" else 0
                        ),
                    }
                    return urljoin(url, action), more
            elif tag == "Redirect":
                return urljoin(url, (verb.text or "").strip()), {}
            elif tag in ("Hangup", "Reject", "Enqueue", "Leave"):
                return None
        return None
