"""How an attempt ends and what the request does next: done, retry later, or back in line.

Every transition is a compare-and-set on the row's status, so repeated or late status
callbacks (Twilio retries, a job run twice) change nothing the second time.
"""

from __future__ import annotations

import datetime as dt
import logging

import redis
from sqlalchemy import select, update

from callback.deps import Deps
from callback.models import (
    ACTIVE_STATUSES,
    AttemptStatus,
    CallbackAttempt,
    CallbackRequest,
    CallbackStatus,
)
from callback.schedule import earliest_call, enqueue_request, wake_dispatcher
from ivr.errors import TelephonyError
from ivr.infra.agents import AgentError, on_agent_call_status

log = logging.getLogger(__name__)
OPEN_ATTEMPT = (AttemptStatus.CLAIMED, AttemptStatus.DIALING, AttemptStatus.ANSWERED)


def backoff_seconds(deps: Deps, failures: int) -> int:
    """Seconds to wait before the next try after `failures` customer failures (1-based)."""
    raw = deps.setting("CALLBACK_RETRY_BACKOFF")
    steps = [int(s) for s in str(raw).split(",") if s.strip()] if not isinstance(
        raw, list | tuple) else [int(s) for s in raw]
    if not steps:
        return 0
    return steps[min(failures, len(steps)) - 1]


def get_attempt(deps: Deps, attempt_id: int) -> CallbackAttempt | None:
    with deps.db.session() as session:
        return session.get(CallbackAttempt, attempt_id)


def mark_answered(deps: Deps, attempt_id: int, *, answered_by: str | None = None) -> bool:
    """The customer picked up: the request is connected. False when the attempt had ended."""
    now = deps.now()
    values: dict = {"status": AttemptStatus.ANSWERED.value}
    if answered_by:
        values["answered_by"] = answered_by
    with deps.db.session() as session:
        # One conditional write, not a read and a write: a cancel landing between the two
        # would be overwritten, and a cancelled attempt would come back as answered.
        answered = session.execute(
            update(CallbackAttempt)
            .where(CallbackAttempt.id == attempt_id,
                   CallbackAttempt.status.in_([s.value for s in OPEN_ATTEMPT]))
            .values(**values)
        ).rowcount
        if not answered:
            return False
        session.execute(
            update(CallbackRequest)
            .where(CallbackRequest.id == select(CallbackAttempt.request_id)
                   .where(CallbackAttempt.id == attempt_id).scalar_subquery(),
                   CallbackRequest.status == CallbackStatus.DIALING.value)
            .values(status=CallbackStatus.CONNECTED.value, updated_at=now)
        )
    return True


def finish_attempt(deps: Deps, attempt_id: int, outcome: AttemptStatus, *,
                   duration: int | None = None, answered_by: str | None = None,
                   error: str | None = None, not_before: dt.datetime | None = None,
                   from_status: AttemptStatus | None = None) -> bool:
    """Record how an attempt ended and move its request on; False if it had already ended,
    or (with `from_status`, the status `outcome` was decided from) had moved on from it.

    A request that goes on is placed again at once, after its back-off when the customer did
    not answer, and never before `not_before` (the daily dial cap's reset), always within
    calling hours."""
    now = deps.now()
    if from_status is None:
        allowed = [s.value for s in OPEN_ATTEMPT]
    else:  # an ended attempt is never ended again
        allowed = [from_status.value] if from_status in OPEN_ATTEMPT else []
    with deps.db.session() as session:
        changed = session.execute(
            update(CallbackAttempt)
            .where(CallbackAttempt.id == attempt_id, CallbackAttempt.status.in_(allowed))
            .values(status=outcome.value, ended_at=now, duration_seconds=duration,
                    answered_by=answered_by, error=error)
        ).rowcount
        if not changed:
            return False
        attempt = session.get(CallbackAttempt, attempt_id)
        req = session.get(CallbackRequest, attempt.request_id)
        log.info("callback attempt ended", extra={"callback_id": req.id,
                 "attempt": attempt.attempt_no, "outcome": outcome.value})
        if req.state not in ACTIVE_STATUSES:
            return True  # cancelled meanwhile: nothing more to do
        values = _request_after(deps, req, outcome, not_before, now)
        # A compare-and-set on the status just read, not a write of the object: a cancel
        # committed since the read must win, or a cancelled request would be called again.
        moved = session.execute(
            update(CallbackRequest)
            .where(CallbackRequest.id == req.id, CallbackRequest.status == req.status)
            .values(**values)
            .execution_options(synchronize_session=False)
        ).rowcount
        if not moved:
            log.info("callback request changed while its attempt ended: left as it is",
                     extra={"callback_id": req.id})
            return True
        request_id = req.id
    if values["status"] == CallbackStatus.PENDING_ENQUEUE.value:
        enqueue_request(deps, request_id)
    return True


