"""Callback requests: take one (web or phone), put it in line or on the schedule, report, cancel.

The order is always SQL first, then Redis: a request is committed before anything is enqueued,
so a Redis outage leaves it `pending-enqueue` for the sweeper, never lost.
"""

from __future__ import annotations

import datetime as dt
import hmac
import logging
import re
import secrets
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import redis
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from callback import limits, numbers, rules
from callback.consent import PHONE_CONSENT, Consent
from callback.deps import Deps, deps_of
from callback.errors import (
    BadToken,
    CallbackError,
    InvalidRequest,
    NumberRefused,
    RateLimited,
    TokenRequired,
)
from callback.languages import page_language, requested_language, web_text
from callback.lifecycle import hang_up_live_attempts
from callback.models import ACTIVE_STATUSES, CallbackHandle, CallbackRequest, CallbackStatus
from callback.schedule import earliest_call, enqueue_request, get_request, hours_of, queue_name
from callback.waits import estimated_wait, position_of
from ivr.core.engine.types import CallbackOutcome
from ivr.core.hours import is_open
from ivr.infra import line
from ivr.infra.tokens import hash_token, new_token

log = logging.getLogger(__name__)


@dataclass
class Created:
    """The result of asking for a callback: the request, and the id and token the asker holds
    (the request's own, or a handle's when the number was already waiting)."""

    request: CallbackRequest
    public_id: str
    token: str
    merged: bool  # for logs and tests: never in an answer, which would tell strangers


def mask_number(e164: str) -> str:
    """'+12125551234' -> '+*******1234': enough to recognise, not to harvest."""
    return e164[:1] + "*" * max(0, len(e164) - 5) + e164[-4:]


