"""Webhooks as Twilio sends them: signed, with its time-outs, status callbacks on their own.

- Every request carries `X-Twilio-Signature` over the full URL and the form parameters
  (twilio's own `RequestValidator.compute_signature`), and `I-Twilio-Idempotency-Token`.
- Twilio waits 5 s to connect and at most 15 s for an answer, then gives up (error 11205 or
  11200) and tries the fallback URL, if there is one.
- Status callbacks are separate requests sent from a queue of their own, after the event, never
  inside the call's own webhook: a slow or failing status endpoint never holds the call up.
"""

from __future__ import annotations

import heapq
import logging
import queue
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit

import requests
from twilio.request_validator import RequestValidator

from ivr.emulator.chaos import Chaos

log = logging.getLogger(__name__)

CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 15.0
# Twilio's error codes for a webhook that could not be fetched.
HTTP_RETRIEVAL_FAILURE = 11200
HTTP_CONNECTION_FAILURE = 11205
DOCUMENT_PARSE_FAILURE = 12100


@dataclass(frozen=True)
class Answer:
    """What a webhook request got back."""

    status: int  # HTTP status; 0 when nothing came back
    body: str
    error_code: int | None = None  # Twilio's error code when the request failed

    @property
    def ok(self) -> bool:
        """True for a 2xx answer."""
        return 200 <= self.status < 300


# (method, url, params, headers) -> Answer; tests may deliver to a Flask test client instead.
Transport = Callable[[str, str, dict, dict], Answer]


def http_transport(session: requests.Session | None = None) -> Transport:
    """Send webhooks over HTTP with Twilio's time-outs."""
    http = session or requests.Session()

    def send(method: str, url: str, params: dict, headers: dict) -> Answer:
        try:
            if method == "GET":
                resp = http.get(url, params=params, headers=headers,
                                timeout=(CONNECT_TIMEOUT, READ_TIMEOUT))
            else:
                resp = http.post(url, data=params, headers=headers,
                                 timeout=(CONNECT_TIMEOUT, READ_TIMEOUT))
        except requests.ConnectionError:
            return Answer(0, "", HTTP_CONNECTION_FAILURE)
        except requests.RequestException:
            return Answer(0, "", HTTP_RETRIEVAL_FAILURE)
        code = None if 200 <= resp.status_code < 300 else HTTP_RETRIEVAL_FAILURE
        return Answer(resp.status_code, resp.text, code)

    return send


def is_absolute(url: str) -> bool:
    """True for a fully qualified http(s) URL, the only kind Twilio's REST API accepts."""
    parts = urlsplit(url or "")
    return parts.scheme in ("http", "https") and bool(parts.netloc)


class Webhooks:
    """Signs and sends webhooks; status callbacks go through a background queue."""

    def __init__(self, auth_token: str, transport: Transport | None = None, *,
                 chaos: Chaos | None = None) -> None:
        self.validator = RequestValidator(auth_token)
        self.transport = transport or http_transport()
        self.chaos = chaos
        self._status: queue.Queue = queue.Queue()
        self._later: list[tuple[float, int, tuple]] = []  # (due, order, status callback)
        self._later_cv = threading.Condition()
        self._order = 0
        self._thread = threading.Thread(target=self._send_statuses, daemon=True,
                                        name="emulator-status-callbacks")
        self._thread.start()
        if chaos is not None:
            threading.Thread(target=self._send_later, daemon=True,
                             name="emulator-chaos").start()
        self.sent = 0

    def request(self, method: str, url: str, params: dict) -> Answer:
        """One signed webhook, answered or failed the way Twilio sees it."""
        answer = self._deliver(method, url, params)
        if self.chaos is not None and (after := self.chaos.repeat_after()) is not None:
            # Sent again later; the call has moved on with the first answer, as Twilio's does.
            self._schedule(after, (method, url, params, True))
        return answer

    def _deliver(self, method: str, url: str, params: dict) -> Answer:
        method = (method or "POST").upper()
        if method == "GET":
            # A GET is signed over the URL with its query, no body parameters.
            sep = "&" if urlsplit(url).query else "?"
            signed_url, body = url + (sep + urlencode(params) if params else ""), {}
        else:
            signed_url, body = url, params
        headers = {
            "X-Twilio-Signature": self.validator.compute_signature(signed_url, body),
            "I-Twilio-Idempotency-Token": uuid.uuid4().hex,
            "User-Agent": "TwilioProxy/1.1 (ivr emulator)",
        }
        self.sent += 1
        if method == "GET":
            return self.transport("GET", signed_url, {}, headers)
        return self.transport("POST", url, body, headers)

    def status_callback(self, method: str, url: str, params: dict) -> None:
        """Queue a status callback; it is sent after this returns, from another thread."""
        if self.chaos is None:
            self._status.put((method, url, params))
            return
        for delay in self.chaos.status_delays(params):
            self._schedule(delay, (method, url, params, False))

    def _schedule(self, delay: float, item: tuple) -> None:
        with self._later_cv:
            self._order += 1
            heapq.heappush(self._later, (time.monotonic() + delay, self._order, item))
            self._later_cv.notify()

    def _send_later(self) -> None:
        """Send chaos's delayed and repeated requests when due, each in a thread of its own."""
        while True:
            with self._later_cv:
                while not self._later or self._later[0][0] > time.monotonic():
                    wait = self._later[0][0] - time.monotonic() if self._later else None
                    self._later_cv.wait(wait)
                _due, _order, (method, url, params, repeat) = heapq.heappop(self._later)
            threading.Thread(target=self._send_one, args=(method, url, params, repeat),
                             daemon=True, name="emulator-chaos-send").start()

    def _send_one(self, method: str, url: str, params: dict, repeat: bool) -> None:
        answer = self._deliver(method, url, params)  # a repeat is not repeated again
        if not answer.ok and not repeat:
            log.warning("status callback not accepted", extra={
                "url": url, "status": answer.status, "error_code": answer.error_code})

    def drain(self, timeout: float = 10.0) -> None:
        """Wait until every queued status callback has been sent (tests, shutdown)."""
        deadline = time.monotonic() + timeout
        done = threading.Event()
        self._status.put(done)
        done.wait(timeout)
        while self._later and time.monotonic() < deadline:  # chaos's delayed ones too
            time.sleep(0.05)

    def _send_statuses(self) -> None:
        while True:
            item = self._status.get()
            if isinstance(item, threading.Event):
                item.set()
                continue
            method, url, params = item
            answer = self.request(method, url, params)
            if not answer.ok:
                log.warning("status callback not accepted", extra={
                    "url": url, "status": answer.status, "error_code": answer.error_code})
