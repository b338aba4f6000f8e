"""Errors of the click-to-call package; each carries a message a person can act on."""

from __future__ import annotations

from ivr.errors import IvrError


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


class BadToken(CallbackError):
    """The cancel token does not match the request."""

    status = 403
    code = "bad_token"

