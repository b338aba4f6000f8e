"""The Flask application factory: the composition root of the web service.

It builds the shared `Services` once, then wires each package in: the call webhooks, the hold
queue, callbacks and live speech. Packages that the engine asks for something (a callback, a
speech stream) register a hook here; the call webhooks import none of them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from flask import Flask, Response, request
from twilio.twiml.voice_response import VoiceResponse

from callback import api as callbacks
from ivr import console, ops
from ivr.core import hours
from ivr.hold import views as hold
from ivr.infra import http_errors, journey, live, logs, metrics, paths
from ivr.infra.config import check_secrets, load_config
from ivr.infra.proxies import trust_proxies
from ivr.infra.services import build_services, services_of
from ivr.infra.twiml import twiml_response
from ivr.voice import webhooks as voice
from ivr.voice.safety import apology, safe_twiml
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
    console.init_app(app)
    live_notices(app)
    metrics.time_webhooks(app, paths.ALL)
    # Never an HTML error page: each webhook's own fallback, JSON elsewhere.
    http_errors.init_app(app, fallbacks=_webhook_fallbacks(app))
    if app.config.get("JOURNEY_WRITER_THREAD", True):
        # Each web process moves journey events from Redis to SQL in the background.
        writer = journey.JourneyWriter(services.db, services.redis)
        writer.start()
        app.extensions["ivr.journey_writer"] = writer
    return app


READS = frozenset(("GET", "HEAD", "OPTIONS"))


def live_notices(app: Flask) -> None:
    """Every request that may have changed a call, an agent or a callback tells the console
    (`ivr.infra.live`): webhooks, admin and agent actions, callback requests. Reads do not."""
    r = services_of(app).redis

    @app.after_request
    def _changed(response: Response) -> Response:
        environ = request.environ
        if environ["REQUEST_METHOD"] not in READS and response.status_code < 400:
            live.changed(r, "request", path=request.path,
                         counted=bool(environ.get(live.COUNTED)))
        return response


# Where each webhook is in a call decides what an unexpected error may answer with.
CALLER_DOCUMENTS = (paths.INCOMING, paths.GATHER, paths.CONTINUE, paths.DIALED, paths.RECORDED,
                    paths.FALLBACK, paths.QUEUE_LEFT, paths.SPEECH_RECORD, paths.SPEECH_RECORDED)
WAIT_DOCUMENTS = (paths.QUEUE_WAIT, paths.HOLD_KEY)  # inside <Enqueue>: no <Enqueue> or <Dial>
STATUS_CALLBACKS = (paths.STATUS, paths.HOLD_AGENT_STATUS, paths.CALLBACK_STATUS,
                    paths.SPEECH_STREAM_STATUS)


def _webhook_fallbacks(app: Flask) -> dict[str, Callable[[], Response]]:
    """The caller reaches a person; a holding caller keeps holding (the wait URL comes again);
    an agent's or a callback customer's leg hears an apology; a status callback is taken."""
    def caller() -> Response:
        return twiml_response(safe_twiml(app, "engine_error"))

    def holding() -> Response:
        r = VoiceResponse()
        r.pause(length=2)
        return twiml_response(r)

    def leg() -> Response:
        return twiml_response(apology(app))

    def status() -> Response:
        return Response("", status=204)

    def join() -> Response:  # a screen before a bridge: the two are joined all the same
        return twiml_response(VoiceResponse())

    out: dict[str, Callable[[], Response]] = {p: leg for p in paths.ALL}
    out.update({p: caller for p in CALLER_DOCUMENTS})
    out.update({p: holding for p in WAIT_DOCUMENTS})
    out.update({p: status for p in STATUS_CALLBACKS})
    out[paths.CALLBACK_PICKED_UP] = join
    out.pop(paths.SPEECH_STREAM, None)  # a websocket: its own errors close it
    return out
