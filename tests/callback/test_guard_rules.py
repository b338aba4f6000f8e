"""The number guard, rate limits, calling hours and deferral, and the API's error answers."""

from __future__ import annotations

import datetime as dt

import pytest

from callback import rules
from callback.errors import InvalidNumber, NumberRefused, RateLimited
from callback.limits import check_request_limits
from callback.numbers import GuardConfig, Limit, normalize_number
from callback.service import request_from_call
from ivr.core.flows.schema import Hours
from ivr.infra import line
from tests.callback.conftest import ask

CFG = GuardConfig()


@pytest.mark.parametrize("raw, region, expected", [
    ("(212) 555-1234", None, "+12125551234"),
    ("+1 604 555 1234", None, "+16045551234"),
    ("2125551234", "US", "+12125551234"),
    ("6045551234", "CA", "+16045551234"),
])
def test_numbers_are_normalised(raw, region, expected):
    assert normalize_number(raw, CFG, region=region) == expected


@pytest.mark.parametrize("raw, error, words", [
    ("+1 900 555 1234", NumberRefused, "premium-rate"),
    ("+44 871 234 5678", NumberRefused, "We can only call numbers in CA, US"),
    ("+82 2 1234 5678", NumberRefused, "this number is in KR"),
    ("911", NumberRefused, "short code"),
    ("12345", NumberRefused, "short code"),
    ("+1 212 555", InvalidNumber, "not a valid phone number"),
    ("call me", InvalidNumber, "not a phone number we can read"),
    ("", InvalidNumber, "Please enter a phone number"),
])
def test_bad_numbers_are_refused_with_a_reason(raw, error, words):
    with pytest.raises(error) as info:
        normalize_number(raw, CFG)
    assert words in str(info.value)


def test_shared_cost_refused_where_the_country_is_allowed():
    cfg = GuardConfig(allowed_countries=frozenset({"GB"}))
    with pytest.raises(NumberRefused, match="shared-cost|premium"):
        normalize_number("+44 845 464 0000", cfg)
    with pytest.raises(NumberRefused, match="personal forwarding"):
        normalize_number("+44 70 1234 5678", cfg)
    assert normalize_number("+44 20 7946 0018", cfg) == "+442079460018"


def test_rate_limit_per_number_gives_retry_after(redis_client):
    cfg = GuardConfig(per_number=Limit(2, 60), per_address=Limit(100, 60))
    for _ in range(2):
        check_request_limits(redis_client, cfg, phone="+12125551234", address="1.2.3.4")
    with pytest.raises(RateLimited) as info:
        check_request_limits(redis_client, cfg, phone="+12125551234", address="1.2.3.4")
    # A moving window: the first of the two frees a place a minute after it was counted.
    assert 55 <= info.value.retry_after <= 60
    # Another number from the same address is still fine.
    check_request_limits(redis_client, cfg, phone="+12125559999", address="1.2.3.4")


def test_one_ipv6_host_counts_as_its_slash_64(redis_client):
    cfg = GuardConfig(per_number=Limit(100, 60), per_address=Limit(2, 60))
    for host in ("2001:db8:1:2::1", "2001:db8:1:2::ffff"):
        check_request_limits(redis_client, cfg, phone=f"+1212555{host[-4:].zfill(4)[-4:]}",
                             address=host)
    with pytest.raises(RateLimited):
        check_request_limits(redis_client, cfg, phone="+12125550042",
                             address="2001:db8:1:2:abcd::9")
    # Another /64 is another client.
    check_request_limits(redis_client, cfg, phone="+12125550043", address="2001:db8:1:3::1")


SHOP = Hours.model_validate({"timezone": "America/New_York",
                             "weekly": {"mon-fri": "09:00-18:00"}})


def _utc(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=dt.UTC)


def test_zone_from_number():
    assert [z.key for z in rules.zones_for_number("+14155550123")] == ["America/Los_Angeles"]
    # A toll-free number maps to all of NANP: fall back to the mainland zones.
    assert len(rules.zones_for_number("+18005550100")) == 4


@pytest.mark.parametrize("now, number, expected", [
    # Wednesday 13:00 UTC = 9:00 New York (open) but 6:00 in San Francisco: wait for 8:00 PT.
    (_utc(2026, 3, 11, 13, 0), "+14155550123", _utc(2026, 3, 11, 15, 0)),
    # Same moment, a New York number: call now.
    (_utc(2026, 3, 11, 13, 0), "+12125551234", _utc(2026, 3, 11, 13, 0)),
    # Friday 22:30 UTC = 18:30 New York: closed until Monday 9:00 EDT.
    (_utc(2026, 3, 13, 22, 30), "+12125551234", _utc(2026, 3, 16, 13, 0)),
    # A Honolulu number in the shop's opening hours only reaches 8:00 HST at 18:00 UTC.
    (_utc(2026, 3, 11, 14, 0), "+18085551234", _utc(2026, 3, 11, 18, 0)),
])
def test_next_allowed_moment(now, number, expected):
    at = rules.next_allowed(now, number=number, hours=SHOP)
    assert at == expected
    assert at.tzinfo is dt.UTC
    assert rules.is_allowed(at, number=number, hours=SHOP)


