"""The agent roster (SQL) and presence (Redis): add, change, claim and release agents.

Every function takes the database and the Redis client explicitly; nothing here knows Flask.
Presence changes are made atomically in Redis (see `ivr.infra.agents.presence`) and then written to
`agent_presence_events`, so SQL holds the full history and can rebuild Redis after a flush.

Call status policy (Twilio statuses of the call placed to an agent):

| status | from busy | why |
| --- | --- | --- |
| initiated, ringing, in-progress | stays busy; never makes an agent busy | on a call; the claim |
| | | made them busy, so a late progress event after the end changes nothing |
| completed | wrap_up for the agent's `wrap_up_seconds`, then available | normal end |
| canceled | available, keeping the place in line it had | we hung up first, not their fault |
| no-answer, busy, failed | offline | nobody is there: ringing them again would cost every |
| | | later caller a ring timeout (the "redirect on no answer" rule of contact centres) |
| declined at the whisper | available at the back of the line | present but passed this one |

Only an agent who is busy is moved by a call status, and when a call SID is known for the agent
a status for another call is ignored, so late or repeated callbacks cannot undo a newer change.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import redis
from sqlalchemy.exc import IntegrityError

from ivr.infra import live
from ivr.infra.agents import presence
from ivr.infra.agents.fields import (
    AgentConflict,
    AgentNotFound,
    InvalidAgent,
    check_name,
    check_status,
    check_wrap_up,
    normalize_address,
    normalize_languages,
    normalize_queues,
)
from ivr.infra.agents.models import Agent, AgentPresenceEvent
from ivr.infra.agents.presence import AgentStatus, Presence
from ivr.infra.agents.presence_log import record_promotions
from ivr.infra.agents.roster import (
    get_agent,
    roster,
)
from ivr.infra.db import Database, utcnow
from ivr.infra.telephony import FINAL_STATUSES


@dataclass(frozen=True)
class RosterEntry:
    """An agent together with its live presence."""

    agent: Agent
    presence: Presence

    def to_dict(self) -> dict:
        """Roster fields plus a `presence` object."""
        return {**self.agent.to_dict(), "presence": self.presence.to_dict()}


# --- roster ----------------------------------------------------------------------------------


def update_agent(
    db: Database,
    r: redis.Redis,
    agent_id: int,
    *,
    name: str | None = None,
    kind: str | None = None,
    address: str | None = None,
    queues: Iterable[str] | str | None = None,
    wrap_up_seconds: int | None = None,
    active: bool | None = None,
    languages: Iterable[str] | str | None = None,
    known_languages: Iterable[str] | None = None,
    now: dt.datetime | None = None,
) -> Agent:
    """Change roster fields; new queues take effect at once, deactivating sets offline.

    `languages` replaces the list (an empty one clears it), checked against `known_languages`.
    """
    now = now or utcnow()
    with db.session() as session:
        agent = session.get(Agent, agent_id)
        if agent is None:
            raise AgentNotFound(f"no agent with id {agent_id}")
        if name is not None:
            agent.name = check_name(name)
        if kind is not None or address is not None:
            new_kind, agent.address = normalize_address(
                kind or agent.kind, agent.address if address is None else address
            )
            agent.kind = new_kind.value
        if queues is not None:
            agent.queues = normalize_queues(queues)
        if wrap_up_seconds is not None:
            agent.wrap_up_seconds = check_wrap_up(wrap_up_seconds)
        if languages is not None:
            agent.languages = normalize_languages(languages, known_languages)
        if active is not None:
            agent.active = bool(active)
        try:
            session.flush()
        except IntegrityError:
            raise AgentConflict(
                f"another agent already uses {agent.kind} {agent.address}"
            ) from None
    current = get_presence(db, r, agent.id, now)
    if not agent.active:
        _change(db, r, agent, AgentStatus.OFFLINE, now, reason="deactivated")
    else:
        # Re-index under the (possibly new) queues, keeping status and place in line.
        presence.apply(
            r,
            agent.id,
            current.status,
            agent.queues,
            now,
            wrap_up_until=current.wrap_up_until,
            expect=(current.status,),
        )
    return agent


def remove_agent(db: Database, r: redis.Redis, agent_id: int) -> None:
    """Delete an agent and its presence history (use `active=False` to keep the history)."""
    agent = get_agent(db, agent_id)
    presence.forget(r, agent.id)
    with db.session() as session:
        row = session.get(Agent, agent.id)
        if row is not None:
            session.delete(row)


def list_agents(
    db: Database, r: redis.Redis, now: dt.datetime | None = None, *, queue: str | None = None
) -> list[RosterEntry]:
    """Every agent (or those serving `queue`) with live presence, ordered by id."""
    now = now or utcnow()
    record_promotions(db, presence.promote_expired(r, now))
    agents = roster(db, queue=queue)
    states = presence.read(r, [a.id for a in agents], now)
    return [RosterEntry(a, states[a.id]) for a in agents]


# --- presence --------------------------------------------------------------------------------


def get_presence(
    db: Database, r: redis.Redis, agent_id: int, now: dt.datetime | None = None
) -> Presence:
    """An agent's presence now (ended wrap-ups are promoted and recorded first)."""
    now = now or utcnow()
    record_promotions(db, presence.promote_expired(r, now))
    return presence.read(r, [agent_id], now)[agent_id]


