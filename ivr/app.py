"""The Flask application factory."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from ivr.core import hours
from ivr.infra import logs
from ivr.infra.config import load_config
from ivr.infra.services import build_services

log = logging.getLogger(__name__)


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the app: defaults, then environment, then `config` (tests pass theirs here)."""
    app = Flask(__name__)
    app.config.update(load_config(config))
    logs.configure(app)

    hops = int(app.config.get("PROXY_HOPS") or 0)
    if hops:
        # Rebuild scheme/host/port from X-Forwarded-* so signatures validate behind a proxy.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops, x_port=hops)

    services = build_services(app.config)
    app.extensions["ivr.services"] = services
    # Request-path code reads these; each is the one object `services` holds.
    app.extensions["ivr.db"] = services.db
    app.extensions["ivr.redis"] = services.redis
    app.extensions["ivr.flows"] = registry = services.flows
    app.extensions["ivr.telephony"] = services.telephony
    hours.warm(registry.current().file.hours, services.now())

    from callback import api as callbacks
    from ivr import ops
    from ivr.hold import views as hold
    from ivr.voice import webhooks as voice
    from speech.live import stream as speech

    app.register_blueprint(voice.bp)
    app.register_blueprint(ops.bp)
    # Each package binds its own blueprints, settings and clients.
    hold.init_app(app)
    callbacks.init_app(app)
    speech.init_app(app)
    if app.config.get("JOURNEY_WRITER_THREAD", True):
        # Each web process moves journey events from Redis to SQL in the background.
        from ivr.voice.steps import start_journey_writer

        start_journey_writer(app)
    return app
