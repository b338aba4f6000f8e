"""Business-hours timetables as flows.yaml writes them: a time zone, weekly hours, holidays."""

from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import field_validator

from ivr.core.flows.model import Model

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class TimeRange(Model):
    start: dt.time
    end: dt.time  # exclusive; 24:00 is written as 00:00 and means midnight at the end

    @classmethod
    def parse(cls, text: str) -> TimeRange:
        m = re.fullmatch(r"\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*", text)
        if not m:
            raise ValueError(f"invalid hours '{text}': write them as 'HH:MM-HH:MM'")
        h1, m1, h2, m2 = (int(g) for g in m.groups())
        if h2 == 24 and m2 == 0:
            h2 = 0
        for h, mi in ((h1, m1), (h2, m2)):
            if h > 23 or mi > 59:
                raise ValueError(f"invalid hours '{text}': {h:02d}:{mi:02d} is not a time of day")
        start, end = dt.time(h1, m1), dt.time(h2, m2)
        if end != dt.time(0) and end <= start:
            raise ValueError(f"invalid hours '{text}': the end is not after the start")
        return cls(start=start, end=end)


class Hours(Model):
    """A weekly timetable in one time zone, with holidays closed."""

    timezone: str
    weekly: dict[str, list[TimeRange]]
    holidays: list[dt.date] = []
    # ISO country code (optionally 'US-CA'): that country's public holidays are closed too.
    holiday_country: str | None = None

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone '{value}'") from None
        return value

    @field_validator("weekly", mode="before")
    @classmethod
    def _expand_days(cls, value: object) -> object:
        if not isinstance(value, dict):
            return value
        out: dict[str, list] = {}
        for key, ranges in value.items():
            for day in _expand_day_key(str(key)):
                if isinstance(ranges, str):
                    ranges = [ranges] if ranges.strip().lower() != "closed" else []
                if ranges is None:
                    ranges = []
                parsed = [TimeRange.parse(r) if isinstance(r, str) else r for r in ranges]
                out.setdefault(day, []).extend(parsed)
        return out


def _expand_day_key(key: str) -> list[str]:
    """'mon-fri' -> ['mon', ..., 'fri']; 'sat' -> ['sat']; 'daily' -> all seven days."""
    key = key.strip().lower()
    if key in ("daily", "every day"):
        return list(WEEKDAYS)
    if "-" in key:
        first, _, last = key.partition("-")
        if first in WEEKDAYS and last in WEEKDAYS:
            i, j = WEEKDAYS.index(first), WEEKDAYS.index(last)
            return list(WEEKDAYS[i : j + 1]) if i <= j else list(WEEKDAYS[i:] + WEEKDAYS[: j + 1])
    if key in WEEKDAYS:
        return [key]
    raise ValueError(f"invalid hours: unknown day '{key}' (use mon..sun, 'mon-fri' or 'daily')")
