"""When and how a saved request is called: its queue and hours, the first moment we may call,
and handing it to Redis (in line when due, else on RQ's schedule).

Jobs are named by dotted path (RQ imports them in the worker), so scheduling needs nothing
from `callback.jobs`, which builds on this module.
"""

from __future__ import annotations

import datetime as dt
import logging

import redis
from rq import Callback
from sqlalchemy import select, update

from callback import rules
from callback.deps import Deps, deps_of
from callback.errors import InvalidRequest, NotFound
from callback.models import CallbackRequest, CallbackStatus
from ivr.infra import line

log = logging.getLogger(__name__)

WAKE_KEY = "ivr:cb:wake"  # pushed when a callback becomes due or an agent frees up
RELEASE_JOB = "callback.jobs.release_request"
DIAL_JOB = "callback.jobs.place_callback"
ON_FAILURE = "callback.jobs.on_job_failure"


def wake_dispatcher(deps: Deps, reason: str | int) -> None:
    """Tell the dispatcher to look now (a callback is due, or an agent is free)."""
    pipe = deps.redis.pipeline(transaction=False)
    pipe.lpush(WAKE_KEY, reason)
    pipe.ltrim(WAKE_KEY, 0, 99)
    pipe.execute()


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
            wake_dispatcher(deps, req.id)
            new, job_id = CallbackStatus.WAITING, None
        else:
            job_id = f"cb-release-{req.id}-{req.attempts}"
            # RQ's scheduler knows only the system clock.
            deps.rq_queue().enqueue_at(deps.services.on_system_clock(req.scheduled_for),
                                       RELEASE_JOB, req.id,
                                       job_id=job_id, result_ttl=600, failure_ttl=86400,
                                       on_failure=Callback(ON_FAILURE))
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
