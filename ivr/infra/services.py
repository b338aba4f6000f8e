"""What every part of the service shares, built once: config, clock, public URLs, telephony,
Redis (and the call state in it), the database and the flows.

The composition root (`create_app`, the CLI, the workers) calls `build_services(config)` and
hands the result down. Jobs and workers get it without building a Flask app.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import redis

from ivr.infra.call_store import StateStore
from ivr.infra.clock import Clock, clock_from, system_now
from ivr.infra.db import Database
from ivr.infra.flows_registry import FlowRegistry
from ivr.infra.redis_conn import connect
from ivr.infra.telephony import Telephony, make_telephony
from ivr.infra.urls import PublicUrls


@dataclass
class Services:
    """The shared parts of one running service."""

    config: Mapping[str, Any]
    clock: Clock
    urls: PublicUrls
    telephony: Telephony
    redis: redis.Redis
    db: Database
    flows: FlowRegistry
    calls: StateStore  # call state, in `redis`

    def now(self) -> dt.datetime:
        """The service's time: aware UTC."""
        return self.clock()

    def on_system_clock(self, at: dt.datetime) -> dt.datetime:
        """The real moment the service's clock will read `at` (for tools that only know the
        system clock, like RQ's scheduler; the same moment unless `--at` shifted the clock)."""
        return at - (self.now() - system_now())

    def close(self) -> None:
        """Release pooled connections."""
        self.db.dispose()
        self.redis.close()


def services_of(app: Any) -> Services:
    """The shared parts a Flask app was built with (`create_app` puts them there)."""
    return app.extensions["ivr.services"]


def build_services(config: Mapping[str, Any], *, migrate: bool = True) -> Services:
    """Connect to everything `config` names (see `ivr.infra.config.load_config`)."""
    db = Database(config["DATABASE_URL"])
    if migrate:
        db.create_schema()
    client = connect(config.get("REDIS_URL"), timeout=float(config["BACKEND_TIMEOUT"]))
    clock = clock_from(config)
    flows = FlowRegistry(config["IVR_FLOWS"], client,
                         check_interval=float(config["FLOWS_RELOAD_INTERVAL"]),
                         background=True, wall_clock=lambda: clock().timestamp())
    return Services(config=config, clock=clock,
                    urls=PublicUrls(config.get("PUBLIC_BASE_URL")),
                    telephony=make_telephony(config, client),
                    redis=client, db=db, flows=flows,
                    calls=StateStore(client, int(config["CALL_STATE_TTL"])))
