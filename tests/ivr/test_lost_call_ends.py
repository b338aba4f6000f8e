"""A call whose final status callback never came (Twilio lost it, or it came during a stall)
is ended from the provider's word by the worker's repair pass, as the callback would have,
once. The provider is the emulator, reached over REST by the service's own twilio client."""

from __future__ import annotations

import datetime as dt
import time

import pytest
from sqlalchemy import select

from ivr import create_app
from ivr.emulator import EmulatorServer, TwilioEmulator
from ivr.emulator.calls import Status
from ivr.emulator.parties import ScriptedParty
from ivr.infra import journey
from ivr.infra.models import Call
from ivr.infra.services import services_of
from ivr.voice import repair
from tests.conftest import AUTH_TOKEN

ACCOUNT = "AC" + "1" * 32


@pytest.fixture
def provider():
    cloud = TwilioEmulator(ACCOUNT, AUTH_TOKEN)
    with EmulatorServer(cloud) as server:
        yield cloud, server.url


@pytest.fixture
def services(app_config, provider):
    app = create_app({**app_config, "TWILIO_API_BASE": provider[1], "CALL_CHECK_AFTER": 60})
    yield services_of(app)
    services_of(app).db.dispose()


def provider_call(cloud: TwilioEmulator, status: Status) -> str:
    call = cloud.new_call(to="+18005550100", from_="+14155550123", direction="inbound",
                          party=ScriptedParty())
    call.status = status
    return call.sid


def open_journey(services, sid: str, minutes_ago: float) -> None:
    at = time.time() - 60 * minutes_ago
    services.redis.rpush(journey.QUEUE_KEY, journey.encode(
        sid, 1, at, None, journey.Event("enter", flow="main", node="welcome"),
        meta={"caller": "+14155550123"}))
    journey.flush(services.db, services.redis)


def ended(services) -> dict[str, dt.datetime | None]:
    with services.db.session() as s:
        return dict(s.execute(select(Call.call_sid, Call.ended_at)).all())


def test_open_journeys_end_when_the_provider_says_the_call_is_over(services, provider):
    cloud, _ = provider
    over = provider_call(cloud, Status.COMPLETED)
    talking = provider_call(cloud, Status.IN_PROGRESS)
    forgotten = "CA" + "f" * 32  # the provider no longer knows it: long over
    recent = provider_call(cloud, Status.COMPLETED)
    for sid in (over, talking, forgotten):
        open_journey(services, sid, minutes_ago=5)
    open_journey(services, recent, minutes_ago=0.5)  # too young to ask about

    now = services.now()
    assert repair.end_lost_calls(services, now) == 2
    journey.flush(services.db, services.redis)
    after = ended(services)
    assert after[over] is not None and after[forgotten] is not None
    assert after[talking] is None and after[recent] is None

    # Asked about once per interval: the call still talking is not asked again at once...
    cloud.get(talking).status = Status.COMPLETED
    assert repair.end_lost_calls(services, now) == 0
    # ...and the late status callback, had it come, would change nothing for an ended one.
    assert services.calls.load(over, ended=True).ended
    with services.db.session() as s:
        outcome = s.scalar(select(Call.outcome).where(Call.call_sid == over))
    assert outcome == "abandoned_in_ivr"  # as a final status while in the menus records it


def test_a_provider_that_cannot_be_asked_ends_nothing(app_config):
    app = create_app({**app_config, "TWILIO_API_BASE": "http://127.0.0.1:9",
                      "CALL_CHECK_AFTER": 60})
    services = services_of(app)
    try:
        open_journey(services, "CA" + "e" * 32, minutes_ago=5)
        assert repair.end_lost_calls(services, services.now()) == 0
        journey.flush(services.db, services.redis)
        assert ended(services) == {"CA" + "e" * 32: None}
    finally:
        services.db.dispose()
