"""Which numbers we call: the first half of the guard in front of every dial (pure).

Web callback forms are a known route for international revenue share fraud (attackers make the
service dial premium ranges they are paid for), so a number must parse, be valid, belong to an
allowed country, and be an ordinary line. How often anyone may ask is `callback.limits`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import phonenumbers
from phonenumbers import PhoneNumberType, shortnumberinfo

from callback.errors import InvalidNumber, NumberRefused, excerpt

# Types we refuse, with the reason a person reads.
REFUSED_TYPES: dict[int, str] = {
    PhoneNumberType.PREMIUM_RATE: "premium-rate numbers cost the caller extra",
    PhoneNumberType.SHARED_COST: "shared-cost numbers are charged to both sides",
    PhoneNumberType.PERSONAL_NUMBER: "personal forwarding numbers can hide premium charges",
    PhoneNumberType.PAGER: "pagers cannot take a conversation",
    PhoneNumberType.UAN: "company switchboard (UAN) numbers are not accepted",
    PhoneNumberType.VOICEMAIL: "voicemail access numbers are not accepted",
}


@dataclass(frozen=True)
class Limit:
    """At most `count` events per `window` seconds."""

    count: int
    window: int

    @classmethod
    def parse(cls, text: str | Limit) -> Limit:
        """'3/3600' -> Limit(3, 3600)."""
        if isinstance(text, Limit):
            return text
        count, _, window = str(text).partition("/")
        return cls(int(count), int(window or 3600))


@dataclass(frozen=True)
class GuardConfig:
    """What numbers are allowed and how often requests may come."""

    allowed_countries: frozenset[str] = frozenset({"US", "CA"})
    default_region: str = "US"
    per_number: Limit = Limit(3, 3600)
    per_address: Limit = Limit(10, 600)
    daily_dials: int = 1000

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> GuardConfig:
        """Read the CALLBACK_* keys of the app config."""
        countries = cfg.get("CALLBACK_ALLOWED_COUNTRIES", "US,CA")
        if isinstance(countries, str):
            countries = [c for c in countries.replace(" ", "").split(",") if c]
        return cls(
            allowed_countries=frozenset(c.upper() for c in countries),
            default_region=str(cfg.get("CALLBACK_DEFAULT_REGION", "US")).upper(),
            per_number=Limit.parse(cfg.get("CALLBACK_LIMIT_PER_NUMBER", "3/3600")),
            per_address=Limit.parse(cfg.get("CALLBACK_LIMIT_PER_ADDRESS", "10/600")),
            daily_dials=int(cfg.get("CALLBACK_DAILY_DIAL_CAP", 1000)),
        )


def normalize_number(text: str, config: GuardConfig, *, region: str | None = None) -> str:
    """The number as E.164 if we may call it; InvalidNumber or NumberRefused otherwise.

    `region` says how to read a national number (e.g. digits typed on a keypad by a caller
    whose own number is in that region); without it, the configured default region.
    """
    raw = (text or "").strip()
    if not raw:
        raise InvalidNumber("Please enter a phone number, including the area code.")
    region = (region or config.default_region).upper()
    quoted = excerpt(raw)
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        raise InvalidNumber(
            f"'{quoted}' is not a phone number we can read: enter it with the area code, "
            "or in international form starting with +."
        ) from None
    if not phonenumbers.is_valid_number(number):
        digits = str(number.national_number)
        # Typed with a +country code it is a full number missing digits, not a short code.
        if not raw.startswith("+") and (
            shortnumberinfo.is_valid_short_number(number) or len(digits) <= 6
        ):
            raise NumberRefused(
                f"'{quoted}' is a short code or service number; we can only call a full phone "
                "number with its area code."
            )
        raise InvalidNumber(
            f"'{quoted}' is not a valid phone number: check the digits and the area code."
        )
    country = phonenumbers.region_code_for_number(number) or "??"
    if country not in config.allowed_countries:
        allowed = ", ".join(sorted(config.allowed_countries))
        raise NumberRefused(
            f"We can only call numbers in {allowed}; this number is in {country}. "
            "Please call us instead."
        )
    kind = phonenumbers.number_type(number)
    if kind in REFUSED_TYPES:
        raise NumberRefused(
            f"We can't call this number: {REFUSED_TYPES[kind]}. Please give an ordinary "
            "landline or mobile number."
        )
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def region_of(e164: str) -> str | None:
    """The region code of a number (e.g. 'US'), or None when it does not parse."""
    try:
        return phonenumbers.region_code_for_number(phonenumbers.parse(e164, None))
    except phonenumbers.NumberParseException:
        return None

