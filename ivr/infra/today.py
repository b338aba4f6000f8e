"""Things counted by the day, shared by every process: one Redis sorted set per kind.

Each happening is a member (unique, so a repeated webhook is counted once) scored by when it
happened on the service's clock (epoch seconds). "How many today" is a ZCOUNT from the local
midnight; members older than two days are trimmed as new ones come.
"""

from __future__ import annotations

import logging

import redis

log = logging.getLogger(__name__)

KEY = "ivr:today:{name}"
KEEP_SECONDS = 2 * 86400
ESCAPES = "escapes"  # a caller pressed 0 (or said "agent")


def mark(r: redis.Redis, name: str, member: str, at: float) -> None:
    """Count `member` as having happened at `at`; never fails the caller's request."""
    key = KEY.format(name=name)
    try:
        pipe = r.pipeline(transaction=False)
        pipe.zadd(key, {member: at}, nx=True)
        pipe.zremrangebyscore(key, "-inf", at - KEEP_SECONDS)
        pipe.execute()
    except redis.RedisError:
        log.warning("could not count %s for today", name, exc_info=True)


def count_since(r: redis.Redis, name: str, since: float) -> int:
    """How many were counted at or after `since` (epoch seconds)."""
    return int(r.zcount(KEY.format(name=name), since, "+inf"))
