"""The call journey: events queued in Redis with the call state, written to SQL in batches.

Webhooks push each step onto one Redis list in the same round trip as the state write, so the
hot path never waits for SQL. A writer (a thread in each web process, or `flush()` called by
tests and the worker) moves them into `calls` / `call_events`. Rows are keyed by (call, seq), so
a batch written twice after a crash is not duplicated.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import logging
import threading
import time
from collections.abc import Iterable

import redis
from redis.exceptions import LockError
from sqlalchemy import bindparam, insert, select, update
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
    return _ENCODER.encode(row)


# json.dumps with these options would build a new encoder for every row.
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, default=str)


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
    in part, rather than making the database refuse the row. A batch costs a handful of
    statements whatever its size (the calls and the seqs they have, the new calls, the
    changed summaries, the events), not a few per row: the writer runs in every web process,
    beside the webhooks, so it goes through SQLAlchemy Core rather than the ORM.
    """
    by_sid: dict[str, list[dict]] = {}
    for row in rows:
        by_sid.setdefault(_clip(row["sid"], _CALL_LIMIT["call_sid"]), []).append(row)
    if not by_sid:
        return
    with db.session() as session:
        conn = session.connection()
        stored = {r.call_sid: r._asdict()
                  for r in conn.execute(_SUMMARIES_OF, {"sids": list(by_sid)})}
        sid_of = {call["id"]: sid for sid, call in stored.items()}
        seen = {(sid_of[call_id], seq) for call_id, seq in conn.execute(
            _SEQS_OF, {"ids": list(sid_of)})} if sid_of else set()
        summaries: dict[str, dict] = {}
        fresh: list[tuple[str, dict]] = []
        for sid, items in by_sid.items():
            summary = summaries[sid] = dict(stored.get(sid) or dict.fromkeys(SUMMARY))
            for row in sorted(items, key=lambda x: x["seq"]):
                _apply_meta(summary, row)
                if (sid, row["seq"]) in seen:
                    continue
                seen.add((sid, row["seq"]))
                fresh.append((sid, row))
        new = [sid for sid in by_sid if sid not in stored]
        if new:
            conn.execute(_INSERT_CALLS, [
                {"call_sid": sid, "started_at": _ts(by_sid[sid][0]["at"]),
                 **{k: summaries[sid][k] for k in SUMMARY}} for sid in new])
            sid_of.update(conn.execute(_IDS_OF, {"sids": new}).all())
        _update_summaries(conn, stored, summaries)
        id_of = {sid: call_id for call_id, sid in sid_of.items()}
        if fresh:
            conn.execute(_INSERT_EVENTS, [{
                "call_id": id_of[sid], "seq": row["seq"], "at": _ts(row["at"]),
                "kind": _clip(row["kind"], _EVENT_LIMIT["kind"]),
                "flow": _clip(row.get("flow"), _EVENT_LIMIT["flow"]),
                "node": _clip(row.get("node"), _EVENT_LIMIT["node"]),
                "digits": _clip(row.get("digits"), _EVENT_LIMIT["digits"]),
                "speech_text": _clip(row.get("text"), _EVENT_LIMIT["speech_text"]),
                "confidence": _number(row.get("conf")),
                "elapsed_ms": _whole(row.get("ms")), "detail": row.get("detail"),
            } for sid, row in fresh])


# The summary columns of `calls` that journey rows change.
SUMMARY = ("caller", "called", "flow", "flow_version", "outcome", "last_node", "ended_at",
           "duration_seconds")
_CALLS, _EVENTS = Call.__table__, CallEvent.__table__
# Text column lengths by name (None: as long as it comes).
_CALL_LIMIT = {c.name: c.type.length for c in _CALLS.c if hasattr(c.type, "length")}
_EVENT_LIMIT = {c.name: c.type.length for c in _EVENTS.c if hasattr(c.type, "length")}
# The batch's statements, built once (and so compiled once).
_SUMMARIES_OF = select(_CALLS.c.id, _CALLS.c.call_sid, *(_CALLS.c[k] for k in SUMMARY)).where(
    _CALLS.c.call_sid.in_(bindparam("sids", expanding=True)))
_SEQS_OF = select(_EVENTS.c.call_id, _EVENTS.c.seq).where(
    _EVENTS.c.call_id.in_(bindparam("ids", expanding=True)))
_IDS_OF = select(_CALLS.c.id, _CALLS.c.call_sid).where(
    _CALLS.c.call_sid.in_(bindparam("sids", expanding=True)))
_INSERT_CALLS, _INSERT_EVENTS = insert(_CALLS), insert(_EVENTS)


def _update_summaries(conn, stored: dict[str, dict], summaries: dict[str, dict]) -> None:
    """UPDATE the summaries that changed, only the columns that changed (an overlapping
    writer's change to another column is kept), one executemany per set of columns."""
    by_columns: dict[tuple[str, ...], list[dict]] = {}
    for sid, before in stored.items():
        after = summaries[sid]
        changed = tuple(k for k in SUMMARY if after[k] != before[k])
        if changed:
            by_columns.setdefault(changed, []).append(
                {"b_id": before["id"], **{f"b_{k}": after[k] for k in changed}})
    for changed, params in by_columns.items():
        conn.execute(_update_of(changed), params)


@functools.cache
def _update_of(columns: tuple[str, ...]):
    """UPDATE of these summary columns by call id (a handful of shapes: made once each)."""
    return update(_CALLS).where(_CALLS.c.id == bindparam("b_id")).values(
        {k: bindparam(f"b_{k}") for k in columns})


def _clip(value: object, length: int | None) -> str | None:
    """`value` as text no longer than `length` (None: any length; None stays None)."""
    if value is None:
        return None
    text = str(value).replace("\x00", "")  # PostgreSQL refuses NUL in text
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


def _apply_meta(call: dict, row: dict) -> None:
    """Update a call's summary (SUMMARY's columns) with what `row` tells of it."""
    meta = row.get("meta") or {}
    for key in ("caller", "called", "flow", "flow_version", "outcome"):
        if meta.get(key):
            call[key] = _clip(meta[key], _CALL_LIMIT[key])
    if row.get("node") and row["kind"] == "enter":
        call["last_node"] = _clip(row["node"], _CALL_LIMIT["last_node"])
    if row["kind"] == "call_end":
        call["ended_at"] = _ts(row["at"])
        duration = seconds(meta.get("duration"))
        if duration is not None:
            call["duration_seconds"] = duration
        if not call["outcome"]:
            # Hung up while still in the menus: the caller gave up on the IVR.
            call["outcome"] = "abandoned_in_ivr"


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
