"""The per-caller wait estimator: QL / QL-m behaviour, cold start, callbacks, explanation."""

import math

import numpy as np
import pytest

from ivr.core.waits import BAND_QUANTILE, EstimateError, HistoryStats, estimate_wait
from ivr.core.waits.estimator import gamma_quantile
from ivr.errors import IvrError


def learned(handle: float, calls: int = 200, abandons: int = 0, waits: int = 0,
            waited: float = 60.0) -> HistoryStats:
    """History of `calls` handled in exactly `handle` s, and waiting outcomes."""
    stats = HistoryStats()
    for _ in range(calls):
        stats.record_handled(handle)
    for i in range(waits):
        if i < abandons:
            stats.record_abandoned(waited)
        else:
            stats.record_answered(waited)
    return stats


def test_cold_start_uses_the_queue_default_handle_time():
    est = estimate_wait(1, 1, None, default_handle_seconds=180)
    assert est.is_cold_start
    assert est.seconds == pytest.approx(180.0)
    assert est.handle_seconds == 180.0
    assert "cold start" in est.explanation
    assert "180s" in est.explanation


@pytest.mark.parametrize(("position", "agents"), [(1, 1), (1, 4), (3, 2), (10, 5), (40, 8)])
def test_without_abandonment_it_is_ql(position, agents):
    # QL = (n + 1) / (s * mu) with n callers ahead.
    est = estimate_wait(position, agents, learned(300.0), default_handle_seconds=300)
    assert est.seconds == pytest.approx(position * 300.0 / agents, rel=1e-9)


def test_later_place_waits_longer_and_more_agents_shorter():
    stats = learned(240.0)
    by_position = [estimate_wait(p, 3, stats).seconds for p in (1, 2, 5, 20)]
    assert by_position == sorted(by_position) and len(set(by_position)) == 4
    by_agents = [estimate_wait(6, s, stats).seconds for s in (1, 2, 4, 8)]
    assert by_agents == sorted(by_agents, reverse=True) and len(set(by_agents)) == 4


def test_callbacks_keep_places_in_the_same_line():
    stats = learned(240.0)
    assert estimate_wait(3, 2, stats, callbacks_ahead=2).seconds == pytest.approx(
        estimate_wait(5, 2, stats).seconds
    )
    est = estimate_wait(3, 2, stats, callbacks_ahead=2)
    assert est.position == 5
    assert "2 callbacks ahead" in est.explanation


def test_abandonment_shortens_the_wait_as_ql_m():
    # 20 hang-ups among 100 outcomes, each after 60 s in line.
    stats = learned(300.0, abandons=20, waits=100)
    theta = stats.abandon_rate()
    assert theta is not None and theta > 0
    est = estimate_wait(10, 4, stats, default_handle_seconds=300)
    ql_m = sum(1.0 / (4 / 300.0 + i * theta) for i in range(10))
    assert est.seconds == pytest.approx(ql_m, rel=1e-9)
    assert est.seconds < 10 * 300.0 / 4
    assert est.abandon_rate_per_hour == pytest.approx(theta * 3600)


def test_callbacks_ahead_do_not_hang_up():
    stats = learned(300.0, abandons=20, waits=100)
    live = estimate_wait(6, 2, stats, default_handle_seconds=300)
    with_callbacks = estimate_wait(1, 2, stats, callbacks_ahead=5, default_handle_seconds=300)
    assert with_callbacks.seconds == pytest.approx(6 * 300.0 / 2)  # nobody ahead abandons
    assert live.seconds < with_callbacks.seconds


def test_learned_handle_time_replaces_the_default():
    stats = learned(120.0, calls=95)
    est = estimate_wait(1, 1, stats, default_handle_seconds=240)
    # The default fades as a prior worth five calls: (95*120 + 5*240) / 100.
    assert est.handle_seconds == pytest.approx(126.0)
    assert not est.is_cold_start
    assert "learned from 95 calls" in est.explanation


