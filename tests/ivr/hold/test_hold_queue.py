"""Hold-queue journeys through the real app and the project's Twilio emulator: callers dial the
main line, walk its menus, hold in Twilio's queue and are bridged by it to the agents the
service rings through the REST API. Join and hear place and wait, get answered; abandon; choose
a callback while holding; nobody staffed; an agent who declines or does not answer."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from callback import runtime
from callback.deps import deps_of
from callback.models import CallbackRequest
from ivr.hold import holding
from ivr.infra import line, paths, queue_history
from ivr.infra.agents import add_agent, get_presence, set_presence
from ivr.infra.queue_models import QueueEvent, QueueVisit, WaitEstimate
from ivr.infra.services import services_of
from tests.callback.conftest import ACCOUNT_SID
from tests.conftest import AUTH_TOKEN, BASE_URL
from tests.ivr.hold.hold_support import TALKATIVE, Caller, Clock, Network, Wire, until
from tests.support.deliveries import flask_deliver
from tests.support.twilio_cloud import CallScript, TwilioCloud

ANA, BEN = "+12125550001", "+12125550002"
MAIN_LINE = "+18005550100"


@pytest.fixture
def twilio_cloud() -> Iterator[TwilioCloud]:
    """Twilio's cloud, emulated (agent calls are placed through its REST API)."""
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
def network(app, client, twilio_cloud: TwilioCloud, clock: Clock) -> Iterator[Network]:
    """The main line points at the app's webhooks, and the cloud delivers them to it."""
    wire = Wire(flask_deliver(client, BASE_URL))
    twilio_cloud.deliver = wire
    twilio_cloud.emulator.configure_number(
        MAIN_LINE, BASE_URL + paths.INCOMING, status_callback=BASE_URL + paths.STATUS,
        fallback_url=BASE_URL + paths.FALLBACK)
    twilio_cloud.default_script = TALKATIVE  # agents who take a caller talk until hung up
    runtime.bind(deps_of(app))
    yield Network(twilio_cloud, clock, wire, BASE_URL)
    twilio_cloud.emulator.hang_up_all()  # while the app and its stores are still there
    twilio_cloud.wait_idle(10)


def agent(app, clock: Clock, name: str, number: str, queues=("billing",), status="available"):
    db, r = services_of(app).db, services_of(app).redis
    row, _ = add_agent(db, r, name=name, kind="phone", address=number, queues=list(queues),
                       wrap_up_seconds=0, now=clock())
    set_presence(db, r, row.id, status, now=clock())
    clock.advance(1)  # distinct idle times: the first agent added is the longest idle
    return row


def to_billing(network: Network, caller: str = "+14155550123") -> Caller:
    """Call the main line, choose billing, then a refund: the call reaches <Enqueue>."""
    call = network.dial(caller, MAIN_LINE)
    call.turn()  # the welcome
    call.do("wait")  # silence: the main menu
    call.do("2")  # billing
    turn = call.do("2")  # a refund: the billing team
    assert turn.waiting == "queue" and turn.queue == "billing", turn.text
    return call


def visits(app) -> list[QueueVisit]:
    with services_of(app).db.session() as s:
        rows = s.scalars(select(QueueVisit).order_by(QueueVisit.id)).all()
        for v in rows:
            _ = (v.events, v.estimates)
        return rows


