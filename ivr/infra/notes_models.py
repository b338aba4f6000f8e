"""SQL model for the wrap-up notes agents write about their calls in the console."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from ivr.infra.db import Base, UTCDateTime

NOTE_LENGTH = 2000


class CallNote(Base):
    """A note an agent wrote about a call they took (the caller's call SID; for a callback,
    the SID of the leg we placed), kept with who wrote it and when."""

    __tablename__ = "call_notes"
    __table_args__ = (Index("ix_call_notes_call_sid_at", "call_sid", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    call_sid: Mapped[str] = mapped_column(String(64))
    # Like QueueVisit.agent_id, no foreign key: a removed agent's notes stay with the call.
    agent_id: Mapped[int] = mapped_column(Integer, index=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    text: Mapped[str] = mapped_column(String(NOTE_LENGTH))
