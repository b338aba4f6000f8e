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
import time
from collections.abc import Iterable

import redis
from redis.exceptions import LockError
from sqlalchemy import select
from sqlalchemy.exc import DisconnectionError, InterfaceError, OperationalError

from ivr.core.engine.types import Event
from ivr.infra.db import Database
from ivr.infra.models import Call, CallEvent

log = logging.getLogger(__name__)

QUEUE_KEY = "ivr:journey"
LOCK_KEY = "ivr:journey:lock"
DEAD_KEY = "ivr:journey:dead"  # rows the database refused, newest first, with the error
DEAD_KEEP = 10_000
LOCK_SECONDS = 30
BATCH = 500
# The database is down or unreachable: retry the batch later rather than bury its rows.
_UNAVAILABLE = (OperationalError, InterfaceError, DisconnectionError, TimeoutError)
# Trim the rows written only while this writer still holds the lock (KEYS: lock, queue).
_TRIM_IF_OWNER = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('LTRIM', KEYS[2], tonumber(ARGV[2]), -1)
  return 1
end
return 0
"""


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


def seconds(value: object) -> int | None:
    """A duration Twilio sent ("12", "12.0"), as whole seconds; None when it is not one."""
    try:
        number = float(str(value).strip())
    except (TypeError, ValueError):
        return None
    return int(number) if 0 <= number < 10**9 else None


def flush(db: Database, r: redis.Redis, *, batch: int = BATCH) -> int:
    """Move queued events into SQL; returns how many were written. Safe to run concurrently.

    One writer at a time holds the lock (redis-py's `Lock`: token-checked, released
    atomically), extends it for every batch, and trims the rows it wrote only while it still
    holds it, so a writer that stalled past its lock never trims rows another has not written.
    A row the database refuses goes to the dead-letter list (`DEAD_KEY`) with its error; the
    rest of its batch is written. A database that is down raises, and nothing is trimmed.
    """
    lock = r.lock(LOCK_KEY, timeout=LOCK_SECONDS, blocking=False)
    if not lock.acquire():
        return 0
    written = 0
    try:
        while True:
            raw = r.lrange(QUEUE_KEY, 0, batch - 1)
            if not raw:
                break
            rows, dead = _decode(raw)
            written += _write_isolating(db, rows, dead)
            if dead:
                _bury(r, dead)
            try:
                lock.extend(LOCK_SECONDS, replace_ttl=True)
                owned = r.register_script(_TRIM_IF_OWNER)(keys=[LOCK_KEY, QUEUE_KEY],
                                                          args=[lock.local.token, len(raw)])
            except LockError:
                owned = False
            if not owned:
                log.warning("journey writer lost its lock before trimming; the next writer "
                            "takes the batch again (rows are keyed, so none is doubled)")
                break
            if len(raw) < batch:
                break
    finally:
        try:
            lock.release()
        except LockError:
            pass
    return written


def dead_letters(r: redis.Redis, count: int = 100) -> list[dict]:
    """The newest rows the database refused, with why (newest first)."""
    return [json.loads(x) for x in r.lrange(DEAD_KEY, 0, count - 1)]


def _decode(raw: list[bytes]) -> tuple[list[dict], list[dict]]:
    rows, dead = [], []
    for item in raw:
        text = item.decode("utf-8", "replace") if isinstance(item, bytes) else str(item)
        try:
            row = json.loads(text)
            if not (isinstance(row, dict) and isinstance(row.get("sid"), str)
                    and isinstance(row.get("seq"), int) and isinstance(row.get("at"), int | float)
                    and isinstance(row.get("kind"), str)):
                raise ValueError("not a journey row (sid, seq, at and kind are required)")
        except ValueError as exc:
            dead.append({"row": text[:4000], "error": str(exc)[:500]})
            continue
        rows.append(row)
    return rows, dead


def _write_isolating(db: Database, rows: list[dict], dead: list[dict]) -> int:
    """Write `rows`; when the batch is refused, write them one by one and add each refused row
    to `dead`. Raises when the database itself is unavailable."""
    if not rows:
        return 0
    try:
        write_rows(db, rows)
        return len(rows)
    except _UNAVAILABLE:
        raise
    except Exception:
        log.warning("a journey batch was refused; writing its rows one by one", exc_info=True)
    written = 0
    for row in rows:
        try:
            write_rows(db, [row])
            written += 1
        except _UNAVAILABLE:
            raise
        except Exception as exc:
            dead.append({"row": json.dumps(row, default=str)[:4000],
                         "error": f"{type(exc).__name__}: {exc}"[:500]})
    return written


def _bury(r: redis.Redis, dead: list[dict]) -> None:
    pipe = r.pipeline(transaction=False)
    for item in dead:
        item["at"] = time.time()
        pipe.lpush(DEAD_KEY, json.dumps(item, default=str))
    pipe.ltrim(DEAD_KEY, 0, DEAD_KEEP - 1)
    pipe.execute()
    log.error("journey rows refused by the database, kept in %s: %s", DEAD_KEY,
              "; ".join(item["error"] for item in dead[:3]), extra={"count": len(dead)})


def write_rows(db: Database, rows: Iterable[dict]) -> None:
    """Insert journey rows (decoded from `encode`), updating each call's summary.

    Text is cut to its column's length first: a SIP caller ID or a long key sequence is kept
    in part, rather than making the database refuse the row.
    """
    rows = list(rows)
    by_sid: dict[str, list[dict]] = {}
    for row in rows:
        by_sid.setdefault(_clip(row["sid"], Call.call_sid), []).append(row)
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
                    call_id=call.id, seq=row["seq"], at=_ts(row["at"]),
                    kind=_clip(row["kind"], CallEvent.kind),
                    flow=_clip(row.get("flow"), CallEvent.flow),
                    node=_clip(row.get("node"), CallEvent.node),
                    digits=_clip(row.get("digits"), CallEvent.digits),
                    speech_text=_clip(row.get("text"), CallEvent.speech_text),
                    confidence=_number(row.get("conf")),
                    elapsed_ms=_whole(row.get("ms")), detail=row.get("detail"),
                ))


def _clip(value: object, column) -> str | None:
    """`value` as text no longer than `column` allows (None stays None)."""
    if value is None:
        return None
    text = str(value).replace("\x00", "")  # PostgreSQL refuses NUL in text
    length = column.property.columns[0].type.length
    return text[:length] if length else text


def _number(value: object) -> float | None:
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _whole(value: object) -> int | None:
    number = _number(value)
    return int(number) if number is not None and abs(number) < 2**31 else None


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
            setattr(call, key, _clip(meta[key], getattr(Call, key)))
    if row.get("node") and row["kind"] == "enter":
        call.last_node = _clip(row["node"], Call.last_node)
    if row["kind"] == "call_end":
        call.ended_at = _ts(row["at"])
        duration = seconds(meta.get("duration"))
        if duration is not None:
            call.duration_seconds = duration
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