def test_join_hear_place_and_wait_then_answered(app, network, twilio_cloud, clock):
    ana = agent(app, clock, "Ana", ANA, status="busy")
    first = to_billing(network, "+14155550123")
    heard = first.announcement()
    assert heard.said[:2] == ["You are next in line.", "Your estimated wait is about 5 minutes."]
    document = network.wire.answers(first.sid, paths.QUEUE_WAIT)[0].body
    assert heard.played and "<Gather" in document  # the music plays inside a Gather: keys work
    network.pass_time(10)
    second = to_billing(network, "+14155550124")
    heard = second.announcement()
    # Two ahead of them in the shared line would be "number 3"; one live caller is ahead.
    assert heard.said[0] == "You are number 2 in line."
    assert heard.said[1].startswith("Your estimated wait is about")
    assert twilio_cloud.placed == []  # Ana is busy: nobody is rung

    set_presence(services_of(app).db, services_of(app).redis, ana.id, "available",
                 now=clock())
    network.pass_time(35)
    until(lambda: twilio_cloud.placed, "an agent call")  # a wait request notices her
    assert [c.to for c in twilio_cloud.placed] == [ANA]
    # Ana takes the first caller; when that call ends she is free and is rung for the next.
    network.answer(twilio_cloud.placed[0], talk=42)
    until(lambda: len(twilio_cloud.placed) == 2, "a second agent call")
    assert [c.to for c in twilio_cloud.placed] == [ANA, ANA]
    network.answer(twilio_cloud.placed[1], talk=42)
    network.settle(first, second)
    assert [c.to for c in twilio_cloud.placed] == [ANA, ANA]
    agent_call = twilio_cloud.placed[0]
    whisper = agent_call.said[0]
    assert whisper.startswith("English caller. Billing line. Pressed 2, 2.")
    assert "Waited less than a minute." in whisper and "Press 1 to take the call" in whisper
    assert "<Queue" in agent_call.documents[1]
    # The longest-waiting caller was bridged first, each by its own agent call.
    assert network.bridged_to(first) == agent_call.sid
    assert network.bridged_to(second) == twilio_cloud.placed[1].sid
    assert first.left_queue() == second.left_queue() == "bridged"

    done = visits(app)
    assert [(v.call_sid, v.outcome, v.queue_result, v.agent_id) for v in done] == [
        (first.sid, "answered", "bridged", ana.id),
        (second.sid, "answered", "bridged", ana.id)]
    kinds = [e.kind for e in done[0].events]
    assert kinds[0] == "join" and "announce" in kinds and kinds[-2:] == ["answer", "call_end"]
    est = done[0].estimates[0]
    # 45 s passed while they held (and the second or so the calls really took).
    assert 45 <= first.queue_time <= 47 and est.actual_seconds == first.queue_time
    assert est.band == "about 5 minutes" and est.within_band is True
    assert "QL-m" in est.explanation
    r = services_of(app).redis
    assert get_presence(services_of(app).db, r, ana.id, clock()).status == "available"
    assert r.zcard(line.CALLERS.format(queue="billing")) == 0
    learned = queue_history.history(r, "billing")
    assert learned.outcome_count == 2 and learned.handle_count == 2


def test_abandon_while_waiting(app, network, clock):
    agent(app, clock, "Ana", ANA, status="busy")
    caller = to_billing(network)
    caller.announcement()
    network.pass_time(95)
    turn = caller.hang_up()
    assert turn.said == [] and turn.waiting == "hangup"
    assert caller.left_queue() == "hangup"
    [left] = network.wire.answers(caller.sid, paths.QUEUE_LEFT)
    assert "<Say" not in left.body and "<Gather" not in left.body  # nobody is listening
    [visit] = visits(app)
    assert visit.outcome == "abandoned" and 95 <= caller.queue_time <= 97
    assert visit.wait_seconds == caller.queue_time  # the wait Twilio reported
    assert visit.estimates[0].actual_seconds is None  # censored: never scored
    r = services_of(app).redis
    assert r.zcard(line.CALLERS.format(queue="billing")) == 0
    assert queue_history.history(r, "billing").abandon_weight == pytest.approx(1.0)


def test_press_0_while_holding_says_already_waiting(app, network, clock):
    agent(app, clock, "Ana", ANA, status="busy")
    caller = to_billing(network)
    caller.announcement()
    turn = caller.hold_key("0")
    assert "already waiting for a person" in turn.text
    assert turn.waiting == "queue"  # back to the wait URL, never out of Twilio's queue
    [key] = network.wire.answers(caller.sid, paths.HOLD_KEY)
    assert "/voice/queue/wait?queue=billing&amp;v=" in key.body  # the same visit


