"""The emulator does what Twilio's documentation says, on documents written for these tests.

Each test cites the behaviour it checks: the TwiML reference pages for <Gather>, <Enqueue>,
<Leave>, <Dial>/<Queue>, and the Call resource's status callbacks and errors.
"""

from __future__ import annotations

import time

import pytest
from twilio.base.exceptions import TwilioRestException

from ivr.emulator import InteractiveParty, ScriptedParty
from tests.emulator.conftest import NUMBER, twiml

CALLER = "+14155550123"
AGENT = "+14155550100"


def _until(check, seconds: float = 10.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError("timed out")


def _queue_app(app_server, wait_document=None):
    app_server.route("/voice", twiml(
        '<Enqueue waitUrl="/wait" action="/left">support</Enqueue>'))
    app_server.route("/wait", wait_document or twiml(
        '<Gather numDigits="1" action="/key" timeout="1"><Say>Please hold</Say>'
        "<Play>https://example.com/music.mp3</Play></Gather>"))
    app_server.route("/key", lambda f: twiml("<Leave/>") if f.get("Digits") == "1"
                     else twiml("<Redirect>/wait</Redirect>"))
    app_server.route("/left", lambda f: twiml(f"<Say>left {f['QueueResult']}</Say>"))


def test_gather_sends_digits_to_its_action_relative_to_the_document(emulator, app_server):
    app_server.route("/voice", twiml(
        '<Gather numDigits="5" finishOnKey="#" action="menu/choice"><Say>Enter it</Say>'
        "</Gather><Say>Nothing?</Say>"))
    app_server.route("/menu/choice", twiml("<Hangup/>"))
    call = emulator.dial_in(CALLER, NUMBER)
    _until(lambda: call.party.waiting.is_set())
    emulator.act(call.sid, "12#")
    form = _until(lambda: app_server.got("/menu/choice"))[0]
    assert (form["Digits"], form["FinishedOnKey"]) == ("12", "#")
    first = app_server.got("/voice")[0]
    assert (first["CallStatus"], first["Direction"], first["From"]) == (
        "ringing", "inbound", CALLER)
    assert form["CallStatus"] == "in-progress"


def test_gather_without_input_runs_the_next_verb(emulator, app_server):
    app_server.route("/voice", twiml(
        '<Gather numDigits="1" action="/choice" timeout="1"><Say>Press a key</Say></Gather>'
        "<Redirect>/again</Redirect>"))
    app_server.route("/again", twiml("<Say>Still there?</Say>"))
    call = emulator.dial_in(CALLER, NUMBER)
    _until(lambda: call.party.waiting.is_set())
    emulator.act(call.sid, "wait")
    _until(lambda: app_server.got("/again"))
    assert app_server.got("/choice") == []
    _until(lambda: call.status.is_final)  # the document ran out: Twilio hangs up


def test_enqueue_requests_the_wait_url_at_once_and_again_when_it_ends(emulator, app_server):
    _queue_app(app_server)
    call = emulator.dial_in(CALLER, NUMBER, party=InteractiveParty())
    waits = _until(lambda: app_server.got("/wait") if len(app_server.got("/wait")) >= 3 else None)
    assert waits[0]["QueuePosition"] == "1"
    assert waits[0]["CurrentQueueSize"] == "1"
    assert waits[0]["QueueSid"].startswith("QU") and waits[0]["QueueSid"] == waits[2]["QueueSid"]
    assert {"QueueTime", "AvgQueueTime"} <= set(waits[0])
    emulator.act(call.sid, "hangup")


def test_leave_in_the_wait_document_requests_the_enqueue_action(emulator, app_server):
    _queue_app(app_server)
    call = emulator.dial_in(CALLER, NUMBER, party=InteractiveParty())
    _until(lambda: app_server.got("/wait"))
    emulator.act(call.sid, "1")  # the wait document's Gather answers <Leave/>
    left = _until(lambda: app_server.got("/left"))[0]
    assert left["QueueResult"] == "leave"
    _until(lambda: call.status.is_final)
    assert "left leave" in call.heard


def test_a_caller_who_hangs_up_in_the_queue_gives_queue_result_hangup(emulator, app_server):
    _queue_app(app_server)
    call = emulator.dial_in(CALLER, NUMBER, party=InteractiveParty())
    _until(lambda: app_server.got("/wait"))
    emulator.act(call.sid, "hangup")
    left = _until(lambda: app_server.got("/left"))[0]
    assert left["QueueResult"] == "hangup"
    assert left["CallStatus"] == "completed"
    status = _until(lambda: app_server.got("/status"))[-1]
    assert status["CallStatus"] == "completed"
    assert emulator.bridging.queue("support").members == []


def test_dial_queue_bridges_the_longest_waiting_caller(emulator, app_server, rest):
    _queue_app(app_server)
    app_server.route("/agent", twiml(
        "<Say>Whisper</Say>"
        '<Dial action="/agent/done"><Queue url="/bridging">support</Queue></Dial>'))
    app_server.route("/bridging", twiml("<Say>Connecting you</Say>"))
    app_server.route("/agent/done", twiml("<Say>Bye</Say>"))
    first = emulator.dial_in(CALLER, NUMBER, party=InteractiveParty())
    _until(lambda: app_server.got("/wait"))
    second = emulator.dial_in("+14155550199", NUMBER, party=InteractiveParty())
    _until(lambda: [f for f in app_server.got("/wait") if f["CallSid"] == second.sid])
    emulator.set_party(AGENT, ScriptedParty(ring_seconds=0.1, talk=2.0))
    agent = rest.calls.create(to=AGENT, from_=NUMBER, url=app_server.url + "/agent")
    bridging = _until(lambda: app_server.got("/bridging"))[0]
    assert (bridging["CallSid"], bridging["DequeingCallSid"]) == (first.sid, agent.sid)
    left = _until(lambda: app_server.got("/left"))[0]
    assert (left["CallSid"], left["QueueResult"]) == (first.sid, "bridged")
    done = _until(lambda: app_server.got("/agent/done"))[0]
    assert done["DialCallStatus"] == "completed"
    assert done["DequeuedCallSid"] == first.sid
    assert int(done["DialCallDuration"]) >= 0
    assert [m.call.sid for m in emulator.bridging.queue("support").members] == [second.sid]
    emulator.act(second.sid, "hangup")


def test_the_caller_hanging_up_ends_the_bridge_and_the_agent_goes_on(emulator, app_server, rest):
    _queue_app(app_server)
    app_server.route("/agent", twiml('<Dial action="/agent/done"><Queue>support</Queue></Dial>'))
    app_server.route("/agent/done", twiml("<Say>The caller left</Say>"))
    caller = emulator.dial_in(CALLER, NUMBER, party=InteractiveParty())
    _until(lambda: app_server.got("/wait"))
    emulator.set_party(AGENT, ScriptedParty(ring_seconds=0.1, talk=None))
    agent = rest.calls.create(to=AGENT, from_=NUMBER, url=app_server.url + "/agent")
    _until(lambda: any(e["kind"] == "bridged" for e in emulator.journal.since(0)))
    emulator.act(caller.sid, "hangup")
    _until(lambda: app_server.got("/agent/done"))
    _until(lambda: emulator.get(agent.sid).status.is_final)
    assert "The caller left" in emulator.get(agent.sid).heard
    assert app_server.got("/left")[0]["QueueResult"] == "bridged"


def test_dial_number_rings_a_new_leg_and_reports_how_it_ended(emulator, app_server):
    app_server.route("/voice", twiml(
        '<Dial action="/dialed" timeout="10"><Number url="/whisper">+12125550123</Number>'
        "</Dial>"))
    app_server.route("/whisper", twiml("<Say>A call for you</Say>"))
    app_server.route("/dialed", twiml("<Hangup/>"))
    emulator.set_party("+12125550123", ScriptedParty(ring_seconds=0.1, talk=1.0))
    emulator.dial_in(CALLER, NUMBER, party=InteractiveParty())
    done = _until(lambda: app_server.got("/dialed"))[0]
    assert done["DialCallStatus"] == "completed" and done["DialCallSid"].startswith("CA")
    assert emulator.get(done["DialCallSid"]).heard == ["A call for you"]
    emulator.set_party("+12125550124", ScriptedParty(answers="busy"))
    app_server.route("/voice", twiml('<Dial action="/dialed">+12125550124</Dial>'))
    emulator.dial_in(CALLER, NUMBER, party=InteractiveParty())
    busy = _until(lambda: app_server.got("/dialed")[1:])[0]
    assert busy["DialCallStatus"] == "busy"


def test_status_callbacks_come_with_sequence_numbers_and_timestamps(emulator, app_server, rest):
    app_server.route("/out", twiml("<Say>Hello</Say>"))
    emulator.set_party(AGENT, ScriptedParty(ring_seconds=0.1))
    call = rest.calls.create(to=AGENT, from_=NUMBER, url=app_server.url + "/out",
                             status_callback=app_server.url + "/status",
                             status_callback_event=["initiated", "ringing", "answered",
                                                    "completed"])
    statuses = _until(lambda: app_server.got("/status") if len(app_server.got("/status")) >= 4
                      else None)
    mine = [s for s in statuses if s["CallSid"] == call.sid]
    assert [s["CallStatus"] for s in mine] == ["initiated", "ringing", "in-progress", "completed"]
    assert [s["SequenceNumber"] for s in mine] == ["0", "1", "2", "3"]
    assert all(s["Timestamp"].endswith("+0000") for s in mine)
    assert mine[-1]["CallDuration"].isdigit()


def test_only_completed_is_sent_when_no_events_are_asked_for(emulator, app_server, rest):
    app_server.route("/out", twiml("<Say>Hello</Say>"))
    emulator.set_party(AGENT, ScriptedParty(ring_seconds=0.1))
    call = rest.calls.create(to=AGENT, from_=NUMBER, url=app_server.url + "/out",
                             status_callback=app_server.url + "/status")
    _until(lambda: emulator.get(call.sid).status.is_final)
    emulator.webhooks.drain()
    assert [s["CallStatus"] for s in app_server.got("/status") if s["CallSid"] == call.sid] == [
        "completed"]


def test_relative_urls_are_refused_by_the_rest_api(rest):
    with pytest.raises(TwilioRestException) as refused:
        rest.calls.create(to=AGENT, from_=NUMBER, url="/voice/hold/agent?queue=support")
    assert (refused.value.status, refused.value.code) == (400, 21205)
    with pytest.raises(TwilioRestException) as no_to:
        rest.calls.create(to="", from_=NUMBER, url="https://example.com/x")
    assert no_to.value.code == 21201


def test_redirecting_a_finished_call_is_error_21220(emulator, app_server, rest):
    app_server.route("/out", twiml("<Hangup/>"))
    emulator.set_party(AGENT, ScriptedParty(ring_seconds=0.1))
    call = rest.calls.create(to=AGENT, from_=NUMBER, url=app_server.url + "/out")
    _until(lambda: emulator.get(call.sid).status.is_final)
    with pytest.raises(TwilioRestException) as refused:
        rest.calls(call.sid).update(url=app_server.url + "/elsewhere")
    assert (refused.value.status, refused.value.code) == (400, 21220)


def test_rest_redirect_moves_a_live_call_even_from_a_queue(emulator, app_server, rest):
    _queue_app(app_server)
    app_server.route("/moved", twiml("<Say>Moved</Say>"))
    call = emulator.dial_in(CALLER, NUMBER, party=InteractiveParty())
    _until(lambda: app_server.got("/wait"))
    rest.calls(call.sid).update(url=app_server.url + "/moved")
    _until(lambda: "Moved" in call.heard)
    assert app_server.got("/left")[0]["QueueResult"] == "redirected"
    assert "left redirected" not in call.heard  # the action was requested, its TwiML ignored


def test_a_failing_webhook_goes_to_the_fallback_url(emulator, app_server):
    app_server.route("/voice", lambda f: ("oops", 500))
    app_server.route("/fallback", twiml("<Say>Fallback</Say>"))
    call = emulator.dial_in(CALLER, NUMBER, party=InteractiveParty())
    fallback = _until(lambda: app_server.got("/fallback"))[0]
    assert fallback["ErrorCode"] == "11200"
    assert fallback["ErrorUrl"] == app_server.url + "/voice"
    _until(lambda: call.status.is_final)
    assert call.heard == ["Fallback"]


def test_without_a_fallback_the_caller_hears_the_application_error(emulator, app_server):
    emulator.configure_number(NUMBER, app_server.url + "/voice")
    app_server.route("/voice", "this is not TwiML")
    call = emulator.dial_in(CALLER, NUMBER, party=InteractiveParty())
    _until(lambda: call.status.is_final)
    assert call.heard == ["We are sorry, an application error has occurred. Goodbye."]


def test_a_get_webhook_is_signed_over_its_query(emulator, app_server):
    app_server.route("/voice", twiml('<Redirect method="GET">/fetched?x=1</Redirect>'))
    app_server.route("/fetched", twiml("<Hangup/>"))
    emulator.dial_in(CALLER, NUMBER, party=InteractiveParty())
    got = _until(lambda: app_server.got("/fetched"))[0]
    assert got["x"] == "1" and got["CallSid"].startswith("CA")
    # (the fixture's teardown checks that every request validated with RequestValidator)


def test_queue_time_is_the_wait_not_the_conversation(emulator, app_server, rest):
    _queue_app(app_server)
    app_server.route("/agent", twiml('<Dial action="/agent/done"><Queue>support</Queue></Dial>'))
    app_server.route("/agent/done", twiml("<Hangup/>"))
    emulator.dial_in(CALLER, NUMBER, party=InteractiveParty())
    _until(lambda: app_server.got("/wait"))
    emulator.set_party(AGENT, ScriptedParty(ring_seconds=0.1, talk=40.0))  # 2 s, scaled
    rest.calls.create(to=AGENT, from_=NUMBER, url=app_server.url + "/agent")
    left = _until(lambda: app_server.got("/left"), 15)[0]
    done = _until(lambda: app_server.got("/agent/done"), 15)[0]
    assert int(left["QueueTime"]) < 2 <= int(done["DialCallDuration"])
    assert done["DequeuedCallQueueTime"] == left["QueueTime"]


def test_a_caller_hanging_up_while_a_dial_rings_cancels_the_leg(emulator, app_server):
    app_server.route("/voice", twiml('<Dial action="/dialed" timeout="60">+12125550123</Dial>'))
    app_server.route("/dialed", twiml("<Hangup/>"))
    emulator.set_party("+12125550123", ScriptedParty(ring_seconds=60))
    call = emulator.dial_in(CALLER, NUMBER, party=InteractiveParty())
    leg = _until(lambda: [c for c in emulator.calls.values() if c.parent_sid == call.sid])[0]
    emulator.act(call.sid, "hangup")
    _until(lambda: leg.status.is_final, 2)  # not the 3 s (scaled 60 s) ring
    assert leg.status.value == "canceled"
    # The <Dial> action is a webhook of its own, sent once the leg has ended: wait for it.
    assert _until(lambda: app_server.got("/dialed"), 5)[0]["DialCallStatus"] == "canceled"


def test_a_recording_ended_by_silence_reports_no_key(emulator, app_server):
    app_server.route("/voice", twiml('<Record action="/recorded" maxLength="10"/>'))
    app_server.route("/recorded", twiml("<Hangup/>"))
    call = emulator.dial_in(CALLER, NUMBER, party=InteractiveParty())
    _until(lambda: any(e["kind"] == "recording" for e in emulator.journal.since(0)))
    emulator.act(call.sid, "3")  # the interactive caller talks for 3 s, then stops
    got = _until(lambda: app_server.got("/recorded"), 10)[0]
    assert got["RecordingDuration"] == "3" and "Digits" not in got
    assert got["RecordingUrl"].startswith(emulator.public_url)
