"""The console's event stream: fragments sent when they change, on a live notice from any
process, shared work between open pages, and SSE framing."""

from __future__ import annotations

import queue
import threading
import time

import pytest
import requests

from ivr.console import stream
from ivr.hold import holding
from ivr.infra import live
from ivr.infra.services import services_of
from tests.console.conftest import ADMIN, csrf_of


def test_an_event_carries_every_line_of_its_html():
    assert stream.format_event("wallboard", "<b>1</b>\n<i>2</i>\r\n") == (
        "event: wallboard\ndata: <b>1</b>\ndata: <i>2</i>\ndata: \n\n")


@pytest.fixture
def app_config(app_config: dict) -> dict:
    # Served over plain http here: the session cookie must not be marked Secure.
    return {**app_config, "PUBLIC_BASE_URL": "http://127.0.0.1"}




def _reader(response) -> queue.Queue:
    chunks: queue.Queue = queue.Queue()

    def read() -> None:
        buffer = ""
        try:
            for piece in response.iter_content(chunk_size=None, decode_unicode=True):
                buffer += piece
                while "\n\n" in buffer:
                    event, buffer = buffer.split("\n\n", 1)
                    chunks.put(event)
        except requests.RequestException:  # the test closed the stream, or stopped reading
            pass

    threading.Thread(target=read, daemon=True).start()
    return chunks


def _next_event(chunks: queue.Queue, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while True:
        chunk = chunks.get(timeout=max(0.01, deadline - time.monotonic()))
        if chunk.startswith("event: "):
            return chunk


def test_the_wallboard_stream_sends_the_new_fragment_when_a_change_is_announced(app, served):
    r = services_of(app).redis
    browser = requests.Session()
    form = browser.get(served + "/console/signin", headers={"Accept": "text/html"})
    browser.post(served + "/console/signin", data={"token": ADMIN,
                                                  "csrf_token": csrf_of(form.text)})
    response = browser.get(served + "/console/events", stream=True, timeout=10)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/event-stream")
    chunks = _reader(response)
    first = _next_event(chunks, 5)
    assert 'data-figure="support.waiting">0<' in first
    # Nothing changes: nothing more is sent (the refresh renders the same HTML).
    time.sleep(1.5)
    assert all(not c.startswith("event: ") for c in list(chunks.queue))
    # A caller joins (as the wait URL does) and the change is announced, as after any webhook.
    now = time.time()
    holding.join(r, holding.Holder(call_sid="CA1", queue="support", first_asked=now,
                                   joined_at=now, caller="+14155550111"), {"kind": "join"})
    started = time.monotonic()
    live.changed(r, "request", path="/voice/queue/wait")
    second = _next_event(chunks, 5)
    assert time.monotonic() - started < 1.0  # woken by the notice, not the 1 s refresh
    assert 'data-figure="support.waiting">1<' in second
    assert "+14155550111" in second
    response.close()


def test_open_pages_share_one_snapshot_per_change(app):
    r = services_of(app).redis
    computed = []

    def compute() -> dict:
        computed.append(1)
        return {"n": len(computed)}

    def read(**ages) -> dict:
        return stream.shared(r, "ivr:test:shared", compute, **ages)

    assert [read(max_age=5) for _ in range(20)] == [{"n": 1}] * 20 and len(computed) == 1
    live.changed(r, "test")
    assert read(max_age=5, min_age=0) == {"n": 2}  # a change: made again
    time.sleep(0.3)
    assert read(max_age=0.2, min_age=0) == {"n": 3}  # aged out with no change


def test_a_flood_of_changes_makes_the_snapshot_at_most_once_per_min_age(app):
    r = services_of(app).redis
    computed = []

    def compute() -> dict:
        computed.append(time.monotonic())
        return {"n": len(computed)}

    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:
        r.incr(live.VERSION)  # a change, as every webhook makes
        stream.shared(r, "ivr:test:flood", compute, max_age=5, min_age=0.25)
        time.sleep(0.005)
    gaps = [b - a for a, b in zip(computed, computed[1:], strict=False)]
    assert 3 <= len(computed) <= 5 and min(gaps) >= 0.24, gaps


def test_a_listener_hears_notices_published_by_another_client(app, redis_url):
    import redis

    r = services_of(app).redis
    listener = live.Listener(r)
    try:
        assert listener.wait(0.2) == []
        other = redis.Redis.from_url(redis_url)  # another process's connection
        live.changed(other, "presence", agent_id=3)
        heard = listener.wait(2)
        assert [(n.what, n.detail) for n in heard] == [("presence", {"agent_id": 3})]
        other.close()
    finally:
        listener.close()


def test_a_burst_of_changes_is_one_message_that_still_carries_every_notice(app):
    r = services_of(app).redis
    listener = live.Listener(r)
    try:
        time.sleep(live.WINDOW)  # this process has not published for a window
        live.changed(r, "request", path="/voice/queue/wait")  # sent at once
        live.changed(r, "presence", agent_id=3)  # these two wait for the window's end...
        live.changed(r, "request", path="/voice/queue/wait")
        first = listener.wait(1.0)
        assert [(n.what, n.detail) for n in first] == [
            ("request", {"path": "/voice/queue/wait"})]
        burst = listener.wait(1.0)  # ...and come as one message
        assert [(n.what, n.detail) for n in burst] == [
            ("presence", {"agent_id": 3}), ("request", {"path": "/voice/queue/wait"})]
        assert live.version(r) >= 3  # each change counted, though published together
    finally:
        listener.close()
