"""A caller who left the hold queue without a person hears the engine's callback offer.

The engine's '@callback' node already confirms the caller ID with a keypress or takes another
number, then asks `callback.service.request_from_call`; we only put the call there. The time
the caller first asked is kept in the call's variables (`first_asked`), which reach the
callback request as context, so the callback keeps their place in the shared line.
"""

from __future__ import annotations

import logging
import time

from flask import Flask
from twilio.twiml.voice_response import VoiceResponse

from ivr.core.callstate import CallState, StateStore
from ivr.core.engine.callback_offer import render_offer
from ivr.core.engine.engine import Engine
from ivr.core.engine.prompts import Speaker
from ivr.core.engine.types import CALLBACK, Event
from ivr.hold.holding import Holder
from ivr.infra import journey
from ivr.infra.flows_registry import UnknownFlowVersion
from ivr.voice.steps import WebPorts, safe_twiml

log = logging.getLogger(__name__)

SORRY = "Sorry, we can't keep you on hold right now."


def callback_offer(app: Flask, form, queue: str, holder: Holder | None) -> VoiceResponse:
    """Move the call to the '@callback' node for `queue` and render its offer."""
    sid = form.get("CallSid", "")
    try:
        store = StateStore(app.extensions["ivr.redis"], int(app.config["CALL_STATE_TTL"]))
        registry = app.extensions["ivr.flows"]
        state = store.load(sid)
        try:
            loaded = registry.get(state.version) if state else registry.current()
        except UnknownFlowVersion:
            loaded = registry.current()
        flows = loaded.file
        if state is None:
            flow = flows.flow_for_number(form.get("To", "")) or next(iter(flows.flows))
            state = CallState(call_sid=sid, flow=flow, version=loaded.version, node="",
                              language=flows.flows[flow].language or flows.defaults.language,
                              caller=form.get("From", ""), called=form.get("To", ""))
        state.vars["_queue"] = queue
        if holder is not None:
            state.vars["first_asked"] = repr(holder.first_asked)
            state.vars["first_asked_queue"] = queue
        state.node, state.step = CALLBACK, ""
        state.no_input = state.invalid = 0
        state.node_entered_at = time.time()
        engine = Engine(flows, WebPorts(app, flows))
        response = VoiceResponse()
        chose = holder is not None and holder.leaving == "callback"
        render_offer(engine, response, state, Speaker(flows.defaults,
                     state.language), [] if chose else [SORRY], None)
        state.seq += 1
        row = journey.encode(sid, state.seq, time.time(), None,
                             Event("enter", flow=state.flow, node=CALLBACK,
                                   detail={"from_queue": queue, "chosen": chose}))
        store.save(state, extra=[(journey.QUEUE_KEY, row)])
        return response
    except Exception:
        log.exception("callback offer after the hold queue failed", extra={"call_sid": sid})
        return safe_twiml(app, "engine_error")
