"""The Flask application factory: the composition root of the web service.

It builds the shared `Services` once, then wires each package in: the call webhooks, the hold
queue, callbacks and live speech. Packages that the engine asks for something (a callback, a
speech stream) register a hook here; the call webhooks import none of them.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from callback import api as callbacks
from ivr import ops
from ivr.core import hours
from ivr.hold import views as hold
from ivr.infra import journey, logs, metrics, paths
from ivr.infra.config import load_config
from ivr.infra.services import build_services
from ivr.voice import webhooks as voice
from speech.live import stream as speech

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
    hours.warm(services.flows.current().file.hours, services.now())

    app.register_blueprint(voice.bp)
    app.register_blueprint(ops.bp)
    hold.init_app(app)
    callbacks.init_app(app)
    speech.init_app(app)
    metrics.time_webhooks(app, paths.ALL)
    if app.config.get("JOURNEY_WRITER_THREAD", True):
        # Each web process moves journey events from Redis to SQL in the background.
        writer = journey.JourneyWriter(services.db, services.redis)
        writer.start()
        app.extensions["ivr.journey_writer"] = writer
    return app
