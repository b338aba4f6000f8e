"""Module-level RQ jobs for the worker tests (RQ imports jobs by dotted path)."""

from __future__ import annotations

import time


def quick(value: int) -> int:
    return value * 2


def slow(seconds: float) -> str:
    time.sleep(seconds)
    return "finished"
