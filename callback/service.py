"""Callback requests: take one (web or phone), put it in line or on the schedule, report, cancel.

The order is always SQL first, then Redis: a request is committed before anything is enqueued,
so a Redis outage leaves it `pending-enqueue` for the sweeper, never lost.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass
from typing import Any

import redis
from rq import Callback
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from callback import guard, rules
from callback.deps import Deps, deps_of
from callback.errors import BadToken, CallbackError, InvalidRequest, NotFound, RateLimited
from callback.models import ACTIVE_STATUSES, CallbackRequest, CallbackStatus
from ivr.core.engine.types import CallbackOutcome
from ivr.core.hours import is_open
from ivr.infra import line

log = logging.getLogger(__name__)
WAKE_KEY = "ivr:cb:wake"  # pushed when a callback becomes due, so the dispatcher looks now


@dataclass
class Created:
    """The result of asking for a callback."""

    request: CallbackRequest
    cancel_token: str | None  # None when merged into an existing request
    merged: bool


def hash_token(token: str) -> str:
    """What we store of a cancel token."""
    return hashlib.sha256(token.encode()).hexdigest()


def mask_number(e164: str) -> str:
    """'+12125551234' -> '+*******1234': enough to recognise, not to harvest."""
    return e164[:1] + "*" * max(0, len(e164) - 5) + e164[-4:]


def queue_name(deps: Deps, queue: str | None) -> str:
    """The queue a callback joins: the given one, the configured default, or the operator's."""
    flows = deps.flows()
    name = queue or deps.setting("CALLBACK_DEFAULT_QUEUE")
    if not name:
        op = flows.defaults.operator
        name = op.queue if op else next(iter(flows.queues), "support")
    if name not in flows.queues:
        raise InvalidRequest(f"unknown queue '{name}'")
    return name


def hours_of(deps: Deps, queue: str):
    """The business-hours calendar of `queue` (None: always open)."""
    flows = deps.flows()
    cfg = flows.queues.get(queue)
    return flows.hours.get(cfg.hours) if cfg and cfg.hours else None


def earliest_call(deps: Deps, phone: str, queue: str, after: dt.datetime) -> dt.datetime:
    """The first moment at or after `after` we may call `phone` for `queue`."""
    window = rules.parse_window(deps.setting("CALLBACK_CALLING_WINDOW"))
    at = rules.next_allowed(after, number=phone, hours=hours_of(deps, queue), window=window)
    if at is None:
        raise InvalidRequest("this queue has no opening hours in the next year to call back in")
    return at


def create_request(
    app_or_deps,
    *,
    phone: str,
    name: str = "",
    reason: str = "",
    queue: str | None = None,
    preferred_time: dt.datetime | None = None,
    client_address: str | None = None,
    consent_text: str | None = None,
    source: str = "web",
    region: str | None = None,
    context: dict | None = None,
    first_asked_at: dt.datetime | None = None,
) -> Created:
    """Check, save, then schedule or queue a callback; merges a pending one for the same number."""
    deps = deps_of(app_or_deps)
    now = deps.now()
    number = guard.normalize_number(phone, deps.guard, region=region)
    queue = queue_name(deps, queue)
    _check_limits(deps, number, client_address, now)
    existing = _active_for(deps, number, queue)
    if existing is not None:
        return Created(existing, None, True)
    if preferred_time is not None and preferred_time.tzinfo is None:
        raise InvalidRequest("preferred_time needs a time zone, e.g. 2026-05-04T15:00:00-04:00")
    wanted = max(now, preferred_time) if preferred_time else now
    token = secrets.token_urlsafe(24)
    req = CallbackRequest(
        public_id=secrets.token_hex(8),
        phone=number,
        active_key=f"{number}|{queue}",
        name=(name or "").strip()[:100],
        reason=(reason or "").strip()[:500],
        queue=queue,
        source=source,
        context=context or {},
        status=CallbackStatus.PENDING_ENQUEUE.value,
        first_asked_at=first_asked_at or now,
        preferred_time=preferred_time,
        scheduled_for=earliest_call(deps, number, queue, wanted),
        max_attempts=int(deps.setting("CALLBACK_MAX_ATTEMPTS")),
        cancel_token_hash=hash_token(token),
        client_address=client_address,
        consent_at=now if consent_text else None,
        consent_address=client_address if consent_text else None,
        consent_text=consent_text,
        created_at=now,
    )
    try:
        with deps.db.session() as session:
            session.add(req)
    except IntegrityError:
        # Another request for this number won the race a moment ago: merge into it.
        existing = _active_for(deps, number, queue)
        if existing is None:
            raise
        return Created(existing, None, True)
    log.info("callback requested", extra={"callback_id": req.id, "source": source,
                                          "scheduled_for": req.scheduled_for.isoformat()})
    enqueue_request(deps, req.id)
    return Created(get_request(deps, req.id), token, False)


