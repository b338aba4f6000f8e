"""The guard in front of every dial: which numbers we call, and how often anyone may ask.

Web callback forms are a known route for international revenue share fraud (attackers make the
service dial premium ranges they are paid for), so a number must parse, be valid, belong to an
allowed country, and be an ordinary line; and requests are rate-limited per number and per
client address, with a daily cap on dials.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import phonenumbers
import redis
from phonenumbers import PhoneNumberType, shortnumberinfo

from callback.errors import InvalidNumber, NumberRefused, RateLimited

# Types we refuse, with the reason a person reads.
REFUSED_TYPES: dict[int, str] = {
    PhoneNumberType.PREMIUM_RATE: "premium-rate numbers cost the caller extra",
    PhoneNumberType.SHARED_COST: "shared-cost numbers are charged to both sides",
    PhoneNumberType.PERSONAL_NUMBER: "personal forwarding numbers can hide premium charges",
    PhoneNumberType.PAGER: "pagers cannot take a conversation",
    PhoneNumberType.UAN: "company switchboard (UAN) numbers are not accepted",
    PhoneNumberType.VOICEMAIL: "voicemail access numbers are not accepted",
}
KEY_PREFIX = "ivr:cb:limit"


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
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        raise InvalidNumber(
            f"'{raw}' is not a phone number we can read: enter it with the area code, "
            "or in international form starting with +."
        ) from None
    if not phonenumbers.is_valid_number(number):
        digits = str(number.national_number)
        # Typed with a +country code it is a full number missing digits, not a short code.
        if not raw.startswith("+") and (
            shortnumberinfo.is_valid_short_number(number) or len(digits) <= 6
        ):
            raise NumberRefused(
                f"'{raw}' is a short code or service number; we can only call a full phone "
                "number with its area code."
            )
        raise InvalidNumber(
            f"'{raw}' is not a valid phone number: check the digits and the area code."
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


# --- rate limits (Redis fixed windows) -----------------------------------------------------


def hit(r: redis.Redis, name: str, key: str, limit: Limit, *, now: float | None = None,
        message: str) -> None:
    """Count one event for `key`; RateLimited (with Retry-After) once over the limit."""
    now = time.time() if now is None else now
    window_start = int(now // limit.window) * limit.window
    redis_key = f"{KEY_PREFIX}:{name}:{key}:{window_start}"
    pipe = r.pipeline()
    pipe.incr(redis_key)
    pipe.expire(redis_key, limit.window + 5)
    count = pipe.execute()[0]
    if count > limit.count:
        raise RateLimited(message, retry_after=int(window_start + limit.window - now) + 1)


def check_request_limits(r: redis.Redis, config: GuardConfig, *, phone: str,
                         address: str | None, now: float | None = None) -> None:
    """Apply the per-address and per-number limits to one request."""
    if address:
        hit(r, "addr", address, config.per_address, now=now,
            message="Too many callback requests from your connection. Please wait and try "
                    "again, or call us.")
    hit(r, "number", phone, config.per_number, now=now,
        message="This number has asked for several callbacks already. Please wait before "
                "asking again, or call us.")


def daily_key(day: dt.date) -> str:
    """The Redis key counting dials on a UTC day."""
    return f"{KEY_PREFIX}:dials:{day.isoformat()}"


def dials_left_today(r: redis.Redis, config: GuardConfig, now: dt.datetime) -> int:
    """How many more callback dials the daily cap allows today (UTC)."""
    used = int(r.get(daily_key(now.astimezone(dt.UTC).date())) or 0)
    return max(0, config.daily_dials - used)


def count_dial(r: redis.Redis, config: GuardConfig, now: dt.datetime) -> bool:
    """Count one dial against today's cap; False (and not counted) when the cap is reached."""
    key = daily_key(now.astimezone(dt.UTC).date())
    pipe = r.pipeline()
    pipe.incr(key)
    pipe.expire(key, 2 * 86400)
    used = pipe.execute()[0]
    if used > config.daily_dials:
        r.decr(key)
        return False
    return True


def seconds_to_next_utc_day(now: dt.datetime) -> int:
    """Seconds until the daily cap resets."""
    utc = now.astimezone(dt.UTC)
    tomorrow = dt.datetime.combine(utc.date() + dt.timedelta(days=1), dt.time(0), tzinfo=dt.UTC)
    return int((tomorrow - utc).total_seconds()) + 1
