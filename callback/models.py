"""SQL models for callbacks: one row per request, one row per dial attempt.

The attempt row's UNIQUE (request_id, attempt_no) is the exactly-once guard: a job inserts it
before dialling, so a second run of the same job (RQ delivers at least once) fails the insert
and never dials.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ivr.infra.db import Base, UTCDateTime, utcnow


class CallbackStatus(StrEnum):
    """Where a callback request is in its life."""

    PENDING_ENQUEUE = "pending-enqueue"  # saved; Redis was unreachable, the sweeper enqueues it
    SCHEDULED = "scheduled"  # waiting for its time (chosen, next calling hours, or a retry)
    WAITING = "waiting"  # due, in line for the next free agent
    DISPATCHED = "dispatched"  # a dial job is enqueued for it
    DIALING = "dialing"  # an attempt is on the phone network
    CONNECTED = "connected"  # the customer answered and is talking to an agent
    COMPLETED = "completed"
    FAILED = "failed"  # attempts ran out
    CANCELLED = "cancelled"

    @property
    def is_final(self) -> bool:
        """True when nothing more will happen to the request."""
        return self in FINAL_STATUSES


FINAL_STATUSES = frozenset(
    {CallbackStatus.COMPLETED, CallbackStatus.FAILED, CallbackStatus.CANCELLED}
)
ACTIVE_STATUSES = frozenset(set(CallbackStatus) - FINAL_STATUSES)


class AttemptStatus(StrEnum):
    """What became of one dial attempt."""

    CLAIMED = "claimed"  # guard row written, dial not yet confirmed
    DIALING = "dialing"  # the provider took the call (SID known)
    ANSWERED = "answered"  # the customer answered
    COMPLETED = "completed"  # the customer talked to an agent and hung up
    NO_ANSWER = "no-answer"
    BUSY = "busy"
    FAILED = "failed"
    MACHINE = "machine"  # an answering machine picked up (customer-first)
    DECLINED = "declined"  # answered but did not press 1 (customer-first)
    AGENT_UNAVAILABLE = "agent-unavailable"  # the agent did not take the call: not counted
    CANCELLED = "cancelled"
    LOST = "lost"  # the worker died before the dial was confirmed: not counted
    PROVIDER_ERROR = "provider-error"  # the provider failed or could not be reached: not counted

    @property
    def counts_against_customer(self) -> bool:
        """True when this outcome uses up one of the customer's attempts."""
        return self in CUSTOMER_FAILURES


CUSTOMER_FAILURES = frozenset(
    {
        AttemptStatus.NO_ANSWER,
        AttemptStatus.BUSY,
        AttemptStatus.FAILED,
        AttemptStatus.MACHINE,
        AttemptStatus.DECLINED,
    }
)


