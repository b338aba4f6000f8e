"""Which flow languages can be heard: each language's Vosk model, found once, loaded in the
background, then shared by the process's streams and recordings."""

from __future__ import annotations

import logging
import threading
from enum import StrEnum

from flask import Flask

from ivr.core.flows.lint_languages import used_languages
from ivr.core.flows.schema import FlowFile
from ivr.infra.services import services_of
from speech.errors import ModelLoadError, ModelNotFound
from speech.live.pool import RecognitionPool
from speech.models import LoadedModel, find_model, get_model

log = logging.getLogger(__name__)


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

    def __init__(self, app: Flask, loader: RecognitionPool) -> None:
        self.app = app
        self.loader = loader  # a thread for loading models, apart from recognition
        self._status: dict[tuple[str, str | None], str] = {}
        # The models loaded, by (language, setting): finding one again would read every
        # installed package's metadata (tens of ms, on the event loop) at each stream's start.
        self._loaded: dict[tuple[str, str | None], LoadedModel] = {}
        self._lock = threading.Lock()

    def setting(self, language: str) -> str | None:
        """The configured model for `language`: its flows.yaml setting, else VOSK_MODEL_PATH."""
        try:
            flowfile = services_of(self.app).flows.current().file
        except Exception:  # flows unavailable: fall back to the process-wide setting
            log.exception("flows unavailable while looking up the speech model")
            flowfile = None
        return model_setting(flowfile, language, self.app.config.get("VOSK_MODEL_PATH"))

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
                # Loading takes seconds of C: do it now on the loading thread, off the
                # webhook and the event loop, so the stream finds it ready. (The Procfile's
                # gunicorn loads the flows' models before it forks: ivr.gunicorn_config.)
                self.loader.submit(self._load, key)
            with self._lock:
                status = self._status.setdefault(key, status)
        return status != ModelStatus.MISSING

    def model(self, language: str) -> LoadedModel | None:
        """The loaded model for `language` (waits for a load in progress), or None."""
        key = (language, self.setting(language))
        with self._lock:
            loaded = self._loaded.get(key)
        if loaded is not None:  # loaded already: nothing to find, load or wait for
            return loaded
        return self.loader.run(self._load, key)  # seconds of C: on the loading thread

    def _load(self, key: tuple[str, str | None]) -> LoadedModel | None:
        try:
            model = get_model(*key)
        except ModelLoadError:  # get_model reports load errors itself; be safe anyway
            model = None
        with self._lock:
            self._status[key] = ModelStatus.READY if model else ModelStatus.MISSING
            if model is not None:
                self._loaded[key] = model
        return model


def model_setting(flowfile: FlowFile | None, language: str, fallback: str | None) -> str | None:
    """The model a language is heard with: its `defaults.languages.<lang>.speech_model`, else
    `fallback` (VOSK_MODEL_PATH), else None (an installed model for the language)."""
    lang = flowfile.defaults.languages.get(language) if flowfile is not None else None
    if lang is not None and lang.speech_model:
        return lang.speech_model
    return fallback or None


def preload(flowfile: FlowFile, fallback: str | None) -> list[LoadedModel]:
    """Load the model of every language the flows speak that has one installed, into this
    process's model cache (speech.models), so that processes forked from it share it."""
    loaded = []
    for language in used_languages(flowfile):
        setting = model_setting(flowfile, language, fallback)
        try:
            find_model(language, setting)
        except ModelNotFound:
            continue  # keypress only; the workers warn about it once, as always
        model = get_model(language, setting)
        if model is not None:
            loaded.append(model)
    return loaded
