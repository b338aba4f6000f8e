"""RQ jobs that place callbacks. Module-level functions taking ids, each safe to run twice.

`place_callback(request_id, attempt_no)` is the only code that dials. Before dialling it
inserts the attempt row (UNIQUE request_id, attempt_no) and moves the request to `dialing` in
the same transaction; a second run of the job (RQ is at-least-once: a killed worker's job is
run again) fails that insert and returns without dialling.
"""

from __future__ import annotations

import datetime as dt
import logging

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from callback import limits, rules, runtime
from callback.lifecycle import (
    finish_attempt,
    hang_up_quietly,
    record_placed_call,
    release_agent_of,
    requeue,
)
from callback.models import AttemptStatus, CallbackAttempt, CallbackRequest, CallbackStatus
from callback.schedule import earliest_call, enqueue_request, hours_of
from ivr.errors import IvrError, TelephonyUnsure
from ivr.infra import line, live, metrics, paths
from ivr.infra.agents import attach_call, claim_agent, dial_address

log = logging.getLogger(__name__)
AGENT_FIRST = "agent-first"
CUSTOMER_FIRST = "customer-first"


def on_job_failure(job, connection, exc_type, exc_value, traceback) -> None:
    """RQ's failure callback for every callback job: make the failure visible, once.

    The request shows the trouble (`GET /callbacks/<id>`), the log says what broke, and
    `/metrics` counts it. The sweeper sends the job again later; after
    CALLBACK_MAX_JOB_FAILURES failures the request ends as failed, with the error kept.
    """
    request_id = int(job.args[0])
    deps = runtime.current()
    error = f"{exc_type.__name__}: {exc_value}"[:300]
    metrics.CALLBACK_JOB_FAILURES.labels(job.func_name.rsplit(".", 1)[-1]).inc()
    limit = int(deps.setting("CALLBACK_MAX_JOB_FAILURES"))
    now = deps.now()
    with deps.db.session() as session:
        # Counted in one write (two failing jobs both count); the row is then read back as
        # that write left it, and given up only by a compare-and-set on the status read.
        session.execute(
            update(CallbackRequest).where(CallbackRequest.id == request_id)
            .values(job_failures=func.coalesce(CallbackRequest.job_failures, 0) + 1,
                    last_error=error))
        req = session.get(CallbackRequest, request_id)
        if req is None:
            return
        failures = req.job_failures
        # A call being placed or talked on is settled by how that call ends, not here.
        gave_up = (failures >= limit and not req.state.is_final
                   and req.state not in (CallbackStatus.DIALING, CallbackStatus.CONNECTED))
        if gave_up:
            gave_up = bool(session.execute(
                update(CallbackRequest)
                .where(CallbackRequest.id == request_id, CallbackRequest.status == req.status)
                .values(status=CallbackStatus.FAILED.value, outcome="error", active_key=None,
                        finished_at=now)
                .execution_options(synchronize_session=False)).rowcount)
    log.error("callback job failed" + ("; the request is given up" if gave_up else ""),
              extra={"callback_id": request_id, "job": job.id, "failures": failures,
                     "error": error})


def release_request(request_id: int) -> str:
    """A scheduled request's time has come: put it in line (the dispatcher takes it from there)."""
    deps = runtime.current()
    enqueue_request(deps, request_id)
    live.changed(deps.redis, "callback", id=request_id)  # the console shows it due
    return "released"


def place_callback(request_id: int, attempt_no: int) -> str:
    """Claim an agent, write the attempt guard, and dial: at most once per attempt number."""
    deps = runtime.current()
    outcome = _place(deps, request_id, attempt_no)
    live.changed(deps.redis, "callback", id=request_id, outcome=outcome)
    return outcome


def _place(deps, request_id: int, attempt_no: int) -> str:
    now = deps.now()
    with deps.db.session() as session:
        req = session.get(CallbackRequest, request_id)
    if req is None or req.state.is_final:
        return "gone"
    if req.attempts >= attempt_no:
        return "duplicate"  # this attempt was already made (the job ran before)
    if req.state not in (CallbackStatus.DISPATCHED, CallbackStatus.WAITING):
        return f"not ready ({req.status})"
    window = rules.parse_window(deps.setting("CALLBACK_CALLING_WINDOW"))
    if not rules.is_allowed(now, number=req.phone, hours=hours_of(deps, req.queue),
                            window=window):
        _defer(deps, req, earliest_call(deps, req.phone, req.queue, now))
        return "deferred"
    mode = str(deps.setting("CALLBACK_MODE"))
    agent = claim_agent(deps.db, deps.redis, req.queue, now)
    if agent is None:
        requeue(deps, req.id, from_status=req.state)
        return "no agent"
    attempt = CallbackAttempt(
        request_id=req.id, attempt_no=attempt_no, mode=mode, agent_id=agent.id,
        agent_address=dial_address(agent), status=AttemptStatus.CLAIMED.value, created_at=now,
    )
    try:
        with deps.db.session() as session:
            moved = session.execute(
                update(CallbackRequest)
                .where(CallbackRequest.id == req.id,
                       CallbackRequest.attempts == attempt_no - 1,
                       CallbackRequest.status.in_([CallbackStatus.DISPATCHED.value,
                                                   CallbackStatus.WAITING.value]))
                .values(attempts=attempt_no, status=CallbackStatus.DIALING.value,
                        updated_at=now)
            ).rowcount
            if not moved:
                raise _Raced()
            session.add(attempt)
    except (IntegrityError, _Raced):
        release_agent_of(deps, attempt, "canceled")
        return "duplicate"
    line.leave_callback(deps.redis, req.queue, req.id)
    if not limits.count_dial(deps.redis, deps.guard, now):
        resets = now + dt.timedelta(seconds=limits.seconds_to_next_utc_day(now))
        log.error("daily dial cap reached: callback deferred to the first calling window after "
                  "the cap resets", extra={"callback_id": req.id, "resets": resets.isoformat()})
        release_agent_of(deps, attempt, "canceled")
        finish_attempt(deps, attempt.id, AttemptStatus.LOST, error="daily dial cap reached",
                       not_before=resets)
        return "capped"
    return _dial(deps, req, attempt, mode)


