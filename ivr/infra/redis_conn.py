"""Redis connections: a client for the configured `REDIS_URL`, with webhook-sized time-outs.

There is no implicit embedded server here: a private Valkey per process would give every
gunicorn worker its own call state, presence and queues. `ivr serve` starts (and stops) the
embedded Valkey of a laptop install itself and passes its URL in.
"""

from __future__ import annotations

import redis

from ivr.errors import ConfigError


def connect(url: str | None, *, timeout: float = 0.5) -> redis.Redis:
    """A client for `url`, with short time-outs for webhook paths."""
    if not url:
        raise ConfigError("REDIS_URL is not set: `ivr serve` runs an embedded Valkey, every "
                          "other process needs REDIS_URL (the same Redis for all of them)")
    return redis.Redis.from_url(
        url,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        health_check_interval=30,
        decode_responses=False,
    )


def text(value: bytes | str | int | None) -> str:
    """A Redis reply as text (the clients here return bytes; Lua may return numbers or nil)."""
    if isinstance(value, bytes):
        return value.decode()
    return "" if value is None else str(value)


def decoded(mapping: dict) -> dict[str, str]:
    """An HGETALL reply as text keys and values."""
    return {text(k): text(v) for k, v in mapping.items()}