def test_request_outside_calling_hours_is_deferred(client, clock, twilio_cloud, deps,
                                                   run_jobs, redis_client):
    from ivr.infra.agents import add_agent, set_presence

    row, _ = add_agent(deps.db, deps.redis, name="Bo", kind="phone", address="+12125550002",
                       queues=["support"], now=clock())
    set_presence(deps.db, deps.redis, row.id, "available", now=clock())
    clock.at = _utc(2026, 3, 11, 4, 0)  # 21:00 in San Francisco, the window just closed
    body = ask(client, {"phone": "+14155550123"})
    assert body["status"] == "scheduled"
    assert body["scheduled_for"] == "2026-03-11T15:00:00+00:00"  # 8:00 PDT
    assert body["position"] is None
    assert body["estimated_wait_seconds"] == 11 * 3600
    # On RQ's schedule for the real moment the service's clock reads 8:00 PDT: RQ's scheduler
    # knows only the system clock (here the service runs on a test clock 11 h before it).
    from rq import Queue
    from rq.registry import ScheduledJobRegistry

    registry = ScheduledJobRegistry(queue=Queue("callbacks", connection=redis_client))
    job_id = registry.get_job_ids()[0]
    expected = dt.datetime.now(dt.UTC) + dt.timedelta(hours=11)
    assert abs((registry.get_scheduled_time(job_id) - expected).total_seconds()) < 5
    run_jobs()
    assert twilio_cloud.placed == []


def test_due_job_at_a_forbidden_moment_defers_instead_of_dialing(client, clock, deps, agent,
                                                                  twilio_cloud, run_jobs):
    body = ask(client, {"phone": "+14155550123"})
    from callback.dispatch import dispatch_once

    dispatch_once(deps)
    clock.at = _utc(2026, 3, 12, 4, 30)  # the job runs late: 21:30 in San Francisco
    run_jobs(dispatch=False)
    assert twilio_cloud.placed == []
    view = client.get(f"/callbacks/{body['id']}",
                      headers={"X-Callback-Token": body["token"]}).get_json()
    assert view["status"] == "scheduled"
    assert view["scheduled_for"] == "2026-03-12T15:00:00+00:00"


@pytest.mark.parametrize("payload, status, words", [
    ({"phone": "+1 900 555 1234"}, 400, "premium-rate"),
    ({"phone": "+44 20 7946 0018"}, 400, "We can only call numbers in CA, US"),
    ({"phone": "+14155550123", "preferred_time": "tomorrow"}, 400, "not a date and time"),
    ({"phone": "+14155550123", "preferred_time": "2026-05-04T15:00"}, 400, "time zone"),
    ({"phone": 4155550123}, 400, "'phone' must be text"),
])
def test_api_errors_say_what_to_do(client, payload, status, words):
    resp = client.post("/callbacks", json={"consent": True, **payload})
    assert resp.status_code == status
    assert words in resp.get_json()["message"]


def test_unknown_id_answers_as_a_wrong_token_does(client):
    resp = client.get("/callbacks/0123456789abcdef", headers={"X-Callback-Token": "x" * 43})
    assert resp.status_code == 403
    assert "This link is not valid for a callback request" in resp.get_json()["message"]


def test_flood_from_one_address_gets_429_with_retry_after(client):
    statuses = []
    for i in range(25):
        resp = client.post("/callbacks", json={"consent": True, "phone": f"+1415555{i:04d}"},
                           environ_base={"REMOTE_ADDR": "203.0.113.9"})
        statuses.append(resp.status_code)
    assert statuses[:20] == [202] * 20
    assert set(statuses[20:]) == {429}
    assert int(resp.headers["Retry-After"]) >= 1
    assert "Too many callback requests" in resp.get_json()["message"]
    # Someone else is not affected.
    other = client.post("/callbacks", json={"consent": True, "phone": "+12125550123"},
                        environ_base={"REMOTE_ADDR": "198.51.100.7"})
    assert other.status_code == 202


def test_preferred_time_is_scheduled(client, clock):
    body = ask(client, {"phone": "+12125551234", "preferred_time": "2026-03-12T10:30:00-04:00"})
    assert body["status"] == "scheduled"
    assert body["scheduled_for"] == "2026-03-12T14:30:00+00:00"


def test_request_from_call_parses_keypad_digits_in_callers_region(callback_app, clock):
    outcome = request_from_call(callback_app, number="6045551234", caller="+16045550000",
                                queue="support", call_sid="CA1", context={})
    assert outcome.accepted
    assert outcome.number == "+16045551234"
    assert outcome.position == 1
    refused = request_from_call(callback_app, number="9005551234", caller="+12125550000",
                                queue="support", call_sid="", context={})
    assert not refused.accepted
    assert "premium-rate" in refused.reason


def test_hold_caller_keeps_their_place(callback_app, deps, clock):
    early = clock().timestamp() - 300
    line.join_caller(deps.redis, "support", "CAearly", early - 60)
    line.join_caller(deps.redis, "support", "CAme", early)
    line.join_caller(deps.redis, "support", "CAlater", early + 60)
    outcome = request_from_call(callback_app, number="+12125551234", caller="+12125551234",
                                queue="support", call_sid="CAme", context={})
    assert outcome.accepted
    assert outcome.position == 2  # behind CAearly, ahead of CAlater
    assert line.place_of(deps.redis, "support", early + 60).position == 3
