"""Wrap-up notes: what an agent writes about a call after it, saved against the call."""

from __future__ import annotations

import datetime as dt
import re

from sqlalchemy import select

from ivr.errors import IvrError
from ivr.infra.db import Database
from ivr.infra.notes_models import NOTE_LENGTH, CallNote

# Control characters (C0, DEL, C1) other than the tab and the newline a note may hold, and the
# bidirectional embeddings, overrides and isolates that can make text read other than it is
# stored (joiners, which Indic scripts need, stay).
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


class InvalidNote(IvrError):
    """A note that cannot be saved; the message says why."""


def clean(raw: str) -> str:
    """The note as it is kept: line ends made "\\n", control characters and bidi overrides
    removed, ends trimmed."""
    note = (raw or "").replace("\r\n", "\n").replace("\r", "\n")
    return _CONTROL.sub("", note).strip()


def add_note(db: Database, call_sid: str, agent_id: int, raw: str, at: dt.datetime) -> CallNote:
    """Save a note about `call_sid` by `agent_id`; InvalidNote when it is empty or too long."""
    note = clean(raw)
    if not note:
        raise InvalidNote("Write something before saving the note.")
    if len(note) > NOTE_LENGTH:
        raise InvalidNote(f"A note holds at most {NOTE_LENGTH} characters "
                          f"(this one has {len(note)}).")
    row = CallNote(call_sid=call_sid, agent_id=agent_id, at=at, text=note)
    with db.session() as session:
        session.add(row)
    return row


def notes_of(db: Database, call_sid: str) -> list[CallNote]:
    """The notes about a call, oldest first."""
    with db.session() as session:
        return list(session.scalars(select(CallNote).where(CallNote.call_sid == call_sid)
                                    .order_by(CallNote.at, CallNote.id)))


def note_counts(db: Database, call_sids: list[str]) -> dict[str, int]:
    """How many notes each of these calls has."""
    if not call_sids:
        return {}
    with db.session() as session:
        sids = session.scalars(select(CallNote.call_sid)
                               .where(CallNote.call_sid.in_(call_sids))).all()
    counts: dict[str, int] = {}
    for sid in sids:
        counts[sid] = counts.get(sid, 0) + 1
    return counts
