"""How often anyone may ask for a callback, and how many we dial a day: counters in Redis.

Requests are rate-limited per number and per client address with moving windows from the
`limits` library (on the service's Redis; an IPv6 client counts by its /64, since one host is
handed a whole /64). A daily cap bounds dials. This is the second half of the guard; which
numbers we call at all is `callback.numbers`.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import math
import time
import weakref

import redis
from limits import RateLimitItemPerSecond
from limits.storage import RedisStorage
from limits.strategies import MovingWindowRateLimiter

from callback.errors import RateLimited
from callback.numbers import GuardConfig, Limit

KEY_PREFIX = "ivr:cb:limit"
_LIMITERS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _limiter(r: redis.Redis) -> MovingWindowRateLimiter:
    """One limiter per Redis connection pool (its scripts are loaded once)."""
    pool = r.connection_pool
    limiter = _LIMITERS.get(pool)
    if limiter is None:
        storage = RedisStorage("redis://", connection_pool=pool, key_prefix=KEY_PREFIX)
        limiter = _LIMITERS[pool] = MovingWindowRateLimiter(storage)
    return limiter


def address_key(address: str) -> str:
    """The client an address counts as: itself for IPv4, its /64 for IPv6."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address[:64]
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


def hit(r: redis.Redis, name: str, key: str, limit: Limit, *, message: str) -> None:
    """Count one event for `key`; RateLimited (with Retry-After) once over the limit."""
    item = RateLimitItemPerSecond(limit.count, limit.window)
    limiter = _limiter(r)
    if not limiter.hit(item, name, key):
        reset = limiter.get_window_stats(item, name, key).reset_time
        raise RateLimited(message, retry_after=math.ceil(reset - time.time()))


def check_request_limits(r: redis.Redis, config: GuardConfig, *, phone: str,
                         address: str | None) -> None:
    """Apply the per-address and per-number limits to one request."""
    if address:
        hit(r, "addr", address_key(address), config.per_address,
            message="Too many callback requests from your connection. Please wait and try "
                    "again, or call us.")
    hit(r, "number", phone, config.per_number,
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