def test_callback_while_holding_keeps_place(app, network, clock):
    agent(app, clock, "Ana", ANA, status="busy")
    first = to_billing(network, "+14155550123")
    first.announcement()
    network.pass_time(20)
    second = to_billing(network, "+14155550124")
    second.announcement()
    r = services_of(app).redis
    joined = holding.load(r, second.sid).first_asked

    turn = second.do("1")  # while holding
    assert second.left_queue() == "leave"
    assert "<Leave" in network.wire.answers(second.sid, paths.HOLD_KEY)[0].body
    assert "number ending in 0 1 2 4" in turn.text and turn.waiting == "gather"
    turn = second.do("1")  # confirm the caller ID
    assert "call you back" in turn.text
    with services_of(app).db.session() as s:
        [req] = s.scalars(select(CallbackRequest)).all()
    assert req.phone == "+14155550124" and req.queue == "billing"
    assert req.first_asked_at.timestamp() == pytest.approx(joined)
    assert line.waiting_callbacks(r, "billing") == {str(req.id)}

    mark = network.journal.last
    network.pass_time(40)
    assert first.announcement(after=mark).said[0] == "You are next in line."
    third = to_billing(network, "+14155550125")
    # Behind the first caller and the callback that kept the second caller's place.
    assert third.announcement().said[0] == "You are number 3 in line."
    [visit] = visits(app)
    assert visit.outcome == "callback" and visit.call_sid == second.sid


@pytest.mark.parametrize("closed", [False, True], ids=["nobody-staffed", "closed"])
def test_no_agent_or_closed_gets_a_callback_offer(app, network, clock, closed):
    if closed:
        agent(app, clock, "Ana", ANA, queues=("support", "billing"))
        clock.at = dt.datetime(2026, 11, 29, 23, 30, tzinfo=dt.UTC)  # Sunday night
    call = network.dial("+14155550123", MAIN_LINE)
    call.turn()
    turn = call.do("0")
    assert turn.waiting == "gather" and "call you back" in turn.text
    assert nobody_in_line(app)
    assert not any(e["kind"] == "enqueued" for e in call.events())  # nor in Twilio's queues


def nobody_in_line(app) -> bool:
    """Nobody joined a hold queue: no caller is in any line."""
    r = services_of(app).redis
    return all(r.zcard(line.CALLERS.format(queue=q)) == 0 for q in ("support", "billing"))


def test_agents_sign_out_while_caller_waits_then_max_wait(app, network, clock):
    ana = agent(app, clock, "Ana", ANA, status="busy")
    caller = to_billing(network)
    caller.announcement()
    set_presence(services_of(app).db, services_of(app).redis, ana.id, "offline",
                 now=clock())
    mark = network.journal.last
    network.pass_time(30)
    heard = caller.announcement(after=mark)
    assert "Nobody on this team can answer right now" in " ".join(heard.said)
    set_presence(services_of(app).db, services_of(app).redis, ana.id, "busy",
                 now=clock())
    mark = network.journal.last
    network.pass_time(600)  # billing's max_wait is 600 s: offer a callback, never hang up
    heard = caller.announcement(after=mark)
    assert any("waited so long" in s for s in heard.said)
    assert caller.still_holding(after=heard.seq)
    turn = caller.do("1")
    assert caller.left_queue() == "leave"
    assert "We can call you back" in turn.text


def test_overdue_estimate_is_never_shortened(app, network, clock):
    agent(app, clock, "Ana", ANA, status="busy")
    caller = to_billing(network)
    said = [caller.announcement().said[1]]
    for _ in range(12):
        mark = network.journal.last
        network.pass_time(30)
        heard = caller.announcement(after=mark).said
        said.append(next(s for s in heard if s.startswith("Your estimated wait")))
    assert said[0] == "Your estimated wait is about 5 minutes."
    minutes = [int(s.split("about ")[1].split()[0]) if "about" in s else 0 for s in said]
    lapsed = minutes.index(next(m for m in minutes[1:] if m != 5))
    assert minutes[lapsed] > 5  # after 5.5 minutes the promise lapsed: a longer band, not less


@pytest.mark.parametrize("script", [CallScript(digits="2"), CallScript(answer="no-answer")],
                         ids=["declines", "no-answer"])
def test_next_agent_tried(app, network, twilio_cloud, clock, script):
    ana = agent(app, clock, "Ana", ANA)
    ben = agent(app, clock, "Ben", BEN)
    twilio_cloud.script(ANA, script)
    caller = to_billing(network)
    caller.announcement()
    assert [c.to for c in twilio_cloud.placed] == [ANA]  # the longest-idle agent first
    twilio_cloud.drive(twilio_cloud.placed[0])  # Ana passes, or never picks up...
    until(lambda: len(twilio_cloud.placed) == 2, "a second agent call")
    assert [c.to for c in twilio_cloud.placed] == [ANA, BEN]  # ...so Ben is rung
    network.answer(twilio_cloud.placed[1], talk=42)
    network.settle(caller)
    assert [c.to for c in twilio_cloud.placed] == [ANA, BEN]
    assert network.bridged_to(caller) == twilio_cloud.placed[1].sid
    [visit] = visits(app)
    assert (visit.outcome, visit.agent_id) == ("answered", ben.id)
    expected = "available" if script.answer == "human" else "offline"
    assert get_presence(services_of(app).db, services_of(app).redis, ana.id,
                        clock()).status == expected


