"""Twilio webhooks of the hold queue: the wait URL and the Enqueue action, keys pressed while
holding, and the calls we place to agents (whisper, accept, status) and the bridge.

    /voice/queue/wait            <Enqueue waitUrl>: place in line, estimate, music
    /voice/queue/left            <Enqueue action>: answered, hung up, or left for a callback
    /voice/hold/key              a key pressed while holding (the wait TwiML's <Gather>)
    /voice/hold/agent            the agent picked up: whisper, "press 1 to take the call"
    /voice/hold/agent/answer     1 -> <Dial><Queue> bridges the longest-waiting caller
    /voice/hold/agent/status     status callbacks of the agent call -> presence
    /voice/hold/agent/dialed     the <Dial><Queue> ended
    /voice/hold/bridging         <Queue url>: played to the caller just before the bridge

What the agent hears is in the agent's language (their first; else the flows' default) and
voice; what the caller hears before the bridge, in the caller's.
"""

from __future__ import annotations

import datetime as dt
import logging

import redis
from flask import Blueprint, Flask, Response, current_app, request
from twilio.twiml.voice_response import VoiceResponse

from ivr.core.engine.prompts import Speaker
from ivr.hold import connect, holding
from ivr.hold.waiting import clock, key_twiml, left_twiml, wait_twiml
from ivr.hold.whisper import whisper
from ivr.infra import line, ordering, paths, queue_history
from ivr.infra.agents import (
    AgentError,
    decline_agent,
    get_agent,
    on_agent_call_status,
    release_agent,
    whisper_language,
)
from ivr.infra.security import twilio_signed
from ivr.infra.services import services_of
from ivr.infra.telephony import FINAL_STATUSES
from ivr.infra.twiml import twiml_response

log = logging.getLogger(__name__)
bp = Blueprint("hold_voice", __name__)

ACCEPT_KEY = "1"


def init_app(app: Flask) -> None:
    """Register the hold-queue webhooks."""
    app.register_blueprint(bp)


def _agent_id() -> int | None:
    value = request.args.get("agent", "")
    return int(value) if value.isascii() and value.isdigit() else None


def _agent_speaker(app: Flask) -> Speaker:
    """The agent of this request's language and voice."""
    defaults = services_of(app).flows.current().file.defaults
    agent, agent_id = None, _agent_id()
    if agent_id is not None:
        try:
            agent = get_agent(services_of(app).db, agent_id)
        except AgentError:
            pass  # removed meanwhile: they hear the default language
    return Speaker(defaults, whisper_language(agent, defaults.language))


def _goodbye(speaker: Speaker, key: str) -> Response:
    """Say the catalogue sentence `key`, then hang up."""
    response = VoiceResponse()
    speaker.sentence(response, key)
    response.hangup()
    return twiml_response(response)


@bp.post(paths.QUEUE_WAIT)
@twilio_signed
def queue_wait():
    """Hold-queue wait URL: tell the caller where they are, then play hold music."""
    return twiml_response(wait_twiml(request.form, request.args))


@bp.post(paths.QUEUE_LEFT)
@twilio_signed
def queue_left():
    """The caller left the hold queue (answered, hung up, or redirected)."""
    return twiml_response(left_twiml(request.form, request.args))


@bp.post(paths.HOLD_KEY)
@twilio_signed
def hold_key():
    """A key pressed while holding."""
    return twiml_response(key_twiml(request.form, request.args))


@bp.post(paths.HOLD_AGENT)
@twilio_signed
def agent_answered():
    """The agent picked up: tell them who is waiting and ask them to accept."""
    app = current_app._get_current_object()
    r = services_of(app).redis
    queue = request.args.get("queue", "")
    sid = request.form.get("CallSid", "")
    offer = connect.offer_of(r, sid)
    speaker = _agent_speaker(app)
    target = connect.whisper_target(r, queue, offer, sid)
    if not target:  # helped, or gone, and nobody of that language left in line
        connect.close_offer(r, queue, sid)
        return _goodbye(speaker, "agent.helped")
    text = whisper(app, queue, target, clock(app), speaker.language)
    params = {"queue": queue, "agent": request.args.get("agent", "")}
    response = VoiceResponse()
    gather = response.gather(input="dtmf", num_digits=1, timeout=6, method="POST",
                             action=services_of(app).urls.url(paths.HOLD_AGENT_ANSWER, **params))
    speaker.sentence(gather, "agent.offer", whisper=text)
    response.redirect(services_of(app).urls.url(paths.HOLD_AGENT_ANSWER, **params, silent=1),
                      method="POST")
    return twiml_response(response)


@bp.post(paths.HOLD_AGENT_ANSWER)
@twilio_signed
def agent_accept():
    """1: bridge the caller they heard about (the longest-waiting of that caller's language).
    Anything else (or nothing): pass to the next agent."""
    app = current_app._get_current_object()
    db, r = services_of(app).db, services_of(app).redis
    queue = request.args.get("queue", "")
    sid = request.form.get("CallSid", "")
    agent_id = _agent_id()
    if request.form.get("Digits") == ACCEPT_KEY and "silent" not in request.args:
        offer = connect.offer_of(r, sid)
        target = connect.whisper_target(r, queue, offer, sid)
        if not target:
            connect.close_offer(r, queue, sid)
            return _goodbye(_agent_speaker(app), "agent.helped")
        params = {"queue": queue, "agent": agent_id or ""}
        response = VoiceResponse()
        urls = services_of(app).urls
        dial = response.dial(action=urls.url(paths.HOLD_AGENT_DIALED, **params), method="POST")
        dial.queue(connect.bridge_queue(app, queue, target, offer),
                   url=urls.url(paths.HOLD_BRIDGING, **params), method="POST")
        return twiml_response(response)
    connect.close_offer(r, queue, sid, declined="1")
    if agent_id is not None:
        decline_agent(db, r, agent_id, now=clock(app), call_sid=sid)
    _connect_next(app, queue)
    return _goodbye(_agent_speaker(app), "agent.passed")


