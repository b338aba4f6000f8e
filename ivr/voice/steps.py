"""One webhook, one call step: load state and flows, run the engine, save, and answer safely.

This is the glue between the Flask views (which only parse forms) and the pure engine. When
Redis or the database fails, or anything else goes wrong, the caller still gets TwiML that
connects them to a person: never a 500 that makes Twilio play its error message.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import time
from collections.abc import Callable

from flask import Flask, current_app, has_app_context, has_request_context, request
from twilio.twiml.voice_response import VoiceResponse

from ivr.core.callstate import CallState
from ivr.core.engine.document import twiml_text
from ivr.core.engine.engine import Engine
from ivr.core.engine.types import Input, InputKind, Step
from ivr.core.flows.loader import LoadedFlows
from ivr.errors import StateUnavailable
from ivr.infra import journey, live, metrics, today
from ivr.infra.call_store import StateStore
from ivr.infra.flows_registry import UnknownFlowVersion
from ivr.infra.services import services_of
from ivr.infra.telephony import FINAL_STATUSES
from ivr.infra.twiml import StoredDocument
from ivr.voice.ports import WebPorts
from ivr.voice.safety import safe_twiml

log = logging.getLogger(__name__)

SEEN_CALLERS = "ivr:callers:seen"
# Counters a saved step bumps in its state write: the console's change version
# (`ivr.infra.live`), so the request's own change notice needs no round trip of its own.
COUNTED = (live.VERSION,)

# A webhook's answer: TwiML built now, or a document rendered (and saved) as text.
Answer = VoiceResponse | StoredDocument


def answers_safely(handler: Callable[..., Answer]) -> Callable[..., Answer]:
    """Whatever fails inside `handler`, the caller gets TwiML that reaches a person."""

    @functools.wraps(handler)
    def wrapper(*args, **kwargs) -> Answer:
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


def load_call(app: Flask, call_sid: str, *, ended: bool = False
              ) -> tuple[CallState | None, LoadedFlows]:
    """The call's state (None when unknown, or ended unless `ended`) and the flows version it
    started on.

    A version neither this process nor Redis knows any more is replaced by the current one,
    so the call carries on rather than failing.
    """
    state = services_of(app).calls.load(call_sid, ended=ended)
    return state, flows_of(app, state)


def flows_of(app: Flask, state: CallState | None) -> LoadedFlows:
    """The flows version `state` started on (the current one for no state, or for a version
    neither this process nor Redis knows any more)."""
    registry = services_of(app).flows
    if state is None:
        return registry.current()
    try:
        return registry.get(state.version)
    except UnknownFlowVersion:
        log.warning("flow version %s unknown; using the current one", state.version)
        return registry.current()


def engine_for(app: Flask, loaded: LoadedFlows) -> Engine:
    """The engine on `loaded` flows, with this app's ports."""
    return Engine(loaded.file, WebPorts(app, loaded.file))


@answers_safely
def start_call(form: dict) -> Answer:
    """Answer `POST /voice/incoming`; a repeat of it answers with the call's current document."""
    app = current_app._get_current_object()
    services = services_of(app)
    sid = form.get("CallSid", "")
    loaded = services.flows.current()
    flow = loaded.file.flow_for_number(form.get("To", ""))
    caller = form.get("From", "")
    if flow is not None and caller:
        # The caller is marked seen in the same round trip as the state is read (a repeat of
        # this webhook marks them again, which changes nothing).
        known, added = services.calls.load_marking(sid, SEEN_CALLERS, caller)
    else:
        known, added = services.calls.load(sid, ended=True), None
    if known is not None:
        return _where_it_is(app, known, "incoming")
    if flow is None:
        log.error("no flow routes this number", extra={"to": form.get("To")})
        return safe_twiml(app, "no_flow")
    state = CallState(
        call_sid=sid, flow=flow, version=loaded.version, node="",
        language=loaded.file.flows[flow].language or loaded.file.defaults.language,
        caller=caller, called=form.get("To", ""), returning=added is False,
    )
    step = engine_for(app, loaded).start(state)
    answer = save_step(services.calls, step, None, meta={
        "caller": caller, "called": state.called, "flow": flow,
        "flow_version": loaded.version})
    if answer is None:
        return raced(app, sid, "incoming")
    metrics.CALLS.labels(flow).inc()
    return answer


