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

from callback import api as callbacks
from ivr import ops
from ivr.core import hours
from ivr.hold import views as hold
from ivr.infra import http_errors, journey, logs, metrics, paths
from ivr.infra.config import check_secrets, load_config
from ivr.infra.proxies import trust_proxies
from ivr.infra.services import build_services
from ivr.infra.twiml import twiml_response
from ivr.voice import webhooks as voice
from ivr.voice.safety import safe_twiml
from speech.live import stream as speech

log = logging.getLogger(__name__)


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the app: defaults, then environment, then `config` (tests pass theirs here)."""
    app = Flask(__name__)
    app.config.update(load_config(config))
    check_secrets(app.config)  # a process without real secrets refuses to start
    logs.configure(app)

    # X-Forwarded-* is believed only from the proxies configured (none by default).
    app.wsgi_app = trust_proxies(app.wsgi_app, app.config.get("TRUSTED_PROXIES"))

    services = build_services(app.config)
    app.extensions["ivr.services"] = services
    hours.warm(services.flows.current().file.hours, services.now())

    app.register_blueprint(voice.bp)
    app.register_blueprint(ops.bp)
    hold.init_app(app)
    callbacks.init_app(app)
    speech.init_app(app)
    metrics.time_webhooks(app, paths.ALL)
    # Never an HTML error page: TwiML that reaches a person on webhooks, JSON elsewhere.
    http_errors.init_app(app, twiml_paths=paths.ALL,
                         fallback=lambda: twiml_response(safe_twiml(app, "engine_error")))
    if app.config.get("JOURNEY_WRITER_THREAD", True):
        # Each web process moves journey events from Redis to SQL in the background.
        writer = journey.JourneyWriter(services.db, services.redis)
        writer.start()
        app.extensions["ivr.journey_writer"] = writer
    return app
