"""How many live streams one process takes: it declines a new one while recognition is behind.

A stream accepted when the decoding threads cannot keep up would hear its caller late and
answer later still; declined, its menu simply takes keys (the caller hears the same prompt and
the keypad works as always), and the log says why. Recognition is behind when, lately, the
open streams' audio was recognised more than `SPEECH_MAX_LAG` after their callers said it, or a
piece of work waited that long for a decoding thread. The first catches what the second cannot
see: threads that start at once but run slowly, because the host's cores are busy elsewhere
(other workers, other processes). `SPEECH_MAX_STREAMS` optionally caps one process's open
streams.
"""

from __future__ import annotations

import threading
import time
from collections import deque

from flask import Flask

from speech.live.pool import WINDOW, RecognitionPool


class Streams:
    """One process's live streams: the recognition pool they share, and when to decline one."""

    def __init__(self, pool: RecognitionPool, max_lag: float, max_streams: int) -> None:
        self.pool, self.max_lag, self.max_streams = pool, max_lag, max_streams
        self.admitted = 0  # streams being recognised now
        self.declined = 0  # since the process started
        self._lock = threading.Lock()
        self._behind: deque[tuple[float, float]] = deque(maxlen=512)  # (when, seconds late)

    def heard(self, behind: float) -> None:
        """An open stream's audio was recognised `behind` seconds after its caller said it."""
        with self._lock:
            self._behind.append((time.monotonic(), behind))

    def behind(self) -> float:
        """How late recognition lately was: the most any stream's audio was recognised after
        it was said, or any work waited for a thread, in the last `WINDOW` seconds."""
        cutoff = time.monotonic() - WINDOW
        with self._lock:
            late = max((b for at, b in self._behind if at >= cutoff), default=0.0)
        return max(late, self.pool.lag())

    def admit(self) -> str | None:
        """Take a place for a new stream, or say why recognition cannot take one now."""
        lag = self.behind()
        with self._lock:
            if lag > self.max_lag:
                self.declined += 1
                return (f"speech recognition is {lag * 1000:.0f} ms behind (SPEECH_MAX_LAG "
                        f"{self.max_lag * 1000:.0f} ms)")
            if self.max_streams and self.admitted >= self.max_streams:
                self.declined += 1
                return (f"{self.admitted} streams are open here (SPEECH_MAX_STREAMS "
                        f"{self.max_streams})")
            self.admitted += 1
            return None

    def release(self) -> None:
        """An admitted stream ended."""
        with self._lock:
            self.admitted -= 1


def streams_of(app: Flask) -> Streams:
    """The app's live streams and their recognition pool (speech.live.stream.init_app)."""
    return app.extensions["speech.streams"]
