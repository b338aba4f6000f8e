"""One webhook, one call step: load state and flows, run the engine, save, and answer safely.

This is the glue between the Flask views (which only parse forms) and the pure engine. When
Redis or the database fails, or anything else goes wrong, the caller still gets TwiML that
connects them to a person: never a 500 that makes Twilio play its error message.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable

from flask import Flask, current_app
from twilio.twiml.voice_response import VoiceResponse

from ivr.core.callstate import CallState
from ivr.core.engine.engine import Engine
from ivr.core.engine.types import Input, Step
from ivr.core.flows.loader import LoadedFlows
from ivr.errors import StateUnavailable
from ivr.infra import journey, metrics
from ivr.infra.call_store import StateStore
from ivr.infra.flows_registry import UnknownFlowVersion
from ivr.infra.services import services_of
from ivr.infra.telephony import FINAL_STATUSES
from ivr.voice.ports import WebPorts
from ivr.voice.safety import safe_twiml

log = logging.getLogger(__name__)

SEEN_CALLERS = "ivr:callers:seen"


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


def load_call(app: Flask, call_sid: str) -> tuple[CallState | None, LoadedFlows]:
    """The call's state (None when unknown) and the flows version it started on.

    A version neither this process nor Redis knows any more is replaced by the current one,
    so the call carries on rather than failing.
    """
    services = services_of(app)
    state = services.calls.load(call_sid)
    registry = services.flows
    if state is None:
        return None, registry.current()
    try:
        return state, registry.get(state.version)
    except UnknownFlowVersion:
        log.warning("flow version %s unknown; using the current one", state.version)
        return state, registry.current()


def engine_for(app: Flask, loaded: LoadedFlows) -> Engine:
    """The engine on `loaded` flows, with this app's ports."""
    return Engine(loaded.file, WebPorts(app, loaded.file))


@answers_safely
def start_call(form: dict) -> VoiceResponse:
    """Answer `POST /voice/incoming`."""
    app = current_app._get_current_object()
    services = services_of(app)
    sid = form.get("CallSid", "")
    loaded = services.flows.current()
    flow = loaded.file.flow_for_number(form.get("To", ""))
    if flow is None:
        log.error("no flow routes this number", extra={"to": form.get("To")})
        return safe_twiml(app, "no_flow")
    caller = form.get("From", "")
    state = CallState(
        call_sid=sid, flow=flow, version=loaded.version, node="",
        language=loaded.file.flows[flow].language or loaded.file.defaults.language,
        caller=caller, called=form.get("To", ""), returning=_seen_before(app, caller),
    )
    step = engine_for(app, loaded).start(state)
    metrics.CALLS.labels(flow).inc()
    save_step(services.calls, step, meta={"caller": caller, "called": state.called,
                                          "flow": flow, "flow_version": loaded.version})
    return step.twiml


@answers_safely
def resume_call(form: dict, args: dict, given: Input) -> VoiceResponse:
    """Answer a webhook reached from our own TwiML (gather, continue, dialed, recorded)."""
    app = current_app._get_current_object()
    sid = form.get("CallSid", "")
    state, loaded = load_call(app, sid)
    if state is None:
        state = CallState(
            call_sid=sid, flow=args.get("flow", ""), version=loaded.version, node="",
            language=loaded.file.defaults.language, caller=form.get("From", ""),
            called=form.get("To", ""),
        )
    flow, node = args.get("flow") or state.flow, args.get("node") or state.node
    waited_ms = int((time.time() - state.node_entered_at) * 1000)
    step = engine_for(app, loaded).resume(state, flow, node, given)
    save_step(services_of(app).calls, step, first_elapsed_ms=waited_ms)
    return step.twiml


def end_call(form: dict) -> None:
    """Record a call status callback; a finished call's state is dropped."""
    app = current_app._get_current_object()
    sid = form.get("CallSid", "")
    status = form.get("CallStatus", "")
    if status not in FINAL_STATUSES:
        return
    store = services_of(app).calls
    state = store.load(sid)
    seq = (state.seq + 1) if state else 10_000
    row = journey.encode(
        sid, seq, time.time(), None,
        journey.Event("call_end", flow=state.flow if state else None,
                      node=state.node if state else None, detail={"status": status}),
        meta={"duration": form.get("CallDuration")},
    )
    store.finish(sid, extra=[(journey.QUEUE_KEY, row)])


def save_step(store: StateStore, step: Step, meta: dict | None = None,
              first_elapsed_ms: int | None = None) -> None:
    """Save the step's state and queue its journey events, in one round trip."""
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
        return not services_of(app).redis.sadd(SEEN_CALLERS, caller)
    except Exception:
        return False
