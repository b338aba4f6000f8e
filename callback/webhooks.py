"""Twilio webhooks of callback calls: the TwiML each leg hears, and their status callbacks.

Agent-first: we call the agent (`/callbacks/voice/agent`): a whisper of the context, then
<Dial> the customer; `/callbacks/voice/dialed` learns how that leg ended.
Customer-first: we call the customer with answering-machine detection
(`/callbacks/voice/customer`); a person presses 1 (`/callbacks/voice/connect`) and is bridged
to the claimed agent. `/callbacks/status` follows the leg we placed through the REST API.
"""

from __future__ import annotations

import logging

from flask import Blueprint, Response, current_app, request
from twilio.twiml.voice_response import Dial, VoiceResponse

from callback.deps import deps_of
from callback.lifecycle import (
    OPEN_ATTEMPT,
    finish_attempt,
    get_attempt,
    mark_answered,
    release_agent_of,
    settle_from_status,
)
from callback.models import AttemptStatus, CallbackAttempt, CallbackRequest, CallbackStatus
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


def _closed(attempt: CallbackAttempt | None, req: CallbackRequest | None, who: str):
    """The answer to a leg of an attempt that is not open: a goodbye, and nothing dialled."""
    log.warning("callback leg for an attempt that is no longer open: hung up",
                extra={"attempt": attempt.id if attempt else None, "leg": who,
                       "attempt_status": attempt.status if attempt else None,
                       "request_status": req.status if req else None})
    if req is not None and req.state is CallbackStatus.CANCELLED:
        return goodbye("This callback was cancelled. Goodbye.")
    return goodbye("This callback is no longer needed. Thank you. Goodbye.")


def _dial_leg(deps, attempt: CallbackAttempt, say: str, address: str,
              whisper_url: str | None = None):
    """Say `say`, then ring the other side of the callback; its end comes back to 'dialed'.
    `whisper_url` is TwiML the other side hears when it answers, before the two are joined."""
    r = VoiceResponse()
    r.say(say)
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


def whisper(req: CallbackRequest) -> str:
    """What the agent hears before the customer is dialled."""
    parts = [f"Callback for the {req.queue} line."]
    if req.name:
        parts.append(f"{req.name}.")
    if req.reason:
        parts.append(f"About: {req.reason}.")
    said = (req.context or {}).get("speech") or (req.context or {}).get("said")
    if said:
        parts.append(f"They said '{said}'.")
    minutes = max(0, int((req.updated_at - req.first_asked_at).total_seconds() // 60))
    parts.append(f"They asked {minutes} minutes ago. Connecting you now.")
    return " ".join(parts)


@bp.post(paths.CALLBACK_AGENT)
@twilio_signed
def agent_answered():
    """Agent-first: the agent picked up; whisper the context, then dial the customer."""
    deps = deps_of(current_app)
    attempt, req = _load()
    if not _is_open(attempt, req):
        return _closed(attempt, req, "agent")
    return _dial_leg(deps, attempt, whisper(req), req.phone)


@bp.post(paths.CALLBACK_DIALED)
@twilio_signed
def dialed():
    """How the <Dial> leg ended: the customer (agent-first) or the agent (customer-first)."""
    deps = deps_of(current_app)
    attempt, req = _load()
    if attempt is None:
        return goodbye("Goodbye.")
    status = request.form.get("DialCallStatus", "")
    duration = _int(request.form.get("DialCallDuration"))
    outcome = _DIAL_OUTCOME.get(status, AttemptStatus.FAILED)
    if attempt.mode == "customer-first":
        if outcome is not AttemptStatus.COMPLETED:
            outcome = AttemptStatus.AGENT_UNAVAILABLE
        finish_attempt(deps, attempt.id, outcome, duration=duration)
        release_agent_of(deps, attempt, "completed" if outcome is AttemptStatus.COMPLETED
                         else (status or "failed"))
        if outcome is AttemptStatus.COMPLETED:
            return goodbye("Thank you for calling. Goodbye.")
        return goodbye("Sorry, nobody could take your call just now. We will call you back "
                        "shortly.")
    with deps.db.session() as session:
        row = session.get(CallbackAttempt, attempt.id)
        row.customer_call_sid = request.form.get("DialCallSid") or row.customer_call_sid
    finish_attempt(deps, attempt.id, outcome, duration=duration)
    # The agent is done with this call now; its final status callback may come late or never
    # (a lost one held them busy until the repair pass asked the provider).
    release_agent_of(deps, attempt, "completed" if outcome is AttemptStatus.COMPLETED
                     else "canceled")
    if outcome is AttemptStatus.COMPLETED:
        return goodbye("The callback has ended. Thank you.")
    return goodbye(f"The customer did not answer ({status or 'no status'}). We will try "
                    "again later.")


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
        return goodbye("Hello, we are returning your call request. We will try again later.")
    mark_answered(deps, attempt.id, answered_by=answered_by or None)
    r = VoiceResponse()
    gather = r.gather(num_digits=1, timeout=8,
                      action=deps.url(paths.CALLBACK_CONNECT, attempt=attempt.id))
    # Only the shop's own words reach the person called: a name typed into a web form could be
    # anyone's words, so it goes to the agent's whisper and nowhere else.
    gather.say("Hello. You asked us to call you back. Press 1 to talk to a person now.")
    r.say("We did not get your answer. We will try again later. Goodbye.")
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
        return goodbye("All right. We will try again later. Goodbye.")
    return _dial_leg(deps, attempt, "Connecting you now.", attempt.agent_address or "",
                     whisper_url=deps.url(paths.CALLBACK_WHISPER, attempt=attempt.id))


@bp.post(paths.CALLBACK_WHISPER)
@twilio_signed
def whisper_to_agent():
    """Customer-first: the agent answered; they hear who is waiting and why, then are joined."""
    attempt, req = _load()
    r = VoiceResponse()
    if not _is_open(attempt, req):
        r.say("This callback is no longer needed.")
        r.hangup()
    else:
        r.say(whisper(req))
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
    if not ordering.is_newest(deps.redis, sid or "", request.form.get("SequenceNumber")):
        log.info("callback status out of order or repeated: ignored",
                 extra={"attempt": attempt.id, "call_sid": sid, "status": call_status})
        return Response("", status=204)
    if sid and not attempt.call_sid:
        # The worker died before saving the SID: the provider's word adopts the attempt.
        with deps.db.session() as session:
            row = session.get(CallbackAttempt, attempt.id)
            row.call_sid = sid
            if row.state is AttemptStatus.CLAIMED:
                row.status = AttemptStatus.DIALING.value
        attempt.call_sid = sid
    leg = request.args.get("leg", "agent")
    if call_status not in FINAL_STATUSES:
        if leg == "agent" and call_status in ("ringing", "in-progress"):
            release_agent_of(deps, attempt, call_status)  # keeps the agent busy
        return Response("", status=204)
    settle_from_status(deps, attempt, leg, call_status,
                       duration=_int(request.form.get("CallDuration")),
                       answered_by=request.form.get("AnsweredBy"))
    return Response("", status=204)


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except ValueError:
        return None
