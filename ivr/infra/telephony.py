"""The one telephony client: Twilio's REST API through the real `twilio.rest.Client`.

With credentials it talks to Twilio. `ivr serve` without credentials runs a local emulator of
Twilio's cloud and points `TWILIO_API_BASE` at it, so the same client, the same requests and
the same webhooks are used either way. With neither, placing a call fails with a clear reason.

Twilio refuses relative URLs, and its cloud cannot reach this machine's loopback address: both
are refused here, with a message that says what to set, before a request is made.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from typing import Any, Protocol
from urllib.parse import urlsplit

import redis
import requests
from requests.adapters import HTTPAdapter
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client
from urllib3.exceptions import NameResolutionError, NewConnectionError

from ivr.errors import TelephonyError, TelephonyUnsure
from ivr.infra.urls import is_loopback

log = logging.getLogger(__name__)

# Status callback events we ask for: enough to follow a call without polling.
STATUS_EVENTS = ["initiated", "ringing", "answered", "completed"]
# The statuses a call ends with (Twilio's Call resource).
FINAL_STATUSES = frozenset({"completed", "busy", "failed", "no-answer", "canceled"})
# A REST request may hold up a webhook or a job: give up well inside Twilio's 15 s.
REST_TIMEOUT = 8.0
# REST requests one process may have open at once (speech redirects, calls placed, hang-ups),
# each on a kept connection: twilio's own pool keeps cores + 4 (requests' plain http one 10)
# and discards, with a warning, every connection past that: a burst would reconnect (TLS).
REST_CONNECTIONS = 16
# How far Twilio's clock (date_created) may be behind ours when looking for a call we placed.
CLOCK_SKEW = dt.timedelta(seconds=5)


class Telephony(Protocol):
    """What the service needs from a phone provider."""

    def place_call(self, *, to: str, from_: str, url: str, status_callback: str,
                   machine_detection: str | None = None, timeout: int | None = None) -> str:
        """Start an outbound call that fetches TwiML from `url`; return its call SID."""

    def redirect(self, call_sid: str, url: str) -> None:
        """Make a live call fetch new TwiML from `url`."""

    def hangup(self, call_sid: str) -> None:
        """End a call (ringing or in progress)."""

    def call_status(self, call_sid: str) -> str | None:
        """The call's status as the provider knows it now; None when it knows no such call."""

    def child_calls(self, parent_sid: str) -> list[tuple[str, int]]:
        """(status, duration in seconds) of each call a <Dial> of `parent_sid` placed."""

    def adopt_placed(self, to: str, from_: str, since: dt.datetime,
                     status_callback: str) -> str | None:
        """A call from `from_` to `to` created since `since` that is no one else's (its
        create's answer was lost, or the process that placed it died), now taken by the one
        whose status callback is `status_callback`; None when there is none."""

    def live_call_to(self, to: str, from_: str, since: dt.datetime) -> str | None:
        """A call from `from_` to `to` created since `since` that is not over (queued,
        ringing or in progress); None when there is none."""


def _http_client() -> TwilioHttpClient:
    """twilio's HTTP client, with a time-out and room for `REST_CONNECTIONS` at once."""
    http = TwilioHttpClient(timeout=REST_TIMEOUT)
    assert http.session is not None  # pool_connections (the default) gives it a Session
    for scheme in ("https://", "http://"):  # http: a local emulator
        http.session.mount(scheme, HTTPAdapter(pool_maxsize=REST_CONNECTIONS))
    return http


