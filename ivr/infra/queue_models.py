"""SQL models for the hold queue: each visit to a queue, its events, and every estimate given.

A visit is written once, when the caller leaves the queue (answered, hung up, or left for a
callback): the wait-URL hot path only touches Redis (see `ivr.hold.holding`). Each estimate row
carries the wait that actually followed it, so `ivr report` can score the estimator.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, Boolean, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ivr.infra.db import Base, UTCDateTime


class QueueVisit(Base):
    """One caller's stay in one hold queue, from joining to leaving."""

    __tablename__ = "queue_visits"
    __table_args__ = (Index("ix_queue_visits_queue_joined", "queue", "joined_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    call_sid: Mapped[str] = mapped_column(String(64), index=True)
    queue: Mapped[str] = mapped_column(String(64))
    caller: Mapped[str | None] = mapped_column(String(32))
    joined_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    left_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    wait_seconds: Mapped[float] = mapped_column(Float)
    # answered | abandoned | callback | left | error (QueueResult kept in `queue_result`)
    outcome: Mapped[str] = mapped_column(String(16))
    queue_result: Mapped[str | None] = mapped_column(String(32))
    agent_id: Mapped[int | None] = mapped_column(Integer)
    announcements: Mapped[int] = mapped_column(Integer, default=0)

    events: Mapped[list[QueueEvent]] = relationship(
        back_populates="visit", order_by="QueueEvent.id", cascade="all, delete-orphan"
    )
    estimates: Mapped[list[WaitEstimate]] = relationship(
        back_populates="visit", order_by="WaitEstimate.id", cascade="all, delete-orphan"
    )


class QueueEvent(Base):
    """Something that happened during a visit: join, announce, key, callback, answer, abandon."""

    __tablename__ = "queue_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    visit_id: Mapped[int] = mapped_column(ForeignKey("queue_visits.id", ondelete="CASCADE"),
                                          index=True)
    kind: Mapped[str] = mapped_column(String(24))
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    elapsed_seconds: Mapped[float | None] = mapped_column(Float)
    position: Mapped[int | None] = mapped_column(Integer)
    detail: Mapped[dict | None] = mapped_column(JSON)

    visit: Mapped[QueueVisit] = relationship(back_populates="events")


class WaitEstimate(Base):
    """An estimate a caller heard, next to the wait that actually followed it."""

    __tablename__ = "wait_estimates"

    id: Mapped[int] = mapped_column(primary_key=True)
    visit_id: Mapped[int] = mapped_column(ForeignKey("queue_visits.id", ondelete="CASCADE"),
                                          index=True)
    given_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    elapsed_seconds: Mapped[float] = mapped_column(Float)  # waited when the estimate was given
    position: Mapped[int] = mapped_column(Integer)  # callbacks ahead included
    agents: Mapped[int] = mapped_column(Integer)
    expected_seconds: Mapped[float] = mapped_column(Float)  # mean remaining wait
    upper_seconds: Mapped[float] = mapped_column(Float)  # quantile the band had to cover
    band: Mapped[str] = mapped_column(String(40))  # what the caller heard
    band_lower_seconds: Mapped[float] = mapped_column(Float)
    band_upper_seconds: Mapped[float | None] = mapped_column(Float)
    is_overdue: Mapped[bool] = mapped_column(Boolean, default=False)
    is_cold_start: Mapped[bool] = mapped_column(Boolean, default=False)
    explanation: Mapped[str] = mapped_column(Text)
    # Filled in when the visit ends: remaining wait that followed (answered visits only score).
    actual_seconds: Mapped[float | None] = mapped_column(Float)
    within_band: Mapped[bool | None] = mapped_column(Boolean)

    visit: Mapped[QueueVisit] = relationship(back_populates="estimates")
