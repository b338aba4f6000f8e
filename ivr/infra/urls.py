"""The one way to build a URL Twilio will request: absolute, on the service's public base.

The base is `PUBLIC_BASE_URL` when it is set (`ivr serve` sets it to the address it prints).
Without it, inside a webhook the base is the host Twilio just reached us at; outside a request
(a callback job, the dispatcher) there is nothing to go on, and building a URL fails loudly
rather than handing Twilio a relative one it would refuse.
"""

from __future__ import annotations

import re
from urllib.parse import quote_plus, urlsplit

from flask import Request, has_request_context, request

from ivr.errors import IvrError

LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1", "0.0.0.0")


class PublicUrlUnknown(IvrError):
    """No base URL is configured and there is no request to take one from."""


class PublicUrls:
    """Absolute URLs of this service as Twilio reaches it."""

    def __init__(self, base: str | None = None) -> None:
        self._base = (base or "").rstrip("/") or None

    @property
    def configured(self) -> str | None:
        """The configured base (PUBLIC_BASE_URL), if any."""
        return self._base

    def base(self) -> str:
        """https://host[:port] of the service."""
        if self._base:
            return self._base
        if has_request_context():
            host = request.host_url.rstrip("/")
            return host.replace("ws://", "http://", 1).replace("wss://", "https://", 1)
        raise PublicUrlUnknown(
            "PUBLIC_BASE_URL is not set: set it to the https:// address Twilio reaches this "
            "service at (callbacks and agent calls are placed outside any webhook)")

    def url(self, path: str, **params: object) -> str:
        """`path` on the public base, with `params` (None values left out) as the query."""
        query = "&".join(f"{_quoted(k)}={_quoted(str(v))}" for k, v in params.items()
                         if v is not None)
        return self.base() + path + (f"?{query}" if query else "")

    def websocket(self, path: str) -> str:
        """The ws(s):// URL of a websocket path (Twilio Media Streams connect to wss)."""
        base = self.base()
        if base.startswith("https://"):
            return "wss://" + base[len("https://"):] + path
        return "ws://" + base.removeprefix("http://") + path

    def of_request(self, req: Request | None = None) -> str:
        """The URL a request was made to, as Twilio signed it: the public base, the path, and
        the query string exactly as sent (re-encoding would change what was signed)."""
        req = req or request
        base = self._base or req.host_url.rstrip("/")
        url = base + req.script_root + req.path
        if req.query_string:
            url += "?" + req.query_string.decode("latin-1")
        return url


# What quote_plus leaves as it is: most of what goes in our queries (flow and node names,
# turns, queue names, language codes) is only this, and needs no quoting at all.
_UNRESERVED = re.compile(r"[A-Za-z0-9_.~-]*").fullmatch


def _quoted(text: str) -> str:
    """`text` as `urlencode` writes it in a query (quote_plus, nothing safe)."""
    return text if _UNRESERVED(text) else quote_plus(text)


def is_loopback(url: str) -> bool:
    """True when `url` points at this machine only (Twilio's cloud cannot reach it)."""
    return is_loopback_host(urlsplit(url).hostname or "")


def is_loopback_host(host: str) -> bool:
    """True for a name or address of this machine only (127.0.0.0/8, ::1, localhost)."""
    host = host.strip("[]").lower()
    return host in LOOPBACK_HOSTS or host.startswith("127.") or host == "::ffff:127.0.0.1"