def set_presence(
    db: Database,
    r: redis.Redis,
    agent_id: int,
    status: AgentStatus | str,
    *,
    reason: str = "admin",
    now: dt.datetime | None = None,
) -> Presence:
    """Set an agent's presence by hand (admin, CLI or the agent)."""
    target = check_status(status)
    agent = get_agent(db, agent_id)
    if not agent.active and target is not AgentStatus.OFFLINE:
        raise InvalidAgent(f"agent {agent.id} is deactivated: activate it before going {target}")
    return _change(db, r, agent, target, now or utcnow(), reason=reason)


def claim_agent(db: Database, r: redis.Redis, queue: str, now: dt.datetime,
                *, among: Iterable[int] | None = None) -> Agent | None:
    """Take the longest-idle available agent of `queue` and mark it busy; None when nobody is free.

    With `among`, only one of those agents may be taken (the ones who speak a caller's
    language). Atomic across processes: two claims never return the same agent.
    """
    allowed = list(among) if among is not None else None
    while True:
        agent_id, promoted = presence.claim(r, queue, now, allowed)
        record_promotions(db, promoted)
        if agent_id is None:
            return None
        with db.session() as session:
            agent = session.get(Agent, agent_id)
            if agent is None:
                # Deleted from SQL while Redis still listed it: drop the ghost and try again.
                presence.forget(r, agent_id)
                continue
            session.add(
                AgentPresenceEvent(
                    agent_id=agent_id,
                    from_status=AgentStatus.AVAILABLE.value,
                    to_status=AgentStatus.BUSY.value,
                    at=now,
                    reason=f"{CLAIM_REASON}{queue}",
                )
            )
        return agent


CLAIM_REASON = "claimed for queue "  # how a claim is recorded


def unclaim_agent(db: Database, r: redis.Redis, agent: Agent, now: dt.datetime, *,
                  reason: str) -> Presence:
    """A busy agent back to available, at the place in line they had when claimed."""
    return _change(db, r, agent, AgentStatus.AVAILABLE, now, reason=reason, idle_mode="prev",
                   expect=(AgentStatus.BUSY,))


def release_agent(
    db: Database,
    r: redis.Redis,
    agent_id: int,
    *,
    now: dt.datetime | None = None,
    reason: str = "call ended",
    call_sid: str | None = None,
) -> Presence:
    """After a call: wrap-up for the agent's configured time (available at once when it is 0)."""
    now = now or utcnow()
    agent = get_agent(db, agent_id)
    if agent.wrap_up_seconds <= 0:
        target, until = AgentStatus.AVAILABLE, None
    else:
        target, until = AgentStatus.WRAP_UP, now + dt.timedelta(seconds=agent.wrap_up_seconds)
    return _change(
        db, r, agent, target, now, reason=reason, wrap_up_until=until,
        idle_mode="now", expect=(AgentStatus.BUSY,), call_sid=call_sid,
    )


def decline_agent(
    db: Database,
    r: redis.Redis,
    agent_id: int,
    *,
    now: dt.datetime | None = None,
    call_sid: str | None = None,
) -> Presence:
    """The agent refused the call at the whisper: available again, at the back of the line."""
    return _change(
        db, r, get_agent(db, agent_id), AgentStatus.AVAILABLE, now or utcnow(),
        reason="declined the call", idle_mode="now", expect=(AgentStatus.BUSY,),
        call_sid=call_sid,
    )


CALL_STATUSES = (
    "queued", "initiated", "ringing", "in-progress", "answered",
    "completed", "busy", "no-answer", "failed", "canceled",
)


