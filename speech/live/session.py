"""One Twilio Media Stream: its messages, a recogniser fed as the audio arrives, and the decision.

Twilio sends JSON text messages over the websocket: `connected`, then `start` (streamSid,
callSid, customParameters, mediaFormat), then `media` frames of base64 mu-law (20 ms each), and
`dtmf`, `mark` and `stop` (https://www.twilio.com/docs/voice/media-streams/websocket-messages).
`MediaStreamHandler` is the per-socket state machine; it knows nothing of Flask or sockets, so
bad input is tested message by message. Bad messages are logged and skipped; the stream is
closed when it can no longer be useful (call gone, caller moved on, no model, decided).
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol, TypeVar

from ivr.core.callstate import CallState
from speech.errors import StreamMessageError
from speech.matcher import NOISE_TOKENS, tokenize
from speech.models import LoadedModel
from speech.recognizer import Decision, SpeechSession

log = logging.getLogger(__name__)
T = TypeVar("T")

# A caller is checked on (Redis GET) about once a second of audio: a stream whose caller pressed
# a key or hung up is closed soon after, instead of running to the end of the call.
CHECK_EVERY_FRAMES = 50
# This many bad messages in a row and the socket is not worth keeping.
MAX_BAD_MESSAGES = 25
MULAW_FORMAT = {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}
MULAW_BYTES_PER_SECOND = 8000  # one byte a sample, 8 kHz


class Close(StrEnum):
    """Why a stream was closed by us."""

    DECIDED = "decided"
    CALL_GONE = "call_gone"  # no call state: hung up, or not one of our calls
    MOVED_ON = "moved_on"  # the caller is no longer at the menu this stream listens for
    NO_MODEL = "no_model"
    BAD_START = "bad_start"
    BAD_INPUT = "bad_input"  # too many malformed messages
    STOPPED = "stopped"  # Twilio sent `stop`
    BUSY = "busy"  # recognition is behind: this menu takes keys only


@dataclass(frozen=True)
class StreamStart:
    """The `start` message: which call and menu this stream listens for."""

    stream_sid: str
    call_sid: str
    account_sid: str
    flow: str
    node: str
    language: str
    choices: dict[str, list[str]]
    token: str = ""  # bound to the call, the menu and `expires` (ivr.infra.security)
    expires: str = ""
    turn: str = ""  # the document that started the stream; its redirect carries it back

    @classmethod
    def parse(cls, message: Mapping[str, Any]) -> StreamStart:
        """Read a `start` message; raises StreamMessageError saying what is missing."""
        start = message.get("start")
        if not isinstance(start, Mapping):
            raise StreamMessageError("start message without a 'start' object")
        stream_sid = start.get("streamSid") or message.get("streamSid")
        call_sid = start.get("callSid")
        if not stream_sid or not call_sid:
            raise StreamMessageError("start message without streamSid or callSid")
        fmt = start.get("mediaFormat") or {}
        if any(fmt.get(k) != v for k, v in MULAW_FORMAT.items()):
            raise StreamMessageError(f"unsupported mediaFormat {fmt!r}; expected {MULAW_FORMAT}")
        params = start.get("customParameters") or {}
        if not isinstance(params, Mapping):
            raise StreamMessageError("customParameters is not an object")
        missing = [k for k in ("flow", "node", "language", "choices") if not params.get(k)]
        if missing:
            raise StreamMessageError(f"start message lacks custom parameters {missing}")
        try:
            choices = json.loads(params["choices"])
        except (TypeError, ValueError) as exc:
            raise StreamMessageError(f"choices parameter is not JSON: {exc}") from exc
        if not (isinstance(choices, dict) and all(
                isinstance(v, list) and all(isinstance(p, str) for p in v)
                for v in choices.values())):
            raise StreamMessageError("choices parameter must map keys to lists of phrases")
        return cls(str(stream_sid), str(call_sid), str(start.get("accountSid") or ""),
                   str(params["flow"]), str(params["node"]), str(params["language"]),
                   {str(k): v for k, v in choices.items() if v},
                   str(params.get("token") or ""), str(params.get("expires") or ""),
                   str(params.get("turn") or ""))


def parse_message(raw: str | bytes) -> dict[str, Any]:
    """Decode one websocket message into a dict with an `event`."""
    try:
        message = json.loads(raw)
    except (TypeError, ValueError, UnicodeDecodeError) as exc:
        raise StreamMessageError(f"message is not JSON: {exc}") from exc
    if not isinstance(message, dict) or not isinstance(message.get("event"), str):
        raise StreamMessageError("message is not an object with an 'event'")
    return message


def decode_payload(media: Any) -> bytes:
    """The mu-law bytes of a `media` message's payload."""
    if not isinstance(media, Mapping) or not isinstance(media.get("payload"), str):
        raise StreamMessageError("media message without a payload")
    try:
        audio = base64.b64decode(media["payload"], validate=True)
    except (binascii.Error, ValueError) as exc:
        raise StreamMessageError(f"corrupt media payload (not base64: {exc})") from exc
    if not audio:
        raise StreamMessageError("empty media payload")
    return audio


