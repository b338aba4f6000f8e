"""A real Redis for the flows tests: $REDIS_URL, else an embedded Valkey server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from ivr.infra.redis_conn import connect


def _clear(client: redis.Redis) -> None:
    # Only our own keys: other test modules may share this server.
    for key in client.scan_iter(match="ivr:flows:*"):
        client.delete(key)


@pytest.fixture
def flows_redis(redis_url: str) -> Iterator[redis.Redis]:
    client = connect(redis_url, timeout=2.0)
    _clear(client)
    yield client
    _clear(client)
    client.close()