class TwilioTelephony:
    """Twilio's REST API (or an emulator of it) through the real `twilio.rest.Client`."""

    def __init__(self, account_sid: str, auth_token: str, *, api_base: str | None = None,
                 client: Client | None = None, ledger: CallLedger | None = None) -> None:
        self.ledger = ledger
        self.client = client or Client(account_sid, auth_token, http_client=_http_client())
        if api_base:
            # Domain.base_url is the supported seam: every Calls URL is built from it, so a
            # regional gateway or a local emulator receives the exact requests Twilio would.
            self.client.api.base_url = api_base.rstrip("/")
        self.reaches_loopback = bool(api_base) and is_loopback(api_base)

    def _check(self, *urls: str) -> None:
        for url in urls:
            parts = urlsplit(url or "")
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise TelephonyError(f"Twilio needs an absolute URL, not {url!r}")
            if is_loopback(url) and not self.reaches_loopback:
                raise TelephonyError(
                    f"Twilio cannot reach {parts.scheme}://{parts.netloc} on this machine: set "
                    "PUBLIC_BASE_URL to the public https:// address of this service")

    def place_call(self, *, to: str, from_: str, url: str, status_callback: str,
                   machine_detection: str | None = None, timeout: int | None = None) -> str:
        """Create the call with `Calls.create`; return its SID.

        Twilio's Calls API has no idempotency key, so an answer lost on the way back (a
        time-out, a reset) leaves open whether the call was placed. The Calls list then says:
        a call from `from_` to `to` created since we asked is ours, and its SID is returned;
        none means it was not placed (TelephonyError, safe to retry). When even the list
        cannot be read, TelephonyUnsure: the caller must not dial again until the provider's
        status callbacks or a later look settle it.

        Raises:
            TelephonyError: the call was not placed.
            TelephonyUnsure: it may have been.
        """
        self._check(url, status_callback)
        kwargs: dict[str, Any] = {
            "to": to,
            "from_": from_,
            "url": url,
            "method": "POST",
            "status_callback": status_callback,
            "status_callback_event": STATUS_EVENTS,
            "status_callback_method": "POST",
        }
        if machine_detection:
            kwargs["machine_detection"] = machine_detection
        if timeout:
            kwargs["timeout"] = int(timeout)
        asked_at = dt.datetime.now(dt.UTC)
        try:
            call = self.client.calls.create(**kwargs)
        except TwilioRestException as exc:
            if exc.status >= 500:  # Twilio's own failure: it may have acted on the create
                log.warning("Twilio failed on a call create: asking whether it placed the "
                            "call", extra={"to": to, "status": exc.status})
                return self._placed_anyway(to, from_, asked_at, status_callback, exc)
            raise TelephonyError(f"Twilio refused the call to {to}: {exc}",
                                 transient=exc.status == 429) from exc
        except TwilioException as exc:
            raise TelephonyError(f"Twilio refused the call to {to}: {exc}") from exc
        except OSError as exc:  # the network: DNS, refused connection, time-out
            if not _maybe_sent(exc):
                raise TelephonyError(f"Twilio could not be reached to call {to}: {exc}",
                                     transient=True) from exc
            log.warning("the answer to a call create was lost: asking Twilio whether it placed "
                        "the call", extra={"to": to, "error": str(exc)})
            return self._placed_anyway(to, from_, asked_at, status_callback, exc)
        if self.ledger is not None:
            self.ledger.remember(str(call.sid), status_callback)
        return str(call.sid)

    def adopt_placed(self, to: str, from_: str, since: dt.datetime,
                     status_callback: str) -> str | None:
        """The newest call from `from_` to `to` created since `since` (less the clock skew)
        that the ledger does not know, or knows as placed for `status_callback`, claimed in
        it; None when there is none.

        Raises:
            TelephonyError: the Calls list could not be read.
        """
        return self._adopt(to, from_, since, status_callback, known_is_mine=True)

    def live_call_to(self, to: str, from_: str, since: dt.datetime) -> str | None:
        """The newest call from `from_` to `to` created since `since` (less the clock skew)
        that is not over; None when there is none.

        Raises:
            TelephonyError: the Calls list could not be read.
        """
        for call in self._calls_since(to, from_, since):
            if str(call.status) not in FINAL_STATUSES:
                return str(call.sid)
        return None

    def _calls_since(self, to: str, from_: str, since: dt.datetime) -> list:
        """The calls from `from_` to `to` created since `since` (less the clock skew), newest
        first; none for an empty `to` (that would list every call from our number)."""
        if not to:
            return []
        floor = since - CLOCK_SKEW
        calls = self._rest(f"list the calls to {to}", lambda: self.client.calls.list(
            to=to, from_=from_, limit=20))
        return [c for c in calls if c.date_created is None or c.date_created >= floor]

    def _adopt(self, to: str, from_: str, since: dt.datetime, status_callback: str, *,
               known_is_mine: bool) -> str | None:
        for call in self._calls_since(to, from_, since):
            sid = str(call.sid)
            if self.ledger is None or self.ledger.claim(
                    sid, status_callback, known_is_mine=known_is_mine):
                return sid
        return None

    def _placed_anyway(self, to: str, from_: str, asked_at: dt.datetime, status_callback: str,
                       cause: Exception) -> str:
        try:
            # Only a call the ledger has never seen: a status callback URL can be the same for
            # two calls (an agent rung twice for one queue), and the earlier one is known.
            found = self._adopt(to, from_, asked_at, status_callback, known_is_mine=False)
        except TelephonyError as exc:
            raise TelephonyUnsure(f"Twilio may have placed the call to {to}: its answer was "
                                  f"lost ({cause}) and the Calls list failed too") from exc
        if found is None:
            raise TelephonyError(f"Twilio did not place the call to {to}: its answer was "
                                 f"lost ({cause}) and no such call exists",
                                 transient=True) from cause
        log.warning("Twilio had placed the call whose answer was lost", extra={
            "to": to, "call_sid": found})
        return found

    def _rest(self, what: str, request):
        """One idempotent REST request (fetch, list, redirect to a URL, hang up), asked twice
        when its answer is lost: doing it again changes nothing."""
        for attempt in (1, 2):
            try:
                return request()
            except TwilioException as exc:
                raise TelephonyError(f"could not {what}: {exc}", transient=isinstance(
                    exc, TwilioRestException) and (exc.status >= 500 or exc.status == 429)
                ) from exc
            except OSError as exc:
                if attempt == 2:
                    raise TelephonyError(f"Twilio could not be reached to {what}: {exc}",
                                         transient=True) from exc
                log.warning("Twilio did not answer: asking again", extra={
                    "request": what, "error": str(exc)})
        raise AssertionError("unreachable")

    def redirect(self, call_sid: str, url: str) -> None:
        """Point the live call at new TwiML."""
        self._check(url)
        self._rest(f"redirect call {call_sid}",
                   lambda: self.client.calls(call_sid).update(url=url, method="POST"))

    def hangup(self, call_sid: str) -> None:
        """End the call by setting its status to completed."""
        self._rest(f"hang up call {call_sid}",
                   lambda: self.client.calls(call_sid).update(status="completed"))

    def call_status(self, call_sid: str) -> str | None:
        """Fetch the Call resource: its `status`, or None when Twilio answers 404."""
        try:
            return str(self._rest(f"fetch call {call_sid}",
                                  lambda: self.client.calls(call_sid).fetch()).status)
        except TelephonyError as exc:
            cause = exc.__cause__
            if isinstance(cause, TwilioRestException) and cause.status == 404:
                return None
            raise

    def child_calls(self, parent_sid: str) -> list[tuple[str, int]]:
        """The Calls list filtered by ParentCallSid (checked again here, on each resource)."""
        calls = self._rest(f"list the calls of {parent_sid}", lambda: self.client.calls.list(
            parent_call_sid=parent_sid, limit=50))
        return [(str(c.status), int(c.duration or 0)) for c in calls
                if getattr(c, "parent_call_sid", None) == parent_sid]


