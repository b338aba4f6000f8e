"""Live change notices for the console: one Redis pub/sub channel every process can hear.

Whatever changes what a supervisor or an agent sees (a webhook, an admin action, a callback
job) calls `changed`. It bumps a version counter and publishes a small notice; every web
process serving an open console page is subscribed, wakes, and sends the page its new figures
(`ivr.console.stream`). The notice says *that* something changed, not the new state: readers
always read the state itself, so a lost or repeated notice costs at most one refresh.

Publishing never fails a request: the console is a viewer, never in a call's way. It is
also cheap under a flood: every holding caller's wait URL is a change, and 200 callers make
200 a second. The version is bumped for each, but each process publishes at most one notice
per `WINDOW` (the first at once, the rest of a burst as one notice at the window's end), so
open pages wake a few times a second, not once per webhook. A call step bumps the version in
the same Redis script that saves its state (`COUNTED`), so its notice costs no round trip of
its own unless it is the one that publishes.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass

import redis

from ivr.infra.redis_conn import text

log = logging.getLogger(__name__)

CHANNEL = "ivr:live"
VERSION = "ivr:live:version"
# Set in a request's WSGI environ when its change bumped VERSION with its own write (a call
# step's compare-and-set does, in the same round trip): its notice then only publishes.
COUNTED = "ivr.live.counted"


WINDOW = 0.1  # seconds: at most one message per process per window
BATCH = 50  # notices one message carries; past that, one MANY notice stands for them all
MANY = "many"


def changed(r: redis.Redis, what: str, *, counted: bool = False, **detail: object) -> None:
    """Tell every open console that `what` changed (for example "request", "presence").

    `counted`: the change's `VERSION` bump was made already, in the same Redis round trip as
    the change itself (a call step's state write); only the notice is left to send.
    """
    _PUBLISHER.changed(r, _ENCODER.encode({"what": what, **detail}), bump=not counted)


# json.dumps with these options would build a new encoder for every notice.
_ENCODER = json.JSONEncoder(default=str, separators=(",", ":"))


class _Publisher:
    """Bumps the version for every change; publishes a burst's notices as one message."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last = 0.0  # when this process last published (monotonic)
        self._client: redis.Redis | None = None
        self._pending: dict[str, None] | None = None  # the burst's notices (None: no burst)

    def changed(self, r: redis.Redis, notice: str, *, bump: bool = True) -> None:
        with self._lock:
            now = time.monotonic()
            if self._pending is not None:  # a message is due at the window's end: join it
                if len(self._pending) < BATCH:
                    self._pending[notice] = None
                else:
                    self._pending[json.dumps({"what": MANY})] = None
                self._client, message = r, None
            elif now - self._last >= WINDOW:
                self._last, message = now, f"[{notice}]"
            else:
                self._pending, self._client, message = {notice: None}, r, None
                timer = threading.Timer(WINDOW - (now - self._last), self._flush)
                timer.daemon = False  # a job process that ends now still sends it
                timer.start()
        if bump or message is not None:  # else nothing to send now: no round trip
            _send(r, message, bump=bump)

    def _flush(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, None
            client, self._last = self._client, time.monotonic()
        if pending and client is not None:
            _send(client, "[" + ",".join(pending) + "]", bump=False)


def _send(r: redis.Redis, notice: str | None, *, bump: bool = True) -> None:
    try:
        pipe = r.pipeline(transaction=False)
        if bump:
            pipe.incr(VERSION)
        if notice is not None:
            pipe.publish(CHANNEL, notice)
        pipe.execute()
    except redis.RedisError:
        log.debug("live notice not published", exc_info=True)


_PUBLISHER = _Publisher()


def version(r: redis.Redis) -> int:
    """How many changes have been announced (0 before the first)."""
    return int(r.get(VERSION) or 0)


@dataclass
class Notice:
    """One change announced on the channel."""

    what: str
    detail: dict


class Listener:
    """A subscription to the channel, for one open page: `wait` returns the notices that came."""

    def __init__(self, r: redis.Redis) -> None:
        self._pubsub = r.pubsub(ignore_subscribe_messages=True)
        self._pubsub.subscribe(CHANNEL)

    def wait(self, timeout: float) -> list[Notice]:
        """The notices that arrive within `timeout` seconds (after the first, what is queued)."""
        out: list[Notice] = []
        deadline = time.monotonic() + timeout
        while not out:
            left = deadline - time.monotonic()
            # None both on time-out and for a message it skips (the subscription's
            # confirmation): only the deadline says the wait is over.
            message = self._pubsub.get_message(timeout=max(0.0, left))
            if message is None:
                if left <= 0:
                    break
                time.sleep(0.005)  # never a busy loop, whatever the client returns
                continue
            out.extend(_notices(message))
        while (message := self._pubsub.get_message(timeout=0)) is not None:
            out.extend(_notices(message))
        return out

    def close(self) -> None:
        """Unsubscribe and give the connection back."""
        try:
            self._pubsub.close()
        except redis.RedisError:
            pass


def _notices(message: dict) -> list[Notice]:
    if message.get("type") != "message":
        return []
    try:
        data = json.loads(text(message["data"]))
    except (ValueError, TypeError):
        return []
    items = data if isinstance(data, list) else [data]
    return [Notice(str(item.pop("what", "")), item) for item in items if isinstance(item, dict)]
