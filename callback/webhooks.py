"""Twilio webhooks of callback calls: the TwiML each leg hears, and their status callbacks.

Agent-first: we call the agent (`/callbacks/voice/agent`): a whisper of the context, then
<Dial> the customer; `/callbacks/voice/dialed` learns how that leg ended.
Customer-first: we call the customer with answering-machine detection
(`/callbacks/voice/customer`); a person presses 1 (`/callbacks/voice/connect`) and is bridged
to the claimed agent. `/callbacks/status` follows the leg we placed through the REST API.

The customer hears the language of their request; the agent hears their own (the first of
their languages), and the whisper names the customer's.
"""

from __future__ import annotations

import logging

from flask import Blueprint, Response, current_app, request
from twilio.twiml.voice_response import Dial, VoiceResponse

from callback.deps import Deps, deps_of
from callback.languages import (
    Speech,
    agent_speech,
    customer_speech,
    language_name,
    queue_label,
)
from callback.lifecycle import (
    OPEN_ATTEMPT,
    finish_attempt,
    get_attempt,
    hang_up_quietly,
    mark_answered,
    record_placed_call,
    release_agent_of,
    settle_from_status,
)
from callback.models import AttemptStatus, CallbackAttempt, CallbackRequest, CallbackStatus
from ivr.core.flows.naming import names_languages
from ivr.infra import ordering, paths
from ivr.infra.security import twilio_signed
from ivr.infra.telephony import FINAL_STATUSES
from ivr.infra.twiml import goodbye, twiml_response

log = logging.getLogger(__name__)
bp = Blueprint("callback_voice", __name__)

_DIAL_OUTCOME = {
    "completed": AttemptStatus.COMPLETED,
    "answered": AttemptStatus.COMPLETED,
    "busy": AttemptStatus.BUSY,
    "no-answer": AttemptStatus.NO_ANSWER,
    "failed": AttemptStatus.FAILED,
    "canceled": AttemptStatus.NO_ANSWER,
}


def _load() -> tuple[CallbackAttempt | None, CallbackRequest | None]:
    deps = deps_of(current_app)
    try:
        attempt = get_attempt(deps, int(request.args.get("attempt", "")))
    except ValueError:
        return None, None
    if attempt is None:
        return None, None
    with deps.db.session() as session:
        req = session.get(CallbackRequest, attempt.request_id)
    return attempt, req


def _is_open(attempt: CallbackAttempt | None, req: CallbackRequest | None) -> bool:
    """Whether `attempt` is still the request's own, under way, for a request that still wants
    the call. A leg of an attempt the sweeper gave up on (its late answer), or of a cancelled
    or finished request, must neither dial nor bridge anyone."""
    return (attempt is not None and req is not None and attempt.state in OPEN_ATTEMPT
            and attempt.attempt_no == req.attempts
            and req.state in (CallbackStatus.DIALING, CallbackStatus.CONNECTED))


def _customer(deps: Deps, req: CallbackRequest | None) -> Speech:
    return customer_speech(deps, req.language if req is not None else "")


def _agent(deps: Deps, attempt: CallbackAttempt | None) -> Speech:
    return agent_speech(deps, attempt.agent_id if attempt is not None else None)


def _goodbye(speech: Speech, key: str, **values) -> Response:
    """Say the sentence `key` in the leg's language and voice, then hang up."""
    return goodbye(speech.words(key, **values), language=speech.say_language,
                   voice=speech.voice)


def _closed(attempt: CallbackAttempt | None, req: CallbackRequest | None, who: str):
    """The answer to a leg of an attempt that is not open: a goodbye, and nothing dialled."""
    log.warning("callback leg for an attempt that is no longer open: hung up",
                extra={"attempt": attempt.id if attempt else None, "leg": who,
                       "attempt_status": attempt.status if attempt else None,
                       "request_status": req.status if req else None})
    deps = deps_of(current_app)
    speech = _agent(deps, attempt) if who == "agent" else _customer(deps, req)
    if req is not None and req.state is CallbackStatus.CANCELLED:
        return _goodbye(speech, "callback.cancelled")
    return _goodbye(speech, "callback.agent_not_needed" if who == "agent"
                    else "callback.not_needed")


def _dial_leg(deps, attempt: CallbackAttempt, speech: Speech, say: str, address: str,
              whisper_url: str | None = None):
    """Say `say` (in `speech`'s voice), then ring the other side of the callback; its end
    comes back to 'dialed'. `whisper_url` is TwiML the other side hears when it answers,
    before the two are joined."""
    r = VoiceResponse()
    speech.text(r, say)
    dial = r.dial(caller_id=deps.config.get("TWILIO_FROM_NUMBER"),
                  action=deps.url(paths.CALLBACK_DIALED, attempt=attempt.id),
                  timeout=int(deps.setting("CALLBACK_RING_TIMEOUT")))
    _dial_target(dial, address, whisper_url)
    return twiml_response(r)


