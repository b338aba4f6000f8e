"""When may we call: the queue's business hours AND the called party's legal calling window.

US rules (47 CFR 64.1200) forbid solicitation calls before 8:00 or after 21:00 at the called
party's local time. A requested callback is invited, but we keep the window anyway. The local
time zone comes from the number itself (phonenumbers' timezone module); when a number maps to
several zones, the window must hold in each of them.
"""

from __future__ import annotations

import datetime as dt
from functools import lru_cache
from zoneinfo import ZoneInfo

import phonenumbers
from phonenumbers import timezone as pn_timezone

from ivr.core.flows.schema import Hours
from ivr.core.hours import is_open, next_open

DEFAULT_WINDOW = (dt.time(8, 0), dt.time(21, 0))
# Non-geographic numbers map to every zone of their country code (NANP: Guam to Newfoundland),
# where no hour of the day is legal everywhere; fall back to the populated mainland zones.
_WIDE_FALLBACK = {
    "US": ("America/New_York", "America/Chicago", "America/Denver", "America/Los_Angeles"),
    "CA": ("America/Toronto", "America/Winnipeg", "America/Edmonton", "America/Vancouver"),
}
_MAX_ZONES = 4
_MAX_STEPS = 64


@lru_cache(maxsize=4096)
def zones_for_number(e164: str) -> tuple[ZoneInfo, ...]:
    """The time zones the called party may be in (at least one)."""
    number = phonenumbers.parse(e164, None)
    names = [z for z in pn_timezone.time_zones_for_number(number) if z != "Etc/Unknown"]
    if len(names) > _MAX_ZONES or not names:
        region = phonenumbers.region_code_for_number(number)
        names = list(_WIDE_FALLBACK.get(region, names[:1] or ["UTC"]))
    return tuple(ZoneInfo(n) for n in names)


def parse_window(text: str | tuple[dt.time, dt.time] | None) -> tuple[dt.time, dt.time]:
    """'08:00-21:00' -> (08:00, 21:00)."""
    if text is None:
        return DEFAULT_WINDOW
    if isinstance(text, tuple):
        return text
    start, _, end = text.partition("-")
    # '24:00' is the end of the day: the window then runs to midnight.
    end_time = dt.time.max if end.strip() == "24:00" else dt.time.fromisoformat(end.strip())
    return dt.time.fromisoformat(start.strip()), end_time


def in_window(at: dt.datetime, zones: tuple[ZoneInfo, ...],
              window: tuple[dt.time, dt.time] = DEFAULT_WINDOW) -> bool:
    """True when `at` falls inside the calling window in every zone."""
    start, end = window
    for zone in zones:
        local = at.astimezone(zone).time()
        if not (start <= local < end or (end == dt.time.max and local >= start)):
            return False
    return True


def _next_window_start(at: dt.datetime, zone: ZoneInfo,
                       window: tuple[dt.time, dt.time]) -> dt.datetime:
    """The first instant at or after `at` inside the window in `zone`."""
    start, end = window
    local = at.astimezone(zone)
    if start <= local.time() < end:
        return at
    day = local.date() if local.time() < start else local.date() + dt.timedelta(days=1)
    candidate = dt.datetime.combine(day, start, tzinfo=zone)
    return candidate.astimezone(dt.UTC)


def is_allowed(at: dt.datetime, *, number: str, hours: Hours | None,
               window: tuple[dt.time, dt.time] = DEFAULT_WINDOW) -> bool:
    """True when we may call `number` at `at` for a queue with these `hours`."""
    return is_open(hours, at) and in_window(at, zones_for_number(number), window)


def next_allowed(after: dt.datetime, *, number: str, hours: Hours | None,
                 window: tuple[dt.time, dt.time] = DEFAULT_WINDOW) -> dt.datetime | None:
    """The first aware UTC instant at or after `after` when we may call; None if never."""
    if after.tzinfo is None:
        raise ValueError("next_allowed needs an aware datetime")
    zones = zones_for_number(number)
    at = after.astimezone(dt.UTC)
    for _ in range(_MAX_STEPS):
        opened = next_open(hours, at)
        if opened is None:
            return None
        moved = opened
        for zone in zones:
            moved = max(moved, _next_window_start(moved, zone, window))
        if moved == opened:
            return opened.astimezone(dt.UTC)
        at = moved
    return None
