"""The emulated network's internal interface: what the TwiML interpreter and the queue and
bridge verbs use of the account (`TwilioEmulator`), and the outcomes of playing a document."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Protocol

from ivr.emulator.calls import Call, Journal, Status
from ivr.emulator.delivery import Webhooks
from ivr.emulator.timing import Timing


@dataclass
class Goto:
    """Fetch this URL next, with these extra parameters."""

    url: str
    method: str = "POST"
    params: dict[str, str] = field(default_factory=dict)


class End:
    """The call is over (hung up, or its document ended)."""


END = End()
LEAVE = "leave"  # a <Leave> ran inside a queue's wait document
FAILED = "failed"  # a nested document could not be fetched



class Documents(Protocol):
    """Plays TwiML documents (the interpreter)."""

    def run_nested(self, call: Call, goto: Goto, context: str) -> End | str | None:
        """Play documents in a restricted context (queue wait music, announcements)."""

    def say(self, call: Call, text: str, loops: int = 1) -> None:
        """The far end hears `text`."""


class Joining(Protocol):
    """The verbs that join calls together (queues and bridges)."""

    def enqueue(self, call: Call, verb: ET.Element, url: str) -> Goto | End | None:
        """<Enqueue>: hold the call in a queue until it leaves it."""

    def dial(self, call: Call, verb: ET.Element, url: str) -> Goto | End | None:
        """<Dial>: ring a number, client or SIP address, or take a queue's caller."""


class Recording(Protocol):
    sid: str
    url: str


class Network(Protocol):
    """One emulated Twilio account, as its parts see it."""

    account_sid: str
    timing: Timing
    webhooks: Webhooks
    journal: Journal
    interpreter: Documents
    bridging: Joining

    def new_call(self, *, to: str, from_: str, direction: str, **fields) -> Call:
        """A new call leg of this account."""

    def ring(self, call: Call, parent: Call | None = None) -> str:
        """Ring the far end; 'answered' or how the call ended."""

    def set_status(self, call: Call, status: Status) -> None:
        """Move the call to `status` (and send its status callback)."""

    def end(self, call: Call, status: Status) -> None:
        """The call is over."""

    def add_recording(self, call: Call, seconds: float) -> Recording:
        """Keep a recording of `call`."""