def on_agent_call_status(
    db: Database,
    r: redis.Redis,
    agent_id: int,
    call_status: str,
    *,
    call_sid: str | None = None,
    now: dt.datetime | None = None,
) -> Presence:
    """Move an agent's presence after a Twilio status of the call placed to them (module doc)."""
    now = now or utcnow()
    status = (call_status or "").strip().lower()
    if status not in CALL_STATUSES:
        raise InvalidAgent(f"unknown call status {call_status!r}: expected one of "
                           + ", ".join(CALL_STATUSES))
    agent = get_agent(db, agent_id)
    reason = f"call {status}"
    if status in ("queued", "initiated", "ringing", "in-progress", "answered"):
        return _change(
            db, r, agent, AgentStatus.BUSY, now, reason=reason,
            expect=(AgentStatus.BUSY,), call_sid=call_sid, set_call_sid=call_sid,
        )
    if status == "completed":
        return release_agent(db, r, agent_id, now=now, reason=reason, call_sid=call_sid)
    if status == "canceled":
        return _change(
            db, r, agent, AgentStatus.AVAILABLE, now, reason=reason, idle_mode="prev",
            expect=(AgentStatus.BUSY,), call_sid=call_sid,
        )
    return _change(
        db, r, agent, AgentStatus.OFFLINE, now, reason=f"missed call ({status})",
        expect=(AgentStatus.BUSY,), call_sid=call_sid,
    )


def release_finished_calls(
    db: Database,
    r: redis.Redis,
    call_status: Callable[[str], str | None],
    now: dt.datetime,
    *,
    older_than: dt.timedelta,
) -> list[int]:
    """Agents busy on a call for longer than `older_than` whose call is over by the provider's
    word (`call_status(sid)`: its status, None when it knows no such call) are moved as that
    final status would have moved them. The status callback that should have done it was
    lost (a Redis stall answers it 5xx, and Twilio does not send it again). Returns their ids.
    """
    moved = []
    for entry in list_agents(db, r, now):
        p = entry.presence
        if (p.status is not AgentStatus.BUSY or not p.call_sid or p.since is None
                or now - p.since < older_than):
            continue
        # Asked about each call at most once per `older_than`: a long conversation is fine.
        if not r.set(CHECKED_KEY.format(sid=p.call_sid), 1, nx=True,
                     ex=max(1, int(older_than.total_seconds()))):
            continue
        status = call_status(p.call_sid)
        if status is not None and status not in FINAL_STATUSES:
            continue
        # Only if the agent is still busy on that very call: one claimed meanwhile (between a
        # claim and its call being attached) must not be freed by the old call's end.
        now_on = presence.read(r, [entry.agent.id], now)[entry.agent.id]
        if now_on.status is not AgentStatus.BUSY or now_on.call_sid != p.call_sid:
            continue
        on_agent_call_status(db, r, entry.agent.id, status or "completed",
                             call_sid=p.call_sid, now=now)
        moved.append(entry.agent.id)
    return moved


CHECKED_KEY = "ivr:agents:checked:{sid}"  # asked the provider about this call lately


def staffed_count(r: redis.Redis, queue: str, now: dt.datetime) -> int:
    """Agents serving `queue` who are not offline (available, busy or wrapping up)."""
    return presence.counts(r, queue, now)[0]


def dial_address(agent: Agent) -> str:
    """What to put in `To` for an agent: a number, a SIP URI or a Twilio Client identity."""
    if agent.kind == "client" and not agent.address.startswith("client:"):
        return f"client:{agent.address}"
    return agent.address


def available_count(r: redis.Redis, queue: str, now: dt.datetime) -> int:
    """Agents serving `queue` who could take a call now (including ended wrap-ups)."""
    return presence.counts(r, queue, now)[1]


def _change(
    db: Database,
    r: redis.Redis,
    agent: Agent,
    target: AgentStatus,
    now: dt.datetime,
    *,
    reason: str,
    wrap_up_until: dt.datetime | None = None,
    idle_mode: str = "keep",
    expect: tuple[AgentStatus, ...] = (),
    call_sid: str | None = None,
    set_call_sid: str | None = None,
) -> Presence:
    if target is AgentStatus.WRAP_UP and wrap_up_until is None:
        wrap_up_until = now + dt.timedelta(seconds=agent.wrap_up_seconds)
    result = presence.apply(
        r, agent.id, target, list(agent.queues or []), now,
        idle_mode=idle_mode, wrap_up_until=wrap_up_until, expect=expect,
        call_sid_guard=call_sid, set_call_sid=set_call_sid,
    )
    record_promotions(db, result.promoted)
    if result.applied and result.previous is not target:
        with db.session() as session:
            session.add(
                AgentPresenceEvent(
                    agent_id=agent.id,
                    from_status=result.previous.value,
                    to_status=target.value,
                    at=now,
                    reason=reason[:200],
                    call_sid=call_sid,
                )
            )
        # Wherever it came from (a webhook, the CLI, a job), open consoles show it.
        live.changed(r, "presence", agent_id=agent.id, status=target.value)
    return presence.read(r, [agent.id], now)[agent.id]
