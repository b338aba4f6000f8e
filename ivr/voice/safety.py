"""The TwiML of last resort: it needs neither Redis nor the database, and reaches a person."""

from __future__ import annotations

import logging

from flask import Flask
from twilio.twiml.voice_response import VoiceResponse

from ivr.core.engine.phrasebook import phrase
from ivr.infra import metrics, paths
from ivr.infra.services import services_of

log = logging.getLogger(__name__)


def safe_twiml(app: Flask, kind: str) -> VoiceResponse:
    """Straight to a person: the fallback number, else the operator's queue."""
    metrics.ERRORS.labels(kind).inc()
    r = VoiceResponse()
    r.say(phrase("en", "technical"))
    number = app.config.get("IVR_FALLBACK_NUMBER")
    if number:
        r.dial(number)
        return r
    queue = "support"
    try:
        op = services_of(app).flows.current().file.defaults.operator
        queue = op.queue if op else queue
    except Exception:  # the flows registry itself failing must not block the fallback
        log.exception("flows unavailable in fallback")
    try:
        # The hold queue's own wait URL: it plays music while Redis is down, and puts the
        # caller in our line (and rings an agent for them) as soon as it is back.
        urls = services_of(app).urls
        r.enqueue(queue, wait_url=urls.url(paths.QUEUE_WAIT, queue=queue),
                  wait_url_method="POST", action=urls.url(paths.QUEUE_LEFT, queue=queue),
                  method="POST")
    except Exception:  # no URL can be built: Twilio's own hold music, still in the queue
        log.exception("fallback enqueue without a wait URL")
        r.enqueue(queue)
    return r