def _dial_target(dial: Dial, address: str, url: str | None = None) -> None:
    extra = {"url": url, "method": "POST"} if url else {}
    if address.startswith("client:"):
        dial.client(address.removeprefix("client:"), **extra)
    elif address.startswith("sip:"):
        dial.sip(address, **extra)
    else:
        dial.number(address, **extra)


def whisper(deps: Deps, req: CallbackRequest, speech: Speech) -> str:
    """What the agent hears before they talk to the customer, in the agent's language: the
    line, the customer's language (when the flows speak more than one), who and why."""
    lang = speech.language
    parts = [speech.words("callback.whisper.queue", queue=queue_label(deps, req.queue, lang))]
    if names_languages(deps.flows()):
        parts.append(speech.words("whisper.language",
                                 language=language_name(speech, req.language)))
    if req.name:
        parts.append(speech.words("callback.whisper.name", name=req.name))
    if req.reason:
        parts.append(speech.words("callback.whisper.reason", reason=req.reason))
    said = (req.context or {}).get("speech") or (req.context or {}).get("said")
    if said:
        parts.append(speech.words("callback.whisper.said", said=said))
    minutes = max(0, int((req.updated_at - req.first_asked_at).total_seconds() // 60))
    key = {0: "callback.whisper.asked_now", 1: "callback.whisper.asked_one"}.get(
        minutes, "callback.whisper.asked")
    parts.append(speech.words(key, minutes=minutes))
    return " ".join(parts)


@bp.post(paths.CALLBACK_AGENT)
@twilio_signed
def agent_answered():
    """Agent-first: the agent picked up; whisper the context, then dial the customer."""
    deps = deps_of(current_app)
    attempt, req = _load()
    if not _is_open(attempt, req):
        return _closed(attempt, req, "agent")
    agent = _agent(deps, attempt)
    return _dial_leg(deps, attempt, agent, whisper(deps, req, agent), req.phone,
                     whisper_url=deps.url(paths.CALLBACK_PICKED_UP, attempt=attempt.id))


@bp.post(paths.CALLBACK_PICKED_UP)
@twilio_signed
def customer_picked_up():
    """Agent-first: the customer answered the agent's <Dial>. From now on the request is
    connected (a supervisor's cancel no longer cuts the two off), and they are joined at once:
    an empty document. A request cancelled while the customer's phone rang is not joined:
    that leg is hung up."""
    deps = deps_of(current_app)
    attempt, req = _load()
    r = VoiceResponse()
    if not _is_open(attempt, req) or not mark_answered(deps, attempt.id):
        r.hangup()
    return twiml_response(r)


@bp.post(paths.CALLBACK_DIALED)
@twilio_signed
def dialed():
    """How the <Dial> leg ended: the customer (agent-first) or the agent (customer-first)."""
    deps = deps_of(current_app)
    attempt, req = _load()
    if attempt is None:
        return _goodbye(_customer(deps, req), "call.goodbye")
    status = request.form.get("DialCallStatus", "")
    duration = _int(request.form.get("DialCallDuration"))
    outcome = _DIAL_OUTCOME.get(status, AttemptStatus.FAILED)
    if attempt.mode == "customer-first":
        if outcome is not AttemptStatus.COMPLETED:
            outcome = AttemptStatus.AGENT_UNAVAILABLE
        finish_attempt(deps, attempt.id, outcome, duration=duration)
        release_agent_of(deps, attempt, "completed" if outcome is AttemptStatus.COMPLETED
                         else (status or "failed"))
        # This <Dial> is on the customer's call: they hear how it went.
        customer = _customer(deps, req)
        if outcome is AttemptStatus.COMPLETED:
            return _goodbye(customer, "callback.thanks")
        return _goodbye(customer, "callback.busy")
    with deps.db.session() as session:
        row = session.get(CallbackAttempt, attempt.id)
        row.customer_call_sid = request.form.get("DialCallSid") or row.customer_call_sid
    finish_attempt(deps, attempt.id, outcome, duration=duration)
    # The agent is done with this call now; its final status callback may come late or never
    # (a lost one held them busy until the repair pass asked the provider).
    release_agent_of(deps, attempt, "completed" if outcome is AttemptStatus.COMPLETED
                     else "canceled")
    agent = _agent(deps, attempt)  # agent-first: the <Dial> is on the agent's call
    if outcome is AttemptStatus.COMPLETED:
        return _goodbye(agent, "callback.agent_done")
    return _goodbye(agent, "callback.customer_missed")


@bp.post(paths.CALLBACK_CUSTOMER)
@twilio_signed
def customer_answered():
    """Customer-first: the customer's phone answered; a person presses 1 to be connected."""
    deps = deps_of(current_app)
    attempt, req = _load()
    if not _is_open(attempt, req):
        return _closed(attempt, req, "customer")
    answered_by = request.form.get("AnsweredBy", "")
    if answered_by.startswith("machine") or answered_by == "fax":
        finish_attempt(deps, attempt.id, AttemptStatus.MACHINE, answered_by=answered_by)
        release_agent_of(deps, attempt, "canceled")
        return _goodbye(_customer(deps, req), "callback.machine")
    mark_answered(deps, attempt.id, answered_by=answered_by or None)
    customer = _customer(deps, req)
    r = VoiceResponse()
    gather = r.gather(num_digits=1, timeout=8,
                      action=deps.url(paths.CALLBACK_CONNECT, attempt=attempt.id))
    # Only the shop's own words reach the person called: a name typed into a web form could be
    # anyone's words, so it goes to the agent's whisper and nowhere else.
    customer.sentence(gather, "callback.hello")
    customer.sentence(r, "callback.no_answer")
    r.hangup()
    return twiml_response(r)


@bp.post(paths.CALLBACK_CONNECT)
@twilio_signed
def connect():
    """Customer-first: the customer pressed a key; 1 bridges them to the claimed agent."""
    deps = deps_of(current_app)
    attempt, req = _load()
    if not _is_open(attempt, req):
        return _closed(attempt, req, "connect")
    if request.form.get("Digits") != "1":
        finish_attempt(deps, attempt.id, AttemptStatus.DECLINED)
        release_agent_of(deps, attempt, "canceled")
        return _goodbye(_customer(deps, req), "callback.declined")
    customer = _customer(deps, req)
    return _dial_leg(deps, attempt, customer, customer.words("callback.connecting"),
                     attempt.agent_address or "",
                     whisper_url=deps.url(paths.CALLBACK_WHISPER, attempt=attempt.id))


@bp.post(paths.CALLBACK_WHISPER)
@twilio_signed
def whisper_to_agent():
    """Customer-first: the agent answered; they hear who is waiting and why, then are joined."""
    deps = deps_of(current_app)
    attempt, req = _load()
    agent = _agent(deps, attempt)
    r = VoiceResponse()
    if not _is_open(attempt, req):
        agent.sentence(r, "callback.agent_not_needed")
        r.hangup()
    else:
        agent.text(r, whisper(deps, req, agent))
    return twiml_response(r)


@bp.post(paths.CALLBACK_STATUS)
@twilio_signed
def status():
    """Status of the leg we placed; repeated or late callbacks change nothing twice."""
    deps = deps_of(current_app)
    attempt, _req = _load()
    if attempt is None:
        return Response("", status=204)
    call_status = request.form.get("CallStatus", "")
    sid = request.form.get("CallSid")
    # A failure while it is applied (the database down) takes the record back: the repeat
    # Twilio sends then settles the attempt, instead of being ignored as one already seen.
    with ordering.applying(deps.redis, sid or "", request.form.get("SequenceNumber")) as newest:
        if not newest:
            log.info("callback status out of order or repeated: ignored",
                     extra={"attempt": attempt.id, "call_sid": sid, "status": call_status})
            return Response("", status=204)
        _apply_status(deps, attempt, sid, call_status)
    return Response("", status=204)


def _apply_status(deps: Deps, attempt: CallbackAttempt, sid: str | None,
                  call_status: str) -> None:
    """Adopt the call SID if the worker could not save it, keep the agent busy while the
    leg rings or talks, and settle the attempt from a final status."""
    if sid and not attempt.call_sid:
        # The worker died before saving the SID, or has not saved it yet: the provider's
        # word adopts the attempt. A cancel that landed meanwhile had no SID to hang up.
        if (record_placed_call(deps, attempt.id, sid) is AttemptStatus.CANCELLED
                and call_status not in FINAL_STATUSES):
            log.warning("a cancelled callback's call is live: hanging up",
                        extra={"attempt": attempt.id, "call_sid": sid})
            hang_up_quietly(deps, sid)
        attempt.call_sid = sid
    leg = request.args.get("leg", "agent")
    if call_status not in FINAL_STATUSES:
        if leg == "agent" and call_status in ("ringing", "in-progress"):
            release_agent_of(deps, attempt, call_status)  # keeps the agent busy
        return
    settle_from_status(deps, attempt, leg, call_status,
                       duration=_int(request.form.get("CallDuration")),
                       answered_by=request.form.get("AnsweredBy"))


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except ValueError:
        return None
