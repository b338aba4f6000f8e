"""Live speech on calls: the Twilio Media Streams websocket and the hook that offers it to menus.

A menu's TwiML starts `<Start><Stream url="wss://.../speech/stream">` before its `<Gather>`, so
the caller hears the prompt and may speak or press keys (barge-in). Each websocket gets its own
`SpeechSession` on the process's shared model; when it decides, the live call is redirected
through the telephony adapter to `/voice/gather?...&choice=KEY`, which the flow engine takes like
any other answer. When no model exists for the call's language the hook offers no stream and the
menus take keys only (one warning). Twilio signs the websocket upgrade request with
`X-Twilio-Signature` over the wss URL (https://www.twilio.com/docs/usage/security); the start
message must also name a live call of ours.
"""

from __future__ import annotations

import functools
import logging
from concurrent.futures import ThreadPoolExecutor

from flask import Blueprint, Flask, abort, current_app, request
from flask_sock import Sock
from simple_websocket import ConnectionClosed
from twilio.request_validator import RequestValidator

from ivr.core.callstate import CallState
from ivr.core.engine.types import StreamOffer
from ivr.infra import paths
from ivr.infra.hooks import SPEECH_STREAMS
from ivr.infra.security import (
    STREAM_TOKEN_SECONDS,
    is_stream_token_valid,
    stream_token,
)
from ivr.infra.services import services_of
from ivr.infra.telephony import REST_CONNECTIONS
from speech.live import fallback
from speech.live.calls import (
    call_state,
    mark_stream_ended,
    redirect_call,
    websocket_url,
)
from speech.live.capacity import Streams, streams_of
from speech.live.catalog import SpeechModels
from speech.live.pool import RecognitionPool
from speech.live.session import Close, MediaStreamHandler, StreamStart
from speech.models import LoadedModel
from speech.recognizer import Decision

log = logging.getLogger(__name__)

bp = Blueprint("speech", __name__)
sock = Sock()

# Twilio streams audio continuously (silence included); this long without a message means the
# other end is gone.
RECEIVE_TIMEOUT = 15.0
# At most this many messages are decoded as one piece of work (0.4 s of audio): audio after a
# decision within a batch is not heard, and a cough's batch must not swallow the answer.
MAX_BATCH = 20
STREAM_ENDPOINT = "speech.stream"
# Redirects one process may have in flight: a decision's redirect is a REST request that
# Twilio answers in a few hundred ms, and the callers decided after it must not queue behind
# it (under gevent these are greenlets). The telephony client keeps as many connections.
REDIRECTS_IN_FLIGHT = REST_CONNECTIONS


def is_stream_signed(app: Flask) -> bool:
    """True when the websocket upgrade carries Twilio's signature of our wss URL."""
    signature = request.headers.get("X-Twilio-Signature", "")
    if not signature:
        return False
    url = websocket_url(app)
    if request.query_string:
        url += "?" + request.query_string.decode("latin-1")
    return RequestValidator(app.config["TWILIO_AUTH_TOKEN"]).validate(url, {}, signature)


@bp.before_request
def _authenticate_stream() -> None:
    # Runs before flask-sock accepts the upgrade, so a forged request never gets a socket.
    if request.endpoint != STREAM_ENDPOINT:
        return
    app = current_app._get_current_object()
    if app.config.get("VALIDATE_SIGNATURES", True) and not is_stream_signed(app):
        log.warning("rejected unsigned or forged media stream", extra={"path": request.path})
        abort(403)


class AppStreamPorts:
    """The service side of a stream: call state, models and redirects, for one app."""

    def __init__(self, app: Flask) -> None:
        self.app = app

    def call_state(self, call_sid: str) -> CallState | None:
        return call_state(self.app, call_sid)

    def is_token_valid(self, start: StreamStart) -> bool:
        return is_stream_token_valid(
            self.app.config["TWILIO_AUTH_TOKEN"], start.call_sid, start.flow, start.node,
            start.expires, start.token, services_of(self.app).now().timestamp())

    def model_for(self, language: str) -> LoadedModel | None:
        return self.app.extensions["speech.models"].model(language)

    def decided(self, start: StreamStart, decision: Decision) -> None:
        url = gather_url(self.app, start, decision)
        # The REST request can take a while; the socket's thread must keep reading frames.
        self.app.extensions["speech.redirects"].submit(redirect_call, self.app, start.call_sid,
                                                       url)

    def admit(self) -> str | None:
        return streams_of(self.app).admit()

    def release(self) -> None:
        streams_of(self.app).release()

    def heard(self, behind: float) -> None:
        streams_of(self.app).heard(behind)

    def compute(self, fn, *args):
        return streams_of(self.app).pool.run(fn, *args)