def test_visit_events_are_in_sql(app, network, clock):
    agent(app, clock, "Ana", ANA, status="busy")
    caller = to_billing(network)
    caller.announcement()
    assert caller.hold_key("0").waiting == "queue"
    caller.hang_up()
    with services_of(app).db.session() as s:
        kinds = [e.kind for e in s.scalars(select(QueueEvent).order_by(QueueEvent.id))]
        estimates = s.scalars(select(WaitEstimate)).all()
    assert kinds == ["join", "announce", "key", "abandon"]
    assert len(estimates) == 1 and json.dumps(estimates[0].band)
    assert isinstance(estimates[0].given_at, dt.datetime)


def test_caller_lost_without_a_leave_is_not_offered_to_agents(app, network, twilio_cloud,
                                                               clock):
    from ivr.hold.connect import connect_agents

    agent(app, clock, "Ana", ANA, status="busy")
    caller = to_billing(network)
    caller.announcement()
    r = services_of(app).redis
    # The caller hangs up and Twilio's <Enqueue> action never reaches us: no leave reported.
    network.wire.lost.add(paths.QUEUE_LEFT)
    caller.hang_up()
    assert r.zscore(line.CALLERS.format(queue="billing"), caller.sid) is not None
    # The wait URL stopped with the call, so the record expires.
    r.delete(holding.RECORD.format(sid=caller.sid))
    ann = agent(app, clock, "Ann", BEN)
    assert ann.id and connect_agents(app, "billing") == []
    assert twilio_cloud.placed == [] and r.zcard(line.CALLERS.format(queue="billing")) == 0


def test_whisper_carries_order_number_and_returning_caller(app, network, twilio_cloud, clock):
    agent(app, clock, "Ana", ANA, queues=("support",))
    earlier = network.dial("+14155550199", MAIN_LINE)
    earlier.turn()
    earlier.hang_up()
    call = network.dial("+14155550199", MAIN_LINE)
    call.turn()
    call.do("wait")  # the main menu
    call.do("1")  # orders
    call.do("12345")  # the order number
    turn = call.do("0")
    assert turn.waiting == "queue" and turn.queue == "support", turn.text
    call.announcement()
    assert [c.to for c in twilio_cloud.placed] == [ANA]  # rung as the caller joined
    network.pass_time(125)  # ...and picks up two minutes later
    network.answer(twilio_cloud.placed[0], talk=42)
    whisper = twilio_cloud.placed[0].said[0]
    assert whisper.startswith("English caller. Support line. Pressed 1, 1 2 3 4 5, 0. "
                              "Order number 1 2 3 4 5.")
    assert "Waited 2 minutes. Returning caller." in whisper
    assert network.bridged_to(call) == twilio_cloud.placed[0].sid


def test_an_agent_is_free_when_the_bridge_ends_even_if_no_status_callback_comes(
        app, network, twilio_cloud, clock):
    """Every status callback of the agent's call is lost: the <Dial> action that ends the
    conversation frees them (the chaos bench found lost finals holding agents busy until the
    repair pass, which doubled the waits)."""
    ana = agent(app, clock, "Ana", ANA)
    network.wire.lost.add(paths.HOLD_AGENT_STATUS)
    first = to_billing(network, "+14155550123")
    second = to_billing(network, "+14155550124")
    until(lambda: twilio_cloud.placed, "an agent call")
    network.answer(twilio_cloud.placed[0], talk=42)
    # Freed by the end of the bridge, and rung at once for the caller behind.
    until(lambda: len(twilio_cloud.placed) == 2, "Ana rung for the next caller")
    network.answer(twilio_cloud.placed[1], talk=42)
    network.settle(first, second)
    assert first.left_queue() == second.left_queue() == "bridged"
    presence = get_presence(services_of(app).db, services_of(app).redis, ana.id, clock())
    assert presence.status == "available"
    assert not network.wire.answers(twilio_cloud.placed[0].sid, paths.HOLD_AGENT_STATUS)
