"""Business hours: is a calendar open at an instant, and when does it next open."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from functools import lru_cache
from zoneinfo import ZoneInfo

import holidays as holidays_lib

from ivr.core.flows.timetable import WEEKDAYS, Hours

MAX_SEARCH_DAYS = 400


class HoursState(StrEnum):
    OPEN = "open"
    CLOSED = "closed"
    HOLIDAY = "holiday"


def state_at(hours: Hours, at: dt.datetime) -> HoursState:
    """Whether `hours` is open, closed, or closed for a holiday at the aware instant `at`."""
    if at.tzinfo is None:
        raise ValueError("state_at needs an aware datetime")
    local = at.astimezone(ZoneInfo(hours.timezone))
    if is_holiday(hours, local.date()):
        return HoursState.HOLIDAY
    return HoursState.OPEN if _open_on_local(hours, local) else HoursState.CLOSED


def is_open(hours: Hours | None, at: dt.datetime) -> bool:
    """True when `hours` is open at `at`; no calendar means always open."""
    return hours is None or state_at(hours, at) is HoursState.OPEN


def is_holiday(hours: Hours, day: dt.date) -> bool:
    """True when `day` (a local date) is a listed holiday or a public holiday of the country."""
    if day in hours.holidays:
        return True
    if hours.holiday_country:
        return day in _country_holidays(hours.holiday_country, day.year)
    return False


def next_open(hours: Hours | None, after: dt.datetime) -> dt.datetime | None:
    """The first instant at or after `after` when `hours` is open (UTC), or None if never."""
    if hours is None or is_open(hours, after):
        return after
    zone = ZoneInfo(hours.timezone)
    local = after.astimezone(zone)
    for offset in range(MAX_SEARCH_DAYS):
        day = local.date() + dt.timedelta(days=offset)
        if is_holiday(hours, day):
            continue
        for r in sorted(hours.weekly.get(WEEKDAYS[day.weekday()], []), key=lambda r: r.start):
            start = dt.datetime.combine(day, r.start, tzinfo=zone)
            end = _range_end(day, r.end, zone)
            if end <= after:
                continue
            candidate = max(start, after)
            # Across a DST gap a wall-clock start may not exist; re-check before trusting it.
            if is_open(hours, candidate):
                return candidate.astimezone(dt.UTC)
    return None


def warm(calendars: dict[str, Hours], at: dt.datetime) -> None:
    """Build the country holiday tables now, not on the first caller's webhook (~0.2 s each)."""
    for hours in calendars.values():
        if hours.holiday_country:
            local = at.astimezone(ZoneInfo(hours.timezone)).date()
            is_holiday(hours, local)
            is_holiday(hours, local + dt.timedelta(days=366))


def _open_on_local(hours: Hours, local: dt.datetime) -> bool:
    day_ranges = hours.weekly.get(WEEKDAYS[local.weekday()], [])
    now = local.time().replace(tzinfo=None)
    for r in day_ranges:
        if r.start <= now and (r.end == dt.time(0) or now < r.end):
            return True
    return False


def _range_end(day: dt.date, end: dt.time, zone: ZoneInfo) -> dt.datetime:
    if end == dt.time(0):
        return dt.datetime.combine(day + dt.timedelta(days=1), end, tzinfo=zone)
    return dt.datetime.combine(day, end, tzinfo=zone)


@lru_cache(maxsize=64)
def _country_holidays(code: str, year: int) -> holidays_lib.HolidayBase:
    country, _, subdiv = code.partition("-")
    return holidays_lib.country_holidays(country, subdiv=subdiv or None, years=year)


def home_zone(flows) -> str:
    """The flows' home time zone: the operator queue's calendar's, else the first calendar's,
    else UTC. Days in reports and "today" on the wallboard are this zone's days."""
    op = flows.defaults.operator
    queue = flows.queues.get(op.queue) if op else None
    calendar = flows.hours.get(queue.hours) if queue and queue.hours else None
    calendar = calendar or next(iter(flows.hours.values()), None)
    return calendar.timezone if calendar else "UTC"


def start_of_day(at: dt.datetime, zone: str) -> dt.datetime:
    """The aware instant the day holding `at` began in `zone` (local midnight, as UTC)."""
    local = at.astimezone(ZoneInfo(zone))
    midnight = dt.datetime.combine(local.date(), dt.time(0), tzinfo=ZoneInfo(zone))
    return midnight.astimezone(dt.UTC)
