"""The agent's screen through Flask's test client, with calls made by the project's Twilio
emulator: a caller walks the shop's menus, holds, the service rings an agent, and the agent's
page shows who is calling and what they pressed; presence buttons; wrap-up notes; an agent
sees only their own calls."""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from callback import runtime
from callback.deps import deps_of
from ivr.console import my_calls, screenpop
from ivr.console.notes import clean
from ivr.core.engine.types import Event
from ivr.infra import journey, paths
from ivr.infra.agents import get_presence, set_presence
from ivr.infra.notes_models import CallNote
from ivr.infra.queue_models import QueueVisit
from ivr.infra.services import services_of
from tests.callback.conftest import ACCOUNT_SID
from tests.conftest import AUTH_TOKEN, BASE_URL
from tests.console.conftest import sign_in
from tests.ivr.hold.hold_support import TALKATIVE, Caller, Clock, Network, Wire, until
from tests.support.deliveries import flask_deliver
from tests.support.twilio_cloud import TwilioCloud

HTML = {"Accept": "text/html"}
MAIN_LINE = "+18005550100"
CALLER = "+14155550177"
ANA, BEN = "+12125550001", "+12125550002"


@pytest.fixture
def twilio_cloud() -> Iterator[TwilioCloud]:
    with TwilioCloud(ACCOUNT_SID, AUTH_TOKEN) as cloud:
        yield cloud


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def app_config(app_config: dict, twilio_cloud, clock: Clock) -> dict:
    return {**app_config, "TWILIO_API_BASE": twilio_cloud.base_url,
            "TWILIO_ACCOUNT_SID": ACCOUNT_SID, "CLOCK": clock}


@pytest.fixture
def network(app, twilio_cloud: TwilioCloud, clock: Clock) -> Iterator[Network]:
    """The main line points at the app (through a client of its own: the agent's page uses
    the test's `client`), and the cloud delivers its webhooks to it."""
    wire = Wire(flask_deliver(app.test_client(), BASE_URL))
    twilio_cloud.deliver = wire
    twilio_cloud.emulator.configure_number(
        MAIN_LINE, BASE_URL + paths.INCOMING, status_callback=BASE_URL + paths.STATUS,
        fallback_url=BASE_URL + paths.FALLBACK)
    twilio_cloud.default_script = TALKATIVE
    runtime.bind(deps_of(app))
    yield Network(twilio_cloud, clock, wire, BASE_URL)
    twilio_cloud.emulator.hang_up_all()
    twilio_cloud.wait_idle(10)


@pytest.fixture
def agents(app, add_agent, clock: Clock):
    """Ana and Ben serve support; Ana is available. Their self-service tokens."""
    services = services_of(app)
    ana, ana_token = add_agent("Ana", ANA, "support", wrap_up_seconds=0, now=clock())
    ben, ben_token = add_agent("Ben", BEN, "support", wrap_up_seconds=0, now=clock())
    set_presence(services.db, services.redis, ana.id, "available", now=clock())
    return {"ana": (ana, ana_token), "ben": (ben, ben_token)}


def wholesale_call(network: Network) -> Caller:
    """The caller presses 1 (orders), enters order 91234 (a wholesale order): support."""
    call = network.dial(CALLER, MAIN_LINE)
    call.turn()  # the welcome
    call.do("wait")  # the main menu
    call.do("1")
    turn = call.do("91234")
    assert turn.waiting == "queue" and turn.queue == "support", turn.text
    return call


def presence_of(app, agent) -> str:
    services = services_of(app)
    return get_presence(services.db, services.redis, agent.id).status.value


def first_events(client, path: str, names: set[str]) -> dict[str, str]:
    """Read the event stream at `path` until every event in `names` came; {name: data}."""
    response = client.get(path, buffered=False)
    assert response.status_code == 200 and response.mimetype == "text/event-stream"
    got: dict[str, str] = {}
    buffer = ""
    try:
        for chunk in response.response:
            buffer += chunk.decode() if isinstance(chunk, bytes) else chunk
            while "\n\n" in buffer:
                block, buffer = buffer.split("\n\n", 1)
                lines = block.split("\n")
                name = next((x[7:] for x in lines if x.startswith("event: ")), None)
                if name:
                    got[name] = "\n".join(x[6:] for x in lines if x.startswith("data: "))
            if names <= set(got):
                break
    finally:
        response.close()
    return got