def test_explanation_names_every_input():
    stats = learned(200.0, abandons=10, waits=50)
    est = estimate_wait(
        4, 3, stats, elapsed_seconds=75, callbacks_ahead=1, default_handle_seconds=200
    )
    text = est.explanation
    for piece in ("position 4", "1 callbacks ahead", "3 agents", "handle 200s", "waited 75s",
                  "abandonment", f"'{est.band.phrase}'", f"mean {est.seconds:.0f}s"):
        assert piece in text, piece
    assert est.elapsed_seconds == 75
    assert est.total_seconds == pytest.approx(75 + est.seconds)


def test_band_covers_the_chosen_quantile():
    for position in (1, 2, 5, 12, 30, 80):
        est = estimate_wait(position, 4, learned(240.0))
        assert est.upper_seconds > est.seconds
        edge = est.band.upper_seconds
        assert edge is None or edge >= est.upper_seconds


def test_bands_follow_the_wait():
    stats = learned(240.0)
    assert estimate_wait(1, 10, stats).band.phrase == "less than a minute"
    assert estimate_wait(5, 4, stats).band.phrase.startswith("about ")
    assert estimate_wait(200, 2, stats).band.phrase == "more than 20 minutes"


def test_variable_handle_times_widen_the_band_not_the_mean():
    rng = np.random.default_rng(7)
    steady, erratic = HistoryStats(), HistoryStats()
    for x in rng.lognormal(math.log(240) - 0.02, 0.2, 400):
        steady.record_handled(float(x))
    for x in rng.lognormal(math.log(240) - 1.125, 1.5, 400):
        erratic.record_handled(float(x))
    a = estimate_wait(8, 2, steady, default_handle_seconds=240)
    b = estimate_wait(8, 2, erratic, default_handle_seconds=240)
    assert b.upper_seconds / b.seconds > a.upper_seconds / a.seconds
    assert "spread x1.00" in a.explanation and "spread x1.00" not in b.explanation


@pytest.mark.parametrize(
    "kwargs",
    [
        {"position": 1, "agents": 0},
        {"position": 0, "agents": 2},
        {"position": 1, "agents": 2, "callbacks_ahead": -1},
        {"position": 1, "agents": 2, "default_handle_seconds": 0},
        {"position": 1, "agents": 2, "quantile": 1.0},
    ],
)
def test_impossible_inputs_raise(kwargs):
    with pytest.raises(EstimateError) as info:
        estimate_wait(**kwargs)
    assert isinstance(info.value, IvrError)


def test_no_agents_message_points_to_a_callback():
    with pytest.raises(EstimateError, match="callback"):
        estimate_wait(1, 0)


def test_gamma_quantile_is_exact_for_exponential_and_erlang():
    # One stage: exponential, quantile = -mean * ln(1 - q).
    assert gamma_quantile(100.0, 100.0**2, 0.7) == pytest.approx(-100 * math.log(0.3), rel=1e-5)
    # k stages of rate r: Erlang, whose CDF is 1 - sum_{j<k} e^{-rt} (rt)^j / j!.
    k, r = 6, 1 / 50.0
    t = gamma_quantile(k / r, k / r**2, BAND_QUANTILE)
    cdf = 1 - sum(math.exp(-r * t) * (r * t) ** j / math.factorial(j) for j in range(k))
    assert cdf == pytest.approx(BAND_QUANTILE, abs=1e-5)


def test_estimate_serialises_for_the_log():
    est = estimate_wait(2, 2, None)
    row = est.to_dict()
    # Mean 4 minutes; its 70% quantile (about 4.9 minutes) rounds to the band "about 5 minutes".
    assert row["seconds"] == pytest.approx(240.0)
    assert row["band"] == "about 5 minutes"
    assert row["position"] == 2 and row["agents"] == 2 and row["is_cold_start"] is True