# How long after a provider failure (network, 5xx, a lost answer) a request is tried again:
# doubled for each failure in a row, up to the cap.
PROVIDER_RETRY_SECONDS = 10
PROVIDER_RETRY_CAP = 300


def _provider_pause(deps, request_id: int) -> int:
    with deps.db.session() as session:
        outcomes = session.scalars(select(CallbackAttempt.status).where(
            CallbackAttempt.request_id == request_id,
        ).order_by(CallbackAttempt.attempt_no.desc()).limit(8)).all()
    in_a_row = 0
    for outcome in outcomes[1:]:  # the newest is the attempt failing now
        if outcome != AttemptStatus.PROVIDER_ERROR.value:
            break
        in_a_row += 1
    return min(PROVIDER_RETRY_CAP, PROVIDER_RETRY_SECONDS * 2 ** in_a_row)


class _Raced(Exception):
    """Another run of this job moved the request first."""


def _dial(deps, req: CallbackRequest, attempt: CallbackAttempt, mode: str) -> str:
    from_number = deps.config.get("TWILIO_FROM_NUMBER")
    try:
        # Inside the try: without a public URL the agent just claimed must be released too.
        status_url = status_callback_of(deps, attempt)
        if mode == CUSTOMER_FIRST:
            sid = deps.telephony.place_call(
                to=req.phone, from_=from_number,
                url=deps.url(paths.CALLBACK_CUSTOMER, attempt=attempt.id),
                status_callback=status_url, machine_detection="Enable",
                timeout=int(deps.setting("CALLBACK_RING_TIMEOUT")),
            )
        else:
            sid = deps.telephony.place_call(
                to=attempt.agent_address, from_=from_number,
                url=deps.url(paths.CALLBACK_AGENT, attempt=attempt.id),
                status_callback=status_url, timeout=int(deps.setting("CALLBACK_RING_TIMEOUT")),
            )
    except TelephonyUnsure as exc:
        # The call may be ringing: dialling again could call the customer twice. The attempt
        # stays claimed; the call's status callbacks adopt it, or the repair pass asks the
        # provider again before it gives the attempt up (callback.dispatch.sweep).
        log.error("callback dial unconfirmed: left for its status callbacks and the repair "
                  "pass", extra={"callback_id": req.id, "attempt": attempt.id,
                                 "error": str(exc)})
        return "unconfirmed"
    except IvrError as exc:  # TelephonyError, PublicUrlUnknown
        log.error("callback dial failed", extra={"callback_id": req.id, "error": str(exc)})
        if getattr(exc, "transient", False):
            # The provider's trouble, not the customer's: no attempt of theirs is used up,
            # and the request is tried again after a pause that doubles while it lasts.
            pause = _provider_pause(deps, req.id)
            finish_attempt(deps, attempt.id, AttemptStatus.PROVIDER_ERROR, error=str(exc)[:300],
                           not_before=deps.now() + dt.timedelta(seconds=pause))
        else:
            finish_attempt(deps, attempt.id, AttemptStatus.FAILED, error=str(exc)[:300])
        release_agent_of(deps, attempt, "canceled")
        return "provider error"
    if record_placed_call(deps, attempt.id, sid) is AttemptStatus.CANCELLED:
        # Cancelled (by the customer or an admin) while the provider was placing the call:
        # the cancel may have had no SID to hang up, so the call is ended here, or it rings.
        log.warning("callback cancelled while it was being dialled: hanging up",
                    extra={"callback_id": req.id, "call_sid": sid})
        hang_up_quietly(deps, sid)
        return "cancelled"
    if mode == AGENT_FIRST:
        attach_call(deps.redis, attempt.agent_id, sid)
    log.info("callback dialled", extra={"callback_id": req.id, "attempt": attempt.attempt_no,
                                        "call_sid": sid, "mode": mode})
    return sid


def status_callback_of(deps, attempt: CallbackAttempt) -> str:
    """The status callback URL of the leg we place for `attempt` (it names the attempt: the
    call ledger knows the call as this attempt's by it)."""
    return deps.url(paths.CALLBACK_STATUS, attempt=attempt.id,
                    leg="agent" if attempt.mode == AGENT_FIRST else "customer")


def _defer(deps, req: CallbackRequest, at) -> None:
    with deps.db.session() as session:
        session.execute(
            update(CallbackRequest)
            .where(CallbackRequest.id == req.id, CallbackRequest.status == req.status)
            .values(status=CallbackStatus.PENDING_ENQUEUE.value, scheduled_for=at,
                    dispatched_at=None)
        )
    line.leave_callback(deps.redis, req.queue, req.id)
    enqueue_request(deps, req.id)