# --- presence ------------------------------------------------------------------------------


def test_presence_buttons_change_presence(app, client, agents):
    ben, token = agents["ben"]
    csrf = sign_in(client, token)
    page = client.get("/console/agent", headers=HTML).text
    assert 'data-status="offline">Offline</span>' in page
    assert "Go available" in page and "Go offline" in page
    assert 'name="status" value="busy"' not in page  # busy follows calls: not a button

    done = client.post("/console/agent/presence", data={"status": "available",
                                                        "csrf_token": csrf})
    assert done.status_code == 303 and done.headers["Location"] == "/console/agent"
    assert presence_of(app, ben) == "available"
    assert 'data-status="available">Available</span>' in client.get(
        "/console/agent", headers=HTML).text

    # From htmx: the new presence part comes back to swap in.
    done = client.post("/console/agent/presence", data={"status": "offline"},
                       headers={"HX-Request": "true", "X-CSRFToken": csrf})
    assert done.status_code == 200 and 'data-status="offline">Offline</span>' in done.text
    assert presence_of(app, ben) == "offline"

    refused = client.post("/console/agent/presence", data={"status": "busy",
                                                           "csrf_token": csrf})
    assert refused.status_code == 400
    assert "available or offline" in refused.json["message"]
    assert presence_of(app, ben) == "offline"


def test_a_post_without_its_csrf_token_is_refused_and_changes_nothing(app, client, agents):
    ben, token = agents["ben"]
    sign_in(client, token)
    refused = client.post("/console/agent/presence", data={"status": "available"})
    assert refused.status_code == 400 and "CSRF" in refused.json["message"]
    forged = client.post("/console/agent/presence", data={"status": "available",
                                                          "csrf_token": "forged"})
    assert forged.status_code == 400
    assert presence_of(app, ben) == "offline"
    note = client.post("/console/agent/calls/CA123/note", data={"text": "hello"})
    assert note.status_code == 400
    with services_of(app).db.session() as s:
        assert s.scalars(select(CallNote)).all() == []


def test_the_agent_page_is_for_agents_signed_in(client, admin):
    admin_client, _ = admin
    assert admin_client.get("/console/agent", headers=HTML).status_code == 403
    admin_client.post("/console/signout", data={"csrf_token": admin[1]})
    away = admin_client.get("/console/agent", headers=HTML)
    assert away.status_code == 302 and "/console/signin" in away.headers["Location"]
    assert admin_client.get("/console/agent/events").status_code == 401


# --- the screen pop ------------------------------------------------------------------------