def _check_limits(deps: Deps, number: str, address: str | None, now: dt.datetime) -> None:
    try:
        guard.check_request_limits(deps.redis, deps.guard, phone=number, address=address,
                                   now=now.timestamp())
        if guard.dials_left_today(deps.redis, deps.guard, now) <= 0:
            raise RateLimited("We have reached today's limit of callbacks. Please call us.",
                              retry_after=guard.seconds_to_next_utc_day(now))
        return
    except redis.RedisError:
        pass
    # Redis is down: count recent requests in SQL instead (indexed), so floods still stop.
    with deps.db.session() as session:
        for column, key, limit in (
            (CallbackRequest.client_address, address, deps.guard.per_address),
            (CallbackRequest.phone, number, deps.guard.per_number),
        ):
            if not key:
                continue
            since = now - dt.timedelta(seconds=limit.window)
            count = session.scalar(select(func.count()).where(
                column == key, CallbackRequest.created_at >= since))
            if count >= limit.count:
                raise RateLimited("Too many callback requests. Please wait and try again.",
                                  retry_after=limit.window)


def _active_for(deps: Deps, number: str, queue: str) -> CallbackRequest | None:
    with deps.db.session() as session:
        return session.scalar(select(CallbackRequest).where(
            CallbackRequest.active_key == f"{number}|{queue}"))


def get_request(app_or_deps, request_id: int | str) -> CallbackRequest:
    """A request by row id (int) or public id (str); NotFound otherwise."""
    deps = deps_of(app_or_deps)
    with deps.db.session() as session:
        if isinstance(request_id, int):
            req = session.get(CallbackRequest, request_id)
        else:
            req = session.scalar(select(CallbackRequest).where(
                CallbackRequest.public_id == request_id))
    if req is None:
        raise NotFound("No callback request has this id. Check the link, or ask again.")
    return req


def enqueue_request(deps: Deps, request_id: int) -> bool:
    """Hand a saved request to Redis: in line if due, else on RQ's schedule. False if Redis is down.

    Safe to repeat: joining the line keeps an existing place, and the scheduled job has a fixed id.
    """
    req = get_request(deps, request_id)
    if req.state not in (CallbackStatus.PENDING_ENQUEUE, CallbackStatus.SCHEDULED):
        return True
    now = deps.now()
    due = req.scheduled_for <= now + dt.timedelta(seconds=1)
    try:
        if due:
            line.join_callback(deps.redis, req.queue, req.id, req.first_asked_at.timestamp())
            deps.redis.lpush(WAKE_KEY, req.id)
            deps.redis.ltrim(WAKE_KEY, 0, 99)
            new, job_id = CallbackStatus.WAITING, None
        else:
            from callback import jobs

            job_id = f"cb-release-{req.id}-{req.attempts}"
            deps.rq_queue().enqueue_at(req.scheduled_for, jobs.release_request, req.id,
                                       job_id=job_id, result_ttl=600, failure_ttl=86400,
                                       on_failure=Callback(jobs.on_job_failure))
            new = CallbackStatus.SCHEDULED
    except redis.RedisError as exc:
        log.warning("Redis unavailable: callback saved for the sweeper",
                    extra={"callback_id": req.id, "error": str(exc)})
        return False
    with deps.db.session() as session:
        session.execute(
            update(CallbackRequest)
            .where(CallbackRequest.id == req.id,
                   CallbackRequest.status.in_([CallbackStatus.PENDING_ENQUEUE.value,
                                               CallbackStatus.SCHEDULED.value]))
            .values(status=new.value, job_id=job_id, updated_at=now)
        )
    return True


def describe(app_or_deps, req: CallbackRequest) -> dict[str, Any]:
    """The public view of a request: status, place in line, expected wait, schedule."""
    from callback.waits import estimated_wait, position_of

    deps = deps_of(app_or_deps)
    now = deps.now()
    position = position_of(deps, req)
    wait = estimated_wait(deps, req, position, now)
    return {
        "id": req.public_id,
        "status": req.status,
        "position": position,
        "estimated_wait_seconds": wait,
        "scheduled_for": req.scheduled_for.isoformat() if req.scheduled_for else None,
        "queue": req.queue,
        "phone": mask_number(req.phone),
        "attempts": req.attempts,
        "outcome": req.outcome,
        "scheduled_because": _scheduled_because(deps, req),
        "problem": _problem(req),
    }


