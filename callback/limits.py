"""How often anyone may ask for a callback, and how many we dial a day: counters in Redis.

Requests are rate-limited per number and per client address, with a daily cap on dials (the
second half of the guard; which numbers we call at all is `callback.numbers`).
"""

from __future__ import annotations

import datetime as dt
import time

import redis

from callback.errors import RateLimited
from callback.numbers import GuardConfig, Limit

KEY_PREFIX = "ivr:cb:limit"


def hit(r: redis.Redis, name: str, key: str, limit: Limit, *, now: float | None = None,
        message: str) -> None:
    """Count one event for `key`; RateLimited (with Retry-After) once over the limit."""
    now = time.time() if now is None else now
    window_start = int(now // limit.window) * limit.window
    redis_key = f"{KEY_PREFIX}:{name}:{key}:{window_start}"
    pipe = r.pipeline()
    pipe.incr(redis_key)
    pipe.expire(redis_key, limit.window + 5)
    count = pipe.execute()[0]
    if count > limit.count:
        raise RateLimited(message, retry_after=int(window_start + limit.window - now) + 1)


def check_request_limits(r: redis.Redis, config: GuardConfig, *, phone: str,
                         address: str | None, now: float | None = None) -> None:
    """Apply the per-address and per-number limits to one request."""
    if address:
        hit(r, "addr", address, config.per_address, now=now,
            message="Too many callback requests from your connection. Please wait and try "
                    "again, or call us.")
    hit(r, "number", phone, config.per_number, now=now,
        message="This number has asked for several callbacks already. Please wait before "
                "asking again, or call us.")


def daily_key(day: dt.date) -> str:
    """The Redis key counting dials on a UTC day."""
    return f"{KEY_PREFIX}:dials:{day.isoformat()}"


def dials_left_today(r: redis.Redis, config: GuardConfig, now: dt.datetime) -> int:
    """How many more callback dials the daily cap allows today (UTC)."""
    used = int(r.get(daily_key(now.astimezone(dt.UTC).date())) or 0)
    return max(0, config.daily_dials - used)


def count_dial(r: redis.Redis, config: GuardConfig, now: dt.datetime) -> bool:
    """Count one dial against today's cap; False (and not counted) when the cap is reached."""
    key = daily_key(now.astimezone(dt.UTC).date())
    pipe = r.pipeline()
    pipe.incr(key)
    pipe.expire(key, 2 * 86400)
    used = pipe.execute()[0]
    if used > config.daily_dials:
        r.decr(key)
        return False
    return True


def seconds_to_next_utc_day(now: dt.datetime) -> int:
    """Seconds until the daily cap resets."""
    utc = now.astimezone(dt.UTC)
    tomorrow = dt.datetime.combine(utc.date() + dt.timedelta(days=1), dt.time(0), tzinfo=dt.UTC)
    return int((tomorrow - utc).total_seconds()) + 1
