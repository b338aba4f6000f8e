"""What a supervisor may do to a callback request from the console: cancel it, call it now,
or call it at another time. Each change is a compare-and-set on the request's status, written
in one transaction with its audit row (`CallbackAction`), so no change goes unrecorded.

No action dials. Each one only moves the request to a status that the existing machinery acts
on: in line (the dispatcher), on RQ's schedule (the release job), or cancelled (nothing). So
every call still goes through `callback.jobs.place_callback` and its attempt guard: at most
one dial per attempt number, and only inside calling hours. An RQ job left over from before
an action is harmless. The release job reads the request's time from SQL and moves only a
request that is still scheduled and due. A dial job refuses a request that is not in line, or
whose attempt was already made.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import redis
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from callback import rules
from callback.deps import Deps, deps_of
from callback.errors import ActionRefused, InvalidRequest, TimeNotAllowed
from callback.lifecycle import hang_up_live_attempts
from callback.models import (
    ActionKind,
    CallbackAction,
    CallbackRequest,
    CallbackStatus,
)
from callback.schedule import earliest_call, enqueue_request, get_request, hours_of
from ivr.core.hours import home_zone, is_open
from ivr.infra import line

log = logging.getLogger(__name__)

S = CallbackStatus
# A connected request is a customer talking to an agent: the callbacks page never cuts them off.
CANCELLABLE = frozenset({S.PENDING_ENQUEUE, S.SCHEDULED, S.WAITING, S.DISPATCHED, S.DIALING})
# Already in line (waiting, dispatched) is as soon as it gets: nothing to retry.
RETRYABLE = frozenset({S.PENDING_ENQUEUE, S.SCHEDULED, S.FAILED})
RESCHEDULABLE = frozenset({S.PENDING_ENQUEUE, S.SCHEDULED, S.WAITING, S.DISPATCHED, S.FAILED})
IN_LINE = frozenset({S.WAITING, S.DISPATCHED})
_TRIES = 3  # compare-and-set rounds against a request that moves while we act


@dataclass(frozen=True)
class ActionDone:
    """An action that was taken: the request as it is now, its audit row, and what to tell
    the supervisor."""

    request: CallbackRequest
    action: CallbackAction
    message: str


def can(action: ActionKind | str, status: CallbackStatus | str) -> bool:
    """True when `action` may be taken on a request in `status` (the page shows its button)."""
    allowed = {ActionKind.CANCEL: CANCELLABLE, ActionKind.RETRY: RETRYABLE,
               ActionKind.RESCHEDULE: RESCHEDULABLE}[ActionKind(action)]
    return CallbackStatus(status) in allowed


def cancel_by_admin(app_or_deps, request_id: int, who: str, note: str = "") -> ActionDone:
    """Cancel a request that is not yet talking to an agent; a call ringing now is hung up.

    ActionRefused when it is connected or already over.
    """
    deps = deps_of(app_or_deps)
    now = deps.now()

    def change(req: CallbackRequest) -> tuple[dict, dict]:
        values = {"status": S.CANCELLED.value, "outcome": "cancelled", "active_key": None,
                  "finished_at": now}
        return values, {}

    req, action = _act(deps, request_id, who, note, ActionKind.CANCEL, change)
    try:
        line.leave_callback(deps.redis, req.queue, req.id)
    except redis.RedisError:
        pass  # the dispatcher skips cancelled rows anyway
    if action.from_status == S.DIALING.value:
        hang_up_live_attempts(deps, req.id)
    return ActionDone(get_request(deps, req.id), action, f"Callback #{req.id} is cancelled: "
                      "we will not call this request again.")


def retry_now(app_or_deps, request_id: int, who: str, note: str = "") -> ActionDone:
    """Make a scheduled or failed request due now, or at the first moment the calling hours
    allow (the message says when). A failed request gets one more attempt.

    ActionRefused when it is in line, being dialled, connected, completed or cancelled.
    """
    deps = deps_of(app_or_deps)
    now = deps.now()

    def change(req: CallbackRequest) -> tuple[dict, dict]:
        at = earliest_call(deps, req.phone, req.queue, now)
        values = {"scheduled_for": at, **_revived(req)}
        return values, {"scheduled_for": at.isoformat(),
                        "was_scheduled_for": req.scheduled_for.isoformat()}

    req, action = _act(deps, request_id, who, note, ActionKind.RETRY, change)
    req = _hand_on(deps, req, action)
    if req.scheduled_for > now + dt.timedelta(seconds=1):
        message = (f"Callback #{req.id} cannot be called now: {_why_not(deps, req, now)}. "
                   f"It will be called at {local_time(deps, req.scheduled_for)}, the first "
                   "time the calling hours allow.")
    else:
        message = f"Callback #{req.id} is in line now: the next free agent calls it."
    return ActionDone(req, action, message + _unqueued(req))


def reschedule(app_or_deps, request_id: int, who: str, at: dt.datetime,
               note: str = "") -> ActionDone:
    """Call a request at `at` instead: a future time inside the calling hours for its number
    (the queue's opening hours and the customer's local calling window).

    TimeNotAllowed, naming the next allowed time, for a past time or one outside those
    hours; InvalidRequest for a naive or too distant time; ActionRefused when it is being
    dialled, connected, completed or cancelled.
    """
    deps = deps_of(app_or_deps)
    now = deps.now()
    if at.tzinfo is None:
        raise InvalidRequest("The new time needs a time zone.")
    at = at.astimezone(dt.UTC)
    days = int(deps.setting("CALLBACK_MAX_DAYS_AHEAD"))
    if at > now + dt.timedelta(days=days):
        raise InvalidRequest(f"{local_time(deps, at)} is too far ahead: a callback can be "
                             f"scheduled up to {days} days from now.")
    current = get_request(deps, request_id)
    _refuse_unless(current, ActionKind.RESCHEDULE)
    _check_time(deps, current, at, now)

    def change(req: CallbackRequest) -> tuple[dict, dict]:
        values = {"scheduled_for": at, **_revived(req)}
        return values, {"scheduled_for": at.isoformat(),
                        "was_scheduled_for": req.scheduled_for.isoformat()}

    req, action = _act(deps, request_id, who, note, ActionKind.RESCHEDULE, change)
    req = _hand_on(deps, req, action)
    return ActionDone(req, action, f"Callback #{req.id} will be called at "
                      f"{local_time(deps, req.scheduled_for)}." + _unqueued(req))


def local_time(deps_or_app, at: dt.datetime) -> str:
    """`at` in the flows' home time zone, as a supervisor reads it: 'Wed 11 Mar 2026, 12:00 EDT'."""
    deps = deps_of(deps_or_app)
    local = at.astimezone(ZoneInfo(home_zone(deps.flows())))
    return local.strftime("%a %d %b %Y, %H:%M %Z")