def heard_words(decision: Decision) -> bool:
    """Whether the recogniser heard any word at all (not only noise or silence)."""
    return any(t not in NOISE_TOKENS for t in tokenize(decision.match.text))


class StreamPorts(Protocol):
    """What a stream needs from the service."""

    def call_state(self, call_sid: str) -> CallState | None:
        """The call's state in Redis, or None when the call is unknown or over."""

    def is_token_valid(self, start: StreamStart) -> bool:
        """True when the stream's token was made for its call and menu, and is still fresh."""

    def model_for(self, language: str) -> LoadedModel | None:
        """The shared model for `language`, or None."""

    def decided(self, start: StreamStart, decision: Decision) -> None:
        """Act on a decision: redirect the live call (must not block for long)."""

    def admit(self) -> str | None:
        """Take a place among the streams being recognised, or say why there is none now
        (recognition is behind); a place taken is given back by `release`."""

    def release(self) -> None:
        """The admitted stream has ended."""

    def heard(self, behind: float) -> None:
        """A piece of this stream's audio was just recognised, `behind` seconds after its
        caller said it (negative when the audio came faster than real time)."""

    def compute(self, fn: Callable[..., T], *args: Any) -> T:
        """Run CPU-bound recognition work `fn(*args)` off the socket's loop; its result."""