@answers_safely
def resume_call(form: dict, args: dict, given: Input) -> Answer:
    """Answer a webhook reached from our own TwiML (gather, continue, dialed, recorded).

    Its URL names the turn of the document it came from (`t`). A webhook from any other turn
    (late, repeated, or one that lost a race) never moves the call: it is answered with the
    document of where the call really is. So is one that names no turn and another node.
    """
    app = current_app._get_current_object()
    store = services_of(app).calls
    sid = form.get("CallSid", "")
    # The document comes with the state: a stale webhook is answered without asking again.
    state, document = store.load_with_document(sid)
    loaded = flows_of(app, state)
    if state is not None and state.ended and not _is_stale(state, args) and given.kind in (
            InputKind.RECORDED, InputKind.DIAL_RESULT):
        return _after_the_end(app, store, state, loaded, args, given)
    if state is not None and (state.ended or _is_stale(state, args)):
        return _where_it_is(app, state, request_kind(args), document)
    expected = state.turn if state is not None else None
    if state is None:
        state = CallState(
            call_sid=sid, flow=args.get("flow", ""), version=loaded.version, node="",
            language=loaded.file.defaults.language, caller=form.get("From", ""),
            called=form.get("To", ""),
        )
    flow, node = args.get("flow") or state.flow, args.get("node") or state.node
    # On the clock the engine stamped `node_entered_at` with (`ivr serve --at` shifts it).
    waited_ms = int((services_of(app).now().timestamp() - state.node_entered_at) * 1000)
    step = engine_for(app, loaded).resume(state, flow, node, given)
    answer = save_step(store, step, expected, first_elapsed_ms=waited_ms)
    if answer is None:
        return raced(app, sid, request_kind(args))
    return answer


def _after_the_end(app: Flask, store: StateStore, state: CallState, loaded: LoadedFlows,
                   args: dict, given: Input) -> VoiceResponse:
    """A caller who ends a voicemail (or a <Dial>) by hanging up: the final status callback
    may come before the <Record> or <Dial> action. The action still tells what happened (the
    recording, the dial's result): its journey rows are recorded; the call stays ended."""
    flow, node = args.get("flow") or state.flow, args.get("node") or state.node
    step = engine_for(app, loaded).resume(
        dataclasses.replace(state, vars=dict(state.vars)), flow, node, given)
    store.append(journey_rows(step))
    r = VoiceResponse()
    r.hangup()
    return r


def request_kind(args: dict) -> str:
    return "speech" if args.get("choice") is not None else "action"


def _is_stale(state: CallState, args: dict) -> bool:
    turn = args.get("t")
    if turn is None:  # a URL without a turn (rendered before turns existed): its node decides
        return bool(args.get("node")) and (args.get("flow"), args.get("node")) != (
            state.flow, state.node)
    return turn != str(state.turn)


def _where_it_is(app: Flask, state: CallState, kind: str,
                 document: str | None = None) -> Answer:
    """The answer to a stale webhook: the call's current document (`document`, when it was
    read with the state), unchanged."""
    metrics.STALE_WEBHOOKS.labels(kind).inc()
    log.info("stale webhook answered with the current document",
             extra={"call_sid": state.call_sid, "flow": state.flow, "node": state.node,
                    "turn": state.turn, "ended": state.ended or None})
    if state.ended:
        r = VoiceResponse()
        r.hangup()
        return r
    document = document or services_of(app).calls.document(state.call_sid)
    if document:
        return StoredDocument(document)
    # The document is gone (an older release kept none): render the node again, unsaved.
    _, loaded = load_call(app, state.call_sid)
    return engine_for(app, loaded).render_current(state).twiml