def _act(deps: Deps, request_id: int, who: str, note: str, kind: ActionKind,
         change) -> tuple[CallbackRequest, CallbackAction]:
    """Apply `change(req) -> (values, detail)` by compare-and-set on the status read, with the
    audit row in the same transaction; re-read and try again when the request moved meanwhile
    (the dispatcher and the jobs move requests at any moment)."""
    for _ in range(_TRIES):
        req = get_request(deps, request_id)
        _refuse_unless(req, kind)
        values, detail = change(req)
        if note:
            detail["note"] = note[:300]
        now = deps.now()
        # Every action hands the request on afresh: SQL first, then Redis (`_hand_on`), so a
        # Redis outage leaves it pending-enqueue for the sweeper, never lost.
        values.setdefault("status", S.PENDING_ENQUEUE.value)
        values.update(dispatched_at=None, updated_at=now)
        action = CallbackAction(request_id=req.id, at=now, who=who[:100], action=kind.value,
                                from_status=req.status, to_status=values["status"],
                                detail=detail)
        try:
            with deps.db.session() as session:
                moved = session.execute(
                    update(CallbackRequest)
                    .where(CallbackRequest.id == req.id, CallbackRequest.status == req.status,
                           CallbackRequest.attempts == req.attempts)
                    .values(**values)
                ).rowcount
                if moved:
                    session.add(action)
        except IntegrityError as exc:
            raise _number_taken(deps, req) from exc
        if moved:
            log.info("callback %s by %s", kind.value, who, extra={
                "callback_id": req.id, "from": req.status, "to": values["status"]})
            return req, action
    raise ActionRefused(f"Callback #{request_id} keeps changing while we act on it (it is "
                        f"{get_request(deps, request_id).status} now): reload and try again.")


