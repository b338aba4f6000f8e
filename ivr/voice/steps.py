"""One webhook, one call step: load state and flows, run the engine, save, and answer safely.

This is the glue between the Flask views (which only parse forms) and the pure engine. When
Redis or the database fails, or anything else goes wrong, the caller still gets TwiML that
connects them to a person: never a 500 that makes Twilio play its error message.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import time
from collections.abc import Callable

from flask import Flask, current_app
from twilio.twiml.voice_response import VoiceResponse

from ivr.core.callstate import CallState, StateStore
from ivr.core.engine.engine import Engine
from ivr.core.engine.phrasebook import phrase
from ivr.core.engine.types import CallbackOutcome, Input, Step
from ivr.core.flows.schema import FlowFile
from ivr.core.hours import is_open
from ivr.errors import StateUnavailable
from ivr.infra import journey, metrics, paths
from ivr.infra.flows_registry import UnknownFlowVersion
from ivr.infra.services import services_of

log = logging.getLogger(__name__)

# The engine names the webhooks it needs; these are their paths.
ENDPOINTS = {
    "gather": paths.GATHER,
    "continue": paths.CONTINUE,
    "dialed": paths.DIALED,
    "recorded": paths.RECORDED,
    "queue_wait": paths.QUEUE_WAIT,
    "queue_left": paths.QUEUE_LEFT,
    "speech_status": paths.SPEECH_STREAM_STATUS,
}
SEEN_CALLERS = "ivr:callers:seen"


class WebPorts:
    """The engine's window on the world, for one request."""

    def __init__(self, app: Flask, flows: FlowFile) -> None:
        self.app = app
        self.flows = flows
        self.services = services_of(app)

    def now(self) -> dt.datetime:
        return self.services.now()

    def url(self, endpoint: str, **params: str) -> str:
        return self.services.urls.url(ENDPOINTS[endpoint], **params)

    def queue_available(self, queue: str) -> bool:
        cfg = self.flows.queues.get(queue)
        if cfg is None:
            return False
        if not is_open(self.flows.hours.get(cfg.hours) if cfg.hours else None, self.now()):
            return False
        return staffed(self.app, queue, self.now())

    def request_callback(self, *, number: str, queue: str, state: CallState) -> CallbackOutcome:
        from callback.service import request_from_call

        context = {k: v for k, v in state.vars.items() if not k.startswith("_")}
        context.update(flow=state.flow, node=state.node, call_sid=state.call_sid)
        return request_from_call(self.app, number=number, caller=state.caller, queue=queue,
                                 context=context)

    def speech_stream_url(self, state: CallState, node: str) -> str | None:
        hook = self.app.extensions.get("ivr.speech_stream_url")
        return hook(state, node) if hook else None


def staffed(app: Flask, queue: str, now: dt.datetime) -> bool:
    """True when at least one agent serving `queue` is not offline."""
    from ivr.infra.agents import staffed_count

    return staffed_count(app.extensions["ivr.redis"], queue, now) > 0


def answers_safely(handler: Callable[..., VoiceResponse]) -> Callable[..., VoiceResponse]:
    """Whatever fails inside `handler`, the caller gets TwiML that reaches a person."""

    @functools.wraps(handler)
    def wrapper(*args, **kwargs) -> VoiceResponse:
        app = current_app._get_current_object()
        try:
            return handler(*args, **kwargs)
        except StateUnavailable as exc:
            log.error("call state unavailable in %s: %s", handler.__name__, exc)
            return safe_twiml(app, "state_unavailable")
        except Exception:
            log.exception("%s failed", handler.__name__)
            return safe_twiml(app, "engine_error")

    return wrapper


@answers_safely
def start_call(form: dict) -> VoiceResponse:
    """Answer `POST /voice/incoming`."""
    app = current_app._get_current_object()
    sid = form.get("CallSid", "")
    loaded = app.extensions["ivr.flows"].current()
    flow = loaded.file.flow_for_number(form.get("To", ""))
    if flow is None:
        log.error("no flow routes this number", extra={"to": form.get("To")})
        return safe_twiml(app, "no_flow")
    caller = form.get("From", "")
    store = _store(app)
    state = CallState(
        call_sid=sid, flow=flow, version=loaded.version, node="",
        language=loaded.file.flows[flow].language or loaded.file.defaults.language,
        caller=caller, called=form.get("To", ""), returning=_seen_before(app, caller),
    )
    step = Engine(loaded.file, WebPorts(app, loaded.file)).start(state)
    metrics.CALLS.labels(flow).inc()
    _save(store, step, meta={"caller": caller, "called": state.called, "flow": flow,
                             "flow_version": loaded.version})
    return step.twiml


