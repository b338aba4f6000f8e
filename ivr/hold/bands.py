"""Honest wait phrasing: bands a caller hears, and the rule for repeated announcements.

Each band is a promise with one edge. "Less than a minute" and "about N minutes" promise an
upper edge: "about N minutes" covers waits up to N minutes and a half, the way a person rounds.
"More than 20 minutes" promises only that the wait is long. The estimator picks the band whose
upper edge covers a chosen quantile of the predicted wait, so most callers are answered within
what they were told (calibration), without padding every estimate to the worst case.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = [
    "LONG_WAIT_SECONDS",
    "Announcement",
    "Band",
    "band_for",
    "honest_announcement",
]

LONG_WAIT_SECONDS = 20 * 60  # beyond this we stop counting minutes: "more than 20 minutes"
_UNDER_A_MINUTE = 60.0
_HALF_MINUTE = 30.0


@dataclass(frozen=True, slots=True)
class Band:
    """One phrase a caller can hear, with the seconds it covers."""

    phrase: str
    lower_seconds: float
    upper_seconds: float | None  # None: open-ended ("more than 20 minutes")
    minutes: int | None  # the N in "about N minutes"; 0 for under a minute; None when open

    @property
    def rank(self) -> int:
        """Order of bands from shortest (0) to longest, for 'never shorter' comparisons."""
        if self.minutes is None:
            return LONG_WAIT_SECONDS // 60 + 1
        return self.minutes

    def is_kept_by(self, actual_seconds: float) -> bool:
        """Did a wait of `actual_seconds` keep this band's promise?"""
        if self.upper_seconds is None:
            return actual_seconds >= self.lower_seconds
        return actual_seconds <= self.upper_seconds

    def __str__(self) -> str:
        return self.phrase


def _about(minutes: int) -> Band:
    upper = min(minutes * 60 + _HALF_MINUTE, float(LONG_WAIT_SECONDS))
    lower = _UNDER_A_MINUTE if minutes == 2 else minutes * 60 - _HALF_MINUTE
    return Band(f"about {minutes} minutes", lower, upper, minutes)


_LESS_THAN_A_MINUTE = Band("less than a minute", 0.0, _UNDER_A_MINUTE, 0)
_MORE_THAN_LONG = Band(
    f"more than {LONG_WAIT_SECONDS // 60} minutes", float(LONG_WAIT_SECONDS), None, None
)


def band_for(upper_seconds: float) -> Band:
    """The shortest band whose upper edge covers `upper_seconds` of remaining wait."""
    if math.isnan(upper_seconds):
        raise ValueError("upper_seconds is NaN")
    if upper_seconds <= _UNDER_A_MINUTE:
        return _LESS_THAN_A_MINUTE
    if upper_seconds > LONG_WAIT_SECONDS:
        return _MORE_THAN_LONG
    # "about 1 minute" would sit oddly after "less than a minute": start at 2.
    minutes = max(2, math.ceil((upper_seconds - _HALF_MINUTE) / 60.0))
    return _about(minutes)


def _band_by_rank(rank: int) -> Band:
    if rank <= 0:
        return _LESS_THAN_A_MINUTE
    if rank > LONG_WAIT_SECONDS // 60:
        return _MORE_THAN_LONG
    return _about(max(2, rank))


@dataclass(frozen=True, slots=True)
class Announcement:
    """What a caller was told, and when in their wait: stored between wait-URL requests."""

    band: Band
    announced_at_seconds: float  # the caller's elapsed wait when they heard it
    is_overdue: bool = False  # the previous promise had already passed when this was said
    was_overdue: bool = False  # some earlier promise to this caller has passed (sticky)

    @property
    def due_by_seconds(self) -> float | None:
        """Elapsed wait by which this announcement promised an answer (None if open-ended)."""
        if self.band.upper_seconds is None:
            return None
        return self.announced_at_seconds + self.band.upper_seconds

    def is_overdue_at(self, elapsed_seconds: float) -> bool:
        """True once the caller has waited past what this announcement promised."""
        due = self.due_by_seconds
        return due is not None and elapsed_seconds > due

    def to_dict(self) -> dict[str, float | int]:
        """Plain numbers for Redis or JSON: the band is kept by rank."""
        return {
            "rank": self.band.rank,
            "announced_at_seconds": self.announced_at_seconds,
            "is_overdue": int(self.is_overdue),
            "was_overdue": int(self.was_overdue),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> Announcement:
        """Rebuild from `to_dict()` output (values may be strings, as Redis returns them)."""
        return cls(
            band=_band_by_rank(int(float(str(data["rank"])))),
            announced_at_seconds=float(str(data["announced_at_seconds"])),
            is_overdue=_flag(data, "is_overdue"),
            was_overdue=_flag(data, "was_overdue"),
        )


def _flag(data: Mapping[str, object], key: str) -> bool:
    return bool(int(float(str(data.get(key, 0)))))


def honest_announcement(
    band: Band, elapsed_seconds: float, previous: Announcement | None = None
) -> Announcement:
    """What to tell a caller now, given the fresh band and what they were told before.

    Once a caller has waited past an earlier promise, we were wrong once already: the new
    announcement is never a shorter band than the one that failed (no "less than a minute"
    on repeat while the wait drags on, the flaw of a countdown such as Asterisk's
    ``holdtime - waited``). The wait handler should apologise when `is_overdue` is set (the
    last promise just lapsed); `was_overdue` stays set for the rest of the wait.
    Before a promise is overdue, a shorter band is real progress and is said as is.
    """
    if previous is None:
        return Announcement(band=band, announced_at_seconds=elapsed_seconds)
    overdue = previous.is_overdue_at(elapsed_seconds)
    # Sticky: after one broken promise, later announcements stay at least that long.
    was_overdue = overdue or previous.was_overdue
    chosen = band
    if was_overdue and band.rank < previous.band.rank:
        chosen = previous.band
    return Announcement(
        band=chosen,
        announced_at_seconds=elapsed_seconds,
        is_overdue=overdue,
        was_overdue=was_overdue,
    )
