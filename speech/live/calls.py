"""What live speech needs from the running service: models per flow language, call state,
public URLs and the telephony adapter. Shared by the websocket and the `<Record>` fallback."""

from __future__ import annotations

import logging
import threading
from enum import StrEnum
from typing import Any

import redis
from flask import Flask

from ivr.core.callstate import CallState, StateStore
from ivr.errors import StateUnavailable
from ivr.infra import paths
from ivr.infra.services import services_of
from speech.errors import ModelLoadError, ModelNotFound
from speech.models import LoadedModel, find_model, get_model

log = logging.getLogger(__name__)

ENDED_KEY = "ivr:speech:ended:{stream_sid}"  # streams we closed ourselves
ENDED_TTL = 600


class ModelStatus(StrEnum):
    """Where a language's model is."""

    MISSING = "missing"
    LOADING = "loading"
    READY = "ready"


class SpeechModels:
    """Which flow languages can be heard: found once, loaded in the background, then shared.

    A language's model comes from flows.yaml (`defaults.languages[lang].speech_model`), else
    `VOSK_MODEL_PATH`, else an installed model for the language. Missing models are warned about
    once (speech.models.get_model) and the menus stay keypress-only.
    """

    def __init__(self, app: Flask) -> None:
        self.app = app
        self._status: dict[tuple[str, str | None], str] = {}
        self._lock = threading.Lock()

    def setting(self, language: str) -> str | None:
        """The configured model for `language`: its flows.yaml setting, else VOSK_MODEL_PATH."""
        try:
            defaults = self.app.extensions["ivr.flows"].current().file.defaults
            lang = defaults.languages.get(language)
            if lang is not None and lang.speech_model:
                return lang.speech_model
        except Exception:  # flows unavailable: fall back to the process-wide setting
            log.exception("flows unavailable while looking up the speech model")
        return self.app.config.get("VOSK_MODEL_PATH") or None

    def is_available(self, language: str) -> bool:
        """True when a model for `language` exists (it may still be loading)."""
        key = (language, self.setting(language))
        with self._lock:
            status = self._status.get(key)
        if status is None:
            try:
                find_model(*key)
            except ModelNotFound:
                get_model(*key)  # logs the one clear warning for this language
                status = ModelStatus.MISSING
            else:
                status = ModelStatus.LOADING
                # Loading takes seconds: do it now, off the webhook, so the stream finds it ready.
                threading.Thread(target=self._load, args=(key,), daemon=True,
                                 name=f"speech-model-{language}").start()
            with self._lock:
                status = self._status.setdefault(key, status)
        return status != ModelStatus.MISSING

    def model(self, language: str) -> LoadedModel | None:
        """The loaded model for `language` (waits for a load in progress), or None."""
        return self._load((language, self.setting(language)))

    def _load(self, key: tuple[str, str | None]) -> LoadedModel | None:
        try:
            model = get_model(*key)
        except ModelLoadError:  # get_model reports load errors itself; be safe anyway
            model = None
        with self._lock:
            self._status[key] = ModelStatus.READY if model else ModelStatus.MISSING
        return model


def public_url(app: Flask, path: str, **params: Any) -> str:
    """The absolute URL of `path` with a query, for TwiML and REST redirects."""
    return services_of(app).urls.url(path, **params)


def websocket_url(app: Flask) -> str:
    """The wss:// URL of the media stream socket (Twilio connects to wss only)."""
    return services_of(app).urls.websocket(paths.SPEECH_STREAM)


def call_state(app: Flask, call_sid: str) -> CallState | None:
    """The call's state, or None when it is unknown, over, or unreadable (logged)."""
    store = StateStore(app.extensions["ivr.redis"], int(app.config["CALL_STATE_TTL"]))
    try:
        return store.load(call_sid)
    except StateUnavailable as exc:
        log.error("call state unavailable for %s: %s", call_sid, exc)
        return None


def redirect_call(app: Flask, call_sid: str, url: str) -> bool:
    """Point the live call at `url`; False (logged) when the provider refuses."""
    try:
        services_of(app).telephony.redirect(call_sid, url)
    except Exception as exc:  # TelephonyError, or the network: the caller keeps the keypad menu
        log.error("could not redirect call %s to %s: %s", call_sid, url, exc)
        return False
    log.info("call redirected", extra={"call_sid": call_sid, "url": url})
    return True


def mark_stream_ended(app: Flask, stream_sid: str) -> None:
    """Remember that we closed `stream_sid` on purpose, so its error report is not a failure."""
    try:
        app.extensions["ivr.redis"].set(ENDED_KEY.format(stream_sid=stream_sid), 1, ex=ENDED_TTL)
    except redis.RedisError as exc:
        log.warning("could not mark stream %s ended: %s", stream_sid, exc)


def stream_was_ended(app: Flask, stream_sid: str) -> bool:
    """Whether we closed `stream_sid` ourselves."""
    try:
        return bool(app.extensions["ivr.redis"].exists(ENDED_KEY.format(stream_sid=stream_sid)))
    except redis.RedisError:
        return False