def test_screen_pop_of_an_offered_call_then_notes_and_only_their_own_calls(
        app, client, network, twilio_cloud, clock, agents):
    ana, ana_token = agents["ana"]
    ben, ben_token = agents["ben"]
    services = services_of(app)
    earlier = network.dial(CALLER, MAIN_LINE)  # they called once before, and hung up
    earlier.turn()
    earlier.hang_up()
    clock.advance(3600)

    call = wholesale_call(network)
    until(lambda: twilio_cloud.placed, "Ana's phone to ring")
    network.pass_time(65)  # she is slow to look: the caller has waited a minute

    # The offer is written just after the ring is placed (ivr.hold.connect._ring).
    offer = until(lambda: screenpop.current_offer(services, ana.id), "Ana's offer")
    assert not offer.is_on_call
    assert (offer.kind, offer.queue, offer.caller_sid) == ("queue", "support", call.sid)
    assert offer.agent_call_sid == twilio_cloud.placed[0].sid
    assert screenpop.current_offer(services, ben.id) is None
    pop = screenpop.pop_of_offer(services, offer)
    assert (pop.caller, pop.language_name, pop.queue_label) == (CALLER, "English", "Support")
    assert [(g.kind, g.node, g.value) for g in pop.given] == [
        ("digits", "main_menu", "1"), ("digits", "order_number", "91234")]
    assert pop.path == ["welcome", "open_check", "main_menu", "order_number", "order_check",
                        "order_wholesale"]
    assert pop.entered == [("Order number", "91234")]
    assert pop.waiting_since is not None and 65 <= pop.waited_seconds < 70
    assert pop.earlier.count == 1 and pop.earlier.last_outcome == "hung up in the menus"
    assert pop.earlier.last_at < pop.started_at

    csrf = sign_in(client, ana_token)
    page = client.get("/console/agent", headers=HTML).text
    assert f"Ringing: {CALLER} for Support" in page
    assert "Pressed <kbd>1</kbd>" in page and "Pressed <kbd>91234</kbd>" in page
    assert "Yes, 1 time: last on" in page and "(hung up in the menus)" in page
    assert "main_menu → order_number → order_check → order_wholesale" in page
    assert f'data-since="{pop.waiting_since}"' in page
    # The live part carries the same pop, from the first event on.
    live = first_events(client, "/console/agent/events", {"presence", "offer"})
    assert f"Ringing: {CALLER}" in live["offer"] and "<kbd>91234</kbd>" in live["offer"]
    assert ">Ringing</span>" in live["presence"]

    # Ana takes the call; during it the pop stays, with the wait frozen at the bridge, and
    # the call is hers before its queue visit is written (that comes when it ends).
    placed = twilio_cloud.placed[0]
    driving = threading.Thread(target=twilio_cloud.drive, args=(placed,), daemon=True)
    driving.start()
    until(lambda: any(e["kind"] == "bridged" for e in network.journal.since(0, call=placed.sid)),
          "Ana to be bridged to the caller")
    on = until(lambda: (o := screenpop.current_offer(services, ana.id)) and o.is_on_call and o,
               "Ana's offer to be the call she is on")
    assert on.caller_sid == call.sid
    network.pass_time(30)
    during = screenpop.pop_of_offer(services, on)
    assert during.waiting_since is None and 65 <= during.waited_seconds < 70
    page = client.get("/console/agent", headers=HTML).text
    assert f"On the call with {CALLER}" in page and "Pressed <kbd>91234</kbd>" in page
    with services.db.session() as s:
        assert s.scalars(select(QueueVisit)).all() == []  # written when the call ends
    assert [c.call_sid for c in my_calls.agent_calls(services, ana.id, on)] == [call.sid]
    assert client.get(f"/console/agent/calls/{call.sid}", headers=HTML).status_code == 200
    network.cloud.emulator.act(placed.sid, "hangup")
    driving.join(10)
    network.settle(call)
    # Between the end and its visit being written, her presence history names the call.
    assert [(o.caller_sid, o.agent_call_sid) for o in screenpop.taken_offers(
        services, ana.id, None)] == [(call.sid, placed.sid)]
    mine = my_calls.agent_calls(services, ana.id, None)
    assert [(c.call_sid, c.caller, c.queue, c.outcome) for c in mine] == [
        (call.sid, CALLER, "support", "answered by you")]
    page = client.get("/console/agent", headers=HTML).text
    assert "No call right now" in page and f"Last call: {CALLER}, Support" in page
    assert f'/console/agent/calls/{call.sid}"' in page
    live = first_events(client, "/console/agent/events", {"offer", "wrapup", "calls"})
    assert "No call right now" in live["offer"]
    assert f"Last call: {CALLER}, Support" in live["wrapup"]
    assert f'data-call="{call.sid}"' in live["wrapup"] and 'name="csrf_token"' in live["wrapup"]
    assert CALLER in live["calls"] and "answered by you" in live["calls"]

    # Her wrap-up note, cleaned of control characters, is saved against the call and shown.
    saved = client.post(f"/console/agent/calls/{call.sid}/note", data={
        "csrf_token": csrf, "text": "Wholesale \x1b[31morder 91234:\r\nresend the invoice\x00 ",
        "next": "/console/agent"})
    assert saved.status_code == 303 and saved.headers["Location"] == "/console/agent#notes"
    with services.db.session() as s:
        rows = s.scalars(select(CallNote)).all()
    assert [(n.call_sid, n.agent_id, n.text) for n in rows] == [
        (call.sid, ana.id, "Wholesale [31morder 91234:\nresend the invoice")]
    detail = client.get(f"/console/agent/calls/{call.sid}", headers=HTML)
    assert detail.status_code == 200
    assert "resend the invoice" in detail.text and "Pressed <kbd>91234</kbd>" in detail.text
    assert f"Call from {CALLER}" in detail.text and "Ana, " in detail.text
    too_long = client.post(f"/console/agent/calls/{call.sid}/note",
                           data={"csrf_token": csrf, "text": "x" * 2001})
    assert too_long.status_code == 400 and "at most 2000" in too_long.json["message"]
    blank = client.post(f"/console/agent/calls/{call.sid}/note",
                        data={"csrf_token": csrf, "text": " \x07 "})
    assert blank.status_code == 400

    # Ben sees none of it: not the call, not its notes, and he cannot add one.
    other = app.test_client()
    ben_csrf = sign_in(other, ben_token)
    assert other.get(f"/console/agent/calls/{call.sid}", headers=HTML).status_code == 404
    assert call.sid not in other.get("/console/agent", headers=HTML).text
    refused = other.post(f"/console/agent/calls/{call.sid}/note",
                         data={"csrf_token": ben_csrf, "text": "mine now"})
    assert refused.status_code == 404
    assert other.get("/console/agent/calls/CAnothing", headers=HTML).status_code == 404
    assert other.get("/console/agent/calls/bad%20sid", headers=HTML).status_code == 404
    with services.db.session() as s:
        assert len(s.scalars(select(CallNote)).all()) == 1