def _maybe_sent(exc: OSError) -> bool:
    """False when the request certainly never reached Twilio: no connection was made (refused,
    DNS, connect time-out). True when it may have been acted on (read time-out, reset)."""
    if isinstance(exc, requests.ConnectTimeout):
        return False
    # requests wraps urllib3's MaxRetryError, whose `reason` is the connection's failure.
    seen: object = exc
    for _ in range(8):
        if isinstance(seen, (NewConnectionError, NameResolutionError)):
            return False
        if not isinstance(seen, BaseException):
            break
        first = seen.args[0] if seen.args else None
        seen = getattr(seen, "reason", None) or seen.__cause__ or (
            first if isinstance(first, BaseException) else None)
    return True


class NoTelephony:
    """No provider configured: every call fails with what to set."""

    REASON = ("no telephony provider: set TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN, or run "
              "`ivr serve`, which emulates Twilio on this machine")

    def place_call(self, **kwargs: Any) -> str:
        raise TelephonyError(self.REASON)

    def redirect(self, call_sid: str, url: str) -> None:
        raise TelephonyError(self.REASON)

    def hangup(self, call_sid: str) -> None:
        raise TelephonyError(self.REASON)

    def call_status(self, call_sid: str) -> str | None:
        raise TelephonyError(self.REASON)

    def child_calls(self, parent_sid: str) -> list[tuple[str, int]]:
        raise TelephonyError(self.REASON)

    def adopt_placed(self, to: str, from_: str, since: dt.datetime,
                     status_callback: str) -> str | None:
        raise TelephonyError(self.REASON)

    def live_call_to(self, to: str, from_: str, since: dt.datetime) -> str | None:
        raise TelephonyError(self.REASON)


