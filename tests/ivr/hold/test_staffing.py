"""Erlang C staffing against published figures and an independent direct-sum formula."""

import json
import math

import pytest
from click.testing import CliRunner

from ivr.commands.staffing import staffing_command
from ivr.core.waits.staffing import (
    StaffingError,
    erlang_b,
    erlang_c,
    evaluate_staffing,
    required_agents,
)
from ivr.errors import IvrError


def direct_erlang_c(agents: int, traffic: float) -> float:
    """Textbook Erlang C with factorials: fine for small inputs, used as an independent check."""
    top = traffic**agents / math.factorial(agents) * agents / (agents - traffic)
    bottom = math.fsum(traffic**k / math.factorial(k) for k in range(agents)) + top
    return top / bottom


def test_published_example_60_calls_an_hour_needs_7_agents():
    # 60 calls/h x 240 s = 4 Erlangs; 80% in 20 s -> 7 agents, ~89.5% in 20 s, ASA ~11 s.
    result = required_agents(60, 240, 20, 0.8)
    assert result.agents == 7
    assert result.traffic_erlangs == pytest.approx(4.0)
    assert result.service_level == pytest.approx(0.895, abs=0.001)
    assert result.asa_seconds == pytest.approx(10.8, abs=0.1)
    assert result.occupancy == pytest.approx(4 / 7)


def test_one_agent_fewer_misses_the_target():
    assert evaluate_staffing(6, 60, 240, 20).service_level < 0.8


def test_published_example_360_calls_per_half_hour_55_agents():
    # The widely reproduced step-by-step example: 48 Erlangs on 55 agents.
    result = evaluate_staffing(55, 720, 240, 15)
    assert result.traffic_erlangs == pytest.approx(48.0)
    assert result.probability_wait == pytest.approx(0.2387, abs=0.0001)
    assert result.asa_seconds == pytest.approx(8.18, abs=0.01)
    assert result.occupancy == pytest.approx(0.8727, abs=0.0001)


def test_erlang_b_table_value():
    # Erlang B tables: 5 Erlangs offered to 10 trunks -> 1.84% blocked.
    assert erlang_b(10, 5.0) == pytest.approx(0.0184, abs=0.00005)


@pytest.mark.parametrize(
    ("agents", "traffic"), [(2, 1.0), (5, 2.0), (7, 4.0), (14, 10.0), (55, 48.0), (30, 29.5)]
)
def test_recursion_matches_direct_formula(agents, traffic):
    assert erlang_c(agents, traffic) == pytest.approx(direct_erlang_c(agents, traffic), rel=1e-9)


def test_huge_load_stays_finite():
    # 20,000 Erlangs: A**N / N! overflows a float; the recursion must not.
    traffic = 20_000.0
    wait = erlang_c(20_200, traffic)
    assert 0.0 < wait < 1.0
    result = required_agents(traffic * 3600 / 60, 60, 20, 0.8)
    assert result.agents > traffic
    # Square-root staffing: the excess over the load is of order sqrt(A), not a multiple of A.
    assert result.agents - traffic < 3 * math.sqrt(traffic)
    assert result.service_level >= 0.8
    assert evaluate_staffing(result.agents - 1, traffic * 60, 60, 20).service_level < 0.8


def test_more_agents_answer_sooner():
    levels = [evaluate_staffing(n, 60, 240, 20) for n in range(5, 10)]
    pairs = list(zip(levels, levels[1:], strict=False))
    assert all(a.service_level < b.service_level for a, b in pairs)
    assert all(a.asa_seconds > b.asa_seconds for a, b in pairs)


def test_overloaded_team_promises_nothing():
    result = evaluate_staffing(4, 60, 240, 20)  # 4 agents for 4 Erlangs: the queue never drains
    assert result.probability_wait == 1.0
    assert result.service_level == 0.0
    assert math.isinf(result.asa_seconds)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"calls_per_hour": 60, "handle_seconds": 240, "answer_within": 20, "target": 1.0},
        {"calls_per_hour": 60, "handle_seconds": 0, "answer_within": 20, "target": 0.8},
        {"calls_per_hour": -1, "handle_seconds": 240, "answer_within": 20, "target": 0.8},
        {"calls_per_hour": 60, "handle_seconds": 240, "answer_within": -5, "target": 0.8},
    ],
)
def test_bad_inputs_raise_a_project_error(kwargs):
    with pytest.raises(StaffingError) as info:
        required_agents(**kwargs)
    assert isinstance(info.value, IvrError)


def test_command_prints_json_with_the_published_answer():
    out = CliRunner().invoke(
        staffing_command,
        ["--calls-per-hour", "60", "--handle-seconds", "240", "--answer-within", "20",
         "--target", "0.8"],
    )
    assert out.exit_code == 0, out.output
    figures = json.loads(out.output)
    assert figures["agents"] == 7
    assert figures["service_level"] == pytest.approx(0.8948, abs=0.0001)
    assert figures["asa_seconds"] == pytest.approx(10.81, abs=0.01)
    assert figures["traffic_erlangs"] == 4.0


def test_command_rejects_a_target_of_150_percent():
    out = CliRunner().invoke(
        staffing_command, ["--calls-per-hour", "60", "--handle-seconds", "240", "--target", "1.5"]
    )
    assert out.exit_code == 2
    assert "--target" in out.output
