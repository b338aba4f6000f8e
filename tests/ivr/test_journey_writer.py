"""The journey writer under bad rows and overlapping writers: nothing stalls, nothing is lost,
nothing is written twice. Real Redis and a real database (SQLite, or PostgreSQL when
DATABASE_URL is set)."""

from __future__ import annotations

import contextlib
import json
import threading
import time

import pytest
from sqlalchemy import func, select

from ivr.infra import journey
from ivr.infra.models import Call, CallEvent
from ivr.infra.services import services_of


def row(sid: str, seq: int, **extra) -> str:
    event = journey.Event(extra.pop("kind", "enter"), flow="main", node=extra.pop("node", "n"),
                          digits=extra.pop("digits", None))
    return journey.encode(sid, seq, time.time(), None, event, extra or None)


def stored(db, sid: str) -> list[int]:
    with db.session() as s:
        return list(s.scalars(select(CallEvent.seq).join(Call).where(Call.call_sid == sid)
                              .order_by(CallEvent.seq)))


@pytest.fixture
def parts(app):
    services = services_of(app)
    return services.db, services.redis


def test_bad_rows_go_to_the_dead_letter_list_and_the_rest_is_written(app, client, parts):
    db, r = parts
    sip = "sip:someone-with-a-long-name@pbx.example.com"  # 43 characters: caller is 32
    r.rpush(journey.QUEUE_KEY,
            row("CAgood", 1, caller=sip),
            "{not json",
            json.dumps({"sid": "CAbad", "kind": "enter"}),  # no seq
            row("CAgood", 2, digits="1" * 200),  # longer than the digits column
            row("CAhuge", 2**70),  # an integer no database column holds
            row("CAgood", 3, node="x" * 300))

    assert journey.flush(db, r) == 3
    assert r.llen(journey.QUEUE_KEY) == 0  # the batch did not block the list
    assert stored(db, "CAgood") == [1, 2, 3]
    with db.session() as s:
        call = s.scalars(select(Call).where(Call.call_sid == "CAgood")).one()
        assert call.caller == sip[:32]
        event = s.scalars(select(CallEvent).where(CallEvent.seq == 2)).one()
        assert event.digits == "1" * 64
    dead = journey.dead_letters(r)
    assert len(dead) == 3
    errors = " | ".join(d["error"] for d in dead)
    assert "sid, seq, at and kind are required" in errors
    assert any("CAhuge" in d["row"] for d in dead)
    assert any(d["row"] == "{not json" for d in dead)
    page = client.get("/metrics").get_data(as_text=True)
    assert "ivr_journey_dead_letters 3.0" in page
    assert "ivr_journey_queued 0.0" in page
    # The writer carries on with later rows.
    r.rpush(journey.QUEUE_KEY, row("CAgood", 4))
    assert journey.flush(db, r) == 1
    assert stored(db, "CAgood") == [1, 2, 3, 4]


class StallingDatabase:
    """The real database, but the first session stalls past the writer's lock (a GC pause,
    a slow disk): the situation in which two writers overlap."""

    def __init__(self, db, stall: float) -> None:
        self.db, self.stall, self.stalled = db, stall, threading.Event()

    @contextlib.contextmanager
    def session(self):
        if not self.stalled.is_set():
            self.stalled.set()
            time.sleep(self.stall)
        with self.db.session() as s:
            yield s


def test_two_overlapping_writers_neither_lose_nor_double_a_row(parts, monkeypatch):
    db, r = parts
    monkeypatch.setattr(journey, "LOCK_SECONDS", 1)
    r.rpush(journey.QUEUE_KEY, *[row("CAwave1", i) for i in range(1, 6)])
    slow = StallingDatabase(db, stall=1.6)
    first = threading.Thread(target=lambda: journey.flush(slow, r))
    first.start()
    assert slow.stalled.wait(5)
    time.sleep(1.2)  # the first writer's lock has expired
    assert journey.flush(db, r) == 5  # a second writer takes the batch
    r.rpush(journey.QUEUE_KEY, *[row("CAwave2", i) for i in range(1, 4)])
    first.join(10)

    # The first writer woke, wrote its (already written) batch again, and did not trim the
    # second wave, which neither writer had read.
    assert r.llen(journey.QUEUE_KEY) == 3
    assert journey.flush(db, r) == 3
    assert stored(db, "CAwave1") == [1, 2, 3, 4, 5]
    assert stored(db, "CAwave2") == [1, 2, 3]
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(CallEvent)) == 8
    assert not r.exists(journey.LOCK_KEY)


def test_a_database_that_is_down_keeps_every_row_for_later(parts, tmp_path):
    from ivr.infra.db import Database

    db, r = parts
    r.rpush(journey.QUEUE_KEY, row("CAlater", 1), row("CAlater", 2))
    down = Database(f"sqlite:///{tmp_path}/missing-dir/none.db")
    with pytest.raises(Exception):  # noqa: B017 - the driver's own error, whatever it is
        journey.flush(down, r)
    assert r.llen(journey.QUEUE_KEY) == 2
    assert journey.dead_letters(r) == []
    assert journey.flush(db, r) == 2
