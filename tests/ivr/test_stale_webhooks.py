"""Webhooks as Twilio really delivers them: late, repeated, racing. None moves the call back.

Each document the engine renders carries its turn in every action URL (`t`). These tests send
the requests Twilio can send: a main-menu Gather after the caller reached billing, the same
Gather twice, two at once, webhooks after the call ended, a repeated voice URL and repeated
final status callbacks. Each checks where the call is afterwards, what it was answered, and
the journey rows queued for it (unique, none lost).
"""

from __future__ import annotations

import json
import threading
from urllib.parse import parse_qs, urlsplit

import pytest

from ivr.infra import journey
from ivr.infra.models import Call
from ivr.infra.services import services_of
from tests.conftest import AUTH_TOKEN, BASE_URL
from tests.ivr.helpers import staff
from tests.support.caller import SimulatedCall, flask_transport

BILLING = "For a copy of an invoice"
RETURNS = "You can return anything within 30 days"


@pytest.fixture
def call(app, client):
    staff(app, ["support", "billing"])
    return SimulatedCall(flask_transport(client, BASE_URL), BASE_URL, AUTH_TOKEN)


def at_main_menu(call: SimulatedCall):
    call.dial()
    turn = call.wait()  # the welcome message plays, then the main menu listens
    assert "For an order, press 1" in turn.text
    return turn


def state_of(app, sid: str):
    return services_of(app).calls.load(sid, ended=True)


def rows_of(app, sid: str) -> list[dict]:
    rows = [json.loads(x) for x in services_of(app).redis.lrange(journey.QUEUE_KEY, 0, -1)]
    return [row for row in rows if row["sid"] == sid]


def post(call: SimulatedCall, url: str, **extra: str):
    status, body = call._post(url, extra)
    assert status == 200, body
    return body


def test_every_action_url_carries_the_documents_turn(app, call):
    menu = at_main_menu(call)
    query = parse_qs(urlsplit(menu.gather_action).query)
    assert query["node"] == ["main_menu"]
    assert query["t"] == [str(state_of(app, call.call_sid).turn)]
    assert parse_qs(urlsplit(menu.continue_url).query)["t"] == query["t"]


def test_a_late_main_menu_gather_never_moves_the_call_back(app, call):
    """The issue's case: the main menu's Gather with 3 arrives after the caller chose billing."""
    menu = at_main_menu(call)
    billing = call.press("2")
    assert BILLING in billing.text
    before = state_of(app, call.call_sid)
    rows_before = rows_of(app, call.call_sid)

    late = post(call, menu.gather_action, Digits="3")

    assert RETURNS not in late
    assert late == billing.documents[-1]  # the document of where the caller really is
    after = state_of(app, call.call_sid)
    assert (after.node, after.turn, after.seq) == ("billing_menu", before.turn, before.seq)
    assert rows_of(app, call.call_sid) == rows_before  # nothing recorded for it
    # The live document still works: its next key is taken at the billing menu.
    assert "download every invoice" in call.press("1").text


def test_the_same_gather_twice_is_acted_on_once(app, call):
    menu = at_main_menu(call)
    first = call.press("3")
    assert RETURNS in first.text
    seq = state_of(app, call.call_sid).seq

    again = post(call, menu.gather_action, Digits="3")

    assert again == first.documents[-1]
    assert state_of(app, call.call_sid).seq == seq
    choices = [r for r in rows_of(app, call.call_sid) if r["kind"] == "choice"]
    assert [c["digits"] for c in choices] == ["3"]


