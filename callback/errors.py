"""Errors of the click-to-call package; each carries a message a person can act on."""

from __future__ import annotations

import datetime as dt
import unicodedata

from ivr.errors import IvrError

EXCERPT_CHARS = 24


def excerpt(value: object, limit: int = EXCERPT_CHARS) -> str:
    """A short, printable quote of what someone sent, for an error message: control and
    formatting characters become '?', and anything past `limit` characters is cut to '...'."""
    text = value if isinstance(value, str) else repr(value)
    cut = text[:limit]
    clean = "".join("?" if unicodedata.category(ch)[0] in "CZ" and ch != " " else ch
                    for ch in cut)
    return clean + ("..." if len(text) > limit else "")


class CallbackError(IvrError):
    """Root of callback errors; `status` is the HTTP status the API answers with."""

    status = 400
    code = "callback_error"


class InvalidNumber(CallbackError):
    """The phone number cannot be parsed or is not a real number."""

    code = "invalid_number"


class NumberRefused(CallbackError):
    """The number is real but we will not call it (country, premium rate, short code...)."""

    code = "number_refused"


class InvalidRequest(CallbackError):
    """A field of the request is missing or malformed."""

    code = "invalid_request"


class ConsentRequired(CallbackError):
    """The visitor did not tick the box that lets us call them."""

    code = "consent_required"


class ProofRequired(CallbackError):
    """The request carries no valid, unused proof-of-work (ALTCHA) solution."""

    status = 403
    code = "proof_required"


class OriginRefused(CallbackError):
    """The request comes from a web page this service does not serve callbacks for."""

    status = 403
    code = "origin_refused"


class TooLarge(CallbackError):
    """The request body is larger than any callback request can be."""

    status = 413
    code = "too_large"


class RateLimited(CallbackError):
    """Too many requests: try again after `retry_after` seconds."""

    status = 429
    code = "rate_limited"

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = max(1, int(retry_after))


class NotFound(CallbackError):
    """No callback request has that id."""

    status = 404
    code = "not_found"


class TokenRequired(CallbackError):
    """No token was sent (in the X-Callback-Token header or the body)."""

    status = 401
    code = "token_required"


class BadToken(CallbackError):
    """The token does not match the request."""

    status = 403
    code = "bad_token"


class ActionRefused(CallbackError):
    """A console action the request's state does not allow now (it is being dialled, it is
    done, or it changed while the supervisor looked at it)."""

    status = 409
    code = "action_refused"


class TimeNotAllowed(CallbackError):
    """A chosen call time that has passed or is outside the calling hours for the number;
    `next_allowed` is the first time that is allowed (None when there is none)."""

    code = "time_not_allowed"

    def __init__(self, message: str, next_allowed: dt.datetime | None) -> None:
        super().__init__(message)
        self.next_allowed = next_allowed