def test_the_pop_shows_words_heard_with_the_recognisers_confidence(app):
    """Speech reaches the journey from the speech websocket (not the emulator): rows written
    by the journey writer, as that path writes them."""
    services = services_of(app)
    at = dt.datetime(2026, 11, 24, 16, 0, tzinfo=dt.UTC).timestamp()
    rows = [journey.encode("CAspoken", 0, at, None, Event("call_start", flow="main"),
                           {"caller": CALLER}),
            journey.encode("CAspoken", 1, at, None, Event("enter", "main", "main_menu")),
            journey.encode("CAspoken", 2, at + 4, 4000,
                           Event("speech", "main", "main_menu", speech_text="refund",
                                 confidence=0.87)),
            journey.encode("CAspoken", 3, at + 4, 0, Event("enter", "main", "billing_menu")),
            journey.encode("CAspoken", 4, at + 9, 5000,
                           Event("digits", "main", "billing_menu", digits="0")),
            journey.encode("CAspoken", 5, at + 9, 0, Event("enter", "main", "@operator"))]
    journey.write_rows(services.db, [json.loads(r) for r in rows])
    pop = screenpop.queue_pop(services, "CAspoken", "support")
    assert [(g.kind, g.value, g.confidence) for g in pop.given] == [
        ("speech", "refund", 0.87), ("digits", "0", None)]
    assert pop.path == ["main_menu", "billing_menu", "operator"]
    assert pop.caller == CALLER and pop.earlier.count == 0


@pytest.mark.parametrize(("raw", "kept"), [
    ("  fine\r\nthanks  ", "fine\nthanks"),
    ("tab\tok\x00\x08\x7f\x9b", "tab\tok"),
    ("abc\u202edcb\u2066x\u2069", "abcdcbx"),
    ("हिन्दी\u200dनोट", "हिन्दी\u200dनोट"),  # a joiner stays: Indic scripts need it
])
def test_notes_are_cleaned_of_control_characters(raw, kept):
    assert clean(raw) == kept

