"""The wallboard's figures from what the service keeps: the line and hold records in Redis,
visits and estimates and callbacks in SQL, agents' presence and open offers, today's escapes.

The rows are written with the service's own functions and models; each expected figure is
worked out by hand from them (the definitions are `ivr report`'s)."""

from __future__ import annotations

import datetime as dt
import time

import pytest

from callback.models import CallbackRequest, CallbackStatus
from ivr.console import figures
from ivr.hold import holding
from ivr.hold.connect import OFFER, OFFERS
from ivr.infra import line, today
from ivr.infra.agents import set_presence
from ivr.infra.queue_models import QueueVisit, WaitEstimate
from ivr.infra.services import services_of

# Wednesday 2 December 2026, 12:00 in New York (the shop's home zone): today began at 05:00 UTC.
NOW = dt.datetime(2026, 12, 2, 17, 0, tzinfo=dt.UTC)
MIDNIGHT = dt.datetime(2026, 12, 2, 5, 0, tzinfo=dt.UTC)


@pytest.fixture
def app_config(app_config: dict) -> dict:
    return {**app_config, "CLOCK": lambda: NOW}


def _visit(session, queue: str, outcome: str, wait: float, left: dt.datetime,
           scored: list[bool] = ()) -> None:
    visit = QueueVisit(call_sid=f"CA{time.time_ns()}", queue=queue, caller="+14155550100",
                       joined_at=left - dt.timedelta(seconds=wait), left_at=left,
                       wait_seconds=wait, outcome=outcome, announcements=1)
    session.add(visit)
    session.flush()
    for kept in scored:
        session.add(WaitEstimate(visit_id=visit.id, given_at=left, elapsed_seconds=0,
                                 position=1, agents=1, expected_seconds=30, upper_seconds=60,
                                 band="less than a minute", band_lower_seconds=0,
                                 band_upper_seconds=60, explanation="",
                                 actual_seconds=wait, within_band=kept))


def test_today_counts_only_visits_since_local_midnight_with_report_definitions(app):
    services = services_of(app)
    with services.db.session() as session:
        _visit(session, "support", "answered", 12, NOW - dt.timedelta(hours=1), [True])
        _visit(session, "support", "answered", 45, NOW - dt.timedelta(hours=2), [False, True])
        _visit(session, "support", "abandoned", 70, NOW - dt.timedelta(minutes=5))
        _visit(session, "support", "callback", 30, NOW - dt.timedelta(minutes=9))
        # Yesterday in New York (04:59 UTC), though today in UTC: not counted.
        _visit(session, "support", "answered", 5, MIDNIGHT - dt.timedelta(minutes=1), [True])
        _visit(session, "billing", "answered", 25, NOW - dt.timedelta(minutes=1))
    snap = figures.snapshot(services)
    support = {q["name"]: q for q in snap["queues"]}["support"]
    billing = {q["name"]: q for q in snap["queues"]}["billing"]
    assert snap["day_start"] == MIDNIGHT.isoformat()
    assert (support["visits"], support["answered"], support["abandoned"]) == (4, 2, 1)
    # 80/20: one of four visits was answered within 20 s (abandons and callbacks count).
    assert support["service_level"] == 0.25
    assert support["estimates_scored"] == 3 and support["estimate_accuracy"] == 2 / 3
    assert (billing["service_level"], billing["estimate_accuracy"]) == (0.0, None)
    total = snap["total"]
    assert (total["visits"], total["answered"], total["service_level"]) == (5, 3, 0.2)


def test_a_queue_target_of_its_own_moves_its_service_level(app, flows_path):
    flows_path.write_text(flows_path.read_text().replace(
        "  support:\n", "  support:\n    service_level: {seconds: 60, goal: 90}\n", 1))
    services = services_of(app)
    services.flows.reload()
    with services.db.session() as session:
        _visit(session, "support", "answered", 45, NOW - dt.timedelta(hours=1))
        _visit(session, "support", "answered", 75, NOW - dt.timedelta(hours=1))
    support = {q["name"]: q for q in figures.snapshot(services)["queues"]}["support"]
    assert (support["target_seconds"], support["goal"], support["service_level"]) == (60, 0.9,
                                                                                      0.5)


