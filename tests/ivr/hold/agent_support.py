"""Shared helpers of the agent tests."""

from __future__ import annotations

import datetime as dt

T0 = dt.datetime(2024, 3, 4, 9, 0, tzinfo=dt.UTC)


def at(seconds: float) -> dt.datetime:
    """T0 plus `seconds`."""
    return T0 + dt.timedelta(seconds=seconds)
