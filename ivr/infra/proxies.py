"""Which proxies' X-Forwarded-* headers to believe: none unless `TRUSTED_PROXIES` says so.

Believing them by default would let any client pick its own address (and so dodge the
per-address limits) and the host its signature is checked against. `TRUSTED_PROXIES` is a
count (that many proxies in front, as werkzeug's ProxyFix counts them) or a comma-separated
list of networks: the headers are believed only from a peer inside one of them.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable

from werkzeug.middleware.proxy_fix import ProxyFix

from ivr.errors import ConfigError

WSGIApp = Callable


def trust_proxies(wsgi_app: WSGIApp, setting: str | int | None) -> WSGIApp:
    """`wsgi_app`, reading X-Forwarded-* only as `setting` allows."""
    text = "" if setting is None else str(setting).strip()
    if text in ("", "0", "none", "off"):
        return wsgi_app
    if text.isdigit():
        hops = int(text)
        return ProxyFix(wsgi_app, x_for=hops, x_proto=hops, x_host=hops, x_port=hops)
    try:
        networks = [ipaddress.ip_network(part.strip(), strict=False)
                    for part in text.split(",") if part.strip()]
    except ValueError as exc:
        raise ConfigError(f"TRUSTED_PROXIES: {exc} (give a count, or networks such as "
                          "10.0.0.0/8,192.168.1.5)") from None
    behind = ProxyFix(wsgi_app, x_for=1, x_proto=1, x_host=1, x_port=1)

    def from_trusted_peers(environ, start_response):
        try:
            peer = ipaddress.ip_address(environ.get("REMOTE_ADDR") or "")
        except ValueError:
            peer = None
        if peer is not None and any(peer in net for net in networks):
            return behind(environ, start_response)
        return wsgi_app(environ, start_response)

    return from_trusted_peers
