"""How many live streams one process takes: it declines a new one while recognition is behind.

A stream accepted when the decoding threads cannot keep up would hear its caller late and
answer later still; declined, its menu simply takes keys (the caller hears the same prompt and
the keypad works as always), and the log says why. `SPEECH_MAX_LAG` is how long a piece of audio
may lately have waited for a decoding thread; `SPEECH_MAX_STREAMS` optionally caps one
process's open streams.
"""

from __future__ import annotations

import threading

from flask import Flask

from speech.live.pool import RecognitionPool


class Streams:
    """One process's live streams: the recognition pool they share, and when to decline one."""

    def __init__(self, pool: RecognitionPool, max_lag: float, max_streams: int) -> None:
        self.pool, self.max_lag, self.max_streams = pool, max_lag, max_streams
        self.admitted = 0  # streams being recognised now
        self.declined = 0  # since the process started
        self._lock = threading.Lock()

    def admit(self) -> str | None:
        """Take a place for a new stream, or say why recognition cannot take one now."""
        lag = self.pool.lag()
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
