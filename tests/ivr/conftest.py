"""Voice tests run at a fixed time when the sample shop is open, unless they set their own."""

from __future__ import annotations

import datetime as dt

import pytest

# Tuesday 24 November 2026, 11:00 in New York.
SHOP_OPEN = dt.datetime(2026, 11, 24, 16, 0, tzinfo=dt.UTC)


@pytest.fixture
def app_config(app_config: dict) -> dict:
    return {**app_config, "CLOCK": lambda: SHOP_OPEN}
