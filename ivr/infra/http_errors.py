"""One answer for every error no view handled: never Flask's HTML error page.

A Twilio webhook that fails unexpectedly answers with what suits its place in the call (the
app factory gives one per path: the caller's TwiML of last resort, which reaches a person; a
pause for a wait URL; a goodbye for an agent's leg; an empty 204 for a status callback);
every other route answers with a JSON error, `{"error": code, "message": text}`, and the
HTTP status. A 4xx keeps its status and says what was wrong; anything else is logged with
its traceback and answered 500 without internals.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)


def init_app(app: Flask, *, fallbacks: Mapping[str, Callable[[], Response]]) -> None:
    """Answer every unhandled error of `app`: a webhook path's own fallback, JSON elsewhere."""

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException):
        if exc.code is not None and exc.code >= 500 and request.path in fallbacks:
            return fallbacks[request.path]()
        return _json(exc.code or 500, (exc.name or "error").lower().replace(" ", "_"),
                     exc.description or exc.name or "error", exc)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        log.exception("unhandled error", extra={"path": request.path})
        if request.path in fallbacks:
            return fallbacks[request.path]()
        return _json(500, "internal_error",
                     "Something went wrong on our side; it has been logged.", None)


def _json(status: int, code: str, message: str, exc: HTTPException | None) -> Response:
    response = jsonify(error=code, message=message)
    response.status_code = status
    if exc is not None:  # keep Allow, WWW-Authenticate, Retry-After and the like
        for name, value in exc.get_headers():
            if name.lower() != "content-type":
                response.headers[name] = value
    return response
