"""Calls as Twilio knows them: status, the far end, and the events a call can be interrupted by.

Every call runs its TwiML in a thread of its own (`ivr.emulator.interpreter`). What happens to
a call from outside (the far end hangs up, the REST API redirects it, an agent's
`<Dial><Queue>` takes it out of a queue) is an *interrupt*: it wakes whatever the call is
waiting for, and the call's thread acts on it at once, as Twilio would.
"""

from __future__ import annotations

import email.utils
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol


class Status(StrEnum):
    """A call's status, as the Calls resource reports it."""

    QUEUED = "queued"
    RINGING = "ringing"
    IN_PROGRESS = "in-progress"
    COMPLETED = "completed"
    BUSY = "busy"
    FAILED = "failed"
    NO_ANSWER = "no-answer"
    CANCELED = "canceled"

    @property
    def is_final(self) -> bool:
        """True once the call has ended."""
        return self in FINAL


FINAL = frozenset({Status.COMPLETED, Status.BUSY, Status.FAILED, Status.NO_ANSWER,
                   Status.CANCELED})


class Interrupt(StrEnum):
    """Why a waiting call was woken."""

    HANGUP = "hangup"  # the far end hung up, or the REST API ended the call
    REDIRECT = "redirect"  # the REST API gave the call a new URL
    DEQUEUED = "dequeued"  # an agent's <Dial><Queue> took the call out of its queue
    BRIDGE_ENDED = "bridge-ended"  # the other side of a bridge hung up


ANSWERS = ("human", "machine", "no-answer", "busy", "failed")


@dataclass(frozen=True)
class Listen:
    """A <Gather> as the far end experiences it."""

    prompt_seconds: float  # how long its nested <Say>/<Play> last
    timeout: float  # seconds of silence after the prompt before Twilio gives up
    num_digits: int | None
    finish_on_key: str
    speech: bool  # the Gather listens for speech too
    in_queue: bool  # a hold queue's wait music: the caller is holding, not choosing


@dataclass(frozen=True)
class Reply:
    """What the far end did at a <Gather>: keys pressed, or words said."""

    digits: str = ""
    speech: str = ""
    confidence: float = 0.9


class Party(Protocol):
    """A far end's behaviour; the emulator calls these from the call's thread."""

    def answer(self, call: Call) -> tuple[str, float]:
        """How the phone is answered (one of ANSWERS) and after how many seconds of ringing."""

    def listen(self, call: Call, listen: Listen) -> Reply | None:
        """Block while the prompt plays and the Gather waits; None is silence."""

    def record(self, call: Call, max_length: float) -> float:
        """Seconds of message left at a <Record> (0: none)."""

    def talk_seconds(self, call: Call) -> float | None:
        """How long this side talks once bridged before hanging up (None: until the other does)."""



def new_sid(prefix: str) -> str:
    """A Twilio-shaped SID: two letters and 32 hex digits."""
    return prefix + uuid.uuid4().hex


def rfc2822(epoch: float | None) -> str | None:
    """Twilio's date format, e.g. 'Tue, 31 Aug 2010 20:36:28 +0000'."""
    if epoch is None:
        return None
    return email.utils.formatdate(epoch, usegmt=False).replace("-0000", "+0000")


