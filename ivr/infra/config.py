"""Configuration defaults; the environment and the caller's mapping override them."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

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
    "IVR_FALLBACK_NUMBER",
    "IVR_CLOCK_OFFSET",
)
# Settings read from the environment by prefix (callbacks' limits, windows, mode...).
ENV_PREFIXES = ("CALLBACK_",)

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
    "IVR_FALLBACK_NUMBER": None,
    # Seconds added to the system clock (`ivr serve --at`); tests pass a CLOCK callable.
    "IVR_CLOCK_OFFSET": None,
    # How long call state lives in Redis after the last webhook.
    "CALL_STATE_TTL": 4 * 3600,
    # Seconds a Redis or database call may take inside a webhook before we answer safely.
    "BACKEND_TIMEOUT": 0.3,
    # Trust X-Forwarded-* from this many proxies when rebuilding the signed URL.
    "PROXY_HOPS": 1,
    "VALIDATE_SIGNATURES": True,
    "FLOWS_RELOAD_INTERVAL": 1.0,
}

# Every RQ queue the project uses; workers listen on all of them, in this order.
RQ_QUEUES = ("callbacks", "default")

DEV_AUTH_TOKEN = "ivr-development-token-not-secret"
DEV_ACCOUNT_SID = "AC" + "0" * 32


def load_config(overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Return the effective configuration: defaults, then environment, then `overrides`."""
    config = dict(DEFAULTS)
    for key, value in os.environ.items():
        if value and (key in ENV_KEYS or key.startswith(ENV_PREFIXES)):
            config[key] = value
    if overrides:
        config.update(overrides)
    config["SIMULATED_TELEPHONY"] = not config.get("TWILIO_AUTH_TOKEN")
    if not config.get("TWILIO_AUTH_TOKEN"):
        config["TWILIO_AUTH_TOKEN"] = DEV_AUTH_TOKEN
    if not config.get("TWILIO_ACCOUNT_SID"):
        config["TWILIO_ACCOUNT_SID"] = DEV_ACCOUNT_SID
    return config
