"""Who may ask: Twilio webhook signatures (rebuild the public URL, check `X-Twilio-Signature`),
bearer tokens for the admin API and metrics, and the tokens a media stream presents."""

from __future__ import annotations

import functools
import hashlib
import hmac
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

from flask import Request, abort, current_app, request
from twilio.request_validator import RequestValidator, add_port, compare, remove_port

from ivr.infra.urls import PublicUrls

log = logging.getLogger(__name__)


def public_url(req: Request, base_url: str | None = None) -> str:
    """The URL Twilio signed for `req`.

    With `PUBLIC_BASE_URL` set, that base is authoritative (a TLS-terminating proxy or tunnel may
    rewrite scheme, host and port). Otherwise the request's own URL is used, after ProxyFix has
    applied the trusted `X-Forwarded-Proto/Host/Port` headers.
    """
    return PublicUrls(base_url).of_request(req)


def is_valid_signature(req: Request, auth_token: str, base_url: str | None = None) -> bool:
    """True when `req` carries a valid Twilio signature for its URL and body."""
    signature = req.headers.get("X-Twilio-Signature", "")
    if not signature:
        return False
    url = public_url(req, base_url)
    validator = RequestValidator(auth_token)
    if "bodySHA256" in req.args:
        # JSON webhooks sign only the URL; the body is bound by its hash in the query.
        return validator.validate(url, req.get_data(as_text=True), signature)
    params = req.form.to_dict(flat=True)
    if compare(validator.compute_signature(url, params), signature):
        return True
    # Twilio may have signed the URL with its port or without it. `RequestValidator.validate`
    # computes both HMACs on every webhook; the other form is tried here only when needed.
    return compare(validator.compute_signature(_other_port_form(url), params), signature)


def _other_port_form(url: str) -> str:
    """`url` with its port removed, or with the scheme's port added when it names none."""
    parsed = urlparse(url)
    return remove_port(parsed) if parsed.port else add_port(parsed)


def twilio_signed(view: Callable) -> Callable:
    """Decorator: answer 403 unless the request is signed by Twilio with our auth token."""

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        cfg = current_app.config
        # The request itself, not its proxy: the check reads a dozen of its attributes.
        if cfg.get("VALIDATE_SIGNATURES", True) and not is_valid_signature(
            request._get_current_object(), cfg["TWILIO_AUTH_TOKEN"], cfg.get("PUBLIC_BASE_URL")
        ):
            log.warning(
                "rejected unsigned or forged webhook",
                extra={"path": request.path, "call_sid": request.form.get("CallSid")},
            )
            abort(403)
        return view(*args, **kwargs)

    return wrapper


# --- media stream tokens ------------------------------------------------------------------------
# A <Stream> URL cannot carry a query, so its upgrade's signature is the same for every call:
# one leaked header would open a socket for any live call. Each stream therefore presents, in
# its custom parameters, a token bound to the call, the menu and an expiry.
STREAM_TOKEN_SECONDS = 15 * 60


def stream_token(secret: str, call_sid: str, flow: str, node: str, expires: int) -> str:
    """HMAC-SHA256 of the call, the menu and the expiry (epoch seconds)."""
    message = f"ivr-stream-v1|{call_sid}|{flow}|{node}|{expires}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def is_stream_token_valid(secret: str, call_sid: str, flow: str, node: str, expires: str,
                          token: str, now: float) -> bool:
    """True when `token` was made for exactly this call and menu and has not expired."""
    if not expires.isdigit() or int(expires) < now or not token:
        return False
    expected = stream_token(secret, call_sid, flow, node, int(expires))
    return hmac.compare_digest(expected.encode(), token.encode())


# --- bearer tokens -------------------------------------------------------------------------------
def bearer_token(req: Request | None = None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, or None."""
    scheme, _, token = (req or request).headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def is_token(given: str | None, expected: str | None) -> bool:
    """True when both are set and equal (compared in constant time)."""
    return bool(given and expected) and hmac.compare_digest(str(given).encode(),
                                                            str(expected).encode())


@dataclass(frozen=True)
class Refusal:
    """Why a request is not let in: the HTTP status, a message, and headers to send."""

    status: int
    message: str
    headers: dict[str, str] = field(default_factory=dict)


def admin_refusal(config: Mapping[str, Any], token: str | None) -> Refusal | None:
    """None when `token` is the admin token and the admin API is on; else why not."""
    expected = config.get("IVR_ADMIN_TOKEN")
    if not expected or str(config.get("IVR_ADMIN_API") or "").lower() == "off":
        return Refusal(403, "the admin API is disabled: set IVR_ADMIN_TOKEN on the server")
    if token is None:
        return Refusal(401, "send 'Authorization: Bearer <IVR_ADMIN_TOKEN>'",
                       {"WWW-Authenticate": 'Bearer realm="ivr-admin"'})
    if not is_token(token, expected):
        return Refusal(403, "that admin token is not valid")
    return None
