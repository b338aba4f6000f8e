"""The telephony adapter: place, redirect and hang up calls through Twilio REST or a simulator."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Protocol

from twilio.base.exceptions import TwilioException
from twilio.rest import Client

from callback.errors import TelephonyError

log = logging.getLogger(__name__)

# Status callback events we ask for: enough to follow a call without polling.
STATUS_EVENTS = ["initiated", "ringing", "answered", "completed"]


class Telephony(Protocol):
    """What the callback jobs (and the speech helper) need from a phone provider."""

    def place_call(
        self,
        *,
        to: str,
        from_: str,
        url: str,
        status_callback: str,
        machine_detection: str | None = None,
        timeout: int | None = None,
    ) -> str:
        """Start an outbound call that fetches TwiML from `url`; return its call SID."""

    def redirect(self, call_sid: str, url: str) -> None:
        """Make a live call fetch new TwiML from `url`."""

    def hangup(self, call_sid: str) -> None:
        """End a call (ringing or in progress)."""


class TwilioTelephony:
    """Twilio's REST API through the real `twilio.rest.Client`."""

    def __init__(self, account_sid: str, auth_token: str, *, api_base: str | None = None,
                 client: Client | None = None) -> None:
        self.client = client or Client(account_sid, auth_token)
        if api_base:
            # Domain.base_url is the supported seam: every Calls URL is built from it, so a
            # regional gateway or a local stand-in receives the exact requests Twilio would.
            self.client.api.base_url = api_base.rstrip("/")

    def place_call(self, *, to: str, from_: str, url: str, status_callback: str,
                   machine_detection: str | None = None, timeout: int | None = None) -> str:
        """Create the call with `Calls.create`; return its SID."""
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
        return str(call.sid)

    def redirect(self, call_sid: str, url: str) -> None:
        """Point the live call at new TwiML."""
        try:
            self.client.calls(call_sid).update(url=url, method="POST")
        except TwilioException as exc:
            raise TelephonyError(f"could not redirect call {call_sid}: {exc}") from exc

    def hangup(self, call_sid: str) -> None:
        """End the call by setting its status to completed."""
        try:
            self.client.calls(call_sid).update(status="completed")
        except TwilioException as exc:
            raise TelephonyError(f"could not hang up call {call_sid}: {exc}") from exc


def make_telephony(config: Mapping[str, Any]) -> Telephony:
    """Twilio when credentials are configured, otherwise the embedded simulator."""
    if not config.get("SIMULATED_TELEPHONY"):
        return TwilioTelephony(
            config["TWILIO_ACCOUNT_SID"],
            config["TWILIO_AUTH_TOKEN"],
            api_base=config.get("TWILIO_API_BASE"),
        )
    from callback.simulated import SimulatedTelephony

    log.warning("no TWILIO_AUTH_TOKEN: callbacks use the simulated telephony provider")
    return SimulatedTelephony(
        config["TWILIO_AUTH_TOKEN"],
        account_sid=config["TWILIO_ACCOUNT_SID"],
        delay=float(config.get("SIMULATED_CALL_DELAY", 0.5)),
    )
