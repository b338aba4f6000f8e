"""Configuration defaults; the environment and the caller's mapping override them."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from ivr.errors import ConfigError

# Keys the service reads from the environment under their bare names.
ENV_KEYS = (
    "TWILIO_AUTH_TOKEN",
    "TWILIO_ACCOUNT_SID",
    "TWILIO_API_BASE",
    "TWILIO_FROM_NUMBER",
    "PUBLIC_BASE_URL",
    "IVR_FLOWS",
    "DATABASE_URL",
    "REDIS_URL",
    "VOSK_MODEL_PATH",
    "IVR_ADMIN_TOKEN",
    "IVR_SECRET_KEY",
    "IVR_ADMIN_API",
    "METRICS_TOKEN",
    "IVR_FALLBACK_NUMBER",
    "IVR_CLOCK_OFFSET",
    "TRUSTED_PROXIES",
    "CALL_CHECK_AFTER",
)
# Settings read from the environment by prefix (callbacks' limits, windows, mode...).
ENV_PREFIXES = ("CALLBACK_", "CONSOLE_", "SPEECH_")

DEFAULTS: dict[str, Any] = {
    "IVR_FLOWS": "flows.yaml",
    # Without credentials the service signs and checks webhooks with this development token,
    # so the simulator and the simulated provider exercise the same validation path.
    "TWILIO_AUTH_TOKEN": None,
    "TWILIO_ACCOUNT_SID": None,
    "TWILIO_API_BASE": None,
    "TWILIO_FROM_NUMBER": "+18005550100",
    "PUBLIC_BASE_URL": None,
    "DATABASE_URL": "sqlite:///ivr.sqlite3",
    "REDIS_URL": None,  # required, except under `ivr serve` (which starts an embedded Valkey)
    "VOSK_MODEL_PATH": None,
    "IVR_ADMIN_TOKEN": None,
    # The admin API: "auto" (on when IVR_ADMIN_TOKEN is set), "on" (a token is required), "off".
    "IVR_ADMIN_API": "auto",
    # When set, /metrics answers only `Authorization: Bearer <METRICS_TOKEN>` (else anyone).
    "METRICS_TOKEN": None,
    "IVR_FALLBACK_NUMBER": None,
    # Seconds added to the system clock (`ivr serve --at`); tests pass a CLOCK callable.
    "IVR_CLOCK_OFFSET": None,
    # How long call state lives in Redis after the last webhook.
    "CALL_STATE_TTL": 4 * 3600,
    # Seconds a Redis or database call may take inside a webhook before we answer safely.
    "BACKEND_TIMEOUT": 0.3,
    # X-Forwarded-* is believed from these proxies only: a count, or networks (ivr.infra.proxies).
    "TRUSTED_PROXIES": None,
    "VALIDATE_SIGNATURES": True,
    "FLOWS_RELOAD_INTERVAL": 1.0,
    # A call's journey still open this long after it started is checked with the provider
    # (each at most once per this many seconds): a lost final status callback never leaves
    # it open for good (ivr.voice.repair).
    "CALL_CHECK_AFTER": 900,
    # Live console pages (server-sent event streams) one web process holds open at most: each
    # is a greenlet under the Procfile's gevent workers, but a whole server thread under a
    # thread worker (keep it under half the threads there; ivr.console.stream).
    "CONSOLE_MAX_STREAMS": 32,
    # Live speech (speech.live): threads that decode audio (none: one per core), and how far
    # behind they may fall before new streams are declined and menus take keys only (seconds:
    # how late an open stream's audio was lately recognised after its caller said it, or a
    # piece of work waited for a thread), and a cap on one process's open streams (0: none
    # beyond the lag).
    "SPEECH_THREADS": None,
    "SPEECH_MAX_LAG": 0.25,
    "SPEECH_MAX_STREAMS": 0,
}

# Every RQ queue the project uses; workers listen on all of them, in this order.
RQ_QUEUES = ("callbacks", "default")

# The account `ivr serve` emulates when no Twilio credentials are set (an account SID is not a
# secret; the emulated account's token is made afresh for each run).
DEV_ACCOUNT_SID = "AC" + "0" * 32
# An admin token shorter than this, or one of these, is refused at start-up.
ADMIN_TOKEN_MIN_LENGTH = 24
WEAK_TOKENS = frozenset({"admin", "changeme", "secret", "password", "token", "test"})


def load_config(overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Return the effective configuration: defaults, then environment, then `overrides`."""
    config = dict(DEFAULTS)
    for key, value in os.environ.items():
        if value and (key in ENV_KEYS or key.startswith(ENV_PREFIXES)):
            config[key] = value
    if overrides:
        config.update(overrides)
    config["SIMULATED_TELEPHONY"] = not config.get("TWILIO_AUTH_TOKEN")
    if not config.get("TWILIO_ACCOUNT_SID"):
        config["TWILIO_ACCOUNT_SID"] = DEV_ACCOUNT_SID
    return config


def check_secrets(config: Mapping[str, Any]) -> None:
    """Refuse to run a process that would serve without real secrets, with a one-line reason.

    Raises:
        ConfigError: no TWILIO_AUTH_TOKEN (webhooks could not be checked), or an admin API that
            is on with no token or a weak one.
    """
    if not config.get("TWILIO_AUTH_TOKEN"):
        raise ConfigError("TWILIO_AUTH_TOKEN is not set: Twilio's webhooks could not be checked. "
                          "Set it and TWILIO_ACCOUNT_SID, or run `ivr serve`, which emulates "
                          "Twilio on this machine")
    token = str(config.get("IVR_ADMIN_TOKEN") or "")
    mode = str(config.get("IVR_ADMIN_API") or "auto").lower()
    if mode == "on" and not token:
        raise ConfigError("IVR_ADMIN_API is on but IVR_ADMIN_TOKEN is not set: set a long random "
                          "token (e.g. `python3 -c 'import secrets; print(secrets.token_urlsafe"
                          "(32))'`), or IVR_ADMIN_API=off")
    if token and mode != "off" and (len(token) < ADMIN_TOKEN_MIN_LENGTH
                                    or token.lower() in WEAK_TOKENS or len(set(token)) < 6):
        raise ConfigError(f"IVR_ADMIN_TOKEN is too weak to guard the admin API: use at least "
                          f"{ADMIN_TOKEN_MIN_LENGTH} random characters, or IVR_ADMIN_API=off")
