"""Agents: the roster (SQL), live presence (Redis) and what calls do to presence.

Shared by the hold queue and callbacks; nothing here knows Flask. `status` holds the
presence policy for call statuses.
"""

from ivr.infra.agents.fields import (
    AgentConflict,
    AgentError,
    AgentKind,
    AgentNotFound,
    InvalidAgent,
)
from ivr.infra.agents.orphans import UNKNOWN, release_unplaced_claims
from ivr.infra.agents.presence import AgentStatus, Presence, attach_call
from ivr.infra.agents.presence_log import restore_presence
from ivr.infra.agents.roster import (
    add_agent,
    agent_by_token,
    find_agent,
    get_agent,
    presence_history,
    roster,
    rotate_token,
    speaks,
    whisper_language,
)
from ivr.infra.agents.status import (
    RosterEntry,
    available_count,
    claim_agent,
    decline_agent,
    dial_address,
    get_presence,
    list_agents,
    on_agent_call_status,
    release_agent,
    release_finished_calls,
    remove_agent,
    set_presence,
    staffed_count,
    update_agent,
)

__all__ = [
    "AgentConflict",
    "AgentError",
    "AgentKind",
    "AgentNotFound",
    "AgentStatus",
    "InvalidAgent",
    "Presence",
    "RosterEntry",
    "UNKNOWN",
    "add_agent",
    "agent_by_token",
    "attach_call",
    "available_count",
    "claim_agent",
    "decline_agent",
    "dial_address",
    "find_agent",
    "get_agent",
    "get_presence",
    "list_agents",
    "on_agent_call_status",
    "presence_history",
    "release_agent",
    "release_finished_calls",
    "release_unplaced_claims",
    "remove_agent",
    "restore_presence",
    "roster",
    "rotate_token",
    "set_presence",
    "speaks",
    "staffed_count",
    "update_agent",
    "whisper_language",
]