@answers_safely
def resume_call(form: dict, args: dict, given: Input) -> VoiceResponse:
    """Answer a webhook reached from our own TwiML (gather, continue, dialed, recorded)."""
    app = current_app._get_current_object()
    sid = form.get("CallSid", "")
    store = _store(app)
    state = store.load(sid)
    registry = app.extensions["ivr.flows"]
    try:
        loaded = registry.get(state.version) if state else registry.current()
    except UnknownFlowVersion:
        # A version neither this process nor Redis knows: carry on with the current flows.
        log.warning("flow version %s unknown; using the current one", state.version)
        loaded = registry.current()
    if state is None:
        state = CallState(
            call_sid=sid, flow=args.get("flow", ""), version=loaded.version, node="",
            language=loaded.file.defaults.language, caller=form.get("From", ""),
            called=form.get("To", ""),
        )
    flow, node = args.get("flow") or state.flow, args.get("node") or state.node
    waited_ms = int((time.time() - state.node_entered_at) * 1000)
    step = Engine(loaded.file, WebPorts(app, loaded.file)).resume(state, flow, node, given)
    _save(store, step, first_elapsed_ms=waited_ms)
    return step.twiml


def end_call(form: dict) -> None:
    """Record a call status callback; a finished call's state is dropped."""
    app = current_app._get_current_object()
    sid = form.get("CallSid", "")
    status = form.get("CallStatus", "")
    if status not in ("completed", "busy", "failed", "no-answer", "canceled"):
        return
    store = _store(app)
    state = store.load(sid)
    seq = (state.seq + 1) if state else 10_000
    row = journey.encode(
        sid, seq, time.time(), None,
        journey.Event("call_end", flow=state.flow if state else None,
                      node=state.node if state else None, detail={"status": status}),
        meta={"duration": form.get("CallDuration")},
    )
    store.finish(sid, extra=[(journey.QUEUE_KEY, row)])


def safe_twiml(app: Flask, kind: str) -> VoiceResponse:
    """TwiML that needs neither Redis nor the database: straight to a person."""
    metrics.ERRORS.labels(kind).inc()
    r = VoiceResponse()
    r.say(phrase("en", "technical"))
    number = app.config.get("IVR_FALLBACK_NUMBER")
    if number:
        r.dial(number)
        return r
    queue = "support"
    try:
        op = app.extensions["ivr.flows"].current().file.defaults.operator
        queue = op.queue if op else queue
    except Exception:  # the flows registry itself failing must not block the fallback
        log.exception("flows unavailable in fallback")
    r.enqueue(queue)
    return r


def _store(app: Flask) -> StateStore:
    return StateStore(app.extensions["ivr.redis"], int(app.config["CALL_STATE_TTL"]))


def _save(
    store: StateStore, step: Step, meta: dict | None = None, first_elapsed_ms: int | None = None
) -> None:
    st = step.state
    now = time.time()
    rows = []
    for i, event in enumerate(step.events):
        st.seq += 1
        elapsed = first_elapsed_ms if i == 0 else None
        if event.kind == "enter":
            metrics.NODE_VISITS.labels(event.flow or "", event.node or "").inc()
        elif event.kind == "escape":
            metrics.ESCAPES.labels(event.flow or "", event.node or "").inc()
        event_meta = meta if i == 0 else None
        if step.outcome and i == len(step.events) - 1:
            event_meta = dict(event_meta or {}, outcome=step.outcome)
            metrics.OUTCOMES.labels(step.outcome).inc()
        rows.append((journey.QUEUE_KEY, journey.encode(st.call_sid, st.seq, now, elapsed,
                                                       event, event_meta)))
    store.save(st, extra=rows)


def _seen_before(app: Flask, caller: str) -> bool:
    if not caller:
        return False
    try:
        return not app.extensions["ivr.redis"].sadd(SEEN_CALLERS, caller)
    except Exception:
        return False


def start_journey_writer(app: Flask) -> None:
    """Start the per-process journey writer thread (once)."""
    if app.extensions.get("ivr.journey_writer"):
        return
    writer = journey.JourneyWriter(app.extensions["ivr.db"], app.extensions["ivr.redis"])
    writer.start()
    app.extensions["ivr.journey_writer"] = writer

