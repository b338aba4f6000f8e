"""The emulated Twilio account: phone numbers, calls, queues, recordings, and its REST verbs.

`TwilioEmulator` is what the HTTP front (`ivr.emulator.rest`) and tests call. It owns every
call's thread; `ivr serve` runs one so a laptop has a phone network, and the test suite runs
one in place of Twilio's cloud. Product code never imports it: it talks to it through the
twilio library's REST client and answers its signed webhooks, exactly as with Twilio.
"""

from __future__ import annotations

import io
import logging
import threading
import time
import wave
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ivr.emulator.bridging import Bridging
from ivr.emulator.calls import (
    FINAL,
    Call,
    Interrupt,
    Journal,
    Party,
    Reply,
    Status,
    new_sid,
    rfc2822,
)
from ivr.emulator.chaos import Chaos
from ivr.emulator.delivery import Transport, Webhooks, is_absolute
from ivr.emulator.interpreter import Interpreter
from ivr.emulator.network import Goto
from ivr.emulator.parties import InteractiveParty, ScriptedParty
from ivr.emulator.timing import Timing

log = logging.getLogger(__name__)

API_PREFIX = "/2010-04-01"
EVENTS = ("initiated", "ringing", "answered", "completed")
_EVENT_OF = {Status.QUEUED: "initiated", Status.RINGING: "ringing",
             Status.IN_PROGRESS: "answered"}


class ApiError(Exception):
    """A REST request Twilio refuses: HTTP status, Twilio error code and message."""

    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message

    def body(self) -> dict[str, Any]:
        """Twilio's error JSON."""
        return {"code": self.code, "message": self.message, "status": self.status,
                "more_info": f"https://www.twilio.com/docs/errors/{self.code}"}


@dataclass
class Number:
    """One of the account's phone numbers and where its calls go."""

    number: str
    voice_url: str
    voice_method: str = "POST"
    fallback_url: str = ""
    status_callback: str = ""


@dataclass
class Recording:
    sid: str
    call_sid: str
    url: str  # without an extension, as Twilio gives RecordingUrl
    seconds: float
    wav: bytes = field(repr=False, default=b"")


