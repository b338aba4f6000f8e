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


Promise = tuple[float, int]  # (elapsed wait by which we said "answered", band rank said)


@dataclass(frozen=True, slots=True)
class Announcement:
    """What a caller was told and the promises still standing: kept between wait-URL requests."""

    band: Band
    announced_at_seconds: float  # the caller's elapsed wait when they heard it
    # Promises not yet lapsed, earliest first. Only those that could still raise the floor are
    # kept (at most one per band), so the tuple stays short.
    promises: tuple[Promise, ...] = ()
    floor_rank: int = 0  # no band below this may be said: set above each lapsed promise
    is_overdue: bool = False  # a promise lapsed before this announcement: apologise
    was_overdue: bool = False  # some promise to this caller has lapsed (sticky)

    @property
    def deadline_seconds(self) -> float | None:
        """The earliest standing promise, as an elapsed wait; None if none stands."""
        return self.promises[0][0] if self.promises else None

    def is_overdue_at(self, elapsed_seconds: float) -> bool:
        """True once the caller has waited past a promise still standing."""
        deadline = self.deadline_seconds
        return deadline is not None and elapsed_seconds > deadline

    def to_dict(self) -> dict[str, float | int | str]:
        """Plain values for a Redis hash or JSON (band by rank, promises as 'due:rank;...')."""
        return {
            "rank": self.band.rank,
            "announced_at_seconds": self.announced_at_seconds,
            "promises": ";".join(f"{due:.3f}:{rank}" for due, rank in self.promises),
            "floor_rank": self.floor_rank,
            "is_overdue": int(self.is_overdue),
            "was_overdue": int(self.was_overdue),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, object] | Mapping[bytes, object]) -> Announcement:
        """Rebuild from `to_dict()` output (keys and values may be bytes, as Redis returns)."""
        fields = {k.decode() if isinstance(k, bytes) else str(k): v for k, v in data.items()}

        def text(key: str, default: str = "0") -> str:
            raw = fields.get(key, default)
            return raw.decode() if isinstance(raw, bytes) else str(raw)

        promises = tuple(
            (float(due), int(rank))
            for due, rank in (item.split(":") for item in text("promises", "").split(";") if item)
        )
        return cls(
            band=_band_by_rank(int(float(text("rank")))),
            announced_at_seconds=float(text("announced_at_seconds")),
            promises=promises,
            floor_rank=int(float(text("floor_rank"))),
            is_overdue=bool(int(float(text("is_overdue")))),
            was_overdue=bool(int(float(text("was_overdue")))),
        )


def _keep_binding(promises: list[Promise]) -> tuple[Promise, ...]:
    """Drop promises that lapse no sooner than a longer-or-equal band's promise."""
    kept: list[Promise] = []
    for due, rank in sorted(promises):
        if all(rank > other for _, other in kept):
            kept.append((due, rank))
    return tuple(kept)


def honest_announcement(
    band: Band, elapsed_seconds: float, previous: Announcement | None = None
) -> Announcement:
    """What to tell a caller now, given the fresh band and what they were told before.

    Every band said is a promise: "answered by `elapsed + band edge`". Before any promise
    lapses, a shorter band is real progress and is said as is. Once the caller has waited past
    a promise, that estimate is overdue: it is never said again, nor anything shorter, so later
    bands are at least one step longer than it was. This rules out the countdown of Asterisk's
    ``holdtime - waited``, which keeps saying "less than a minute" while the wait drags on.
    The wait handler should apologise when `is_overdue` is set.
    """
    floor = previous.floor_rank if previous else 0
    standing: list[Promise] = []
    overdue = False
    for due, rank in previous.promises if previous else ():
        if elapsed_seconds > due:
            overdue = True
            floor = max(floor, rank + 1)
        else:
            standing.append((due, rank))
    chosen = band if band.rank >= floor else _band_by_rank(floor)
    if chosen.upper_seconds is not None:
        standing.append((elapsed_seconds + chosen.upper_seconds, chosen.rank))
    return Announcement(
        band=chosen,
        announced_at_seconds=elapsed_seconds,
        promises=_keep_binding(standing),
        floor_rank=floor,
        is_overdue=overdue,
        was_overdue=overdue or (previous is not None and previous.was_overdue),
    )
