"""What a queue has learned from its past calls: smoothed handle time and abandonment rate.

Pure data and arithmetic: the caller stores `to_dict()` (e.g. in a Redis hash) and rebuilds the
learner with `from_dict()`, which accepts the string values a Redis hash hands back.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields

__all__ = ["HistoryStats"]

# Weight of the newest handle time once warmed up: about the last 50 calls count.
HANDLE_ALPHA = 0.02
# Decay per wait outcome for the abandonment counts: about the last 100 callers count.
OUTCOME_ALPHA = 0.01
# Before this many handled calls, the learned mean is blended with the configured default,
# weighted as if the default were this many calls (a prior that fades as history grows).
PRIOR_CALLS = 5.0
# Fewer waiting outcomes than this and the abandonment rate is treated as unknown (0).
MIN_OUTCOMES = 10


def _number(value: object) -> float:
    """Accept floats, ints and the str/bytes values that come back from Redis."""
    if isinstance(value, bytes):
        value = value.decode()
    return float(value)  # type: ignore[arg-type]


@dataclass(slots=True)
class HistoryStats:
    """Learner for one queue: EWMA handle time (with variance) and exponential-patience rate."""

    handle_mean: float = 0.0  # EWMA of handle seconds (meaningless while handle_count == 0)
    handle_var: float = 0.0  # exponentially weighted variance of handle seconds
    handle_count: int = 0
    abandon_weight: float = 0.0  # decayed number of callers who hung up while waiting
    wait_exposure: float = 0.0  # decayed seconds spent waiting by all callers with an outcome
    outcome_count: int = 0

    # --- learning -------------------------------------------------------------------------

    def record_handled(self, handle_seconds: float) -> None:
        """Learn from one finished conversation (talk + wrap-up seconds an agent spent)."""
        if not math.isfinite(handle_seconds) or handle_seconds <= 0:
            return  # a zero-length or broken record says nothing about agents' pace
        self.handle_count += 1
        # 1/n at first makes the EWMA a plain running mean until it is warm: no start-up bias.
        alpha = max(HANDLE_ALPHA, 1.0 / self.handle_count)
        if self.handle_count == 1:
            self.handle_mean, self.handle_var = float(handle_seconds), 0.0
            return
        diff = handle_seconds - self.handle_mean
        self.handle_mean += alpha * diff
        self.handle_var = (1.0 - alpha) * (self.handle_var + alpha * diff * diff)

    def record_answered(self, waited_seconds: float, handle_seconds: float | None = None) -> None:
        """Learn from a caller an agent answered after `waited_seconds` in line."""
        self._record_outcome(waited_seconds, abandoned=False)
        if handle_seconds is not None:
            self.record_handled(handle_seconds)

    def record_abandoned(self, waited_seconds: float) -> None:
        """Learn from a caller who hung up (or left the line) after `waited_seconds`."""
        self._record_outcome(waited_seconds, abandoned=True)

    def _record_outcome(self, waited_seconds: float, *, abandoned: bool) -> None:
        waited = max(0.0, float(waited_seconds)) if math.isfinite(waited_seconds) else 0.0
        keep = 1.0 - OUTCOME_ALPHA
        self.abandon_weight = self.abandon_weight * keep + (1.0 if abandoned else 0.0)
        self.wait_exposure = self.wait_exposure * keep + waited
        self.outcome_count += 1

    # --- what was learned -----------------------------------------------------------------

    def handle_seconds(self, default_seconds: float) -> float:
        """Smoothed handle time, pulled toward `default_seconds` while history is thin."""
        if self.handle_count == 0:
            return float(default_seconds)
        n = float(self.handle_count)
        return (n * self.handle_mean + PRIOR_CALLS * default_seconds) / (n + PRIOR_CALLS)

    def handle_cv2(self) -> float | None:
        """Squared coefficient of variation of handle time, or None with too little history."""
        if self.handle_count < MIN_OUTCOMES or self.handle_mean <= 0:
            return None
        return self.handle_var / (self.handle_mean * self.handle_mean)

    def abandon_rate(self) -> float | None:
        """Abandonment rate per waiting second (exponential patience MLE), None if unknown.

        Hang-ups divided by the total time callers spent waiting is the maximum-likelihood
        rate of exponential patience when answered callers count as censored observations.
        """
        if self.outcome_count < MIN_OUTCOMES or self.wait_exposure <= 0:
            return None
        return self.abandon_weight / self.wait_exposure

    @property
    def is_cold(self) -> bool:
        """True while no conversation has been timed yet."""
        return self.handle_count == 0

    # --- storage --------------------------------------------------------------------------

    def to_dict(self) -> dict[str, float | int]:
        """Plain numbers, ready for a Redis hash or JSON."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, data: Mapping[str, object] | Mapping[bytes, object] | None) -> HistoryStats:
        """Rebuild from `to_dict()` output; unknown keys are ignored, missing ones start at 0."""
        stats = cls()
        if not data:
            return stats
        for key, raw in data.items():
            name = key.decode() if isinstance(key, bytes) else str(key)
            if name in cls.__dataclass_fields__:
                value = _number(raw)
                if name.endswith("_count"):
                    setattr(stats, name, int(value))
                elif math.isfinite(value):
                    setattr(stats, name, value)
        return stats
