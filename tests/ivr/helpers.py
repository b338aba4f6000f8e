"""Helpers shared by the voice tests."""

from __future__ import annotations

from ivr.infra.agents import AgentConflict, add_agent, find_agent, set_presence
from ivr.infra.services import services_of

AGENT_PHONE = "+14155550100"


def staff(app, queues: list[str], *, status: str = "available") -> int:
    """Put one agent serving `queues` on duty (creating it once); returns its id."""
    db, r = services_of(app).db, services_of(app).redis
    try:
        agent, _token = add_agent(db, r, name="Dana", kind="phone", address=AGENT_PHONE,
                                  queues=queues)
    except AgentConflict:
        agent = find_agent(db, AGENT_PHONE)
    set_presence(db, r, agent.id, status)
    return agent.id