@dataclass
class Call:
    """One call leg."""

    sid: str
    account_sid: str
    to: str
    from_: str
    direction: str  # inbound | outbound-api | outbound-dial
    party: Party
    url: str = ""
    method: str = "POST"
    fallback_url: str = ""
    status_callback: str = ""
    status_callback_method: str = "POST"
    status_events: tuple[str, ...] = ("completed",)
    timeout: int = 60  # seconds to ring before no-answer
    machine_detection: str | None = None
    parent_sid: str | None = None
    status: Status = Status.QUEUED
    created_at: float = field(default_factory=time.time)
    updated_at: float = field(default_factory=time.time)
    answered_at: float | None = None
    ended_at: float | None = None
    answered_by: str | None = None
    queue_time: int = 0
    # What the far end of this leg heard (<Say> texts), in order.
    heard: list[str] = field(default_factory=list)
    _sequence: int = 0
    _interrupts: deque = field(default_factory=deque)
    _cond: threading.Condition = field(default_factory=threading.Condition)

    # --- interrupts ------------------------------------------------------------------------

    def interrupt(self, kind: Interrupt, **detail: Any) -> None:
        """Wake the call's thread with `kind` (a hang-up wins over everything else)."""
        with self._cond:
            if kind is Interrupt.HANGUP:
                self._interrupts.clear()
            self._interrupts.append((kind, detail))
            self._cond.notify_all()

    def pending(self) -> tuple[Interrupt, dict] | None:
        """The oldest interrupt not handled yet, without taking it."""
        with self._cond:
            return self._interrupts[0] if self._interrupts else None

    def take(self, *kinds: Interrupt) -> tuple[Interrupt, dict] | None:
        """Take the oldest pending interrupt if it is one of `kinds` (any when none given)."""
        with self._cond:
            if self._interrupts and (not kinds or self._interrupts[0][0] in kinds):
                return self._interrupts.popleft()
            return None

    def await_kind(self, kind: Interrupt, timeout: float) -> dict | None:
        """Take the first pending `kind` interrupt wherever it is, waiting up to `timeout` s."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for i, (pending, detail) in enumerate(self._interrupts):
                    if pending is kind:
                        del self._interrupts[i]
                        return detail
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._cond.wait(left)

    @property
    def is_hung_up(self) -> bool:
        """True when a hang-up is pending or the call has ended."""
        with self._cond:
            hung = any(kind is Interrupt.HANGUP for kind, _ in self._interrupts)
        return hung or self.status.is_final

    def wait(self, seconds: float | None) -> bool:
        """Sleep up to `seconds` (None: until interrupted); True when an interrupt came."""
        deadline = None if seconds is None else time.monotonic() + max(0.0, seconds)
        with self._cond:
            while not self._interrupts:
                if deadline is None:
                    self._cond.wait()
                    continue
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
            return True

    def notify(self) -> None:
        """Wake waiters without an interrupt (something they watch changed)."""
        with self._cond:
            self._cond.notify_all()

    # --- status ----------------------------------------------------------------------------

    def next_sequence(self) -> int:
        """SequenceNumber of the next status callback (0, 1, 2... in the order fired)."""
        with self._cond:
            number = self._sequence
            self._sequence += 1
            return number

    @property
    def duration(self) -> int:
        """Whole seconds from answer to end (0 when never answered)."""
        if self.answered_at is None:
            return 0
        return int(round((self.ended_at or time.time()) - self.answered_at))

    def request_params(self) -> dict[str, str]:
        """Twilio's standard request parameters for this call's webhooks."""
        # After a hang-up the requests that still follow (actions) say the call is over.
        status = Status.COMPLETED if self.is_hung_up else self.status
        params = {
            "CallSid": self.sid, "AccountSid": self.account_sid, "From": self.from_,
            "To": self.to, "Caller": self.from_, "Called": self.to,
            "CallStatus": status.value, "Direction": self.direction,
            "ApiVersion": "2010-04-01",
        }
        if self.parent_sid:
            params["ParentCallSid"] = self.parent_sid
        if self.answered_by:
            params["AnsweredBy"] = self.answered_by
        return params

    def resource(self, api_prefix: str) -> dict[str, Any]:
        """The Calls resource representation (fields of Twilio's published schema)."""
        uri = f"{api_prefix}/Accounts/{self.account_sid}/Calls/{self.sid}.json"
        started = self.answered_at
        return {
            "sid": self.sid, "date_created": rfc2822(self.created_at),
            "date_updated": rfc2822(self.updated_at), "parent_call_sid": self.parent_sid,
            "account_sid": self.account_sid, "to": self.to, "to_formatted": self.to,
            "from": self.from_, "from_formatted": self.from_, "phone_number_sid": None,
            "status": self.status.value, "start_time": rfc2822(started),
            "end_time": rfc2822(self.ended_at),
            "duration": str(self.duration) if self.status.is_final else None,
            "price": None, "price_unit": "USD", "direction": self.direction,
            "answered_by": self.answered_by, "api_version": "2010-04-01",
            "forwarded_from": None, "group_sid": None, "caller_name": None,
            "queue_time": str(self.queue_time), "trunk_sid": None, "uri": uri,
            "subresource_uris": {
                "recordings": uri.replace(".json", "/Recordings.json"),
                "streams": uri.replace(".json", "/Streams.json"),
            },
        }


class Journal:
    """Everything the emulated network did, in order, for `ivr simulate` and tests to read."""

    def __init__(self, keep: int = 5000) -> None:
        self._events: deque[dict] = deque(maxlen=keep)
        self._seq = 0
        self._cond = threading.Condition()

    def add(self, call: Call, kind: str, text: str = "", **detail: Any) -> dict:
        """Record one event of `call` and wake readers."""
        with self._cond:
            self._seq += 1
            event = {"seq": self._seq, "at": time.time(), "call": call.sid, "to": call.to,
                     "from": call.from_, "direction": call.direction, "kind": kind,
                     "text": text, **({"detail": detail} if detail else {})}
            self._events.append(event)
            self._cond.notify_all()
        return event

    @property
    def last(self) -> int:
        """The sequence number of the newest event (0 before any)."""
        with self._cond:
            return self._seq

    def since(self, seq: int, *, wait: float = 0.0, call: str | None = None) -> list[dict]:
        """Events after `seq` (of one call if given), waiting up to `wait` s for the first."""
        deadline = time.monotonic() + wait
        with self._cond:
            while True:
                found = [e for e in self._events
                         if e["seq"] > seq and (call is None or e["call"] == call)]
                left = deadline - time.monotonic()
                if found or left <= 0:
                    return found
                self._cond.wait(left)
