"""Write a finished hold-queue visit to SQL: the visit, its events, and each estimate scored.

An estimate is scored against the remaining wait that actually followed it, but only when the
caller was answered: for a caller who hung up or chose a callback we never learn when they
would have been answered (a censored observation), so their estimates stay unscored.
"""

from __future__ import annotations

import datetime as dt
import logging

from ivr.hold.holding import Holder
from ivr.infra.db import Database
from ivr.infra.queue_models import QueueEvent, QueueVisit, WaitEstimate

log = logging.getLogger(__name__)

ANSWERED = "answered"
ABANDONED = "abandoned"
CALLBACK = "callback"
LEFT = "left"

# Twilio's QueueResult for an <Enqueue> action -> our outcome.
OUTCOMES = {
    "bridged": ANSWERED,
    "redirected-from-bridged": ANSWERED,
    "bridging-in-process": ANSWERED,
    "hangup": ABANDONED,
    "leave": LEFT,
    "redirected": LEFT,
    "queue-full": LEFT,
    "system-shutdown": LEFT,
    "error": LEFT,
}


def _at(epoch: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(epoch, dt.UTC)


def record_visit(
    db: Database,
    holder: Holder,
    items: list[dict],
    *,
    outcome: str,
    queue_result: str | None,
    left_at: dt.datetime,
    wait_seconds: float,
    agent_id: int | None = None,
) -> int:
    """Insert the visit with its events and scored estimates; return the visit id."""
    visit = QueueVisit(
        call_sid=holder.call_sid, queue=holder.queue, caller=holder.caller or None,
        joined_at=_at(holder.joined_at), left_at=left_at, wait_seconds=max(0.0, wait_seconds),
        outcome=outcome, queue_result=queue_result, agent_id=agent_id,
        announcements=holder.announced,
    )
    for item in items:
        if item.get("kind") == "estimate":
            visit.estimates.append(_estimate(item, outcome, wait_seconds))
        else:
            visit.events.append(QueueEvent(
                kind=str(item.get("kind", ""))[:24], at=_at(float(item["at"])),
                elapsed_seconds=item.get("elapsed"), position=item.get("position"),
                detail=item.get("detail"),
            ))
    answered_before = any(i.get("kind") == "answer" for i in items)
    final = {ANSWERED: "call_end" if answered_before else "answer", ABANDONED: "abandon",
             CALLBACK: "callback_chosen"}.get(outcome, "leave")
    visit.events.append(QueueEvent(
        kind=final,
        at=left_at, elapsed_seconds=wait_seconds,
        detail={"queue_result": queue_result, "agent_id": agent_id},
    ))
    with db.session() as session:
        session.add(visit)
        session.flush()
        return visit.id


def _estimate(item: dict, outcome: str, wait_seconds: float) -> WaitEstimate:
    row = WaitEstimate(
        given_at=_at(float(item["at"])), elapsed_seconds=float(item["elapsed"]),
        position=int(item["position"]), agents=int(item["agents"]),
        expected_seconds=float(item["expected"]), upper_seconds=float(item["upper"]),
        band=str(item["band"]), band_lower_seconds=float(item["band_lower"]),
        band_upper_seconds=item.get("band_upper"), is_overdue=bool(item.get("overdue")),
        is_cold_start=bool(item.get("cold")), explanation=str(item.get("explanation", "")),
    )
    if outcome == ANSWERED:
        actual = max(0.0, wait_seconds - row.elapsed_seconds)
        row.actual_seconds = actual
        upper = row.band_upper_seconds
        row.within_band = actual >= row.band_lower_seconds if upper is None else actual <= upper
    return row
