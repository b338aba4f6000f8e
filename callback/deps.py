"""What the callback code needs from the world: the shared `Services` (database, Redis,
telephony, clock, URLs, flows) and the CALLBACK_* settings (`callback.settings`)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import redis
from rq import Queue

from callback.numbers import GuardConfig
from callback.settings import DEFAULTS, RQ_QUEUE
from ivr.core.flows.schema import FlowFile
from ivr.infra.db import Database
from ivr.infra.services import Services, services_of
from ivr.infra.telephony import Telephony


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
