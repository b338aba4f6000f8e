"""The Procfile's processes, as a platform runs them: who writes a call's journey to SQL.

The `web:` process (gunicorn with gevent workers) answers the webhooks and queues each call's
journey in Redis; the `dispatcher:` process (`ivr worker --dispatch-only`) writes it to SQL.
Both are started here as real processes, the call is walked through signed webhooks over HTTP,
and the journey is read from the database the way the console's reports read it.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from sqlalchemy import create_engine, select

from ivr.infra.journey import QUEUE_KEY
from ivr.infra.models import Call, CallEvent
from tests.conftest import AUTH_TOKEN, SHOP_FLOWS
from tests.support.caller import SimulatedCall, http_transport
from tests.support.gunicorn import Gunicorn
from tests.support.twilio_cloud import TwilioCloud

ACCOUNT_SID = "AC" + "1" * 32
SHOP_NUMBER = "+18005550100"
# A Tuesday at 11:00 in New York: the shop is open, so the call walks its menus.
OPEN = dt.datetime(2026, 11, 24, 16, 0, tzinfo=dt.UTC)
WRITER_ROUNDS = 2.0  # seconds: four of the journey writer's 0.5 s rounds


@pytest.fixture
def cloud() -> Iterator[TwilioCloud]:
    with TwilioCloud(ACCOUNT_SID, AUTH_TOKEN) as stand_in:
        yield stand_in


@pytest.fixture
def env(redis_url: str, database_url: str, cloud: TwilioCloud) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WEB_", "SPEECH_"))}
    env.update(REDIS_URL=redis_url, DATABASE_URL=database_url, TWILIO_AUTH_TOKEN=AUTH_TOKEN,
               TWILIO_ACCOUNT_SID=ACCOUNT_SID, TWILIO_API_BASE=cloud.base_url,
               IVR_FLOWS=str(SHOP_FLOWS), IVR_CLOCK_OFFSET=str(OPEN.timestamp() - time.time()),
               WEB_CONCURRENCY="1")
    return env


def journey_of(database_url: str, call_sid: str) -> tuple[dict | None, list[str]]:
    """The call's summary row and its events' kinds in order, as SQL holds them."""
    call, events = events_of(database_url, call_sid)
    return call, [kind for kind, _ in events]


def events_of(database_url: str, call_sid: str) -> tuple[dict | None, list[tuple[str, int]]]:
    """The call's summary row and its events in order: (kind, elapsed_ms), as SQL holds
    them (elapsed_ms: how long the caller was at the node before it, where it is known)."""
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            call = conn.execute(select(Call.id, Call.ended_at, Call.caller)
                                .where(Call.call_sid == call_sid)).first()
            if call is None:
                return None, []
            events = conn.execute(select(CallEvent.kind, CallEvent.elapsed_ms)
                                  .where(CallEvent.call_id == call.id)
                                  .order_by(CallEvent.seq)).all()
            return call._asdict(), [tuple(event) for event in events]
    finally:
        engine.dispose()


def queued_for(r: redis.Redis, call_sid: str) -> int:
    return sum(call_sid.encode() in row for row in r.lrange(QUEUE_KEY, 0, -1))


def test_the_web_queues_the_journey_and_the_dispatcher_writes_it_to_sql(
        tmp_path: Path, env: dict, database_url: str, redis_client: redis.Redis,
        cloud: TwilioCloud):
    web = Gunicorn(tmp_path, env)
    web.env["PUBLIC_BASE_URL"] = web.url
    with web:
        call = SimulatedCall(http_transport(), web.url, AUTH_TOKEN, called=SHOP_NUMBER,
                             account_sid=ACCOUNT_SID)
        dialled = time.monotonic()
        call.dial()
        cloud.inbound_call(call.call_sid, to=SHOP_NUMBER, from_=call.params["From"])
        call.press("1")  # the order line
        assert call.hang_up() == 204
        took_ms = (time.monotonic() - dialled) * 1000

        # The web process queued the whole journey and wrote none of it.
        time.sleep(WRITER_ROUNDS)
        queued = queued_for(redis_client, call.call_sid)
        assert queued >= 3, redis_client.lrange(QUEUE_KEY, 0, -1)
        assert journey_of(database_url, call.call_sid) == (None, [])

        dispatcher = subprocess.Popen(
            [sys.executable, "-m", "ivr.cli", "worker", "--dispatch-only"], cwd=tmp_path,
            env={**web.env, "PATH": f"{Path(sys.executable).parent}:{env.get('PATH', '')}"},
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            deadline = time.monotonic() + 30
            while (summary := journey_of(database_url, call.call_sid))[0] is None or \
                    queued_for(redis_client, call.call_sid):
                assert dispatcher.poll() is None, dispatcher.stdout.read()
                assert time.monotonic() < deadline, "the dispatcher wrote no journey"
                time.sleep(0.2)
        finally:
            dispatcher.terminate()
            dispatcher.wait(15)

    call_row, kinds = summary
    # How long the caller spent at each node is measured on one clock, even with the service's
    # clock shifted (as here, and as `ivr serve --at` does): never negative, never longer than
    # the call itself took.
    waits = [ms for _, ms in events_of(database_url, call.call_sid)[1] if ms is not None]
    assert waits and all(0 <= ms <= took_ms for ms in waits), (waits, took_ms)
    assert call_row["caller"] == call.params["From"]
    assert call_row["ended_at"] is not None
    assert len(kinds) == queued and kinds[-1] == "call_end", kinds
    assert "digits" in kinds, kinds