def _request_after(deps: Deps, req: CallbackRequest, outcome: AttemptStatus,
                   not_before: dt.datetime | None, now: dt.datetime) -> dict:
    """The request's columns after its attempt ended with `outcome`: done, failed, or back in
    line (after its back-off when the customer did not answer, never before `not_before`,
    always within calling hours)."""
    ended = {"active_key": None, "finished_at": now}
    if outcome is AttemptStatus.COMPLETED:
        return {"status": CallbackStatus.COMPLETED.value, "outcome": "connected", **ended}
    values: dict = {}
    scheduled_for = req.scheduled_for
    if outcome.counts_against_customer:
        failures = req.customer_failures + 1
        values["customer_failures"] = failures
        if failures >= req.max_attempts:
            return {**values, "status": CallbackStatus.FAILED.value, "outcome": outcome.value,
                    **ended}
        wanted = now + dt.timedelta(seconds=backoff_seconds(deps, failures))
        scheduled_for = earliest_call(deps, req.phone, req.queue, wanted)
    # Not the customer's doing (agent missed it, worker lost it): same place, at once.
    if not_before is not None and scheduled_for < not_before:
        scheduled_for = earliest_call(deps, req.phone, req.queue, not_before)
    return {**values, "status": CallbackStatus.PENDING_ENQUEUE.value,
            "scheduled_for": scheduled_for, "dispatched_at": None}


# How the customer's leg ended, when it was not bridged (Twilio's final call statuses).
_LEG_OUTCOME = {
    "completed": AttemptStatus.DECLINED,  # answered, never bridged
    "busy": AttemptStatus.BUSY,
    "no-answer": AttemptStatus.NO_ANSWER,
    "canceled": AttemptStatus.NO_ANSWER,
    "failed": AttemptStatus.FAILED,
}


def settle_from_status(deps: Deps, attempt: CallbackAttempt, leg: str, call_status: str, *,
                       duration: int | None = None, answered_by: str | None = None,
                       customer_talked: bool | None = None) -> bool:
    """End an attempt from the final status of the leg we placed (its status callback, or the
    provider's answer to the repair pass); False when the attempt had already ended, or is
    not this status's to end.

    An agent's leg that ended unanswered means the agent missed it. One that was answered
    (`completed`) may have carried the whole conversation: its <Dial> action says how the
    customer's leg went, and this status may overtake it, so it only frees the agent, unless
    the repair pass asked the provider (`customer_talked`). A customer's leg ending unbridged
    is theirs to answer for, unless they had answered and been bridged (`answered`).

    The outcome is decided from the attempt's status and written only while it still is that
    status: an answer noted since `attempt` was read is decided again, from the fresh row.
    """
    for _ in range(len(OPEN_ATTEMPT)):  # each retry follows a move forward: at most this many
        outcome = _settled_outcome(attempt, leg, call_status, customer_talked)
        if outcome is None:
            release_agent_of(deps, attempt, "completed")
            return False
        if finish_attempt(deps, attempt.id, outcome, duration=duration,
                          answered_by=answered_by if leg != "agent" else None,
                          from_status=attempt.state):
            release_agent_of(deps, attempt, _freed_as(outcome, leg, call_status))
            return True
        fresh = get_attempt(deps, attempt.id)
        if fresh is None or fresh.state not in OPEN_ATTEMPT:
            if leg == "agent":  # the agent's own call is over, however the attempt ended
                release_agent_of(deps, attempt, _freed_as(outcome, leg, call_status))
            return False
        attempt = fresh
    return False


def _freed_as(outcome: AttemptStatus, leg: str, call_status: str) -> str:
    """The call status the agent is released with once `outcome` ends the attempt."""
    if outcome is AttemptStatus.COMPLETED:
        return "completed"
    return call_status if leg == "agent" else "canceled"


