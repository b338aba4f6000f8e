"""Place in line and expected wait for a callback request, from the shared line and estimator."""

from __future__ import annotations

import datetime as dt
import logging

import redis
from sqlalchemy import func, select

from callback.deps import Deps
from callback.models import CallbackRequest, CallbackStatus
from ivr.core.waits.estimator import EstimateError, estimate_wait
from ivr.infra import line, queue_history
from ivr.infra.agents import staffed_count

log = logging.getLogger(__name__)
IN_LINE = (CallbackStatus.WAITING, CallbackStatus.DISPATCHED, CallbackStatus.PENDING_ENQUEUE)
BEING_CALLED = (CallbackStatus.DIALING, CallbackStatus.CONNECTED)


def position_of(deps: Deps, req: CallbackRequest) -> int | None:
    """1 = next; 0 = being called now; None when not in line (scheduled later, or done)."""
    state = req.state
    if state in BEING_CALLED:
        return 0
    if state not in IN_LINE or req.scheduled_for > deps.now() + dt.timedelta(seconds=1):
        return None
    try:
        return line.place_of(deps.redis, req.queue, req.first_asked_at.timestamp()).position
    except redis.RedisError:
        return _position_from_sql(deps, req)


def _position_from_sql(deps: Deps, req: CallbackRequest) -> int:
    """Without Redis: callbacks ahead only (live callers are not in SQL)."""
    with deps.db.session() as session:
        ahead = session.scalar(select(func.count()).where(
            CallbackRequest.queue == req.queue,
            CallbackRequest.status.in_([s.value for s in IN_LINE]),
            CallbackRequest.first_asked_at < req.first_asked_at,
        ))
    return int(ahead or 0) + 1


def estimated_wait(deps: Deps, req: CallbackRequest, position: int | None,
                   now: dt.datetime) -> int | None:
    """Seconds until we expect to call; None when nobody can say (no agent staffed)."""
    if req.state.is_final:
        return None
    if position == 0:
        return 0
    until_due = max(0.0, (req.scheduled_for - now).total_seconds())
    if position is None:
        return int(until_due) if req.state is CallbackStatus.SCHEDULED else None
    wait = _wait_from(deps, req.queue, req.first_asked_at.timestamp(), now)
    return None if wait is None else int(round(max(until_due, wait)))


def wait_for_a_new_request(deps: Deps, queue: str, now: dt.datetime) -> int | None:
    """Seconds a request made now would wait for its call (None: nobody can say)."""
    wait = _wait_from(deps, queue, now.timestamp(), now)
    return None if wait is None else int(wait)


def _wait_from(deps: Deps, queue: str, first_asked: float, now: dt.datetime) -> float | None:
    """The expected wait of whoever first asked at `first_asked`, from the shared line, the
    agents on duty and what the queue has learned."""
    try:
        place = line.place_of(deps.redis, queue, first_asked)
        agents = staffed_count(deps.redis, queue, now)
        learned = queue_history.history(deps.redis, queue)
    except redis.RedisError:
        return None
    cfg = deps.flows().queues.get(queue)
    try:
        return estimate_wait(
            place.callers_ahead + 1, agents, learned, callbacks_ahead=place.callbacks_ahead,
            default_handle_seconds=float(cfg.default_handle_seconds if cfg else 240),
        ).seconds
    except EstimateError:
        return None
