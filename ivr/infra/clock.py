"""The service's one clock: what "now" is for hours, waits, presence and callbacks.

A clock is a callable returning an aware UTC datetime. Production uses the system's. `ivr serve
--at` and `ivr simulate --at` run on a shifted clock that starts at a chosen moment and then
runs on in real time, so open-hours paths can be tried at any hour; every process of one
service (and the CLI talking to it) applies the same shift (`IVR_CLOCK_OFFSET`, in seconds).
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Mapping
from typing import Any
from zoneinfo import ZoneInfo

Clock = Callable[[], dt.datetime]


def system_now() -> dt.datetime:
    """The current time as an aware UTC datetime."""
    return dt.datetime.now(dt.UTC)


class ShiftedClock:
    """The system clock moved by a fixed number of seconds."""

    def __init__(self, offset_seconds: float) -> None:
        self.offset = float(offset_seconds)

    def __call__(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(time.time() + self.offset, dt.UTC)

    @classmethod
    def starting_at(cls, at: dt.datetime) -> ShiftedClock:
        """A clock that reads `at` now and runs on from there."""
        return cls(at.timestamp() - time.time())


def clock_from(config: Mapping[str, Any]) -> Clock:
    """The clock a configuration asks for: `CLOCK` (tests), a shift, or the system's."""
    given = config.get("CLOCK")
    if callable(given):
        return given
    offset = config.get("IVR_CLOCK_OFFSET")
    if offset not in (None, "", 0, "0"):
        return ShiftedClock(float(offset))
    return system_now


class BadTime(ValueError):
    """A --at value that is not a date and time."""


def parse_at(text: str, default_zone: str) -> dt.datetime:
    """'2026-12-02 12:00' (in `default_zone`) or an ISO time with an offset, as aware UTC."""
    try:
        at = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise BadTime(f"{text!r} is not a date and time: use e.g. '2026-12-02 12:00' or "
                      "'2026-12-02T12:00-05:00'") from None
    if at.tzinfo is None:
        at = at.replace(tzinfo=ZoneInfo(default_zone))
    return at.astimezone(dt.UTC)