@bp.post(paths.HOLD_BRIDGING)
@twilio_signed
def bridging():
    """Played to the dequeued caller just before the bridge: record the answer."""
    app = current_app._get_current_object()
    r = services_of(app).redis
    queue = request.args.get("queue", "")
    caller_sid = request.form.get("CallSid", "")
    agent_sid = request.form.get("DequeingCallSid", "")
    now = clock(app)
    holder = holding.load(r, caller_sid)
    queue_time = request.form.get("QueueTime", "")
    if holder is not None:
        waited = (float(queue_time) if queue_time.isdigit()
                  else max(0.0, now.timestamp() - holder.joined_at))
        holding.log_item(r, caller_sid, {
            "kind": "answer", "at": now.timestamp(), "elapsed": waited,
            "detail": {"agent_id": _agent_id(), "agent_call_sid": agent_sid or None},
        })
        line.leave_caller(r, queue, caller_sid)  # answered: the people behind move up now
    if agent_sid:
        connect.close_offer(r, queue, agent_sid, bridged_at=repr(now.timestamp()),
                            bridged_caller=caller_sid)
    defaults = services_of(app).flows.current().file.defaults
    language = ((holder.language if holder is not None else "")
                or request.args.get("lang", "") or defaults.language)
    response = VoiceResponse()
    Speaker(defaults, language).sentence(response, "hold.connecting")
    return twiml_response(response)


@bp.post(paths.HOLD_AGENT_DIALED)
@twilio_signed
def agent_dialed():
    """The agent's <Dial><Queue> ended (the conversation is over, or nobody was left).

    The agent is free from now: this is a call webhook, sent once the bridge ends, where the
    final status callback may come late or never (a lost one held the agent busy until the
    repair pass asked the provider). Only the agent still busy on this very call is moved."""
    app = current_app._get_current_object()
    db, r = services_of(app).db, services_of(app).redis
    agent_id, sid = _agent_id(), request.form.get("CallSid", "")
    talked = request.form.get("DialCallStatus") in (None, "", "completed", "answered")
    if agent_id is not None:
        try:
            if talked:
                release_agent(db, r, agent_id, now=clock(app), reason="conversation ended",
                              call_sid=sid)
            else:  # nobody left to take: not their doing, their place stays
                on_agent_call_status(db, r, agent_id, "canceled", call_sid=sid, now=clock(app))
        except (AgentError, redis.RedisError) as exc:
            log.warning("agent not freed at the end of the bridge",
                        extra={"agent_id": agent_id, "error": str(exc)})
        _connect_next(app, request.args.get("queue", ""))
    speaker = _agent_speaker(app)
    return _goodbye(speaker, "agent.goodbye" if talked else "agent.caller_left")


@bp.post(paths.HOLD_AGENT_STATUS)
@twilio_signed
def agent_status():
    """Status callback of a call placed to an agent: presence follows it."""
    app = current_app._get_current_object()
    r = services_of(app).redis
    queue = request.args.get("queue", "")
    sid = request.form.get("CallSid", "")
    status = request.form.get("CallStatus", "")
    agent_id = _agent_id()
    now = clock(app)
    if agent_id is None:
        return ("", 204)
    # A failure while it is applied (the database down) takes the record back: the repeat
    # Twilio sends then frees the agent, instead of being ignored as one already seen.
    with ordering.applying(r, sid, request.form.get("SequenceNumber")) as newest:
        if not newest:
            log.info("status callback out of order or repeated: ignored",
                     extra={"call_sid": sid, "status": status, "agent_id": agent_id})
            return ("", 204)
        _apply_agent_status(app, queue, sid, status, agent_id, now)
    return ("", 204)


def _apply_agent_status(app: Flask, queue: str, sid: str, status: str, agent_id: int,
                        now: dt.datetime) -> None:
    """Presence follows the agent's call; its end teaches the queue a handle time and lets
    the next caller be offered."""
    db, r = services_of(app).db, services_of(app).redis
    try:
        on_agent_call_status(db, r, agent_id, status, call_sid=sid, now=now)
    except AgentError as exc:
        log.warning("agent call status ignored", extra={"agent_id": agent_id,
                                                        "status": status, "error": str(exc)})
        return
    if status not in FINAL_STATUSES:
        return
    offer = connect.offer_of(r, sid)
    connect.close_offer(r, queue, sid)
    bridged_at = offer.get("bridged_at")
    if status == "completed" and bridged_at:
        # Handle time: talk since the bridge plus the agent's wrap-up.
        handle = max(0.0, now.timestamp() - float(bridged_at))
        duration = request.form.get("CallDuration", "")
        if handle <= 0 and duration.isdigit():
            handle = float(duration)
        handle += get_agent(db, agent_id).wrap_up_seconds
        queue_history.learn(r, queue, lambda s: s.record_handled(handle))
    _connect_next(app, queue)


def _connect_next(app: Flask, queue: str) -> None:
    """Someone may be free now (or the last try failed): try the next agent at once."""
    try:
        connect.connect_agents(app, queue)
    except Exception:
        log.exception("connecting the next agent failed", extra={"queue": queue})
