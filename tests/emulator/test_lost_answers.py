"""REST requests whose answer is lost (a time-out, a reset), and what the service's one
telephony client makes of them.

Twilio's Calls API has no idempotency key: when the answer to a create is lost, only the Calls
list can say whether the call was placed. The emulator drops the connection before or after
acting on the request (chaos `rest`); here the fates are scripted so each case is certain.
"""

from __future__ import annotations

import pytest

from ivr.emulator import Chaos, ChaosSettings, EmulatorServer, Timing, TwilioEmulator
from ivr.errors import TelephonyError, TelephonyUnsure
from ivr.infra.telephony import TwilioTelephony
from tests.emulator.conftest import ACCOUNT, NUMBER, TOKEN, twiml

CUSTOMER = "+14155550177"


class ScriptedChaos(Chaos):
    """Chaos whose REST fates are given in order (then every answer arrives)."""

    def __init__(self, *fates: str | None) -> None:
        super().__init__(ChaosSettings(delay=0.0, repeat=0.0, drop=0.0))
        self.fates = list(fates)

    def rest_fate(self) -> str | None:
        fate = self.fates.pop(0) if self.fates else None
        if fate is not None:
            self._count("rest_lost")
        return fate


@pytest.fixture
def lossy(app_server):
    def start(*fates: str | None) -> tuple[TwilioEmulator, TwilioTelephony]:
        cloud = TwilioEmulator(ACCOUNT, TOKEN, chaos=ScriptedChaos(*fates),
                               timing=Timing(scale=0.05, play_seconds=0.1, ring_seconds=0.1))
        server = EmulatorServer(cloud).start()
        started.append(server)
        cloud.configure_number(NUMBER, app_server.url + "/voice")
        app_server.route("/call", twiml("<Pause length=\"200\"/>"))
        return cloud, TwilioTelephony(ACCOUNT, TOKEN, api_base=server.url)

    started: list[EmulatorServer] = []
    yield start
    for server in started:
        server.stop()


def place(telephony: TwilioTelephony, app_server) -> str:
    return telephony.place_call(to=CUSTOMER, from_=NUMBER, url=app_server.url + "/call",
                                status_callback=app_server.url + "/status")


def test_an_answer_lost_after_the_call_was_placed_returns_that_call(lossy, app_server):
    cloud, telephony = lossy("after")
    sid = place(telephony, app_server)
    placed = cloud.list_calls({"To": [CUSTOMER]})
    assert [c.sid for c in placed] == [sid]  # found, and not placed a second time
    assert cloud.webhooks.chaos.rest_lost == 1


def test_an_answer_lost_before_twilio_acted_is_a_plain_failure(lossy, app_server):
    cloud, telephony = lossy("before")
    with pytest.raises(TelephonyError) as caught:
        place(telephony, app_server)
    assert not isinstance(caught.value, TelephonyUnsure)  # safe to dial again
    assert "did not place" in str(caught.value)
    assert cloud.list_calls({"To": [CUSTOMER]}) == []


def test_when_the_calls_list_cannot_be_read_either_the_dial_is_unsure(lossy, app_server):
    cloud, telephony = lossy("after", "before", "before")
    with pytest.raises(TelephonyUnsure, match="may have placed"):
        place(telephony, app_server)
    assert len(cloud.list_calls({"To": [CUSTOMER]})) == 1  # it was placed: do not dial again


def test_a_call_placed_earlier_to_the_same_number_is_not_taken_for_the_lost_one(
        lossy, app_server):
    cloud, telephony = lossy(None, None, "before")
    first = place(telephony, app_server)
    telephony.hangup(first)
    cloud.wait_idle(5)
    # Six seconds on: the old call is outside the clock-skew window of the new request.
    cloud.get(first).created_at -= 6
    with pytest.raises(TelephonyError, match="did not place"):
        place(telephony, app_server)


def test_idempotent_requests_are_asked_again_once(lossy, app_server):
    cloud, telephony = lossy(None, "before", None, "after", None, "before", "before")
    sid = place(telephony, app_server)
    telephony.redirect(sid, app_server.url + "/call")  # lost before, asked again
    assert telephony.call_status(sid) == "in-progress"  # lost after, asked again
    with pytest.raises(TelephonyError, match="could not be reached"):
        telephony.hangup(sid)  # lost twice: said plainly
    assert cloud.webhooks.chaos.rest_lost == 4
