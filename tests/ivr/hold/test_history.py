"""The history learner: smoothed handle time, abandonment rate, storage."""

import math

import numpy as np
import pytest

from ivr.core.waits import HistoryStats


def test_fresh_history_is_cold_and_knows_nothing():
    stats = HistoryStats()
    assert stats.is_cold
    assert stats.handle_seconds(240) == 240
    assert stats.abandon_rate() is None
    assert stats.handle_cv2() is None


def test_handle_time_is_a_running_mean_then_follows_change():
    stats = HistoryStats()
    for x in (100, 200, 300):
        stats.record_handled(x)
    assert stats.handle_mean == pytest.approx(200.0)  # plain mean while warming up
    for _ in range(400):
        stats.record_handled(500)
    assert stats.handle_mean == pytest.approx(500.0, rel=0.01)  # old pace forgotten


def test_broken_handle_records_are_ignored():
    stats = HistoryStats()
    for bad in (0, -5, math.nan, math.inf):
        stats.record_handled(bad)
    assert stats.is_cold
    stats.record_answered(12.0, handle_seconds=180)
    assert stats.handle_count == 1 and stats.handle_mean == 180


def test_abandonment_rate_recovers_exponential_patience():
    # Callers with exponential patience (mean 300 s) each offered an agent after an
    # exponential time (mean 200 s): hang-ups / time waited estimates 1/300 per second.
    rng = np.random.default_rng(11)
    stats = HistoryStats()
    draws = zip(rng.exponential(300, 3000), rng.exponential(200, 3000), strict=True)
    for patience, offer in draws:
        if patience < offer:
            stats.record_abandoned(float(patience))
        else:
            stats.record_answered(float(offer))
    rate = stats.abandon_rate()
    assert rate is not None
    assert rate == pytest.approx(1 / 300, rel=0.25)


def test_no_hang_ups_means_zero_abandonment():
    stats = HistoryStats()
    for _ in range(50):
        stats.record_answered(30.0)
    assert stats.abandon_rate() == 0.0


def test_handle_variability_is_learned():
    rng = np.random.default_rng(3)
    stats = HistoryStats()
    sigma = 1.0
    for x in rng.lognormal(5.0, sigma, 3000):
        stats.record_handled(float(x))
    cv2 = stats.handle_cv2()
    assert cv2 is not None
    assert 0.8 < cv2 < 3.5  # lognormal sigma 1: cv^2 = e - 1 = 1.72; an EWMA is noisy


def test_round_trip_through_a_redis_hash():
    stats = HistoryStats()
    for x in (120, 180, 240):
        stats.record_handled(x)
    stats.record_abandoned(45)
    stats.record_answered(30)
    # redis-py without decode_responses returns bytes keys and values.
    raw = {k.encode(): str(v).encode() for k, v in stats.to_dict().items()}
    back = HistoryStats.from_dict(raw)
    assert back == stats
    assert isinstance(back.handle_count, int)


def test_from_dict_tolerates_missing_and_unknown_keys():
    back = HistoryStats.from_dict({"handle_mean": "200", "handle_count": "7", "future": "1"})
    assert back.handle_count == 7 and back.handle_mean == 200.0
    assert back.outcome_count == 0
    assert HistoryStats.from_dict(None) == HistoryStats()
