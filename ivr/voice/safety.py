"""The TwiML of last resort: it needs neither Redis nor the database, and reaches a person."""

from __future__ import annotations

import logging

from flask import Flask, has_request_context, request
from twilio.twiml.voice_response import VoiceResponse

from ivr.core.engine.prompts import say, voice_of
from ivr.core.flows.schema import Defaults
from ivr.core.i18n.catalog import Phrasebook
from ivr.core.i18n.languages import twilio_queue
from ivr.infra import metrics, paths
from ivr.infra.services import services_of

log = logging.getLogger(__name__)


def safe_twiml(app: Flask, kind: str) -> VoiceResponse:
    """Straight to a person (the fallback number, else the operator's queue), with an apology
    in the caller's language when it can still be found."""
    metrics.ERRORS.labels(kind).inc()
    r = VoiceResponse()
    defaults = _defaults(app)
    # Redis failing is why we are here: asking it for the call's language would only wait.
    language = _apologise(app, r, defaults, "call.technical",
                          ask_state=kind != "state_unavailable")
    number = app.config.get("IVR_FALLBACK_NUMBER")
    if number:
        r.dial(number)
        return r
    queue = defaults.operator.queue if defaults.operator else "support"
    held_in = twilio_queue(queue, language, defaults.language)
    try:
        # The hold queue's own wait URL: it plays music while Redis is down, and puts the
        # caller in our line (and rings an agent for them) as soon as it is back.
        urls = services_of(app).urls
        r.enqueue(held_in, wait_url=urls.url(paths.QUEUE_WAIT, queue=queue, lang=language),
                  wait_url_method="POST",
                  action=urls.url(paths.QUEUE_LEFT, queue=queue, lang=language),
                  method="POST")
    except Exception:  # no URL can be built: Twilio's own hold music, still in the queue
        log.exception("fallback enqueue without a wait URL")
        r.enqueue(held_in)
    return r


def apology(app: Flask) -> VoiceResponse:
    """For a leg that is not the caller's (an agent's, a callback's): sorry, and goodbye."""
    r = VoiceResponse()
    _apologise(app, r, _defaults(app), "call.error")
    r.hangup()
    return r


def _defaults(app: Flask) -> Defaults:
    """The flows' defaults; the schema's own (English, queue 'support') when even the flows
    registry fails."""
    try:
        return services_of(app).flows.current().file.defaults
    except Exception:  # the flows registry itself failing must not block the fallback
        log.exception("flows unavailable in fallback")
        return Defaults()


def _apologise(app: Flask, r: VoiceResponse, defaults: Defaults, key: str,
               ask_state: bool = True) -> str:
    """`key` in the call's language: the URL's `lang` (hold URLs carry it), else the
    saved call state's, else the flows' default. Returns the language spoken."""
    language = defaults.language
    try:
        sid = request.form.get("CallSid", "") if has_request_context() else ""
        given = request.args.get("lang", "") if has_request_context() else ""
        state = services_of(app).calls.load(sid) if ask_state and sid and not given else None
        language = given or (state.language if state else language)
    except Exception:  # Redis failing is why we are here: keep the default
        log.warning("the caller's language is unknown in the fallback", exc_info=True)
    text = Phrasebook(defaults.phrases).say(language, key)
    say(r, text, *voice_of(defaults, language))
    return language
