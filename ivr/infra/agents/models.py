"""SQL models for the agent roster and the history of every agent presence change."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ivr.infra.db import Base, UTCDateTime, utcnow


class Agent(Base):
    """A person who takes calls: reached at a phone number, a SIP URI or a Twilio Client identity.

    The roster lives here; live presence lives in Redis (see `ivr.infra.agents`) and each change
    of it is written to `AgentPresenceEvent`.
    """

    __tablename__ = "agents"
    __table_args__ = (UniqueConstraint("kind", "address", name="uq_agents_kind_address"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    # "phone" (E.164), "sip" (sip:user@host) or "client" (Twilio Client identity).
    kind: Mapped[str] = mapped_column(String(16))
    address: Mapped[str] = mapped_column(String(255))
    # Names of the hold queues this agent serves, in flows.yaml `queues`.
    queues: Mapped[list[str]] = mapped_column(JSON, default=list)
    # Flow language codes the agent speaks, first the one they hear whispers in (empty: not
    # said, taken as the flows' default language only).
    languages: Mapped[list[str]] = mapped_column(JSON, default=list,
                                                 server_default=sa.text("'[]'"))
    wrap_up_seconds: Mapped[int] = mapped_column(Integer, default=30)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # SHA-256 of the agent's self-service token; the token itself is shown once, at creation.
    token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    presence_events: Mapped[list[AgentPresenceEvent]] = relationship(
        back_populates="agent",
        order_by="AgentPresenceEvent.id",
        cascade="all, delete-orphan",
        passive_deletes=True,
    )

    def to_dict(self) -> dict:
        """The roster fields as JSON-ready values (never the token hash)."""
        return {
            "id": self.id,
            "name": self.name,
            "kind": self.kind,
            "address": self.address,
            "queues": list(self.queues or []),
            "languages": list(self.languages or []),
            "wrap_up_seconds": self.wrap_up_seconds,
            "active": self.active,
            "created_at": self.created_at.isoformat() if self.created_at else None,
        }


class AgentPresenceEvent(Base):
    """One change of an agent's presence: who, from what, to what, when and why."""

    __tablename__ = "agent_presence_events"
    __table_args__ = (Index("ix_agent_presence_events_agent_at", "agent_id", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    agent_id: Mapped[int] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"))
    from_status: Mapped[str] = mapped_column(String(16))
    to_status: Mapped[str] = mapped_column(String(16))
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    # Who or what moved it: "agent", "admin", "claimed for queue support", "call no-answer"...
    reason: Mapped[str] = mapped_column(String(200))
    call_sid: Mapped[str | None] = mapped_column(String(64))

    agent: Mapped[Agent] = relationship(back_populates="presence_events")
