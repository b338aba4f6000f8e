"""Server-sent events for the console's live parts, fed by the Redis change channel.

An open page holds one `text/event-stream` response. The stream wakes when a change is
announced on `ivr.infra.live` (by any process) or every `interval` seconds (waits grow, wrap-ups
end and callbacks fall due without anyone announcing it), re-renders its fragments, and sends
only the ones whose HTML changed: an htmx `sse-swap` target replaces itself with each.
Notices that come in a burst are taken together (`settle`), so a flurry of webhooks costs one
render. A comment line every `heartbeat` seconds keeps proxies from closing an idle stream and
tells the server when the browser has gone.

`render` is any function of no arguments returning {event name: HTML}; the stream calls it
inside the request's app context. Pages share work across streams through `shared`: the first
stream to need a snapshot for the current change version computes it, the others read it.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator

import redis
from flask import Response, current_app, stream_with_context
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.exceptions import ServiceUnavailable

from ivr.infra import live

log = logging.getLogger(__name__)

INTERVAL = 1.0  # seconds between refreshes with no notice
SETTLE = 0.05  # seconds to let a burst of notices arrive before rendering
MIN_AGE = 0.5  # a shared snapshot is computed at most this often, however many changes come
HEARTBEAT = 15.0
RETRY_MS = 1000  # how soon the browser reconnects after the stream drops
MAX_SECONDS = 30 * 60  # one stream's life; the browser reconnects (a fresh session check)
PER_USER = 3  # one signed-in browser's open live pages per process (its tabs)
RECHECK = 5.0  # seconds between checks that the stream's session is still good


class _OpenStreams:
    """How many streams this process holds open, in all and per user: each holds a greenlet
    (under a thread worker, a whole server thread) and a Redis subscription for its life, so
    past `CONSOLE_MAX_STREAMS` (or `PER_USER` for one person's tabs) a new one is refused with
    503 rather than starving the webhooks."""

    def __init__(self) -> None:
        self.count = 0
        self.by_user: dict[str, int] = {}
        self._lock = threading.Lock()

    def take(self, limit: int, user: str) -> bool:
        with self._lock:
            if self.count >= limit or self.by_user.get(user, 0) >= PER_USER:
                return False
            self.count += 1
            self.by_user[user] = self.by_user.get(user, 0) + 1
            return True

    def give_back(self, user: str) -> None:
        with self._lock:
            self.count -= 1
            left = self.by_user.get(user, 1) - 1
            if left > 0:
                self.by_user[user] = left
            else:
                self.by_user.pop(user, None)


OPEN = _OpenStreams()


def event_stream(r: redis.Redis, render: Callable[[], dict[str, str]], *, user: str,
                 still_allowed: Callable[[], bool],
                 wakes: Callable[[live.Notice], bool] = lambda _notice: True,
                 interval: float = INTERVAL, max_seconds: float = MAX_SECONDS) -> Response:
    """A streaming response that sends `render()`'s fragments whenever they change.

    `user` names whose stream it is (for the per-user cap); `still_allowed()` is asked every
    `RECHECK` seconds and ends the stream when the session is no longer good (signed out, a
    new token, an agent removed); only notices `wakes` accepts wake it before `interval`.

    Raises:
        ServiceUnavailable: this process already holds its share of streams open.
    """
    limit = int(current_app.config["CONSOLE_MAX_STREAMS"])
    if not OPEN.take(limit, user):
        log.warning("console stream refused", extra={"limit": limit, "user": user})
        raise ServiceUnavailable(f"this web process already serves its {limit} live console "
                                 f"pages, or {PER_USER} of yours (CONSOLE_MAX_STREAMS); the page "
                                 "retries by itself", retry_after=5)

    def events() -> Iterator[str]:
        listener = _listen(r)
        sent: dict[str, str] = {}
        started = last_beat = checked = time.monotonic()
        try:
            yield f"retry: {RETRY_MS}\n\n"
            while time.monotonic() - started < max_seconds:
                if time.monotonic() - checked >= RECHECK:
                    checked = time.monotonic()
                    if not still_allowed():
                        return  # the browser reconnects, and is asked to sign in
                fragments = _render(render)
                for name, html in fragments.items():
                    if sent.get(name) != html:
                        sent[name] = html
                        yield format_event(name, html)
                        last_beat = time.monotonic()
                if time.monotonic() - last_beat >= HEARTBEAT:
                    yield ": keep-alive\n\n"
                    last_beat = time.monotonic()
                rendered = time.monotonic()
                listener = listener or _listen(r)  # Redis came back: listen again
                if _wait(listener, min(interval, RECHECK), wakes):
                    # Let the burst arrive, and render no more often than MIN_AGE.
                    time.sleep(max(SETTLE, MIN_AGE - (time.monotonic() - rendered)))
                    _drain(listener)  # the rest of the burst: one render covers it
        finally:
            if listener is not None:
                listener.close()

    response = Response(stream_with_context(events()), mimetype="text/event-stream")
    response.call_on_close(lambda: OPEN.give_back(user))  # whether or not it ever started
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Accel-Buffering"] = "no"  # nginx: pass each event on at once
    return response


def _listen(r: redis.Redis) -> live.Listener | None:
    try:
        return live.Listener(r)
    except redis.RedisError:
        return None  # Redis is away: refresh on the interval until it is back


def _drain(listener: live.Listener | None) -> None:
    try:
        if listener is not None:
            listener.wait(0)
    except redis.RedisError:
        pass


def _wait(listener: live.Listener | None, interval: float,
          wakes: Callable[[live.Notice], bool]) -> bool:
    """True when a notice that concerns this stream came within `interval` seconds."""
    deadline = time.monotonic() + interval
    try:
        while listener is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            if any(wakes(notice) for notice in listener.wait(left)):
                return True
    except redis.RedisError:
        pass
    # Redis is away: keep refreshing on the interval (the page shows what it can read).
    time.sleep(max(0.0, deadline - time.monotonic()))
    return False


def _render(render: Callable[[], dict[str, str]]) -> dict[str, str]:
    try:
        return render()
    except (redis.RedisError, SQLAlchemyError) as exc:
        # An outage: said once a minute per process, not once a second per open page.
        if _OUTAGE_LOG.should(type(exc).__name__):
            log.warning("console live render: %s unavailable (%s)", _backend(exc), exc)
        return {}
    except Exception:  # one bad read must not end every open page's stream
        log.exception("console live render failed")
        return {}


def _backend(exc: Exception) -> str:
    return "Redis" if isinstance(exc, redis.RedisError) else "the database"


class _Once:
    """True at most once a minute per key (for logs an outage would otherwise flood)."""

    def __init__(self, seconds: float = 60.0) -> None:
        self.seconds, self._last, self._lock = seconds, {}, threading.Lock()

    def should(self, key: str) -> bool:
        with self._lock:
            now = time.monotonic()
            if now - self._last.get(key, -self.seconds) < self.seconds:
                return False
            self._last[key] = now
            return True


_OUTAGE_LOG = _Once()


def format_event(name: str, data: str) -> str:
    """One SSE event: every line of `data` as a `data:` line (the browser joins them)."""
    lines = data.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return f"event: {name}\n" + "".join(f"data: {line}\n" for line in lines) + "\n"


def shared(r: redis.Redis, key: str, compute: Callable[[], dict], *,
           max_age: float = INTERVAL, min_age: float = MIN_AGE) -> dict:
    """`compute()`'s result, shared by every stream (and process) for one change version.

    Kept in Redis under `key` with the change version it was made at, and in this process's
    memory. Readers take it while the version is unchanged and it is younger than `max_age`
    seconds; else the first one computes it again (a short lock keeps 20 open wallboards from
    computing it 20 times). Under a flood of changes (every holding caller's wait URL is one)
    it is made at most once per `min_age` seconds: until then readers get the one they have,
    and their stream renders again a moment later (`event_stream` waits `MIN_AGE` between
    renders).
    """
    local = (id(r.connection_pool), key)  # one process may hold several apps (tests do)
    try:
        now_version = live.version(r)
        entry = _LOCAL.get(local)
        if entry is not None:
            age = time.time() - entry["at"]
            if (entry["v"] == now_version and age < max_age) or age < min_age:
                return entry["data"]
        entry = _entry(r.get(key))  # another process may have made a newer one
        if entry is not None:
            age = time.time() - entry["at"]
            if (entry["v"] == now_version and age < max_age) or age < min_age:
                _LOCAL[local] = entry
                return entry["data"]
        if not r.set(key + ":lock", "1", nx=True, px=int(max(max_age, 0.1) * 1000)):
            # Another stream is computing it: wait a moment for its result (any one newer than
            # what we had will do: under a flood the version moves on while it is made).
            seen = entry["at"] if entry is not None else 0.0
            for _ in range(50):
                time.sleep(0.01)
                entry = _entry(r.get(key))
                if entry is not None and entry["at"] > seen:
                    _LOCAL[local] = entry
                    return entry["data"]
        data = compute()
        entry = {"v": now_version, "at": time.time(), "data": data}
        r.set(key, json.dumps(entry, default=str), ex=60)
        r.delete(key + ":lock")
        _LOCAL[local] = entry
        return data
    except redis.RedisError:
        return compute()


_LOCAL: dict[tuple[int, str], dict] = {}  # the newest entry this process has seen


def _entry(raw: bytes | None) -> dict | None:
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return None
