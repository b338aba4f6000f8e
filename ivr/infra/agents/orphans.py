"""Claims that never became a call: an agent made busy for a call nobody placed.

A claim marks an agent busy in Redis before the call to them (or to the customer, for a
callback) is placed, and the call's SID is attached once the provider answers. Between the
two, the process can die (a worker SIGKILLed mid-job, as the OOM killer does), or the
provider's answer can be lost with no way to tell whether it acted. The agent is then busy
with no call, and nothing would ever free them: no call means no status callback, and the
provider check for lost final statuses (`release_finished_calls`) needs a call to ask about.

The sweeper therefore looks at agents busy with no call for longer than `older_than`:
- one who made themself busy by hand (the last recorded change says so) is left alone;
- one for whom the provider has a live call placed since the claim gets it attached (its
  status callbacks then move them as always);
- otherwise they are made available again, keeping their place in line, and the change is
  recorded ("claimed, but no call reached them").
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable

import redis
from sqlalchemy import select

from ivr.infra.agents import presence
from ivr.infra.agents.models import Agent, AgentPresenceEvent
from ivr.infra.agents.presence import AgentStatus, attach_call
from ivr.infra.agents.status import CLAIM_REASON, list_agents, unclaim_agent
from ivr.infra.db import Database

log = logging.getLogger(__name__)

CHECKED_KEY = "ivr:agents:claim-checked:{agent}:{since}:{window}"  # asked the provider
# What a lookup answers when the provider could not say (asked again in the next window).
UNKNOWN = object()

# The provider's live call to an agent placed since a moment: its SID, None, or UNKNOWN.
LiveCall = Callable[[Agent, dt.datetime], "str | None | object"]


def release_unplaced_claims(db: Database, r: redis.Redis, live_call: LiveCall,
                            now: dt.datetime, *, older_than: dt.timedelta) -> list[int]:
    """Free agents busy for longer than `older_than` with no call, when the provider has no
    live call to them since they were claimed (module doc). Returns their ids."""
    freed = []
    for entry in list_agents(db, r, now):
        p = entry.presence
        if (p.status is not AgentStatus.BUSY or p.call_sid or p.since is None
                or now - p.since < older_than or _busy_by_hand(db, entry.agent.id)):
            continue
        # Asked at most once per `older_than` (the window since the claim is in the key).
        key = CHECKED_KEY.format(agent=entry.agent.id, since=p.since.timestamp(),
                                 window=int((now - p.since) / older_than))
        if not r.set(key, 1, nx=True, ex=max(1, int(2 * older_than.total_seconds()))):
            continue
        found = live_call(entry.agent, p.since)
        if found is UNKNOWN:
            continue
        if isinstance(found, str) and found:
            attach_call(r, entry.agent.id, found)
            log.warning("a claimed agent's call had been placed: attached", extra={
                "agent_id": entry.agent.id, "call_sid": found})
            continue
        now_on = presence.read(r, [entry.agent.id], now)[entry.agent.id]
        if now_on.status is not AgentStatus.BUSY or now_on.call_sid or now_on.since != p.since:
            continue  # claimed again, or a call attached, meanwhile
        unclaim_agent(db, r, entry.agent, now, reason="claimed, but no call reached them")
        log.warning("an agent claimed for a call that was never placed is available again",
                    extra={"agent_id": entry.agent.id, "busy_since": p.since.isoformat()})
        freed.append(entry.agent.id)
    return freed


def _busy_by_hand(db: Database, agent_id: int) -> bool:
    """Whether the agent's last recorded change made them busy by hand (admin, CLI, console).
    A claim records "claimed for queue ..."; a claim whose process died before recording
    leaves a history that does not explain the busy at all."""
    with db.session() as session:
        last = session.scalars(select(AgentPresenceEvent)
                               .where(AgentPresenceEvent.agent_id == agent_id)
                               .order_by(AgentPresenceEvent.id.desc()).limit(1)).first()
    return (last is not None and last.to_status == AgentStatus.BUSY.value
            and not last.reason.startswith(CLAIM_REASON))