def test_waiting_callers_their_places_bands_and_ghosts(app):
    services = services_of(app)
    r = services.redis
    early, late = NOW.timestamp() - 300, NOW.timestamp() - 60
    for sid, first in (("CAearly", early), ("CAlate", late)):
        holder = holding.Holder(call_sid=sid, queue="support", first_asked=first,
                                joined_at=first, caller="+1415555" + sid[-4:], language="hi")
        assert holding.join(r, holder, {"kind": "join", "at": first})
    line.join_caller(r, "support", "CAghost", early - 100)  # no hold record: a lost hang-up
    line.join_callback(r, "support", 77, early + 10)  # a due callback, between the two
    snap = figures.snapshot(services)
    support = {q["name"]: q for q in snap["queues"]}["support"]
    assert support["waiting"] == 2
    assert support["longest_since"] == early
    assert [(c["sid"], c["place"], c["language"]) for c in support["callers"]] == [
        ("CAearly", 1, "hi"), ("CAlate", 3, "hi")]
    assert snap["total"]["waiting"] == 2


def test_agents_by_state_with_ringing_from_open_offers(app, add_agent):
    services = services_of(app)
    r = services.redis
    ringing, _ = add_agent("Ravi", "+14155550101", "support")
    on_call, _ = add_agent("Oona", "+14155550102", "support,billing")
    free, _ = add_agent("Fay", "+14155550103", "billing")
    add_agent("Otto", "+14155550104", "support")  # never signed in: offline
    for agent in (ringing, on_call):
        set_presence(services.db, r, agent.id, "busy", now=NOW, reason="test")
    set_presence(services.db, r, free.id, "available", now=NOW, reason="test")
    r.zadd(OFFERS.format(queue="support"), {"CAagentleg": time.time() + 60})
    r.hset(OFFER.format(sid="CAagentleg"), mapping={"queue": "support",
                                                    "agent_id": str(ringing.id),
                                                    "caller_sid": "CAx", "placed_at": "1"})
    snap = figures.snapshot(services)
    by = {q["name"]: q["agents"] for q in snap["queues"]}
    assert by["support"] == {"available": 0, "ringing": 1, "on_call": 1, "wrap_up": 0,
                             "offline": 1}
    assert by["billing"] == {"available": 1, "ringing": 0, "on_call": 1, "wrap_up": 0,
                             "offline": 0}
    # Overall each agent counts once, though Oona serves two queues.
    assert snap["total"]["agents"] == {"available": 1, "ringing": 1, "on_call": 1,
                                       "wrap_up": 0, "offline": 1}
    r.hset(OFFER.format(sid="CAagentleg"), "bridged_at", "2")  # answered: on a call now
    assert figures.snapshot(services)["total"]["agents"]["ringing"] == 0


def test_callbacks_due_and_scheduled_and_escapes_today(app):
    services = services_of(app)
    with services.db.session() as session:
        for status in (CallbackStatus.WAITING, CallbackStatus.DISPATCHED,
                       CallbackStatus.SCHEDULED, CallbackStatus.SCHEDULED,
                       CallbackStatus.COMPLETED, CallbackStatus.FAILED):
            session.add(CallbackRequest(
                public_id=f"p{time.time_ns()}", phone="+14155550123", queue="support",
                source="web", status=status.value, first_asked_at=NOW, scheduled_for=NOW,
                cancel_token_hash="x" * 64))
    today.mark(services.redis, today.ESCAPES, "CA1:3", NOW.timestamp() - 60)
    today.mark(services.redis, today.ESCAPES, "CA1:3", NOW.timestamp() - 50)  # repeated
    today.mark(services.redis, today.ESCAPES, "CA2:4", NOW.timestamp() - 30)
    today.mark(services.redis, today.ESCAPES, "CA0:2", MIDNIGHT.timestamp() - 1)  # yesterday
    snap = figures.snapshot(services)
    support = {q["name"]: q for q in snap["queues"]}["support"]
    assert (support["callbacks_due"], support["callbacks_scheduled"]) == (2, 2)
    assert snap["escapes_today"] == 2
