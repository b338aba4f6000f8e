"""Where the tests' emulated Twilio sends its webhooks: over HTTP, to a Flask test client in
this process, or over HTTP to a local server for URLs signed for the public base."""

from __future__ import annotations

from collections.abc import Callable

import requests

# (method, url, form params, headers) -> (HTTP status, body)
Deliver = Callable[[str, str, dict, dict], tuple[int, str]]


def http_deliver(method: str, url: str, params: dict, headers: dict) -> tuple[int, str]:
    """Send one webhook over HTTP."""
    if method == "GET":
        resp = requests.get(url, headers=headers, timeout=15)
    else:
        resp = requests.post(url, data=params, headers=headers, timeout=15)
    return resp.status_code, resp.text


def flask_deliver(test_client, public_base: str) -> Deliver:
    """Deliver webhooks for URLs under `public_base` to a Flask test client in this process."""
    public_base = public_base.rstrip("/")

    def deliver(method: str, url: str, params: dict, headers: dict) -> tuple[int, str]:
        assert url.startswith(public_base), f"webhook to an unexpected host: {url}"
        path = url[len(public_base):]
        if method == "GET":
            resp = test_client.get(path, headers=headers)
        else:
            resp = test_client.post(path, data=params, headers=headers)
        return resp.status_code, resp.get_data(as_text=True)

    return deliver


def rewriting_deliver(public_base: str, actual_base: str) -> Deliver:
    """Deliver over HTTP to `actual_base` webhooks addressed (and signed) for `public_base`."""
    public_base, actual_base = public_base.rstrip("/"), actual_base.rstrip("/")

    def deliver(method: str, url: str, params: dict, headers: dict) -> tuple[int, str]:
        target = actual_base + url[len(public_base):] if url.startswith(public_base) else url
        return http_deliver(method, target, params, headers)

    return deliver