def test_two_webhooks_at_once_move_the_call_once(app, client):
    """A keypress and a speech redirect for the same menu, sent together, many times over."""
    staff(app, ["support", "billing"])
    for _ in range(10):
        call = SimulatedCall(flask_transport(app.test_client(), BASE_URL), BASE_URL, AUTH_TOKEN)
        menu = at_main_menu(call)
        start = threading.Barrier(2)
        answers: dict[str, str] = {}

        def send(name: str, url: str, extra: dict, call=call, start=start, answers=answers):
            start.wait()
            answers[name] = post(call, url, **extra)

        speech_url = menu.gather_action + "&choice=3&transcript=returns&confidence=0.9"
        threads = [threading.Thread(target=send, args=("keys", menu.gather_action,
                                                       {"Digits": "2"})),
                   threading.Thread(target=send, args=("speech", speech_url, {}))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        state = state_of(app, call.call_sid)
        assert state.node in ("billing_menu", "returns_info")
        # Both answers are the winner's document, whichever came second.
        assert answers["keys"] == answers["speech"]
        assert (BILLING in answers["keys"]) == (state.node == "billing_menu")
        rows = rows_of(app, call.call_sid)
        seqs = [r["seq"] for r in rows]
        assert len(seqs) == len(set(seqs)) == state.seq
        assert len([r for r in rows if r["kind"] == "choice"]) == 1


def test_after_the_call_ends_late_webhooks_hang_up_and_change_nothing(app, call):
    menu = at_main_menu(call)
    for _ in range(3):  # Twilio repeats status callbacks
        assert call.hang_up(duration=12) == 204
    ended = state_of(app, call.call_sid)
    assert ended.ended == "completed"

    late = post(call, menu.gather_action, Digits="3")

    assert "<Hangup" in late and RETURNS not in late
    assert state_of(app, call.call_sid).ended == "completed"
    ends = [r for r in rows_of(app, call.call_sid) if r["kind"] == "call_end"]
    assert len(ends) == 1 and ends[0]["meta"]["duration"] == 12
    seqs = [r["seq"] for r in rows_of(app, call.call_sid)]
    assert len(seqs) == len(set(seqs))


def test_a_repeated_voice_url_does_not_start_the_call_again(app, call):
    menu = at_main_menu(call)
    billing = call.press("2")
    rows = rows_of(app, call.call_sid)

    again = post(call, BASE_URL + "/voice/incoming")

    assert again == billing.documents[-1]
    assert state_of(app, call.call_sid).node == "billing_menu"
    assert rows_of(app, call.call_sid) == rows
    assert menu.gather_action  # (the menu was reached once)


@pytest.mark.parametrize("duration, stored", [("", None), ("abc", None), ("12.0", 12),
                                              ("-5", None), ("9" * 400, None)])
def test_any_call_duration_twilio_sends_is_recorded_without_stalling_the_writer(
        app, call, duration, stored):
    at_main_menu(call)
    status, _ = call._post(BASE_URL + "/voice/status",
                           {"CallStatus": "completed", "CallDuration": duration})
    assert status == 204
    services = services_of(app)
    assert journey.flush(services.db, services.redis) > 0
    assert not rows_of(app, call.call_sid)  # every row reached the database

    with services.db.session() as s:
        row = s.query(Call).filter_by(call_sid=call.call_sid).one()
        assert row.duration_seconds == stored
        assert row.ended_at is not None


def test_a_url_without_a_turn_is_believed_only_for_the_node_the_call_is_at(app, call):
    """URLs rendered before turns existed (a deploy during a call) still work, but only there."""
    menu = at_main_menu(call)
    assert RETURNS in call.press("3").text  # now at returns_info, a message
    old = menu.gather_action.replace(f"&t={parse_qs(urlsplit(menu.gather_action).query)['t'][0]}",
                                     "")
    assert "t=" not in urlsplit(old).query
    late = post(call, old, Digits="2")
    assert BILLING not in late
    assert state_of(app, call.call_sid).node == "returns_info"


def test_a_repeated_end_of_a_hold_visit_does_not_make_the_offer_again(app, call):
    """Twilio sends the <Enqueue> action twice: the second finds the visit over and answers
    with where the call is (the callback offer it already heard), moving nothing."""
    import re

    at_main_menu(call)
    queued = call.press("0")
    assert queued.waiting == "queue", queued.text
    action = re.search(r'<Enqueue action="([^"]+)"', queued.documents[-1])[1].replace("&amp;", "&")
    assert "v=" in action  # the visit's token
    post(call, queued.queue_wait_url, QueueTime="0", QueuePosition="1")
    first = post(call, action, QueueResult="leave", QueueTime="5")
    turn = state_of(app, call.call_sid).turn
    rows = len(rows_of(app, call.call_sid))
    second = post(call, action, QueueResult="leave", QueueTime="6")
    assert "call you back" in first and second == first
    assert state_of(app, call.call_sid).turn == turn  # the offer's keys are still current
    assert len(rows_of(app, call.call_sid)) == rows  # no second visit or offer recorded