def make_telephony(config: Mapping[str, Any], r: redis.Redis | None = None) -> Telephony:
    """Twilio (or the emulator at TWILIO_API_BASE) when it can be reached, else NoTelephony;
    with `r`, the calls it places are kept in a ledger there (`CallLedger`)."""
    api_base = config.get("TWILIO_API_BASE")
    if config.get("SIMULATED_TELEPHONY") and not api_base:
        return NoTelephony()
    return TwilioTelephony(config["TWILIO_ACCOUNT_SID"], config["TWILIO_AUTH_TOKEN"],
                           api_base=api_base, ledger=CallLedger(r) if r is not None else None)


class CallLedger:
    """Which of this service's requests each call it placed is for (its status callback URL),
    kept a while in Redis. Looking for a call whose create answer was lost must never take
    one that is another request's: the same agent is often called twice within seconds."""

    KEY = "ivr:telephony:placed:{sid}"
    KEEP_SECONDS = 2 * 86400

    def __init__(self, r: redis.Redis) -> None:
        self.redis = r

    def remember(self, sid: str, owner: str) -> None:
        """A call placed for `owner`, with its SID in hand (a claim made meanwhile by a
        look-up for another owner is kept, and said)."""
        try:
            if not self.redis.set(self.KEY.format(sid=sid), owner, nx=True,
                                  ex=self.KEEP_SECONDS):
                known = self.redis.get(self.KEY.format(sid=sid))
                if known is not None and known.decode() != owner:
                    log.error("a call placed for one request was claimed for another",
                              extra={"call_sid": sid, "owner": owner, "claimed_by":
                                     known.decode()})
        except redis.RedisError as exc:
            log.warning("call ledger unavailable: %s", exc, extra={"call_sid": sid})

    def claim(self, sid: str, owner: str, *, known_is_mine: bool = True) -> bool:
        """Take a call found in the provider's list for `owner`: True when it was no one's,
        or (`known_is_mine`) `owner`'s already, placed by a process that died before saving
        it; False when it is another's.

        Raises:
            TelephonyError: the ledger cannot be reached (the call cannot be told apart).
        """
        key = self.KEY.format(sid=sid)
        try:
            if self.redis.set(key, owner, nx=True, ex=self.KEEP_SECONDS):
                return True
            if not known_is_mine:
                return False
            known = self.redis.get(key)
        except redis.RedisError as exc:
            # Not "someone else's": unknown. The caller must not take it as "not placed".
            raise TelephonyError(f"the call ledger cannot be read: {exc}",
                                 transient=True) from exc
        return known is not None and known.decode() == owner
