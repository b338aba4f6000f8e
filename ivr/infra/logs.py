"""Structured logs: one JSON object a line, carrying the CallSid of the webhook being served."""

from __future__ import annotations

import json
import logging
import sys

from flask import Flask, g, has_request_context, request

_RESERVED = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}


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
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str, ensure_ascii=False)


def configure(app: Flask) -> None:
    """Send the `ivr`, `callback` and `speech` loggers to stderr as JSON (once per process)."""
    level = logging.DEBUG if app.debug else logging.INFO
    for name in ("ivr", "callback", "speech"):
        logger = logging.getLogger(name)
        logger.setLevel(level)
        if not any(isinstance(h.formatter, JsonFormatter) for h in logger.handlers):
            handler = logging.StreamHandler(sys.stderr)
            handler.setFormatter(JsonFormatter())
            logger.addHandler(handler)

