"""Structured logs: one JSON object a line, carrying the CallSid of the webhook being served.

Nothing secret reaches a line: passwords in URLs (`scheme://user:password@host`) and the app's
secret settings are masked in every record's message, arguments, extras and exception text.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from flask import Flask, current_app, g, has_app_context, has_request_context, request

_RESERVED = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}

MASK = "***"
# The settings whose values never appear in a log line.
SECRET_SETTINGS = ("TWILIO_AUTH_TOKEN", "IVR_ADMIN_TOKEN", "METRICS_TOKEN")
# Anything that starts like a URL, up to a space, a quote or an angle bracket.
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]+")


def mask_url(url: str | None) -> str:
    """`url` with any password replaced by ***."""
    if not url:
        return ""
    try:
        parts = urlsplit(url)
    except ValueError:  # a malformed host (an unclosed "["): hide all of the user part
        scheme, sep, rest = url.partition("://")
        authority, slash, path = rest.partition("/")
        _, at, host = authority.rpartition("@")
        return f"{scheme}{sep}{MASK}{at}{host}{slash}{path}" if at else url
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", f":{MASK}@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def secrets_of(*configs: Mapping[str, Any]) -> tuple[str, ...]:
    """The secret settings of `configs` that are set, longest first (none hides a longer one)."""
    values = {str(c[key]) for c in configs for key in SECRET_SETTINGS if c.get(key)}
    return tuple(sorted(values, key=len, reverse=True))


def mask_secrets(text: str, secrets: tuple[str, ...]) -> str:
    """`text` with URL passwords and each of `secrets` replaced by ***."""
    text = _URL.sub(lambda match: mask_url(match.group()), text)
    for secret in secrets:
        text = text.replace(secret, MASK)
    return text


class SecretMask(logging.Filter):
    """Masks a record in place, before any handler formats it (the root's, pytest's, too).

    The secrets are those of the app configured last (a process runs one; threads outside a
    request log too) and of the current app, if another (the Twilio emulator's has none).
    """

    def __init__(self) -> None:
        super().__init__()
        self.config: Mapping[str, Any] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        configs = (self.config, current_app.config) if has_app_context() else (self.config,)
        secrets = secrets_of(*configs)
        try:
            message = record.getMessage()
        except (TypeError, ValueError, KeyError):  # arguments that do not fit: keep both
            message = f"{record.msg} {record.args!r}"
        record.msg, record.args = mask_secrets(message, secrets), ()
        if record.exc_info and not record.exc_text:
            record.exc_text = _PLAIN.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask_secrets(record.exc_text, secrets)
        if record.stack_info:
            record.stack_info = mask_secrets(record.stack_info, secrets)
        for key, value in list(record.__dict__.items()):
            if key not in _RESERVED and not key.startswith("_"):
                setattr(record, key, _masked(value, secrets))
        return True


def _masked(value: Any, secrets: tuple[str, ...]) -> Any:
    if isinstance(value, str):
        return mask_secrets(value, secrets)
    if isinstance(value, Mapping):
        return {key: _masked(item, secrets) for key, item in value.items()}
    if isinstance(value, list | tuple | set):
        return [_masked(item, secrets) for item in value]
    if value is None or isinstance(value, bool | int | float):
        return value
    return mask_secrets(str(value), secrets)  # what the JSON line would show: its str()


_PLAIN = logging.Formatter()
_MASKER = SecretMask()


class JsonFormatter(logging.Formatter):
    """Formats a record as JSON with its `extra` fields and the current call's SID."""

    def format(self, record: logging.LogRecord) -> str:
        out = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if has_request_context():
            out.setdefault("call_sid", request.values.get("CallSid") or g.get("call_sid"))
            out["path"] = request.path
        for key, value in record.__dict__.items():
            if key not in _RESERVED and not key.startswith("_"):
                out[key] = value
        if record.exc_info or record.exc_text:
            # The masked text SecretMask left, rather than the traceback formatted afresh.
            out["exc"] = record.exc_text or self.formatException(record.exc_info)
        return json.dumps(out, default=str, ensure_ascii=False)


def configure(app: Flask) -> None:
    """Send the `ivr`, `callback` and `speech` loggers to stderr as masked JSON (once a process)."""
    configure_process(app.config, debug=app.debug)


def configure_process(config: Mapping[str, Any], *, debug: bool = False) -> None:
    """`configure` for a process without a Flask app (the worker): also masks whatever reaches
    the root logger's handlers (RQ's own lines, for one)."""
    _MASKER.config = config
    level = logging.DEBUG if debug else logging.INFO
    for name in ("ivr", "callback", "speech"):
        logger = logging.getLogger(name)
        logger.setLevel(level)
        if not any(isinstance(h.formatter, JsonFormatter) for h in logger.handlers):
            handler = logging.StreamHandler(sys.stderr)
            handler.setFormatter(JsonFormatter())
            handler.addFilter(_MASKER)
            logger.addHandler(handler)
    for handler in logging.getLogger().handlers:
        if _MASKER not in handler.filters:
            handler.addFilter(_MASKER)
