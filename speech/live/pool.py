"""Recognition off the event loop: a bounded pool of real threads, and how far behind it is.

Vosk decodes in C and releases the GIL, so recognition runs on OS threads, at most one per
core. Under gunicorn's gevent worker (the Procfile) the sockets are greenlets on one thread: a
decode run there would stop every other call's webhooks, so it goes to gevent's pool of real
threads; elsewhere (`ivr serve`, tests) to a plain thread pool. Either way the caller waits for
the result while the rest of the process goes on.

The pool also says when it cannot keep up: `lag()` is the longest time a piece of audio
waited for a thread in the last few seconds. A stream that would start while the pool is
behind is declined (the menu takes keys) instead of being accepted and then answered late.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")

WINDOW = 3.0  # seconds of queue waits that `lag()` looks back over


def is_green() -> bool:
    """Whether gevent has patched this process (gunicorn's gevent worker)."""
    monkey = sys.modules.get("gevent.monkey")
    return bool(monkey and monkey.is_module_patched("socket"))


def default_size() -> int:
    """One recognition thread per core this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


class RecognitionPool:
    """Run CPU-bound recognition on at most `size` OS threads; measure how long work waits."""

    def __init__(self, size: int | None = None) -> None:
        self.size = size or default_size()
        self.green = is_green()
        if self.green:
            from gevent.threadpool import ThreadPool

            self._pool: Any = ThreadPool(self.size)
        else:
            self._pool = ThreadPoolExecutor(self.size, thread_name_prefix="speech-recognise")
        self._lock = threading.Lock()  # a green lock under gevent: callers are greenlets
        self._waits: deque[tuple[float, float]] = deque(maxlen=512)  # (finished at, waited)
        self.pending = 0  # submitted and not yet finished

    def run(self, fn: Callable[..., T], *args: Any) -> T:
        """`fn(*args)` on a recognition thread; this greenlet or thread waits for the result."""
        submitted = time.monotonic()
        with self._lock:
            self.pending += 1
        started: list[float] = []

        def job() -> T:
            started.append(time.monotonic())
            return fn(*args)

        try:
            if self.green:
                return self._pool.apply(job)
            return self._pool.submit(job).result()
        finally:
            now = time.monotonic()
            waited = (started[0] if started else now) - submitted
            with self._lock:
                self.pending -= 1
                self._waits.append((now, waited))

    def submit(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run `fn(*args)` on a recognition thread without waiting (a model load)."""
        if self.green:
            self._pool.spawn(fn, *args)
        else:
            self._pool.submit(fn, *args)

    def lag(self) -> float:
        """The longest a piece of work waited for a thread in the last `WINDOW` seconds."""
        cutoff = time.monotonic() - WINDOW
        with self._lock:
            recent = [w for at, w in self._waits if at >= cutoff]
        return max(recent, default=0.0)

    def shutdown(self) -> None:
        """Stop the threads (tests and `ivr serve` shutting down)."""
        if self.green:
            self._pool.kill()
        else:
            self._pool.shutdown(wait=False, cancel_futures=True)
