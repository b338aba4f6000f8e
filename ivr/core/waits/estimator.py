"""Per-caller estimated wait: Ibrahim & Whitt's queue-length predictor with abandonment (QL-m).

A caller with ``n`` others ahead, all ``s`` agents busy, moves up one place each time an agent
finishes (rate ``s*mu``) or someone ahead hangs up (rate ``i*theta`` with ``i`` ahead). The wait
is then a sum of exponential stages with rates ``s*mu + i*theta`` for i = n .. 0, so

    mean  = sum_i 1 / (s*mu + i*theta)        (QL-m; with theta = 0 it is QL = (n+1)/(s*mu))
    var   = sum_i 1 / (s*mu + i*theta)**2

(R. Ibrahim and W. Whitt, "Real-time delay estimation in overloaded multiserver queues with
abandonments", Management Science 55(10), 2009.) The announced band's edge is a quantile of a
gamma law with that mean and variance: exact (Erlang) without abandonment, close otherwise.
Variance is widened by the learned handle-time variability, since real handle times are not
exponential. Callbacks that keep a place count as people ahead who do not hang up.

Pure: no Redis, SQL or Flask. Callers pass in what they know and log `Estimate.explanation`.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from ivr.core.waits.bands import Announcement, Band, band_for, honest_announcement
from ivr.core.waits.history import HistoryStats
from ivr.errors import IvrError

__all__ = [
    "BAND_QUANTILE",
    "Estimate",
    "EstimateError",
    "estimate_wait",
    "gamma_quantile",
]

# Quantile of the predicted wait that the announced band must cover. Bands round up to the
# next half minute, so the share of callers answered within their band lands above this;
# tests/bench/ewt.py measures it (target 80-95%).
BAND_QUANTILE = 0.7
# Handle-time variability beyond exponential (cv^2 > 1) makes waits more spread out; beyond
# this factor the learned variance is more likely noise than signal.
_MAX_SPREAD = 4.0


class EstimateError(IvrError):
    """No honest estimate exists for these inputs (e.g. no agent is serving the queue)."""


@dataclass(frozen=True, slots=True)
class Estimate:
    """An estimated remaining wait for one caller, with the phrase to say and why."""

    seconds: float  # expected remaining wait
    upper_seconds: float  # BAND_QUANTILE of the remaining wait: what the band must cover
    band: Band
    explanation: str
    position: int  # effective place in line, callbacks ahead included (1 = next)
    agents: int
    handle_seconds: float
    abandon_rate_per_hour: float
    elapsed_seconds: float
    is_cold_start: bool

    @property
    def total_seconds(self) -> float:
        """Expected total wait: already waited plus expected remaining."""
        return self.elapsed_seconds + self.seconds

    def announce(self, previous: Announcement | None = None) -> Announcement:
        """The honest announcement for this estimate after `previous` (see bands module)."""
        return honest_announcement(self.band, self.elapsed_seconds, previous)

    def to_dict(self) -> dict[str, object]:
        """Plain values for logging or an SQL row (band as its phrase)."""
        out = asdict(self)
        out["band"] = self.band.phrase
        return out


def estimate_wait(
    position: int,
    agents: int,
    history: HistoryStats | None = None,
    *,
    elapsed_seconds: float = 0.0,
    callbacks_ahead: int = 0,
    default_handle_seconds: float = 240.0,
    quantile: float = BAND_QUANTILE,
) -> Estimate:
    """Estimate the remaining wait of the caller at `position` (1 = next) in a queue.

    Args:
        position: the caller's place among live callers (Twilio's QueuePosition, 1-based).
        agents: agents serving this queue now (busy, ringing, wrap-up or free; not offline).
        history: what the queue learned; None or empty means cold start.
        elapsed_seconds: how long this caller has already waited (QueueTime).
        callbacks_ahead: callers who chose a callback and keep a place ahead of this caller.
        default_handle_seconds: the queue's configured handle time, used until history exists.
        quantile: share of the predicted wait distribution the announced band must cover.
    """
    if position < 1:
        raise EstimateError(f"position must be 1 or more, got {position}")
    if callbacks_ahead < 0:
        raise EstimateError(f"callbacks_ahead must not be negative, got {callbacks_ahead}")
    if agents < 1:
        raise EstimateError("no agent is serving this queue: offer a callback instead")
    if default_handle_seconds <= 0:
        raise EstimateError("default_handle_seconds must be more than 0")
    if not 0.0 < quantile < 1.0:
        raise EstimateError("quantile must be between 0 and 1")
    stats = history if history is not None else HistoryStats()
    elapsed = max(0.0, float(elapsed_seconds))

    handle = stats.handle_seconds(default_handle_seconds)
    theta = stats.abandon_rate() or 0.0
    cv2 = stats.handle_cv2()
    spread = 1.0 if cv2 is None else min(max(cv2, 1.0), _MAX_SPREAD)

    live_ahead = position - 1
    ahead = live_ahead + callbacks_ahead
    # Callbacks do not hang up: only the live share of those ahead abandons.
    live_share = live_ahead / ahead if ahead else 0.0
    service_rate = agents / handle
    mean = 0.0
    var = 0.0
    for i in range(ahead + 1):
        rate = service_rate + i * theta * live_share
        mean += 1.0 / rate
        var += 1.0 / (rate * rate)
    var *= spread
    upper = gamma_quantile(mean, var, quantile)
    band = band_for(upper)

    explanation = _explain(
        position, callbacks_ahead, agents, handle, stats, default_handle_seconds,
        theta, spread, elapsed, mean, upper, quantile, band,
    )
    return Estimate(
        seconds=mean,
        upper_seconds=upper,
        band=band,
        explanation=explanation,
        position=ahead + 1,
        agents=agents,
        handle_seconds=handle,
        abandon_rate_per_hour=theta * 3600.0,
        elapsed_seconds=elapsed,
        is_cold_start=stats.is_cold,
    )


def _explain(
    position: int,
    callbacks_ahead: int,
    agents: int,
    handle: float,
    stats: HistoryStats,
    default_handle: float,
    theta: float,
    spread: float,
    elapsed: float,
    mean: float,
    upper: float,
    quantile: float,
    band: Band,
) -> str:
    handle_src = (
        f"cold start: queue default {default_handle:.0f}s"
        if stats.is_cold
        else f"learned from {stats.handle_count} calls"
    )
    abandon_src = (
        f"{theta * 3600:.1f}/h from {stats.outcome_count} waits"
        if stats.abandon_rate() is not None
        else "unknown, taken as 0"
    )
    return (
        f"position {position} + {callbacks_ahead} callbacks ahead"
        f" -> {position - 1 + callbacks_ahead} ahead; {agents} agents;"
        f" handle {handle:.0f}s ({handle_src}); abandonment {abandon_src};"
        f" spread x{spread:.2f}; waited {elapsed:.0f}s;"
        f" QL-m mean {mean:.0f}s, q{quantile * 100:.0f} {upper:.0f}s -> '{band.phrase}'"
    )


# --- gamma quantile (no SciPy): regularised incomplete gamma + bisection -------------------


def _lower_regularized_gamma(a: float, x: float) -> float:
    """P(a, x): the gamma(a, 1) CDF at x (series below a+1, continued fraction above)."""
    if x <= 0.0:
        return 0.0
    log_prefix = a * math.log(x) - x - math.lgamma(a)
    if x < a + 1.0:
        term = 1.0 / a
        total = term
        n = a
        for _ in range(10_000):
            n += 1.0
            term *= x / n
            total += term
            if term < total * 1e-12:
                break
        return min(1.0, total * math.exp(log_prefix))
    # Lentz's continued fraction for the upper tail Q(a, x).
    tiny = 1e-300
    b = x + 1.0 - a
    c = 1.0 / tiny
    d = 1.0 / b
    h = d
    for i in range(1, 10_000):
        an = -i * (i - a)
        b += 2.0
        d = an * d + b
        d = tiny if abs(d) < tiny else d
        c = b + an / c
        c = tiny if abs(c) < tiny else c
        d = 1.0 / d
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-12:
            break
    return max(0.0, 1.0 - math.exp(log_prefix) * h)


def gamma_quantile(mean: float, variance: float, q: float) -> float:
    """The q-quantile of the gamma law with this mean and variance."""
    if mean <= 0.0:
        return 0.0
    if variance <= 0.0:
        return mean
    shape = mean * mean / variance
    scale = variance / mean
    lo, hi = 0.0, max(1.0, shape) * 4.0
    while _lower_regularized_gamma(shape, hi) < q:
        hi *= 2.0
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        if _lower_regularized_gamma(shape, mid) < q:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-6 * hi:
            break
    return 0.5 * (lo + hi) * scale