def create_request(
    app_or_deps,
    *,
    phone: str,
    name: str = "",
    reason: str = "",
    queue: str | None = None,
    preferred_time: dt.datetime | None = None,
    client_address: str | None = None,
    consent: Consent | None = None,
    source: str = "web",
    region: str | None = None,
    context: dict | None = None,
    first_asked_at: dt.datetime | None = None,
    language: str | None = None,
) -> Created:
    """Check, save, then schedule or queue a callback; a number already waiting gets a handle
    on its request instead (one call, never two). `language` is a flow language code (the
    flows' default when None); InvalidRequest for one the flows do not define."""
    deps = deps_of(app_or_deps)
    now = deps.now()
    language = requested_language(deps, language)
    number = numbers.normalize_number(phone, deps.guard, region=region)
    if number in _own_numbers(deps):
        raise NumberRefused("That is our own number: give the number we should call you on.")
    queue = queue_name(deps, queue)
    _check_limits(deps, number, client_address, now)
    existing = _active_for(deps, number, queue)
    if existing is not None:
        return _handle_on(deps, existing, client_address, consent, now)
    if preferred_time is not None and preferred_time.tzinfo is None:
        raise InvalidRequest("preferred_time needs a time zone, e.g. 2026-05-04T15:00:00-04:00")
    days = int(deps.setting("CALLBACK_MAX_DAYS_AHEAD"))
    if preferred_time is not None and preferred_time > now + dt.timedelta(days=days):
        raise InvalidRequest(f"preferred_time is too far ahead: we can schedule a callback up "
                             f"to {days} days from now.")
    wanted = max(now, preferred_time) if preferred_time else now
    token = new_token()
    req = CallbackRequest(
        public_id=secrets.token_hex(8),
        phone=number,
        active_key=f"{number}|{queue}",
        name=(name or "").strip()[:100],
        reason=(reason or "").strip()[:500],
        queue=queue,
        source=source,
        context=context or {},
        language=language,
        status=CallbackStatus.PENDING_ENQUEUE.value,
        first_asked_at=first_asked_at or now,
        preferred_time=preferred_time,
        scheduled_for=earliest_call(deps, number, queue, wanted),
        max_attempts=int(deps.setting("CALLBACK_MAX_ATTEMPTS")),
        cancel_token_hash=hash_token(token),
        client_address=client_address,
        consent_at=now if consent else None,
        consent_address=client_address if consent else None,
        consent_text=consent.text if consent else None,
        consent_version=consent.version if consent else None,
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
        return _handle_on(deps, existing, client_address, consent, now)
    log.info("callback requested", extra={"callback_id": req.id, "source": source,
                                          "scheduled_for": req.scheduled_for.isoformat()})
    enqueue_request(deps, req.id)
    return Created(get_request(deps, req.id), req.public_id, token, False)


def _own_numbers(deps: Deps) -> set[str]:
    """The numbers callers dial us on, and the one we call from: never called back."""
    own = set(deps.flows().numbers)
    sender = str(deps.config.get("TWILIO_FROM_NUMBER") or "")
    if sender:
        own.add(sender)
    return own


def _handle_on(deps: Deps, req: CallbackRequest, address: str | None, consent: Consent | None,
               now: dt.datetime) -> Created:
    """A new id and token on a waiting request, for someone who asked for its number again."""
    token = new_token()
    handle = CallbackHandle(public_id=secrets.token_hex(8), request_id=req.id,
                            token_hash=hash_token(token), client_address=address,
                            consent_at=now if consent else None,
                            consent_version=consent.version if consent else None,
                            created_at=now)
    with deps.db.session() as session:
        session.add(handle)
    log.info("callback asked again", extra={"callback_id": req.id})
    return Created(req, handle.public_id, token, True)


_PUBLIC_ID = re.compile(r"[0-9a-f]{16}")  # secrets.token_hex(8), for requests and handles


def open_request(app_or_deps, public_id: str, token: str) -> CallbackRequest:
    """The request that `public_id` (its own id or a handle's) and its token open.

    TokenRequired without a token; BadToken for a wrong token or an unknown id alike, so an
    answer never says whether an id exists.
    """
    deps = deps_of(app_or_deps)
    if not token:
        raise TokenRequired("Send the token you were given when you asked, in the "
                            "X-Callback-Token header.")
    if not _PUBLIC_ID.fullmatch(public_id or ""):  # what we hand out: never a query for more
        raise BadToken("This link is not valid for a callback request: check it, or ask again.")
    digest = hash_token(token)
    with deps.db.session() as session:
        req = session.scalar(select(CallbackRequest).where(
            CallbackRequest.public_id == public_id))
        expected = req.cancel_token_hash if req is not None else None
        if req is None:
            handle = session.scalar(select(CallbackHandle).where(
                CallbackHandle.public_id == public_id))
            if handle is not None:
                expected = handle.token_hash
                req = session.get(CallbackRequest, handle.request_id)
    if req is None or not hmac.compare_digest(expected or "", digest):
        raise BadToken("This link is not valid for a callback request: check it, or ask again.")
    return req


def _check_limits(deps: Deps, number: str, address: str | None, now: dt.datetime) -> None:
    try:
        limits.check_request_limits(deps.redis, deps.guard, phone=number, address=address)
        if limits.dials_left_today(deps.redis, deps.guard, now) <= 0:
            raise RateLimited("We have reached today's limit of callbacks. Please call us.",
                              retry_after=limits.seconds_to_next_utc_day(now))
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


def describe(app_or_deps, req: CallbackRequest, public_id: str | None = None) -> dict[str, Any]:
    """The view of a request for a token holder: status, place in line, expected wait,
    schedule; `public_id` is the id they hold (a handle's, or the request's own)."""
    deps = deps_of(app_or_deps)
    now = deps.now()
    position = position_of(deps, req)
    wait = estimated_wait(deps, req, position, now)
    return {
        "id": public_id or req.public_id,
        "status": req.status,
        "position": position,
        "estimated_wait_seconds": wait,
        "scheduled_for": req.scheduled_for.isoformat() if req.scheduled_for else None,
        "queue": req.queue,
        "language": req.language,
        "phone": mask_number(req.phone),
        "attempts": req.attempts,
        "outcome": req.outcome,
        "scheduled_because": _scheduled_because(deps, req),
        "problem": _problem(deps, req),
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


def _problem(deps: Deps, req: CallbackRequest) -> str | None:
    """What went wrong on our side, in words for the person waiting, in their language
    (details are logged)."""
    if not req.job_failures or (req.state.is_final and req.outcome != "error"):
        return None
    language = page_language(deps, req.language)
    if req.outcome == "error":
        key = "web.problem.failed"
    else:
        key = "web.problem.retrying_one" if req.job_failures == 1 else "web.problem.retrying"
    return web_text(deps, language, key, failures=req.job_failures)


def cancel(app_or_deps, public_id: str, token: str) -> CallbackRequest:
    """Cancel with a token given at creation (the request's or a handle's: both asked for
    that number); hangs up a call in progress."""
    deps = deps_of(app_or_deps)
    req = open_request(deps, public_id, token)
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
        try:
            line.leave_callback(deps.redis, req.queue, req.id)
        except redis.RedisError:
            pass  # the dispatcher skips cancelled rows anyway
        hang_up_live_attempts(deps, req.id)
    return get_request(deps, req.id)


def request_from_call(app_or_deps, *, number: str, caller: str, queue: str, call_sid: str,
                      context: dict, language: str | None = None) -> CallbackOutcome:
    """A caller on the phone asked to be called back (keypad digits or E.164), in the
    call's `language`.

    A caller who was holding keeps their place: the line remembers when they first asked.
    """
    deps = deps_of(app_or_deps)
    region = numbers.region_of(caller) if caller else None
    try:
        queue = queue_name(deps, queue or None)
        created = create_request(
            deps, phone=number, queue=queue, source="phone", region=region,
            context={**context, "call_sid": call_sid},
            first_asked_at=_place_kept(deps, queue, call_sid),
            client_address=None, reason=str(context.get("reason", ""))[:500],
            consent=Consent.of(PHONE_CONSENT),
            # The call's language, as long as the flows still define it (they may have been
            # edited during the call): a caller is never refused a callback over it.
            language=page_language(deps, language),
        )
    except CallbackError as exc:
        return CallbackOutcome(accepted=False, reason=str(exc))
    view = describe(deps, created.request)
    if caller and call_sid:
        try:  # they leave the live line: the callback holds their place now
            line.leave_caller(deps.redis, created.request.queue, call_sid)
        except redis.RedisError:
            pass
    return CallbackOutcome(accepted=True, number=created.request.phone,
                           position=view["position"],
                           estimated_wait_seconds=view["estimated_wait_seconds"],
                           callback_at=_local_time(deps, created.request))


def _local_time(deps: Deps, req: CallbackRequest) -> dt.datetime | None:
    """When the call is booked for, in the customer's own time zone when their number has
    one, else the queue's: what the caller is told ("after 9 AM tomorrow")."""
    if req.scheduled_for is None:
        return None
    zones = rules.zones_for_number(req.phone)
    hours = hours_of(deps, req.queue)
    zone = zones[0] if len(zones) == 1 else ZoneInfo(hours.timezone) if hours else zones[0]
    return req.scheduled_for.astimezone(zone)


def _place_kept(deps: Deps, queue: str, call_sid: str) -> dt.datetime:
    """When a holding caller first asked (their place in line), else now; never later."""
    now = deps.now()
    if not call_sid:
        return now
    try:
        first = line.kept_place(deps.redis, queue, call_sid)
    except redis.RedisError:
        first = None
    return now if first is None else min(now, dt.datetime.fromtimestamp(first, dt.UTC))