class TwilioEmulator:
    """One Twilio account's worth of phone network, run in threads."""

    def __init__(self, account_sid: str, auth_token: str, *, timing: Timing | None = None,
                 transport: Transport | None = None, public_url: str = "",
                 chaos: Chaos | None = None,
                 default_party: Callable[[str], Party] | None = None) -> None:
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.timing = timing or Timing()
        self.public_url = public_url.rstrip("/")  # where the REST API is served (recordings)
        self.webhooks = Webhooks(auth_token, transport, chaos=chaos)
        self.journal = Journal()
        self.interpreter = Interpreter(self)
        self.bridging = Bridging(self)
        self.numbers: dict[str, Number] = {}
        self.caller_ids: set[str] = set()
        self.parties: dict[str, Party] = {}
        # Who answers an address nobody set a party for (a scripted person by default).
        self.default_party = default_party or (
            lambda address: ScriptedParty(ring_seconds=self.timing.ring_seconds))
        self.calls: dict[str, Call] = {}
        self.recordings: dict[str, Recording] = {}
        self._threads: dict[str, threading.Thread] = {}
        self._lock = threading.Lock()

    # --- configuration ------------------------------------------------------------------------

    def configure_number(self, number: str, voice_url: str, *, status_callback: str = "",
                         fallback_url: str = "") -> Number:
        """Point one of the account's numbers at its webhooks (the Console's number page)."""
        for url in (voice_url, status_callback, fallback_url):
            if url and not is_absolute(url):
                raise ApiError(400, 21205, f"Invalid URL: {url!r} is not a fully qualified URL")
        entry = Number(number, voice_url, fallback_url=fallback_url,
                       status_callback=status_callback)
        self.numbers[number] = entry
        return entry

    def verify_caller_id(self, number: str) -> None:
        """Let the account call out from `number` (Twilio's verified caller IDs)."""
        self.caller_ids.add(number)

    def set_party(self, address: str, party: Party) -> None:
        """Who answers calls to `address` (a number, sip: URI or client:name)."""
        self.parties[address] = party

    def party_for(self, address: str) -> Party:
        party = self.parties.get(address)
        if party is None:
            party = self.parties[address] = self.default_party(address)
        return party

    # --- calls ---------------------------------------------------------------------------------

    def new_call(self, *, to: str, from_: str, direction: str, party: Party | None = None,
                 **fields: Any) -> Call:
        call = Call(sid=new_sid("CA"), account_sid=self.account_sid, to=to, from_=from_,
                    direction=direction, party=party or self.party_for(to), **fields)
        with self._lock:
            self.calls[call.sid] = call
        return call

    def dial_in(self, from_: str, to: str, party: Party | None = None) -> Call:
        """Someone calls one of our numbers: Twilio requests its voice URL."""
        number = self.numbers.get(to)
        if number is None:
            raise ApiError(404, 20404, f"{to} is not a number of this account")
        call = self.new_call(to=to, from_=from_, direction="inbound",
                             party=party or InteractiveParty(), url=number.voice_url,
                             method=number.voice_method, fallback_url=number.fallback_url,
                             status_callback=number.status_callback,
                             status_events=("completed",))
        self._start(call, self._inbound)
        return call

    def create_call(self, form: dict[str, list[str]]) -> dict:
        """`POST /Calls.json`: place an outbound call (Twilio's parameters and refusals).

        Returns the call's resource as the POST answers it: as it was created (queued), before
        it starts ringing. However busy the host, a call never comes back answered already."""
        def one(key: str) -> str:
            values = form.get(key) or [""]
            return values[0]

        if not one("To"):
            raise ApiError(400, 21201, "No 'To' number is specified")
        if not one("From"):
            raise ApiError(400, 21603, "A 'From' phone number is required.")
        if not one("Url") and not one("Twiml") and not one("ApplicationSid"):
            raise ApiError(400, 21205, "Url parameter is required.")
        if not one("Url"):
            raise ApiError(400, 20001, "the emulator runs calls from a Url only (Twiml and "
                                       "ApplicationSid are not emulated)")
        if one("From") not in self.numbers and one("From") not in self.caller_ids \
                and not one("From").startswith("client:"):
            raise ApiError(400, 21210, f"The source phone number provided, {one('From')}, is "
                                       "not yet verified for your account.")
        for key in ("Url", "StatusCallback", "FallbackUrl"):
            if one(key) and not is_absolute(one(key)):
                raise ApiError(400, 21205, f"Invalid URL: {key} {one(key)!r} is not a fully "
                                           "qualified URL (Twilio needs http(s)://host/path)")
        for key in ("Method", "StatusCallbackMethod", "FallbackMethod"):
            if one(key) and one(key).upper() not in ("GET", "POST"):
                raise ApiError(400, 21200, f"{key} must be GET or POST")
        events = tuple(e for value in form.get("StatusCallbackEvent") or []
                       for e in value.split() if e in EVENTS) or ("completed",)
        try:
            timeout = int(one("Timeout") or 60)
        except ValueError:
            raise ApiError(400, 21200, "Timeout must be a whole number of seconds") from None
        call = self.new_call(
            to=one("To"), from_=one("From"), direction="outbound-api", url=one("Url"),
            method=(one("Method") or "POST").upper(), fallback_url=one("FallbackUrl"),
            status_callback=one("StatusCallback"),
            status_callback_method=(one("StatusCallbackMethod") or "POST").upper(),
            status_events=events, timeout=max(5, min(600, timeout)),
            machine_detection=one("MachineDetection") or None)
        created = call.resource(API_PREFIX)
        self._start(call, self._outbound)
        return created

    def get(self, sid: str) -> Call:
        call = self.calls.get(sid)
        if call is None:
            raise ApiError(404, 20404, f"The requested resource /Calls/{sid}.json was not found")
        return call

    def update_call(self, sid: str, form: dict[str, list[str]]) -> Call:
        """`POST /Calls/{Sid}.json`: redirect (Url) or end (Status) a live call."""
        call = self.get(sid)
        status = (form.get("Status") or [""])[0]
        url = (form.get("Url") or [""])[0]
        method = ((form.get("Method") or ["POST"])[0] or "POST").upper()
        if status:
            if status not in ("canceled", "completed"):
                raise ApiError(400, 21218, f"Invalid Status {status!r}: canceled or completed")
            if call.status.is_final:
                raise ApiError(400, 21220, "Call is not in-progress. Cannot redirect.")
            if status == "canceled" and call.status is Status.IN_PROGRESS:
                return call  # canceling an answered call does nothing, as on Twilio
            call.interrupt(Interrupt.HANGUP, by="rest")
            return call
        if url:
            if not is_absolute(url):
                raise ApiError(400, 21205, f"Invalid URL: {url!r} is not a fully qualified URL")
            if call.status is not Status.IN_PROGRESS:
                raise ApiError(400, 21220, "Call is not in-progress. Cannot redirect.")
            call.interrupt(Interrupt.REDIRECT, url=url, method=method)
        return call

    def list_calls(self, form: dict[str, list[str]]) -> list[Call]:
        def matches(call: Call) -> bool:
            for key, attr in (("To", "to"), ("From", "from_"), ("Status", "status"),
                              ("ParentCallSid", "parent_sid")):
                want = (form.get(key) or [""])[0]
                if want and str(getattr(call, attr)) != want:
                    return False
            return True

        with self._lock:
            calls = list(self.calls.values())
        return sorted((c for c in calls if matches(c)), key=lambda c: -c.created_at)

    # --- the far end (control API) ----------------------------------------------------------

    def act(self, sid: str, action: str) -> None:
        """An interactive caller's next step: digits, 'say:words', 'wait' or 'hangup'."""
        call = self.get(sid)
        if action == "hangup":
            call.interrupt(Interrupt.HANGUP, by="caller")
            return
        if not isinstance(call.party, InteractiveParty):
            raise ApiError(400, 20001, "this call's far end is not interactive")
        if action in ("", "wait"):
            call.party.act("wait")
        elif action.startswith("say:"):
            call.party.act(Reply(speech=action[4:].strip()))
        else:
            call.party.act(Reply(digits=action))

    # --- running calls ------------------------------------------------------------------------

    def _start(self, call: Call, body) -> None:
        thread = threading.Thread(target=self._run, args=(call, body), daemon=True,
                                  name=f"emulator-call-{call.sid[-6:]}")
        with self._lock:
            self._threads[call.sid] = thread
        thread.start()

    def _run(self, call: Call, body) -> None:
        try:
            body(call)
        except Exception:
            log.exception("emulated call failed", extra={"call_sid": call.sid})
        finally:
            if not call.status.is_final:
                self.end(call, Status.COMPLETED)

    def _inbound(self, call: Call) -> None:
        # The voice URL is requested with CallStatus=ringing; the call is answered with it.
        self.set_status(call, Status.RINGING)
        self.journal.add(call, "incoming", call.from_)
        self.interpreter.run_call(call, Goto(call.url, call.method))

    def _outbound(self, call: Call) -> None:
        self.set_status(call, Status.QUEUED)
        how = self.ring(call)
        if how == "answered":
            self.interpreter.run_call(call, Goto(call.url, call.method))

    def ring(self, call: Call, parent: Call | None = None) -> str:
        """Ring `call`'s far end; return 'answered' or how it ended (busy, no-answer...)."""
        self.set_status(call, Status.RINGING)
        self.journal.add(call, "ringing", call.to)
        how, after = call.party.answer(call)
        ring_for = min(self.timing.timer(after), self.timing.timer(call.timeout))
        woke = self._ring_wait(call, ring_for, parent)
        if woke:
            self.end(call, Status.CANCELED)
            return "canceled"
        if how in ("busy", "failed"):
            self.end(call, Status(how))
            return how
        if how == "no-answer" or after > call.timeout:
            call.wait(max(0.0, self.timing.timer(call.timeout) - ring_for))
            self.end(call, Status.NO_ANSWER)
            return "no-answer"
        if call.machine_detection:
            call.answered_by = "machine_start" if how == "machine" else "human"
        call.answered_at = time.time()
        self.set_status(call, Status.IN_PROGRESS)
        self.journal.add(call, "answered", call.to, answered_by=call.answered_by or "")
        return "answered"

    @staticmethod
    def _ring_wait(call: Call, seconds: float, parent: Call | None) -> bool:
        """Ring for `seconds`; True when the call, or the leg that dialled it, hung up."""
        if parent is None:
            return call.wait(seconds)
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            if call.wait(min(left, 0.05)) or parent.is_hung_up:
                return True
        return parent.is_hung_up

    def set_status(self, call: Call, status: Status) -> None:
        """Move the call to `status`, and send the status callback if it asked for the event."""
        call.status = status
        call.updated_at = time.time()
        event = "completed" if status in FINAL else _EVENT_OF.get(status)
        if event is None or not call.status_callback or event not in call.status_events:
            return
        params = {**call.request_params(),
                  "CallStatus": "initiated" if event == "initiated" else status.value,
                  "CallbackSource": "call-progress-events",
                  "SequenceNumber": str(call.next_sequence()),
                  "Timestamp": rfc2822(time.time()) or ""}
        if status in FINAL:
            params["CallDuration"] = str(call.duration)
            params["Duration"] = str((call.duration + 59) // 60)
        self.webhooks.status_callback(call.status_callback_method, call.status_callback, params)

    def end(self, call: Call, status: Status) -> None:
        """The call is over: its final status, once."""
        with self._lock:
            if call.status.is_final:
                return
            call.ended_at = time.time()
        self.journal.add(call, "ended", status.value, duration=call.duration)
        self.set_status(call, status)
        call.notify()

    def wait_idle(self, timeout: float = 30.0) -> bool:
        """Wait until every call has ended and its status callbacks were sent."""
        deadline = time.monotonic() + timeout
        for thread in list(self._threads.values()):
            thread.join(max(0.0, deadline - time.monotonic()))
        self.webhooks.drain(max(0.1, deadline - time.monotonic()))
        return all(c.status.is_final for c in list(self.calls.values()))

    def hang_up_all(self) -> None:
        """End every live call (the network shuts down)."""
        for call in list(self.calls.values()):
            if not call.status.is_final:
                call.interrupt(Interrupt.HANGUP, by="shutdown")

    # --- recordings ---------------------------------------------------------------------------

    def add_recording(self, call: Call, seconds: float, wav: bytes | None = None) -> Recording:
        """Keep a recording of `call` (silence unless `wav` is given) to serve over REST."""
        sid = new_sid("RE")
        url = f"{self.public_url}{API_PREFIX}/Accounts/{self.account_sid}/Recordings/{sid}"
        rec = Recording(sid, call.sid, url, seconds, wav or _silence(seconds))
        self.recordings[sid] = rec
        return rec


def _silence(seconds: float) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"\0\0" * int(8000 * max(0.0, min(seconds, 600))))
    return out.getvalue()

