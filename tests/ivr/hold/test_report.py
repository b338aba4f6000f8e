"""`ivr report`: service level, waits, abandonment and estimate accuracy from recorded visits."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from click.testing import CliRunner

from ivr.cli import main
from ivr.hold.report import percentile, summarize
from ivr.infra.db import utcnow
from ivr.infra.queue_models import QueueVisit, WaitEstimate


def visit(queue: str, outcome: str, wait: float, *estimates: tuple[float, float, bool]):
    left = utcnow() - dt.timedelta(hours=1)
    v = QueueVisit(call_sid=f"CA{id(object())}", queue=queue, joined_at=left, left_at=left,
                   wait_seconds=wait, outcome=outcome, queue_result=None, announcements=1)
    for expected, actual, within in estimates:
        v.estimates.append(WaitEstimate(
            given_at=left, elapsed_seconds=0, position=1, agents=1, expected_seconds=expected,
            upper_seconds=expected, band="about 2 minutes", band_lower_seconds=60,
            band_upper_seconds=150, explanation="test",
            actual_seconds=actual if outcome == "answered" else None,
            within_band=within if outcome == "answered" else None))
    return v


@pytest.fixture
def recorded(db):
    with db.session() as s:
        s.add_all([
            visit("billing", "answered", 10, (30, 10, True)),
            visit("billing", "answered", 40, (60, 40, True), (20, 10, False)),
            visit("billing", "abandoned", 70, (100, 0, True)),
            visit("support", "answered", 15),
            visit("support", "callback", 200),
        ])
    return db


def test_percentile_interpolates():
    assert percentile([10, 20, 30, 40, 50], 0.9) == pytest.approx(46)
    assert percentile([], 0.9) is None


def test_summary_figures(recorded):
    report = summarize(recorded, since=utcnow() - dt.timedelta(days=1), answer_within=20)
    billing = report["queues"]["billing"]
    assert (billing["visits"], billing["answered"], billing["abandoned"]) == (3, 2, 1)
    assert billing["service_level"] == pytest.approx(1 / 3)
    assert billing["wait_avg_seconds"] == pytest.approx(25)
    assert billing["wait_p90_seconds"] == pytest.approx(37)
    assert billing["abandonment_rate"] == pytest.approx(1 / 3)
    # Only estimates of answered callers are scored: |30-10|, |60-40|, |20-10|.
    assert billing["estimates_scored"] == 3
    assert billing["estimate_mae_seconds"] == pytest.approx(50 / 3)
    assert billing["estimate_within_band"] == pytest.approx(2 / 3)
    overall = report["queues"]["*"]
    assert (overall["visits"], overall["callbacks"]) == (5, 1)
    assert overall["service_level"] == pytest.approx(2 / 5)


def test_cli_json_and_text(recorded, database_url):
    runner = CliRunner()
    result = runner.invoke(main, ["report", "--database-url", database_url, "--json",
                                  "--answer-within", "45"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["answer_within"] == 45
    assert data["queues"]["*"]["service_level"] == pytest.approx(3 / 5)
    result = runner.invoke(main, ["report", "--database-url", database_url, "--queue",
                                  "support"])
    assert result.exit_code == 0, result.output
    rows = result.output.splitlines()
    assert rows[1].split()[:4] == ["queue", "visits", "answered", "SL"]
    assert rows[3].split()[:4] == ["support", "2", "1", "50.0%"]
    assert rows[4].split()[:3] == ["all", "2", "1"]
