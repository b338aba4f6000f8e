"""What the callback code needs from the world: the shared `Services` (database, Redis,
telephony, clock, URLs, flows) and the CALLBACK_* settings. RQ jobs get the process's own."""

from __future__ import annotations

import datetime as dt
import os
import threading
from collections.abc import Mapping
from typing import Any

import redis
from rq import Queue

from callback.guard import GuardConfig
from ivr.core.flows.schema import FlowFile
from ivr.infra.config import load_config
from ivr.infra.db import Database
from ivr.infra.services import Services, build_services, services_of
from ivr.infra.telephony import Telephony

RQ_QUEUE = "callbacks"

# Defaults for the CALLBACK_* settings (app config overrides them).
DEFAULTS: dict[str, Any] = {
    "CALLBACK_MODE": "agent-first",  # or "customer-first"
    "CALLBACK_DEFAULT_QUEUE": None,  # None: the flows' operator queue
    "CALLBACK_ALLOWED_COUNTRIES": "US,CA",
    "CALLBACK_DEFAULT_REGION": "US",
    "CALLBACK_LIMIT_PER_NUMBER": "3/3600",
    "CALLBACK_LIMIT_PER_ADDRESS": "10/600",
    "CALLBACK_DAILY_DIAL_CAP": 1000,
    "CALLBACK_MAX_ATTEMPTS": 3,
    "CALLBACK_RETRY_BACKOFF": "120,600",  # seconds before the 2nd, 3rd... attempt
    "CALLBACK_CALLING_WINDOW": "08:00-21:00",  # the called party's local time
    "CALLBACK_RING_TIMEOUT": 25,
    # A dial job not started this long after dispatch is sent again (it is guarded).
    "CALLBACK_DISPATCH_GRACE": 30,
    # An attempt claimed but never confirmed by the provider this long is taken as lost.
    "CALLBACK_LOST_AFTER": 120,
    "CALLBACK_DISPATCH_INTERVAL": 0.1,
    "CALLBACK_SWEEP_INTERVAL": 5.0,
    # A request whose jobs raise this many times ends as failed (the error is kept).
    "CALLBACK_MAX_JOB_FAILURES": 5,
    "CALLBACK_CONSENT_TEXT": (
        "By asking for a callback you agree that we may call this number once about your "
        "request, within our opening hours. We keep the number only for this callback."
    ),
}


class Deps:
    """Everything the service, jobs and webhooks use, on top of the shared `Services`."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.guard = GuardConfig.from_config(services.config)

    @property
    def db(self) -> Database:
        return self.services.db

    @property
    def redis(self) -> redis.Redis:
        return self.services.redis

    @property
    def telephony(self) -> Telephony:
        return self.services.telephony

    @property
    def config(self) -> Mapping[str, Any]:
        return self.services.config

    def flows(self) -> FlowFile:
        """The current flows."""
        return self.services.flows.current().file

    def now(self) -> dt.datetime:
        """The service's clock."""
        return self.services.now()

    def setting(self, key: str) -> Any:
        """A CALLBACK_* setting, falling back to its default."""
        value = self.config.get(key)
        return DEFAULTS.get(key) if value is None else value

    def rq_queue(self) -> Queue:
        """The RQ queue callback jobs go on."""
        return Queue(RQ_QUEUE, connection=self.redis)

    def url(self, path: str, **params: Any) -> str:
        """The absolute URL Twilio should request for `path` (signed against the public base)."""
        return self.services.urls.url(path, **params)

    @classmethod
    def from_app(cls, app) -> Deps:
        """The Deps of an app built by `create_app`."""
        return cls(services_of(app))


def deps_of(app_or_deps) -> Deps:
    """Accept a Flask app or ready Deps."""
    if isinstance(app_or_deps, Deps):
        return app_or_deps
    cached = app_or_deps.extensions.get("callback.deps")
    if cached is None:
        cached = Deps.from_app(app_or_deps)
        app_or_deps.extensions["callback.deps"] = cached
    return cached


# --- the process's own Deps for RQ jobs -----------------------------------------------------

_bound: Deps | None = None
_bound_pid: int | None = None
_lock = threading.Lock()


def bind(deps: Deps) -> None:
    """Make `deps` what jobs in this process use (the worker entry point calls this)."""
    global _bound, _bound_pid
    with _lock:
        _bound, _bound_pid = deps, os.getpid()


def current() -> Deps:
    """The Deps for a job: the bound ones, or built from the environment on first use (no
    Flask app: a job needs the shared services, not the web layer).

    After a fork (RQ's forking worker runs each job in a child) pooled connections belong to
    the parent, so the child drops them and opens its own.
    """
    global _bound, _bound_pid
    with _lock:
        if _bound is not None and _bound_pid != os.getpid():
            _bound.db.engine.dispose(close=False)
            _bound.redis.connection_pool.reset()
            _bound_pid = os.getpid()
        if _bound is None:
            _bound, _bound_pid = Deps(build_services(load_config())), os.getpid()
        return _bound
