"""Helpers shared by the voice tests."""

from __future__ import annotations

from ivr.infra.agents import AgentConflict, add_agent, find_agent, set_presence
from ivr.infra.services import services_of
from tests.support.caller import SimulatedCall, Turn

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


def act(call: SimulatedCall, action: str) -> Turn:
    """One step of a flow walk: leave the voicemail or end the dial the call waits for, else
    wait out the Gather ("wait") or press `action`."""
    turn = call.turn
    if turn.waiting == "record":
        return call.record()
    if turn.waiting == "dial":
        return call.dial_result("no-answer")
    return call.wait() if action == "wait" else call.press(action)