def raced(app: Flask, sid: str, kind: str) -> Answer:
    """Another webhook for the call was saved first: answer with where that one took it."""
    state = services_of(app).calls.load(sid, ended=True)
    if state is None:
        log.warning("call state vanished during a raced webhook", extra={"call_sid": sid})
        return safe_twiml(app, "state_unavailable")
    return _where_it_is(app, state, kind)


def end_call(form: dict) -> None:
    """Record a call status callback: a final one ends the call's state, once.

    Repeats of the final callback, and ones arriving after the call ended, change nothing.
    """
    status = form.get("CallStatus", "")
    if status not in FINAL_STATUSES:
        return
    if finish_call(services_of(current_app).calls, form.get("CallSid", ""), status,
                   journey.seconds(form.get("CallDuration")), incr=COUNTED):
        _counted()


def finish_call(store: StateStore, sid: str, status: str, duration: float | None, *,
                incr: tuple[str, ...] = ()) -> bool:
    """End the call's state with its final `status`, and queue its `call_end` journey row (and
    INCR `incr`), in one compare-and-set; False when it had ended already (or kept changing)."""
    for _ in range(5):  # a step saved meanwhile moves the turn on: read it again
        state = store.load(sid, ended=True)
        if state is not None and state.ended:
            return False
        expected = state.turn if state is not None else None
        if state is None:  # unknown here (expired, or Redis lost it): the end still counts
            state = CallState(call_sid=sid, flow="", version="", node="", language="",
                              seq=10_000)
        state.seq += 1
        row = journey.encode(
            sid, state.seq, time.time(), None,
            journey.Event("call_end", flow=state.flow or None, node=state.node or None,
                          detail={"status": status}),
            meta={"duration": duration},
        )
        if store.finish(state, status, expected_turn=expected,
                        extra=[(journey.QUEUE_KEY, row)], incr=incr):
            return True
    log.error("call end not recorded: its state kept changing", extra={"call_sid": sid})
    return False


def save_step(store: StateStore, step: Step, expected_turn: int | None,
              meta: dict | None = None, first_elapsed_ms: int | None = None
              ) -> StoredDocument | None:
    """Save the step's state, its document and its journey events in one round trip, if no
    other step for the call was saved since its state was read.

    Returns the document saved (the step's TwiML, rendered once, which is also the answer),
    or None when another step was saved first.
    """
    rows = journey_rows(step, meta, first_elapsed_ms)
    document = twiml_text(step.twiml)
    if not store.save(step.state, expected_turn=expected_turn, document=document,
                      extra=rows, incr=COUNTED):
        return None
    _counted()
    for event in step.events:  # counted once the step happened
        if event.kind == "enter":
            metrics.NODE_VISITS.labels(event.flow or "", event.node or "").inc()
        elif event.kind == "escape":
            metrics.ESCAPES.labels(event.flow or "", event.node or "").inc()
            # The wallboard's "pressed 0 today" (each event once: its journey number is unique).
            today.mark(store.client, today.ESCAPES, f"{step.state.call_sid}:{step.state.seq}",
                       _service_time())
    if step.outcome:
        metrics.OUTCOMES.labels(step.outcome).inc()
    return StoredDocument(document)


def _counted() -> None:
    """This request's change was counted with its state write: its live notice need not."""
    if has_request_context():
        request.environ[live.COUNTED] = True


def _service_time() -> float:
    """Now on the service's clock (`ivr serve --at` shifts it), as epoch seconds."""
    return services_of(current_app).now().timestamp() if has_app_context() else time.time()


def journey_rows(step: Step, meta: dict | None = None, first_elapsed_ms: int | None = None
                 ) -> list[tuple[str, str]]:
    """The step's journey events as (list key, row) pairs, numbered on from the state's seq."""
    st = step.state
    now = time.time()
    rows = []
    for i, event in enumerate(step.events):
        st.seq += 1
        elapsed = first_elapsed_ms if i == 0 else None
        event_meta = meta if i == 0 else None
        if step.outcome and i == len(step.events) - 1:
            event_meta = dict(event_meta or {}, outcome=step.outcome)
        rows.append((journey.QUEUE_KEY, journey.encode(st.call_sid, st.seq, now, elapsed,
                                                       event, event_meta)))
    return rows


