"""The daily dial cap defers a callback to the first calling window after the cap resets:
once, not in a loop of lost attempts while the log says "tomorrow"."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from callback.dispatch import sweep
from callback.models import CallbackAttempt, CallbackRequest
from tests.callback.conftest import ask

OTHER_CUSTOMER = "+14155550177"


@pytest.fixture
def app_config(app_config: dict) -> dict:
    return {**app_config, "CALLBACK_DAILY_DIAL_CAP": "1"}


def _request(deps, public_id: str) -> CallbackRequest:
    with deps.db.session() as s:
        return s.scalar(select(CallbackRequest).where(CallbackRequest.public_id == public_id))


def _attempts(deps, request_id: int) -> list[str]:
    with deps.db.session() as s:
        return [a.status for a in s.scalars(select(CallbackAttempt).where(
            CallbackAttempt.request_id == request_id).order_by(CallbackAttempt.attempt_no))]


def test_the_capped_request_waits_for_the_reset_then_is_placed_once(
        client, deps, agent, twilio_cloud, run_jobs, clock):
    # Both asked while the day's one dial was unused; the one agent takes the first.
    first = ask(client, {"phone": "+14155550123"})
    second = ask(client, {"phone": OTHER_CUSTOMER})
    run_jobs()
    twilio_cloud.drive_pending()
    assert _request(deps, first["id"]).status == "completed"

    for _ in range(3):  # the dispatcher keeps running; the capped request must not loop
        run_jobs()
    capped = _request(deps, second["id"])
    reset = dt.datetime(2026, 3, 12, 0, 0, tzinfo=dt.UTC)  # the next UTC day
    assert capped.status == "scheduled"
    assert reset <= capped.scheduled_for < reset + dt.timedelta(minutes=1)  # 17:00 in SF: open
    assert _attempts(deps, capped.id) == ["lost"]
    assert len(twilio_cloud.placed) == 1
    assert agent.id  # the agent was released for others: nothing holds it
    assert client.get(f"/callbacks/{second['id']}", headers={"X-Callback-Token": second["token"]}
                      ).get_json()["status"] == "scheduled"

    clock.advance((reset - clock.at).total_seconds() + 31)
    assert sweep(deps)["released"] == 1
    run_jobs()
    assert len(twilio_cloud.placed) == 2
    twilio_cloud.drive_pending()
    assert _request(deps, second["id"]).status == "completed"
    assert _attempts(deps, capped.id) == ["lost", "completed"]
