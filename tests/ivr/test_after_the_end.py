"""A caller who ends a voicemail by hanging up: Twilio's final status callback may arrive
before the <Record> action. The call is over, but the recording must still be recorded."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from sqlalchemy import func, select

from ivr.infra import journey
from ivr.infra.models import Call, CallEvent
from ivr.infra.services import services_of
from tests.conftest import AUTH_TOKEN, BASE_URL
from tests.support.caller import SimulatedCall, flask_transport

SUNDAY_NIGHT = dt.datetime(2026, 11, 29, 23, 30, tzinfo=dt.UTC)  # the shop is closed


@pytest.fixture
def app_config(app_config: dict) -> dict:
    return {**app_config, "CLOCK": lambda: SUNDAY_NIGHT}


def test_a_voicemail_whose_record_action_comes_after_the_end_is_kept(app, client):
    call = SimulatedCall(flask_transport(client, BASE_URL), BASE_URL, AUTH_TOKEN)
    call.dial()
    assert "We're closed right now" in call.wait().text
    call.press("2")
    assert call.wait().waiting == "record"
    assert call.hang_up(duration=25) == 204  # the status callback overtakes the action

    after = call.record(seconds=12)

    assert "<Hangup" in after.documents[-1]
    rows = [json.loads(x) for x in services_of(app).redis.lrange(journey.QUEUE_KEY, 0, -1)]
    mine = [r for r in rows if r["sid"] == call.call_sid]
    [voicemail] = [r for r in mine if r["kind"] == "voicemail"]
    assert voicemail["detail"]["seconds"] == 12
    assert voicemail["detail"]["recording_url"].startswith("https://api.twilio.com/recordings/")
    seqs = [r["seq"] for r in mine]
    assert len(seqs) == len(set(seqs))
    assert services_of(app).calls.load(call.call_sid, ended=True).ended == "completed"
    # Twilio repeats the action: recorded once in the database all the same.
    call._post(call.log[-2].record_action, {"RecordingUrl": voicemail["detail"]["recording_url"],
                                            "RecordingDuration": "12"})
    services = services_of(app)
    journey.flush(services.db, services.redis)
    with services.db.session() as s:
        count = s.scalar(select(func.count()).select_from(CallEvent).join(Call).where(
            Call.call_sid == call.call_sid, CallEvent.kind == "voicemail"))
        outcome = s.scalar(select(Call.outcome).where(Call.call_sid == call.call_sid))
    assert count == 1
    assert outcome == "hangup"  # as when the action comes first: thanked, then goodbye
