"""Values the engine takes and gives: caller input, journey events, ports, and a step's result."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

from twilio.twiml.voice_response import VoiceResponse

from ivr.core.callstate import CallState
from ivr.core.flows.schema import Defaults
from ivr.core.i18n.catalog import Phrasebook

# Built-in targets a flow can lead to besides its own nodes.
OPERATOR = "@operator"  # the escape to a person (or a callback offer when nobody can answer)
CALLBACK = "@callback"  # offer a callback for the queue in state.vars["_queue"]
VOICEMAIL = "@voicemail"
HANGUP = "@hangup"


class InputKind(StrEnum):
    DIGITS = "digits"  # keys pressed (Gather action)
    SPEECH = "speech"  # words heard or typed, or a choice the recogniser already made
    NO_INPUT = "no_input"  # the Gather ended without input, or a message finished playing
    DIAL_RESULT = "dial_result"  # a <Dial> ended
    RECORDED = "recorded"  # a <Record> ended


@dataclass(frozen=True)
class Input:
    """What the caller did at a node."""

    kind: InputKind
    digits: str = ""
    text: str = ""
    confidence: float | None = None
    choice: str | None = None  # key decided by the speech recogniser ("" = heard no option)
    needs_confirmation: bool = False  # the recogniser was unsure of `choice`: ask the caller
    decision_ms: float | None = None  # recogniser compute time for its decision
    status: str = ""  # DialCallStatus
    recording_url: str = ""
    recording_seconds: int | None = None


@dataclass(frozen=True)
class Event:
    """One journey step, written to SQL by the journey writer."""

    kind: str
    flow: str | None = None
    node: str | None = None
    digits: str | None = None
    speech_text: str | None = None
    confidence: float | None = None
    detail: dict | None = None


@dataclass(frozen=True)
class CallbackOutcome:
    """What the callback service said about a number a caller asked to be called back on."""

    accepted: bool
    number: str = ""  # normalised E.164
    reason: str = ""  # why it was refused, for the log
    position: int | None = None
    estimated_wait_seconds: int | None = None
    # When the call is booked for, in the queue's own time zone: set when that is later than
    # "as soon as someone is free" (the line is closed now).
    callback_at: dt.datetime | None = None


@dataclass(frozen=True)
class StreamOffer:
    """Where a menu's audio goes, and what the stream must present when it starts (its
    signed, expiring token): added to the <Stream>'s custom parameters."""

    url: str
    parameters: dict[str, str] = field(default_factory=dict)


class Ports(Protocol):
    """What the engine asks of the world; the web layer implements it, tests can too."""

    def now(self) -> dt.datetime:
        """The current aware time."""

    def url(self, endpoint: str, **params: str) -> str:
        """The URL Twilio should request for `endpoint` (gather, continue, dialed, ...)."""

    def queue_available(self, queue: str) -> bool:
        """True when `queue` is open and someone is staffed to answer it."""

    def request_callback(self, *, number: str, queue: str, state: CallState) -> CallbackOutcome:
        """Ask for a callback to `number` for the caller in `state`."""

    def speech_stream_url(self, state: CallState, node: str) -> StreamOffer | None:
        """The websocket that recognises speech at `node`, or None for DTMF only."""


@dataclass
class Step:
    """The engine's answer to one webhook."""

    twiml: VoiceResponse
    state: CallState
    events: list[Event] = field(default_factory=list)
    # Set when the call leaves the flow: queued, dialed, voicemail, callback, hangup.
    outcome: str | None = None


class EngineView(Protocol):
    """What the engine's helper modules (rendering, the callback offer) use of the engine."""

    ports: Ports
    defaults: Defaults
    phrases: Phrasebook  # the system sentences, with the flows' overrides

    def goto(self, step: Step, target: str, *, lead_in: list | None = None) -> None:
        """Enter `target` and render the first node that speaks."""

    def operator_queue(self) -> str:
        """The queue the operator escape leads to."""

    def is_operator_digit(self, digits: str) -> bool:
        """True when `digits` is the operator escape."""