def gather_url(app: Flask, start: StreamStart, decision: Decision) -> str:
    """Where the call goes with a decision: the menu's gather webhook, with what was heard.

    An empty `choice` says the recogniser heard words but no option (the engine re-prompts
    without matching the transcript again); `confirm=1` asks the caller to confirm. `audio_s`
    is how far into the stream the decision was taken (for the journey's timing, and the
    capacity bench's decision latency).
    """
    match = decision.match
    return services_of(app).urls.url(
        paths.GATHER, flow=start.flow, node=start.node, t=start.turn or None,
        choice=match.key or "",
        transcript=match.text, confidence=f"{match.confidence:.4f}",
        decision_ms=f"{decision.decision_ms:.1f}", audio_s=f"{decision.audio_seconds:.2f}",
        confirm="1" if match.key and match.needs_confirmation else None)


@sock.route(paths.SPEECH_STREAM, bp=bp)
def stream(ws) -> None:
    """One Twilio Media Stream: recognise the caller's answer and redirect the call."""
    app = current_app._get_current_object()
    handler = MediaStreamHandler(AppStreamPorts(app),
                                 account_sid=app.config.get("TWILIO_ACCOUNT_SID"))
    try:
        while True:
            raw = ws.receive(timeout=RECEIVE_TIMEOUT)
            if raw is None:
                log.warning("media stream silent for %.0f s; closing", RECEIVE_TIMEOUT,
                            extra=_ids(handler))
                break
            # Frames that arrived while the last batch was being decoded go together: one
            # piece of work on the recognition pool per batch, not one per 20 ms frame.
            batch = [raw]
            while len(batch) < MAX_BATCH and (more := ws.receive(timeout=0)) is not None:
                batch.append(more)
            if not handler.handle_batch(batch):
                break
    except ConnectionClosed:
        pass
    except Exception:  # a bug must cost this call its speech, never the process
        log.exception("media stream failed", extra=_ids(handler))
        start = handler.start
        if start is not None and handler.closed is None:
            fallback.redirect_to_record(app, start.call_sid, start.flow, start.node)
    finally:
        handler.finish()
        if handler.start is not None and handler.closed is not Close.STOPPED:
            mark_stream_ended(app, handler.start.stream_sid)


def _ids(handler: MediaStreamHandler) -> dict[str, str]:
    start = handler.start
    return {"call_sid": start.call_sid, "stream_sid": start.stream_sid} if start else {}


def stream_url(app: Flask, state: CallState, node: str) -> StreamOffer | None:
    """The engine's hook: the socket for a menu when its language can be heard, else None;
    the stream will have to present a token for this call and menu."""
    if str(app.config.get("SPEECH_MODE") or "stream").lower() == "off":
        return None
    if not app.extensions["speech.models"].is_available(state.language):
        return None
    expires = int(services_of(app).now().timestamp()) + STREAM_TOKEN_SECONDS
    token = stream_token(app.config["TWILIO_AUTH_TOKEN"], state.call_sid, state.flow, node,
                         expires)
    return StreamOffer(websocket_url(app), {"token": token, "expires": str(expires)})


def init_app(app: Flask) -> None:
    """Register the websocket and the `<Record>` fallback, and offer streams to menus."""
    app.register_blueprint(bp)
    app.register_blueprint(fallback.bp)
    pool = RecognitionPool(int(app.config.get("SPEECH_THREADS") or 0) or None)
    app.extensions["speech.streams"] = Streams(pool, float(app.config["SPEECH_MAX_LAG"]),
                                               int(app.config["SPEECH_MAX_STREAMS"] or 0))
    # Models load on a thread of their own: a load takes seconds, and must neither hold up
    # recognition nor count as recognition falling behind.
    app.extensions["speech.models"] = SpeechModels(app, RecognitionPool(1))
    app.extensions["speech.redirects"] = ThreadPoolExecutor(
        max_workers=REDIRECTS_IN_FLIGHT, thread_name_prefix="speech-redirect")
    app.extensions[SPEECH_STREAMS] = functools.partial(stream_url, app)
