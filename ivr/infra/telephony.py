"""The one telephony client: Twilio's REST API through the real `twilio.rest.Client`.

With credentials it talks to Twilio. `ivr serve` without credentials runs a local emulator of
Twilio's cloud and points `TWILIO_API_BASE` at it, so the same client, the same requests and
the same webhooks are used either way. With neither, placing a call fails with a clear reason.

Twilio refuses relative URLs, and its cloud cannot reach this machine's loopback address: both
are refused here, with a message that says what to set, before a request is made.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Protocol
from urllib.parse import urlsplit

from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from ivr.errors import TelephonyError
from ivr.infra.urls import is_loopback

log = logging.getLogger(__name__)

# Status callback events we ask for: enough to follow a call without polling.
STATUS_EVENTS = ["initiated", "ringing", "answered", "completed"]
# The statuses a call ends with (Twilio's Call resource).
FINAL_STATUSES = frozenset({"completed", "busy", "failed", "no-answer", "canceled"})
# A REST request may hold up a webhook or a job: give up well inside Twilio's 15 s.
REST_TIMEOUT = 8.0


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


class TwilioTelephony:
    """Twilio's REST API (or an emulator of it) through the real `twilio.rest.Client`."""

    def __init__(self, account_sid: str, auth_token: str, *, api_base: str | None = None,
                 client: Client | None = None) -> None:
        self.client = client or Client(account_sid, auth_token,
                                       http_client=TwilioHttpClient(timeout=REST_TIMEOUT))
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
        """Create the call with `Calls.create`; return its SID."""
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
        try:
            call = self.client.calls.create(**kwargs)
        except TwilioException as exc:
            raise TelephonyError(f"Twilio refused the call to {to}: {exc}") from exc
        except OSError as exc:  # the network: DNS, refused connection, time-out
            raise TelephonyError(f"Twilio could not be reached to call {to}: {exc}") from exc
        return str(call.sid)

    def redirect(self, call_sid: str, url: str) -> None:
        """Point the live call at new TwiML."""
        self._check(url)
        try:
            self.client.calls(call_sid).update(url=url, method="POST")
        except TwilioException as exc:
            raise TelephonyError(f"could not redirect call {call_sid}: {exc}") from exc
        except OSError as exc:
            raise TelephonyError(f"Twilio could not be reached for {call_sid}: {exc}") from exc

    def hangup(self, call_sid: str) -> None:
        """End the call by setting its status to completed."""
        try:
            self.client.calls(call_sid).update(status="completed")
        except TwilioException as exc:
            raise TelephonyError(f"could not hang up call {call_sid}: {exc}") from exc
        except OSError as exc:
            raise TelephonyError(f"Twilio could not be reached for {call_sid}: {exc}") from exc


    def call_status(self, call_sid: str) -> str | None:
        """Fetch the Call resource: its `status`, or None when Twilio answers 404."""
        try:
            return str(self.client.calls(call_sid).fetch().status)
        except TwilioRestException as exc:
            if exc.status == 404:
                return None
            raise TelephonyError(f"could not fetch call {call_sid}: {exc}") from exc
        except TwilioException as exc:
            raise TelephonyError(f"could not fetch call {call_sid}: {exc}") from exc
        except OSError as exc:
            raise TelephonyError(f"Twilio could not be reached for {call_sid}: {exc}") from exc


    def child_calls(self, parent_sid: str) -> list[tuple[str, int]]:
        """The Calls list filtered by ParentCallSid (checked again here, on each resource)."""
        try:
            calls = self.client.calls.list(parent_call_sid=parent_sid, limit=50)
        except TwilioException as exc:
            raise TelephonyError(f"could not list the calls of {parent_sid}: {exc}") from exc
        except OSError as exc:
            raise TelephonyError(f"Twilio could not be reached for {parent_sid}: {exc}") from exc
        return [(str(c.status), int(c.duration or 0)) for c in calls
                if getattr(c, "parent_call_sid", None) == parent_sid]


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


def make_telephony(config: Mapping[str, Any]) -> Telephony:
    """Twilio (or the emulator at TWILIO_API_BASE) when it can be reached, else NoTelephony."""
    api_base = config.get("TWILIO_API_BASE")
    if config.get("SIMULATED_TELEPHONY") and not api_base:
        return NoTelephony()
    return TwilioTelephony(config["TWILIO_ACCOUNT_SID"], config["TWILIO_AUTH_TOKEN"],
                           api_base=api_base)
