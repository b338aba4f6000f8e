"""The agent roster in SQL: create, look up and authenticate agents (no presence logic)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

import redis
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from ivr.infra.agents import presence
from ivr.infra.agents.fields import (
    AgentConflict,
    AgentNotFound,
    check_name,
    check_wrap_up,
    normalize_address,
    normalize_languages,
    normalize_queues,
)
from ivr.infra.agents.models import Agent, AgentPresenceEvent
from ivr.infra.agents.presence import AgentStatus
from ivr.infra.db import Database, utcnow
from ivr.infra.tokens import hash_token, new_token


def add_agent(
    db: Database,
    r: redis.Redis | None,
    *,
    name: str,
    kind: str,
    address: str,
    queues: Iterable[str] | str,
    wrap_up_seconds: int = 30,
    active: bool = True,
    languages: Iterable[str] | str | None = None,
    known_languages: Iterable[str] | None = None,
    now: dt.datetime | None = None,
) -> tuple[Agent, str]:
    """Create an agent (offline) and return it with its self-service token, shown only now.

    `languages` are checked against `known_languages` (the flows' languages) when given.
    """
    agent_kind, canonical = normalize_address(kind, address)
    token = new_token()
    agent = Agent(
        name=check_name(name),
        kind=agent_kind.value,
        address=canonical,
        queues=normalize_queues(queues),
        languages=normalize_languages(languages, known_languages),
        wrap_up_seconds=check_wrap_up(wrap_up_seconds),
        active=bool(active),
        token_hash=hash_token(token),
        created_at=now or utcnow(),
    )
    try:
        with db.session() as session:
            session.add(agent)
    except IntegrityError:
        raise AgentConflict(f"another agent already uses {agent_kind.value} {canonical}") from None
    if r is not None:  # without Redis (CLI on a laptop) offline is what an unknown agent reads as
        presence.apply(r, agent.id, AgentStatus.OFFLINE, agent.queues, now or utcnow())
    return agent, token


def get_agent(db: Database, agent_id: int) -> Agent:
    """The agent with this id, or AgentNotFound."""
    with db.session() as session:
        agent = session.get(Agent, agent_id)
    if agent is None:
        raise AgentNotFound(f"no agent with id {agent_id}")
    return agent


def find_agent(db: Database, ref: str | int) -> Agent:
    """An agent by id, exact name or address (for the CLI)."""
    text = str(ref).strip()
    with db.session() as session:
        if text.isdigit() and (agent := session.get(Agent, int(text))) is not None:
            return agent
        rows = session.scalars(
            select(Agent).where((Agent.name == text) | (Agent.address == text))
        ).all()
    if len(rows) > 1:
        raise AgentNotFound(f"{text!r} matches {len(rows)} agents: use the id")
    if not rows:
        raise AgentNotFound(f"no agent with id, name or address {text!r}")
    return rows[0]


def agent_by_token(db: Database, token: str) -> Agent | None:
    """The active agent holding this self-service token, if any."""
    if not token:
        return None
    with db.session() as session:
        agent = session.scalar(select(Agent).where(Agent.token_hash == hash_token(token)))
    return agent if agent is not None and agent.active else None


def rotate_token(db: Database, agent_id: int) -> str:
    """Issue a new self-service token for an agent (the old one stops working)."""
    token = new_token()
    with db.session() as session:
        agent = session.get(Agent, agent_id)
        if agent is None:
            raise AgentNotFound(f"no agent with id {agent_id}")
        agent.token_hash = hash_token(token)
    return token


def roster(db: Database, *, queue: str | None = None) -> list[Agent]:
    """Every agent (or those serving `queue`), ordered by id, without presence."""
    with db.session() as session:
        agents = list(session.scalars(select(Agent).order_by(Agent.id)))
    # Queues are a JSON list: filtering here stays portable across SQLite and PostgreSQL.
    return [a for a in agents if queue is None or queue in (a.queues or [])]


def speaks(agent: Agent, language: str, default_language: str) -> bool:
    """True when `agent` speaks the flow language `language` ("" is the default language).

    An agent who listed no languages is taken to speak the flows' default language only.
    """
    wanted = (language or default_language).lower()
    listed = [code.lower() for code in agent.languages or []]
    return wanted in listed if listed else wanted == default_language.lower()


def whisper_language(agent: Agent | None, default_language: str) -> str:
    """The language an agent hears whispers and prompts in: their first, else the default."""
    listed = list(agent.languages or []) if agent is not None else []
    return listed[0] if listed else default_language


def presence_history(db: Database, agent_id: int, limit: int = 20) -> list[AgentPresenceEvent]:
    """The agent's latest presence changes, newest first."""
    with db.session() as session:
        return list(
            session.scalars(
                select(AgentPresenceEvent)
                .where(AgentPresenceEvent.agent_id == agent_id)
                .order_by(AgentPresenceEvent.id.desc())
                .limit(limit)
            )
        )
