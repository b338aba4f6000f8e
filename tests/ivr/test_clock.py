"""One clock for the service: the system's, or one shifted to a chosen moment (`--at`)."""

from __future__ import annotations

import datetime as dt
import time

import pytest

from ivr.infra.clock import BadTime, ShiftedClock, clock_from, parse_at, system_now


def test_a_bare_time_is_read_in_the_shops_zone():
    assert parse_at("2026-12-02 12:00", "America/New_York") == dt.datetime(
        2026, 12, 2, 17, 0, tzinfo=dt.UTC)
    assert parse_at("2026-12-02T12:00+05:30", "America/New_York") == dt.datetime(
        2026, 12, 2, 6, 30, tzinfo=dt.UTC)
    with pytest.raises(BadTime, match="is not a date and time"):
        parse_at("noon on Tuesday", "UTC")


def test_a_shifted_clock_starts_at_the_moment_and_runs_on():
    at = dt.datetime(2026, 12, 2, 17, 0, tzinfo=dt.UTC)
    clock = ShiftedClock.starting_at(at)
    first = clock()
    assert abs((first - at).total_seconds()) < 1
    time.sleep(0.2)
    assert 0.15 < (clock() - first).total_seconds() < 1.0


def test_the_configuration_chooses_the_clock():
    fixed = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    assert clock_from({"CLOCK": lambda: fixed})() == fixed
    shifted = clock_from({"IVR_CLOCK_OFFSET": "86400"})
    assert 86399 < (shifted() - system_now()).total_seconds() < 86401
    assert clock_from({}) is system_now


def test_times_for_rqs_scheduler_are_on_the_system_clock():
    """RQ's scheduler compares with the system clock: a shifted service converts first."""
    from ivr.infra.services import Services

    day = 86400.0
    services = Services(config={}, clock=ShiftedClock(day), urls=None, telephony=None,
                        redis=None, db=None, flows=None, calls=None)
    at = services.now() + dt.timedelta(minutes=5)
    real = services.on_system_clock(at)
    assert abs((real - system_now()).total_seconds() - 300) < 1
