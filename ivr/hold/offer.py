"""A caller who left the hold queue without a person hears the engine's callback offer.

The engine's '@callback' node already confirms the caller ID with a keypress or takes another
number, then asks for the callback; we only put the call there. The caller's place stays with
the shared line (`ivr.infra.line.keep_place`, done when they left it), so the callback keeps it.
"""

from __future__ import annotations

import logging
import time

from flask import Flask
from twilio.twiml.voice_response import VoiceResponse

from ivr.core.callstate import CallState
from ivr.core.engine.callback_offer import render_offer
from ivr.core.engine.prompts import Speaker
from ivr.core.engine.types import CALLBACK, Event
from ivr.hold.holding import Holder
from ivr.infra import journey
from ivr.infra.services import services_of
from ivr.voice.safety import safe_twiml
from ivr.voice.steps import engine_for, load_call, raced

log = logging.getLogger(__name__)

def callback_offer(app: Flask, form, queue: str, holder: Holder | None,
                   language: str = "") -> VoiceResponse:
    """Move the call to the '@callback' node for `queue` and render its offer (in the caller's
    `language` when the call's state has to be rebuilt)."""
    sid = form.get("CallSid", "")
    try:
        state, loaded = load_call(app, sid)
        flows = loaded.file
        expected = state.turn if state is not None else None
        if state is None:
            flow = flows.flow_for_number(form.get("To", "")) or next(iter(flows.flows))
            state = CallState(call_sid=sid, flow=flow, version=loaded.version, node="",
                              language=(holder.language if holder else "") or language
                              or flows.flows[flow].language or flows.defaults.language,
                              caller=form.get("From", ""), called=form.get("To", ""))
        state.vars["_queue"] = queue
        state.node, state.step = CALLBACK, ""
        state.no_input = state.invalid = 0
        state.node_entered_at = services_of(app).now().timestamp()  # the engine's clock
        state.turn += 1  # a new document
        response = VoiceResponse()
        chose = holder is not None and holder.leaving == "callback"
        spk = Speaker(flows.defaults, state.language)
        sorry = [] if chose else [spk.words("hold.cannot_hold")]
        render_offer(engine_for(app, loaded), response, state, spk, sorry, None)
        state.seq += 1
        row = journey.encode(sid, state.seq, time.time(), None,
                             Event("enter", flow=state.flow, node=CALLBACK,
                                   detail={"from_queue": queue, "chosen": chose}))
        if not services_of(app).calls.save(state, expected_turn=expected,
                                           document=str(response),
                                           extra=[(journey.QUEUE_KEY, row)]):
            return raced(app, sid, "hold")
        return response
    except Exception:
        log.exception("callback offer after the hold queue failed", extra={"call_sid": sid})
        return safe_twiml(app, "engine_error")