def _scheduled_because(deps: Deps, req: CallbackRequest) -> str | None:
    """Why a request waits for a later time: the time the person chose ("requested"), the team
    being closed ("closed"), the called party's calling hours ("calling_hours"), or a retry."""
    if req.state is not CallbackStatus.SCHEDULED:
        return None
    if req.customer_failures:
        return "retry"
    wanted = max(req.created_at, req.preferred_time) if req.preferred_time else req.created_at
    if req.preferred_time and req.scheduled_for <= req.preferred_time + dt.timedelta(seconds=1):
        return "requested"
    if not is_open(hours_of(deps, req.queue), wanted):
        return "closed"
    return "calling_hours"


def _problem(req: CallbackRequest) -> str | None:
    """What went wrong on our side, in words for the person waiting (details are logged)."""
    if not req.job_failures:
        return None
    if req.outcome == "error":
        return (f"We could not place this call: our system failed {req.job_failures} times. "
                "Please call us, or ask again later.")
    return (f"Placing this call failed {req.job_failures} time"
            f"{'s' if req.job_failures != 1 else ''} on our side; we keep trying.")


def cancel(app_or_deps, request_id: str, token: str) -> CallbackRequest:
    """Cancel with the token given at creation; hangs up a call in progress."""
    deps = deps_of(app_or_deps)
    req = get_request(deps, request_id)
    if not token or not hmac.compare_digest(req.cancel_token_hash, hash_token(token)):
        raise BadToken("This cancel link is not valid for this callback request.")
    if req.state.is_final:
        return req
    now = deps.now()
    with deps.db.session() as session:
        done = session.execute(
            update(CallbackRequest)
            .where(CallbackRequest.id == req.id,
                   CallbackRequest.status.in_([s.value for s in ACTIVE_STATUSES]))
            .values(status=CallbackStatus.CANCELLED.value, outcome="cancelled",
                    active_key=None, finished_at=now, updated_at=now)
        ).rowcount
    if done:
        from callback.lifecycle import hang_up_live_attempts

        try:
            line.leave_callback(deps.redis, req.queue, req.id)
        except redis.RedisError:
            pass  # the dispatcher skips cancelled rows anyway
        hang_up_live_attempts(deps, req.id)
    return get_request(deps, req.id)


def request_from_call(app_or_deps, *, number: str, caller: str, queue: str,
                      context: dict) -> CallbackOutcome:
    """A caller on the phone asked to be called back (keypad digits or E.164)."""
    deps = deps_of(app_or_deps)
    region = guard.region_of(caller) if caller else None
    first = _first_asked(deps, queue, context)
    try:
        created = create_request(
            deps, phone=number, queue=queue or None, source="phone", region=region,
            context=context, first_asked_at=first, client_address=None,
            reason=str(context.get("reason", ""))[:500],
            consent_text="Requested by the caller on the phone.",
        )
    except CallbackError as exc:
        return CallbackOutcome(accepted=False, reason=str(exc))
    view = describe(deps, created.request)
    if caller and context.get("call_sid"):
        try:  # they leave the live line: the callback holds their place now
            line.leave_caller(deps.redis, created.request.queue, context["call_sid"])
        except redis.RedisError:
            pass
    return CallbackOutcome(accepted=True, number=created.request.phone,
                           position=view["position"],
                           estimated_wait_seconds=view["estimated_wait_seconds"])


def _first_asked(deps: Deps, queue: str, context: dict) -> dt.datetime:
    """A hold caller keeps the time they joined the line; otherwise now."""
    sid = context.get("call_sid")
    if sid and queue:
        try:
            score = line.caller_score(deps.redis, queue, sid)
        except redis.RedisError:
            score = None
        if score is not None:
            return dt.datetime.fromtimestamp(score, dt.UTC)
    # The hold queue takes a caller out of the live line before the offer and passes their
    # place as `first_asked` (epoch seconds); never later than now.
    try:
        kept = float(context.get("first_asked") or "nan")
    except (TypeError, ValueError):
        kept = float("nan")
    if kept == kept and (not context.get("first_asked_queue") or
                         context.get("first_asked_queue") == queue):
        return min(deps.now(), dt.datetime.fromtimestamp(kept, dt.UTC))
    return deps.now()