class MediaStreamHandler:
    """The state of one websocket; feed it each message, close the socket when it says so."""

    def __init__(self, ports: StreamPorts, *, account_sid: str | None = None) -> None:
        self.ports = ports
        self.account_sid = account_sid
        self.start: StreamStart | None = None
        self.session: SpeechSession | None = None
        self.closed: Close | None = None
        self.decision: Decision | None = None
        self.errors: list[str] = []
        self._bad_in_a_row = 0
        self._frames = 0
        self._seq: int | None = None
        self._audio: list[bytes] = []  # media payloads taken, not yet fed to the recogniser
        self._admitted = False
        # When the first audio came (monotonic) and how many seconds of it were recognised:
        # Twilio sends the caller's audio in real time, so the difference is how late we are.
        self._first_audio: float | None = None
        self._heard_s = 0.0

    def handle(self, raw: str | bytes) -> bool:
        """Take one message; returns False when the stream should be closed."""
        return self.handle_batch((raw,))

    def handle_batch(self, raws: Iterable[str | bytes]) -> bool:
        """Take the messages that arrived together; their audio goes to the recogniser in one
        piece of work. Returns False when the stream should be closed."""
        for raw in raws:
            if self.closed is not None:
                break
            self._take(raw)
        if self.closed is None:
            self._feed()
        return self.closed is None

    def _take(self, raw: str | bytes) -> None:
        try:
            message = parse_message(raw)
            event = message["event"]
            if event == "media":
                self._media(message)
            else:
                self._feed()  # the audio sent before this message is heard before it
                if self.closed is None:
                    self._control(event, message)
        except StreamMessageError as exc:
            self._bad(str(exc))
        else:
            self._bad_in_a_row = 0

    def _control(self, event: str, message: dict) -> None:
        if event == "start":
            self._start(message)
        elif event == "stop":
            self._stop(message)
        elif event in ("connected", "mark", "dtmf"):
            self._check_stream(message, required=event != "connected")
            log.debug("stream %s message", event, extra=self._extra())
        else:
            raise StreamMessageError(f"unknown event {event!r}")

    def finish(self) -> None:
        """The socket is closed (after `stop`, or Twilio went away): nothing more can be
        decided, and the stream's place is given back."""
        if self.closed is None:
            self.closed = Close.STOPPED
        if self._admitted:
            self._admitted = False
            self.ports.release()

    # --- events ------------------------------------------------------------------------------

    def _start(self, message: dict) -> None:
        if self.start is not None:
            raise StreamMessageError(f"second start message on stream {self.start.stream_sid}")
        try:
            start = StreamStart.parse(message)
        except StreamMessageError as exc:
            return self._close(Close.BAD_START, f"stream refused: {exc}")
        self.start = start
        if self.account_sid and start.account_sid and start.account_sid != self.account_sid:
            return self._close(Close.BAD_START,
                               f"stream refused: account {start.account_sid} is not ours")
        if not self.ports.is_token_valid(start):
            return self._close(Close.BAD_START, "stream refused: its token is not for this call "
                                                "and menu, or has expired")
        state = self.ports.call_state(start.call_sid)
        if state is None:
            return self._close(Close.CALL_GONE, "stream refused: call is unknown or has ended "
                                                "(no call state)")
        if not self._at_menu(state):
            return self._close(Close.MOVED_ON, f"stream refused: call is at {state.flow}."
                                               f"{state.node}, not {start.flow}.{start.node}")
        model = self.ports.model_for(start.language)
        if model is None:
            return self._close(Close.NO_MODEL, f"stream refused: no speech model for language "
                                               f"'{start.language}'; the menu takes keys only")
        behind = self.ports.admit()
        if behind is not None:
            return self._close(Close.BUSY, f"stream declined: {behind}; the menu takes keys "
                                           "only for this caller", level=logging.WARNING)
        self._admitted = True
        self._seq = state.seq
        self.session = self.ports.compute(SpeechSession, model, start.choices)
        log.info("stream started", extra=self._extra(flow=start.flow, node=start.node))

    def _media(self, message: dict) -> None:
        self._check_stream(message, required=True)
        media = message.get("media")
        if isinstance(media, Mapping) and media.get("track") not in (None, "inbound"):
            return  # only the caller's side is recognised
        if self._first_audio is None and self.session is not None:
            self._first_audio = time.monotonic()
        self._audio.append(decode_payload(media))

    def _feed(self) -> None:
        """Give the audio taken so far to the recogniser (before any other message: a stop
        or a mark comes after the audio sent before it), and act when it decides."""
        if not self._audio or self.session is None:
            self._audio.clear()
            return
        audio, frames = b"".join(self._audio), len(self._audio)
        self._audio.clear()
        before, self._frames = self._frames, self._frames + frames
        decided = self.ports.compute(self.session.feed_mulaw, audio) is not None
        self._heard_s += len(audio) / MULAW_BYTES_PER_SECOND
        if self._first_audio is not None:
            self.ports.heard(time.monotonic() - self._first_audio - self._heard_s)
        if decided:
            self._settle()
        elif self._frames // CHECK_EVERY_FRAMES != before // CHECK_EVERY_FRAMES:
            self._still_listening()

    def _stop(self, message: dict) -> None:
        self._check_stream(message, required=True)
        assert self.session is not None
        if not self.session.is_decided:
            self.ports.compute(self.session.finish)
            self._settle(final=True)
        if self.closed is None:
            self._close(Close.STOPPED, None)

    # --- deciding ----------------------------------------------------------------------------

    def _settle(self, final: bool = False) -> None:
        """The recogniser decided: act on it, or keep listening after mere noise."""
        assert self.session is not None and self.session.decision is not None
        decision = self.session.decision
        if not heard_words(decision):
            if not final:  # a cough or a click: listen on
                self.ports.compute(self.session.listen, self.session.choices)
            return
        if not self._still_listening():
            return
        assert self.start is not None
        self.decision = decision
        log.info("speech decided", extra=self._extra(**decision.as_dict()))
        self.ports.decided(self.start, decision)
        self._close(Close.DECIDED, None)

    def _still_listening(self) -> bool:
        """Close the stream if the call ended or moved past this menu (a key, a retry)."""
        assert self.start is not None
        state = self.ports.call_state(self.start.call_sid)
        if state is None:
            self._close(Close.CALL_GONE, None)
            return False
        if not self._at_menu(state) or state.seq != self._seq:
            self._close(Close.MOVED_ON, None)
            return False
        return True

    def _at_menu(self, state: CallState) -> bool:
        assert self.start is not None
        return (state.flow, state.node) == (self.start.flow, self.start.node)

    # --- bookkeeping -------------------------------------------------------------------------

    def _check_stream(self, message: dict, *, required: bool) -> None:
        sid = message.get("streamSid")
        if self.start is None:
            if required:
                raise StreamMessageError(f"{message['event']} for unknown stream {sid!r} "
                                         "(no start message on this socket)")
            return
        if sid is not None and sid != self.start.stream_sid:
            raise StreamMessageError(f"{message['event']} for unknown stream {sid!r} "
                                     f"(this socket carries {self.start.stream_sid})")
        if required and self.session is None:
            raise StreamMessageError("stream was not started")

    def _bad(self, reason: str) -> None:
        self.errors.append(reason)
        self._bad_in_a_row += 1
        log.error("bad media stream message: %s", reason, extra=self._extra())
        if self._bad_in_a_row >= MAX_BAD_MESSAGES:
            self._close(Close.BAD_INPUT, f"closing stream after {self._bad_in_a_row} bad "
                                         "messages in a row")

    def _close(self, why: Close, error: str | None, *, level: int = logging.ERROR) -> None:
        self.closed = why
        if error:
            self.errors.append(error)
            log.log(level, error, extra=self._extra(close=why.value))
        else:
            log.info("stream closed: %s", why.value, extra=self._extra())

    def _extra(self, **more: Any) -> dict[str, Any]:
        extra: dict[str, Any] = dict(more)
        if self.start is not None:
            extra.update(call_sid=self.start.call_sid, stream_sid=self.start.stream_sid)
        return extra
