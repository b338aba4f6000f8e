"""The callback offer: confirm the caller ID or take another number, then hand it over."""

from __future__ import annotations

import datetime as dt
import re

from twilio.twiml.voice_response import VoiceResponse

from ivr.core.callstate import CallState
from ivr.core.engine.prompts import Speaker
from ivr.core.engine.types import (
    HANGUP,
    OPERATOR,
    VOICEMAIL,
    CallbackOutcome,
    EngineView,
    Event,
    Input,
    InputKind,
    Step,
)
from ivr.core.i18n.when import spoken_after

OFFER, ENTER = "offer", "enter"
E164 = re.compile(r"^\+[1-9]\d{7,14}$")
# A callback booked further ahead than this is confirmed with its time, not a wait.
LATER = dt.timedelta(minutes=15)


def render_offer(
    eng: EngineView, r: VoiceResponse, st: CallState, spk: Speaker, lead: list, prompt
) -> None:
    """Offer to call back on the caller ID; without a usable one, ask for a number."""
    if not E164.match(st.caller or ""):
        st.step = ENTER
        spk.add(r, *lead, prompt)
        spk.text(r, eng.phrases.say(st.language, "offer.no_caller_id"))
        _render_enter(eng, r, st, spk)
        return
    st.step = OFFER
    g = r.gather(input="dtmf", num_digits=1, timeout=eng.defaults.no_input.timeout,
                 action=eng.ports.url("gather", **st.at()), method="POST")
    spk.add(g, *lead, prompt)
    spk.text(g, eng.phrases.say(st.language, "offer.callback", last4=st.caller[-4:]))
    r.redirect(eng.ports.url("continue", **st.at()), method="POST")


def _render_enter(eng: EngineView, r: VoiceResponse, st: CallState, spk: Speaker, lead=()) -> None:
    g = r.gather(input="dtmf", num_digits=15, finish_on_key="#",
                 timeout=eng.defaults.no_input.timeout + 3,
                 action=eng.ports.url("gather", **st.at()), method="POST")
    spk.add(g, *lead)
    spk.text(g, eng.phrases.say(st.language, "offer.enter"))
    r.redirect(eng.ports.url("continue", **st.at()), method="POST")


def resume(eng: EngineView, step: Step, given: Input, nxt: str | None) -> None:
    """Handle the caller's answer to the offer or their typed number."""
    st = step.state
    spk = Speaker(eng.defaults, st.language)
    queue = st.vars.get("_queue") or eng.operator_queue()
    if given.kind is InputKind.DIGITS and eng.is_operator_digit(given.digits) and (
        eng.ports.queue_available(queue)
    ):
        step.events.append(Event("escape", flow=st.flow, node=st.node, digits=given.digits))
        return eng.goto(step, OPERATOR)
    if given.kind is InputKind.NO_INPUT or (given.kind is InputKind.DIGITS and not given.digits):
        st.no_input += 1
        step.events.append(Event("no_input", flow=st.flow, node=st.node,
                                 detail={"count": st.no_input}))
        if st.no_input > eng.defaults.no_input.retries:
            # Nothing heard, again and again: keep the door open with a voicemail, not a hang-up.
            return eng.goto(step, VOICEMAIL)
        return _again(eng, step, spk, [eng.defaults.no_input.prompt
                                       or eng.phrases.say(st.language, "retry.no_input")])
    if st.step == OFFER and given.digits == "1":
        return _request(eng, step, spk, st.caller, queue, nxt)
    if st.step == OFFER and given.digits == "2":
        st.step = ENTER
        return _render_enter(eng, step.twiml, st, spk)
    if st.step == ENTER and given.kind is InputKind.DIGITS:
        number = given.digits.rstrip("#")
        if number.isdigit():
            return _request(eng, step, spk, number, queue, nxt)
    return _invalid(eng, step, spk, [eng.defaults.invalid_input.prompt
                                     or eng.phrases.say(st.language, "retry.invalid")])


def _request(eng: EngineView, step: Step, spk: Speaker, number: str, queue: str, nxt) -> None:
    st = step.state
    outcome = eng.ports.request_callback(number=number, queue=queue, state=st)
    step.events.append(Event("callback_request", flow=st.flow, node=st.node, digits=number,
                             detail={"accepted": outcome.accepted, "reason": outcome.reason,
                                     "queue": queue, "number": outcome.number}))
    if not outcome.accepted:
        return _invalid(eng, step, spk, [eng.phrases.say(st.language, "offer.refused")])
    step.outcome = "callback"
    return eng.goto(step, nxt or HANGUP, lead_in=[_taken(eng, st, outcome)])


def _taken(eng: EngineView, st: CallState, outcome: CallbackOutcome) -> str:
    """The confirmation: a time when the call is booked for later, else an honest wait."""
    last4 = outcome.number[-4:]
    at, now = outcome.callback_at, eng.ports.now()
    if at is not None and at - now > LATER:
        when = spoken_after(eng.phrases, st.language, at, now.astimezone(at.tzinfo))
        return eng.phrases.say(st.language, "offer.taken_at", last4=last4, when=when)
    wait = ""
    if outcome.estimated_wait_seconds:
        # Never "about 1 minutes": as the hold queue's bands, the shortest is two.
        minutes = max(2, round(outcome.estimated_wait_seconds / 60))
        wait = eng.phrases.say(st.language, "offer.wait", minutes=minutes)
    return eng.phrases.say(st.language, "offer.taken", last4=last4, wait=wait)


def _invalid(eng: EngineView, step: Step, spk: Speaker, lead: list) -> None:
    st = step.state
    st.invalid += 1
    step.events.append(Event("invalid", flow=st.flow, node=st.node, detail={"count": st.invalid}))
    if st.invalid > eng.defaults.invalid_input.retries:
        return eng.goto(step, VOICEMAIL)
    return _again(eng, step, spk, lead)


def _again(eng: EngineView, step: Step, spk: Speaker, lead: list) -> None:
    st = step.state
    if st.step == ENTER:
        return _render_enter(eng, step.twiml, st, spk, lead)
    return render_offer(eng, step.twiml, st, spk, lead, None)