def _hand_on(deps: Deps, req: CallbackRequest, action: CallbackAction) -> CallbackRequest:
    """Take the request out of line, hand it to Redis again (in line when due, else on RQ's
    schedule), and note in the audit row the status it reached."""
    if CallbackStatus(action.from_status) in IN_LINE:
        try:
            line.leave_callback(deps.redis, req.queue, req.id)
        except redis.RedisError:
            pass  # the dispatcher takes only waiting rows from the line: it drops this one
    enqueue_request(deps, req.id)  # False (Redis down): the sweeper enqueues it later
    fresh = get_request(deps, req.id)
    if fresh.status != action.to_status:
        with deps.db.session() as session:
            session.execute(update(CallbackAction).where(CallbackAction.id == action.id)
                            .values(to_status=fresh.status))
        action.to_status = fresh.status
    return fresh


def _revived(req: CallbackRequest) -> dict:
    """What a failed request needs to be called again: active once more (holding its number's
    one active slot), its error count cleared, and one more attempt."""
    if req.state is not S.FAILED:
        return {}
    return {"active_key": f"{req.phone}|{req.queue}", "outcome": None, "finished_at": None,
            "job_failures": 0,
            "max_attempts": max(req.max_attempts, req.customer_failures + 1)}


_REFUSALS = {
    S.WAITING: "it is already in line for the next free agent",
    S.DISPATCHED: "it is already being handed to an agent",
    S.DIALING: "it is being dialled right now; wait for this attempt to end",
    S.CONNECTED: "the customer is talking to an agent right now",
    S.COMPLETED: "it is completed (the customer was connected); they can ask for a new "
                 "callback",
    S.CANCELLED: "it was cancelled, and a cancelled request is never called again; the "
                 "customer can ask for a new callback",
    S.FAILED: "it has failed; use Retry now or Reschedule to call it again",
}
_VERBS = {ActionKind.CANCEL: "cancelled", ActionKind.RETRY: "retried",
          ActionKind.RESCHEDULE: "rescheduled"}


def _refuse_unless(req: CallbackRequest, kind: ActionKind) -> None:
    if can(kind, req.status):
        return
    reason = _REFUSALS.get(req.state, f"it is {req.status}")
    raise ActionRefused(f"Callback #{req.id} cannot be {_VERBS[kind]}: {reason}.")


def _number_taken(deps: Deps, req: CallbackRequest) -> ActionRefused:
    """A failed request cannot come back while a newer one for its number and queue is active."""
    with deps.db.session() as session:
        other = session.scalar(select(CallbackRequest.id).where(
            CallbackRequest.active_key == f"{req.phone}|{req.queue}"))
    return ActionRefused(f"Callback #{req.id} cannot be called again: this number already has "
                         f"an active callback request in the {req.queue} queue (#{other}). "
                         "Act on that one instead.")


def _check_time(deps: Deps, req: CallbackRequest, at: dt.datetime, now: dt.datetime) -> None:
    """TimeNotAllowed unless `at` is in the future and inside the calling hours for the number."""
    if at <= now:
        nxt = earliest_call(deps, req.phone, req.queue, now)
        raise TimeNotAllowed(f"{local_time(deps, at)} has passed (it is "
                             f"{local_time(deps, now)}). Choose a later time; the next "
                             f"allowed time is {local_time(deps, nxt)}.", nxt)
    window = rules.parse_window(deps.setting("CALLBACK_CALLING_WINDOW"))
    if rules.is_allowed(at, number=req.phone, hours=hours_of(deps, req.queue), window=window):
        return
    nxt = earliest_call(deps, req.phone, req.queue, at)
    raise TimeNotAllowed(f"We may not call {req.phone} at {local_time(deps, at)}: "
                         f"{_why_not(deps, req, at)}. The next allowed time is "
                         f"{local_time(deps, nxt)}.", nxt)


def _why_not(deps: Deps, req: CallbackRequest, at: dt.datetime) -> str:
    """Which calling rule `at` breaks, in a supervisor's words."""
    if not is_open(hours_of(deps, req.queue), at):
        return f"the {req.queue} queue is closed then"
    start, end = rules.parse_window(deps.setting("CALLBACK_CALLING_WINDOW"))
    zone = next((z for z in rules.zones_for_number(req.phone)
                 if not rules.in_window(at, (z,), (start, end))),
                rules.zones_for_number(req.phone)[0])
    local = at.astimezone(zone)
    until = "24:00" if end == dt.time.max else end.strftime("%H:%M")
    return (f"it is {local:%H:%M} for the customer ({zone.key}), and we call only between "
            f"{start:%H:%M} and {until} their time")


def _unqueued(req: CallbackRequest) -> str:
    if req.state is S.PENDING_ENQUEUE:
        return " (Redis is unreachable: it is saved and is queued as soon as Redis is back.)"
    return ""
