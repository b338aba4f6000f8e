"""What each queue has learned from its calls (handle times, abandonment), in Redis.

Shared by the hold queue, which teaches it, and every estimate: holding callers' and callbacks'.
"""

from __future__ import annotations

from collections.abc import Callable

import redis

from ivr.core.waits.history import HistoryStats

KEY = "ivr:hold:history:{queue}"


def history(r: redis.Redis, queue: str) -> HistoryStats:
    """The queue's learned handle time and abandonment (cold start when Redis has none)."""
    return HistoryStats.from_dict(r.hgetall(KEY.format(queue=queue)))


def learn(r: redis.Redis, queue: str, change: Callable[[HistoryStats], None]) -> HistoryStats:
    """Apply `change` to the queue's history atomically (WATCH/MULTI, retried on conflict)."""
    key = KEY.format(queue=queue)
    result: list[HistoryStats] = []

    def update(pipe: redis.client.Pipeline) -> None:
        stats = HistoryStats.from_dict(pipe.hgetall(key))
        change(stats)
        pipe.multi()
        pipe.hset(key, mapping={k: repr(v) for k, v in stats.to_dict().items()})
        result[:] = [stats]

    r.transaction(update, key)
    return result[0]
