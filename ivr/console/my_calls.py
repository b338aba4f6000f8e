"""The agent's own calls ("My calls"): hold-queue callers they answered and callbacks they
took, newest first, including the call they are on and calls whose queue visit is not written
yet (found through the offers in their presence history, `screenpop.taken_offers`)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select

from callback.models import AttemptStatus, CallbackAttempt, CallbackRequest
from ivr.console.screenpop import (
    CALLBACK_CALL,
    QUEUE_CALL,
    RECENT,
    Offer,
    queue_pop,
    taken_offers,
)
from ivr.core.flows.naming import queue_label
from ivr.core.i18n.catalog import SOURCE_LANGUAGE
from ivr.infra.queue_models import QueueVisit
from ivr.infra.services import Services

TAKEN_ATTEMPTS = (AttemptStatus.ANSWERED.value, AttemptStatus.COMPLETED.value)
ANSWERED_BY_YOU = "answered by you"


@dataclass(frozen=True)
class CallSummary:
    """One line of "My calls"."""

    call_sid: str
    kind: str
    caller: str
    queue: str
    queue_label: str
    at: dt.datetime  # when it ended (or was answered, for a call still on)
    outcome: str
    waited_seconds: float | None = None


def agent_calls(services: Services, agent_id: int, offer: Offer | None,
                limit: int = RECENT) -> list[CallSummary]:
    """The agent's recent calls, newest first: hold-queue callers they answered (the one on
    the phone now included) and callbacks they took. `offer` is `current_offer`'s answer."""
    flows = services.flows.current().file
    out: dict[str, CallSummary] = {}
    with services.db.session() as session:
        visits = session.scalars(select(QueueVisit).where(QueueVisit.agent_id == agent_id)
                                 .order_by(QueueVisit.left_at.desc()).limit(limit)).all()
        attempts = session.execute(
            select(CallbackAttempt, CallbackRequest)
            .join(CallbackRequest, CallbackRequest.id == CallbackAttempt.request_id)
            .where(CallbackAttempt.agent_id == agent_id,
                   CallbackAttempt.status.in_(TAKEN_ATTEMPTS),
                   CallbackAttempt.call_sid.is_not(None))
            .order_by(CallbackAttempt.id.desc()).limit(limit)).all()
    for v in visits:  # a visit names an agent only when they answered it
        out.setdefault(v.call_sid, CallSummary(
            v.call_sid, QUEUE_CALL, v.caller or "", v.queue,
            queue_label(flows, v.queue, SOURCE_LANGUAGE, capitalized=True), v.left_at,
            ANSWERED_BY_YOU, v.wait_seconds))
    for attempt, req in attempts:
        at = attempt.ended_at or attempt.dialed_at or attempt.created_at
        out.setdefault(attempt.call_sid, CallSummary(
            attempt.call_sid, CALLBACK_CALL, req.phone, req.queue,
            queue_label(flows, req.queue, SOURCE_LANGUAGE, capitalized=True), at,
            "callback " + attempt.status.replace("-", " "),
            max(0.0, (at - req.first_asked_at).total_seconds())))
    for taken in taken_offers(services, agent_id, offer):
        if taken.caller_sid in out or taken.bridged_at is None:
            continue
        pop = queue_pop(services, taken.caller_sid, taken.queue, bridged_at=taken.bridged_at)
        out[taken.caller_sid] = CallSummary(
            taken.caller_sid, QUEUE_CALL, pop.caller, taken.queue, pop.queue_label,
            dt.datetime.fromtimestamp(taken.bridged_at, dt.UTC), ANSWERED_BY_YOU,
            pop.waited_seconds)
    return sorted(out.values(), key=lambda c: c.at, reverse=True)[:limit]


def last_call(calls: list[CallSummary], offer: Offer | None) -> CallSummary | None:
    """Of the agent's `calls`, the newest that is over (the one a wrap-up note is for)."""
    return next((c for c in calls if offer is None or c.call_sid != offer.call_sid), None)