class CallbackRequest(Base):
    """A person asked to be called back: from the website or from the phone."""

    __tablename__ = "callback_requests"
    __table_args__ = (
        Index("ix_callback_requests_status_due", "status", "scheduled_for"),
        Index("ix_callback_requests_queue_asked", "queue", "first_asked_at"),
        Index("ix_callback_requests_address_created", "client_address", "created_at"),
        Index("ix_callback_requests_phone_created", "phone", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # What the outside world calls it: not guessable, unlike the row id.
    public_id: Mapped[str] = mapped_column(String(32), unique=True)
    phone: Mapped[str] = mapped_column(String(32))  # E.164
    # phone|queue while the request is active, NULL after: a UNIQUE column so two concurrent
    # requests for the same number cannot both be pending (NULLs never collide).
    active_key: Mapped[str | None] = mapped_column(String(120), unique=True)
    name: Mapped[str] = mapped_column(String(100), default="")
    reason: Mapped[str] = mapped_column(String(500), default="")
    queue: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(16))  # "web" or "phone"
    context: Mapped[dict] = mapped_column(JSON, default=dict)
    # The language the customer is called back in (a flow language code, e.g. "bn").
    language: Mapped[str] = mapped_column(String(16), default="en", server_default="en")
    status: Mapped[str] = mapped_column(String(20), default=CallbackStatus.PENDING_ENQUEUE.value)
    # Place in line is by first ask: a hold caller keeps the time they started waiting.
    first_asked_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    preferred_time: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    scheduled_for: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    # When the current dial job was handed to RQ (the sweeper re-sends stale ones).
    dispatched_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(Integer, default=0)  # attempt rows written
    customer_failures: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=3)
    job_id: Mapped[str | None] = mapped_column(String(80))
    # RQ jobs for this request that raised (a bug or an outage, never the customer's doing),
    # and the newest such error: shown by the API as trouble, logged and counted in /metrics.
    job_failures: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    last_error: Mapped[str | None] = mapped_column(String(300))
    cancel_token_hash: Mapped[str] = mapped_column(String(64))
    client_address: Mapped[str | None] = mapped_column(String(64))
    # Consent as given: when, from where, and our own wording the visitor agreed to, with its
    # version (`callback.rules.consent_version`); never words a client sent.
    consent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    consent_address: Mapped[str | None] = mapped_column(String(64))
    consent_text: Mapped[str | None] = mapped_column(Text)
    consent_version: Mapped[str | None] = mapped_column(String(32))
    outcome: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    attempt_rows: Mapped[list[CallbackAttempt]] = relationship(
        back_populates="request", order_by="CallbackAttempt.attempt_no"
    )

    @property
    def state(self) -> CallbackStatus:
        """The status as an enum."""
        return CallbackStatus(self.status)


class CallbackHandle(Base):
    """Another ask for a number that is already waiting for a call: its own id and token on
    the same request, so the answer has the shape of a new request's and says nothing about
    the first one to whoever asked."""

    __tablename__ = "callback_handles"

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(32), unique=True)
    request_id: Mapped[int] = mapped_column(
        ForeignKey("callback_requests.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64))
    client_address: Mapped[str | None] = mapped_column(String(64))
    consent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    consent_version: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class CallbackAttempt(Base):
    """One try at connecting the customer; written before the dial, once per attempt number."""

    __tablename__ = "callback_attempts"
    __table_args__ = (
        UniqueConstraint("request_id", "attempt_no", name="uq_callback_attempt_once"),
        Index("ix_callback_attempts_status_created", "status", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("callback_requests.id", ondelete="CASCADE"))
    attempt_no: Mapped[int] = mapped_column(Integer)
    mode: Mapped[str] = mapped_column(String(16))  # agent-first or customer-first
    status: Mapped[str] = mapped_column(String(20), default=AttemptStatus.CLAIMED.value)
    agent_id: Mapped[int | None] = mapped_column(Integer)
    agent_address: Mapped[str | None] = mapped_column(String(255))
    # The leg we placed through the REST API (the agent's in agent-first mode).
    call_sid: Mapped[str | None] = mapped_column(String(64), index=True)
    customer_call_sid: Mapped[str | None] = mapped_column(String(64))
    answered_by: Mapped[str | None] = mapped_column(String(32))
    duration_seconds: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    dialed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    ended_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    request: Mapped[CallbackRequest] = relationship(back_populates="attempt_rows")

    @property
    def state(self) -> AttemptStatus:
        """The status as an enum."""
        return AttemptStatus(self.status)


class ActionKind(StrEnum):
    """What a supervisor did to a request from the console."""

    CANCEL = "cancel"
    RETRY = "retry"  # call it now (or at the first moment the calling hours allow)
    RESCHEDULE = "reschedule"


class CallbackAction(Base):
    """One action a person took on a request (`callback.admin`): who, when, what, and the
    status it moved the request from and to. Written in the transaction that makes the change,
    so no change goes unrecorded."""

    __tablename__ = "callback_actions"
    __table_args__ = (Index("ix_callback_actions_at", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int] = mapped_column(
        ForeignKey("callback_requests.id", ondelete="CASCADE"), index=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    who: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(20))
    from_status: Mapped[str] = mapped_column(String(20))
    to_status: Mapped[str] = mapped_column(String(20))
    # The times involved (old and new scheduled_for), the note, anything else a reader needs.
    detail: Mapped[dict] = mapped_column(JSON, default=dict)
