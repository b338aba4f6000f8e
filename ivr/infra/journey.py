"""The call journey: events queued in Redis with the call state, written to SQL in batches.

Webhooks push each step onto one Redis list in the same round trip as the state write, so the
hot path never waits for SQL. A writer (a thread in each web process, or `flush()` called by
tests and the worker) moves them into `calls` / `call_events`. Rows are keyed by (call, seq), so
a batch written twice after a crash is not duplicated.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
import uuid
from collections.abc import Iterable

import redis
from sqlalchemy import select

from ivr.core.engine.types import Event
from ivr.infra.db import Database
from ivr.infra.models import Call, CallEvent

log = logging.getLogger(__name__)

QUEUE_KEY = "ivr:journey"
LOCK_KEY = "ivr:journey:lock"
BATCH = 500


def encode(call_sid: str, seq: int, at: float, elapsed_ms: int | None, event: Event,
           meta: dict | None = None) -> str:
    """One journey event as the JSON pushed to Redis."""
    row = {
        "sid": call_sid, "seq": seq, "at": at, "ms": elapsed_ms, "kind": event.kind,
        "flow": event.flow, "node": event.node, "digits": event.digits,
        "text": event.speech_text, "conf": event.confidence, "detail": event.detail,
    }
    if meta:
        row["meta"] = meta
    return json.dumps(row, separators=(",", ":"), ensure_ascii=False, default=str)


def flush(db: Database, r: redis.Redis, *, batch: int = BATCH) -> int:
    """Move queued events into SQL; returns how many were written. Safe to run concurrently."""
    token = uuid.uuid4().hex
    if not r.set(LOCK_KEY, token, nx=True, ex=30):
        return 0
    written = 0
    try:
        while True:
            raw = r.lrange(QUEUE_KEY, 0, batch - 1)
            if not raw:
                break
            write_rows(db, [json.loads(x) for x in raw])
            r.ltrim(QUEUE_KEY, len(raw), -1)
            written += len(raw)
            if len(raw) < batch:
                break
    finally:
        if r.get(LOCK_KEY) == token.encode():
            r.delete(LOCK_KEY)
    return written


def write_rows(db: Database, rows: Iterable[dict]) -> None:
    """Insert journey rows (decoded from `encode`), updating each call's summary."""
    rows = list(rows)
    by_sid: dict[str, list[dict]] = {}
    for row in rows:
        by_sid.setdefault(row["sid"], []).append(row)
    with db.session() as session:
        calls = {
            c.call_sid: c
            for c in session.scalars(select(Call).where(Call.call_sid.in_(list(by_sid))))
        }
        for sid, items in by_sid.items():
            call = calls.get(sid)
            if call is None:
                first = items[0]
                call = Call(call_sid=sid, started_at=_ts(first["at"]))
                session.add(call)
                session.flush()
            seen = set(session.scalars(select(CallEvent.seq).where(CallEvent.call_id == call.id)))
            for row in sorted(items, key=lambda x: x["seq"]):
                _apply_meta(call, row)
                if row["seq"] in seen:
                    continue
                seen.add(row["seq"])
                session.add(CallEvent(
                    call_id=call.id, seq=row["seq"], at=_ts(row["at"]), kind=row["kind"],
                    flow=row.get("flow"), node=row.get("node"), digits=row.get("digits"),
                    speech_text=row.get("text"), confidence=row.get("conf"),
                    elapsed_ms=row.get("ms"), detail=row.get("detail"),
                ))


def caller_inputs(db: Database, call_sid: str) -> tuple[list[str], list[str]]:
    """Words the caller said and keys they pressed in the menus, oldest first."""
    said: list[str] = []
    pressed: list[str] = []
    with db.session() as session:
        rows = session.execute(
            select(CallEvent.kind, CallEvent.digits, CallEvent.speech_text)
            .join(Call, Call.id == CallEvent.call_id)
            .where(Call.call_sid == call_sid, CallEvent.kind.in_(("digits", "speech")))
            .order_by(CallEvent.seq)
        ).all()
    for kind, digits, text in rows:
        if kind == "speech" and text:
            said.append(text)
        elif kind == "digits" and digits:
            pressed.append(" ".join(digits))
    return said, pressed


def _apply_meta(call: Call, row: dict) -> None:
    meta = row.get("meta") or {}
    for key in ("caller", "called", "flow", "flow_version", "outcome"):
        if meta.get(key):
            setattr(call, key, meta[key])
    if row.get("node") and row["kind"] == "enter":
        call.last_node = row["node"]
    if row["kind"] == "call_end":
        call.ended_at = _ts(row["at"])
        if meta.get("duration") is not None:
            call.duration_seconds = int(meta["duration"])
        if not call.outcome:
            # Hung up while still in the menus: the caller gave up on the IVR.
            call.outcome = "abandoned_in_ivr"


def _ts(value: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(value, dt.UTC)


class JourneyWriter(threading.Thread):
    """Background thread that flushes the journey queue every `interval` seconds."""

    def __init__(self, db: Database, r: redis.Redis, interval: float = 0.5) -> None:
        super().__init__(name="journey-writer", daemon=True)
        self.db, self.r, self.interval = db, r, interval
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(self.interval):
            try:
                flush(self.db, self.r)
            except Exception:  # keep the thread alive through Redis/DB outages
                log.warning("journey flush failed; will retry", exc_info=True)

    def stop(self) -> None:
        self.stopped.set()