def _settled_outcome(attempt: CallbackAttempt, leg: str, call_status: str,
                     customer_talked: bool | None) -> AttemptStatus | None:
    """How a final `call_status` of our leg ends `attempt`; None: an answered agent leg whose
    <Dial> action will say how the customer's leg went."""
    if leg == "agent":
        if call_status == "completed" and attempt.state is not AttemptStatus.ANSWERED \
                and customer_talked is None:
            return None
        return (AttemptStatus.COMPLETED
                if attempt.state is AttemptStatus.ANSWERED or customer_talked
                else AttemptStatus.AGENT_UNAVAILABLE)
    if attempt.state is AttemptStatus.ANSWERED and call_status == "completed":
        return AttemptStatus.COMPLETED
    return _LEG_OUTCOME.get(call_status, AttemptStatus.FAILED)


def requeue(deps: Deps, request_id: int, *, from_status: CallbackStatus) -> bool:
    """Put a dispatched request back in line (no agent after all); keeps its place."""
    with deps.db.session() as session:
        changed = session.execute(
            update(CallbackRequest)
            .where(CallbackRequest.id == request_id,
                   CallbackRequest.status == from_status.value)
            .values(status=CallbackStatus.WAITING.value, dispatched_at=None,
                    updated_at=deps.now())
        ).rowcount
    return bool(changed)


def hang_up_live_attempts(deps: Deps, request_id: int) -> None:
    """End calls of a cancelled request that are ringing or in progress (best effort).

    Each attempt is ended first and its SIDs read after: a dial job (or a status callback)
    writes the SID first and reads the status after (`record_placed_call`). Whatever order
    the two land in, one of them sees the other's write and hangs the call up."""
    with deps.db.session() as session:
        attempt_ids = session.scalars(select(CallbackAttempt.id).where(
            CallbackAttempt.request_id == request_id,
            CallbackAttempt.status.in_([s.value for s in OPEN_ATTEMPT]))).all()
    for attempt_id in attempt_ids:
        finish_attempt(deps, attempt_id, AttemptStatus.CANCELLED)
        attempt = get_attempt(deps, attempt_id)
        for sid in (attempt.call_sid, attempt.customer_call_sid):
            if sid:
                hang_up_quietly(deps, sid)
        release_agent_of(deps, attempt, "canceled")


def record_placed_call(deps: Deps, attempt_id: int, sid: str) -> AttemptStatus:
    """The provider placed call `sid` for this attempt: note the SID (the first one noted
    stays), move a claimed attempt to dialing, and return the attempt's status after that
    write. CANCELLED means a cancel landed while the call was being placed, and the caller
    must hang the call up (see `hang_up_live_attempts`)."""
    now = deps.now()
    with deps.db.session() as session:
        session.execute(update(CallbackAttempt).where(
            CallbackAttempt.id == attempt_id, CallbackAttempt.call_sid.is_(None),
        ).values(call_sid=sid, dialed_at=now))
        session.execute(update(CallbackAttempt).where(
            CallbackAttempt.id == attempt_id,
            CallbackAttempt.status == AttemptStatus.CLAIMED.value,
        ).values(status=AttemptStatus.DIALING.value))
    return get_attempt(deps, attempt_id).state


def hang_up_quietly(deps: Deps, sid: str) -> None:
    """End call `sid`; a call that has already ended, or a provider that refuses, is logged."""
    try:
        deps.telephony.hangup(sid)
    except TelephonyError as exc:
        log.warning("hangup failed", extra={"call_sid": sid, "error": str(exc)})


def release_agent_of(deps: Deps, attempt: CallbackAttempt, call_status: str) -> None:
    """Tell the roster how the agent's part ended (presence policy lives in ivr.infra.agents)."""
    if attempt.agent_id is None:
        return
    try:
        on_agent_call_status(deps.db, deps.redis, attempt.agent_id, call_status,
                             call_sid=attempt.call_sid, now=deps.now())
    except (AgentError, redis.RedisError) as exc:
        log.warning("agent presence not updated", extra={"agent_id": attempt.agent_id,
                                                         "error": str(exc)})
    try:
        wake_dispatcher(deps, "agent")
    except redis.RedisError:
        pass
