"""Presence history in SQL: recording automatic changes, and rebuilding Redis from it."""

from __future__ import annotations

import datetime as dt

import redis
from sqlalchemy import select

from ivr.infra.agents import presence
from ivr.infra.agents.models import Agent, AgentPresenceEvent
from ivr.infra.agents.presence import AgentStatus
from ivr.infra.db import Database, utcnow


def restore_presence(
    db: Database, r: redis.Redis, now: dt.datetime | None = None, *, force: bool = False
) -> int:
    """Rebuild Redis presence from the last recorded change of each agent; return how many.

    Runs once per Redis dataset (an embedded Valkey starts empty after every restart) unless
    `force`; agents without history stay offline.
    """
    if not presence.mark_restored(r) and not force:
        return 0
    now = now or utcnow()
    restored = 0
    with db.session() as session:
        agents = list(session.scalars(select(Agent).where(Agent.active.is_(True))))
        for agent in agents:
            last = session.scalar(
                select(AgentPresenceEvent)
                .where(AgentPresenceEvent.agent_id == agent.id)
                .order_by(AgentPresenceEvent.id.desc())
                .limit(1)
            )
            status = AgentStatus(last.to_status) if last else AgentStatus.OFFLINE
            until = None
            if status is AgentStatus.WRAP_UP:
                until = last.at + dt.timedelta(seconds=agent.wrap_up_seconds)
            moment = last.at if last else now
            presence.apply(
                r, agent.id, status, agent.queues, moment,
                wrap_up_until=until, idle_mode="now",
            )
            restored += status is not AgentStatus.OFFLINE
    record_promotions(db, presence.promote_expired(r, now))
    return restored


def record_promotions(db: Database, promoted: list[presence.Promotion]) -> None:
    """Write the wrap-ups that ended (promoted to available) into the presence history."""
    if not promoted:
        return
    with db.session() as session:
        for item in promoted:
            if session.get(Agent, item.agent_id) is None:
                continue
            session.add(
                AgentPresenceEvent(
                    agent_id=item.agent_id,
                    from_status=AgentStatus.WRAP_UP.value,
                    to_status=AgentStatus.AVAILABLE.value,
                    at=item.at,
                    reason="wrap-up ended",
                )
            )
