"""Hold-queue journeys through the real app, signed webhooks, and the local Twilio stand-in:
join and hear place and wait, get answered; abandon; choose a callback while holding; nobody
staffed; an agent who declines or does not answer."""

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
from ivr.infra import line, queue_history
from ivr.infra.agents import add_agent, get_presence, set_presence
from ivr.infra.queue_models import QueueEvent, QueueVisit, WaitEstimate
from ivr.infra.services import services_of
from tests.callback.conftest import ACCOUNT_SID
from tests.conftest import AUTH_TOKEN, BASE_URL
from tests.ivr.hold.hold_support import Clock, TwilioQueues
from tests.support.call_driver import CallScript
from tests.support.caller import SimulatedCall, flask_transport
from tests.support.twilio_cloud import TwilioCloud, flask_deliver

ANA, BEN = "+12125550001", "+12125550002"
MAIN_LINE = "+18005550100"


@pytest.fixture
def twilio_cloud() -> Iterator[TwilioCloud]:
    """Twilio's REST API stand-in (agent calls are placed through it)."""
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
def queues(app, client, twilio_cloud, clock) -> TwilioQueues:
    """Twilio's queues, with agent calls from the stand-in delivered to the app."""
    q = TwilioQueues(client, clock)
    twilio_cloud.driver.deliver = q.deliver(flask_deliver(client, BASE_URL))
    runtime.bind(deps_of(app))
    return q


def agent(app, clock: Clock, name: str, number: str, queues=("billing",), status="available"):
    db, r = services_of(app).db, services_of(app).redis
    row, _ = add_agent(db, r, name=name, kind="phone", address=number, queues=list(queues),
                       wrap_up_seconds=0, now=clock())
    set_presence(db, r, row.id, status, now=clock())
    clock.advance(1)  # distinct idle times: the first agent added is the longest idle
    return row


def to_billing(client, caller: str = "+14155550123", say: str = "refund") -> SimulatedCall:
    """Call the main line, choose billing, ask for a refund: the call reaches <Enqueue>."""
    call = SimulatedCall(flask_transport(client, BASE_URL), BASE_URL, AUTH_TOKEN,
                         caller=caller, called=MAIN_LINE)
    call.dial()
    call.wait()
    call.press("2")
    turn = call.say(say)
    assert turn.waiting == "queue" and turn.queue == "billing", turn.text
    return call


def visits(app) -> list[QueueVisit]:
    with services_of(app).db.session() as s:
        rows = s.scalars(select(QueueVisit).order_by(QueueVisit.id)).all()
        for v in rows:
            _ = (v.events, v.estimates)
        return rows


def test_join_hear_place_and_wait_then_answered(app, client, queues, twilio_cloud, clock):
    ana = agent(app, clock, "Ana", ANA, status="busy")
    first = queues.enqueue(to_billing(client, "+14155550123"))
    heard = queues.wait_hit(first)
    assert heard.said[:2] == ["You are next in line.", "Your estimated wait is about 5 minutes."]
    assert heard.played and "<Gather" in heard.documents[0]
    clock.advance(10)
    second = queues.enqueue(to_billing(client, "+14155550124"))
    heard = queues.wait_hit(second)
    # Two ahead of them in the shared line would be "number 3"; one live caller is ahead.
    assert heard.said[0] == "You are number 2 in line."
    assert heard.said[1].startswith("Your estimated wait is about")
    assert twilio_cloud.placed == []  # Ana is busy: nobody is rung

    set_presence(services_of(app).db, services_of(app).redis, ana.id, "available",
                 now=clock())
    clock.advance(35)
    queues.wait_hit(second)  # any wait request notices the free agent
    assert [c.to for c in twilio_cloud.placed] == [ANA]
    # Ana takes the first caller; when that call ends she is free and is rung for the next.
    assert twilio_cloud.drive_pending() == 2
    assert [c.to for c in twilio_cloud.placed] == [ANA, ANA]
    agent_call = twilio_cloud.placed[0]
    whisper = agent_call.said[0]
    assert whisper.startswith("Billing. Said 'refund'. Pressed 2.")
    assert "Waited less than a minute." in whisper and "Press 1 to take the call" in whisper
    assert "<Queue" in agent_call.documents[1]
    assert first.bridged_to == agent_call.sid  # the longest-waiting caller was bridged first
    assert second.bridged_to == twilio_cloud.placed[1].sid

    done = visits(app)
    assert [(v.call_sid, v.outcome, v.queue_result, v.agent_id) for v in done] == [
        (first.call.call_sid, "answered", "bridged", ana.id),
        (second.call.call_sid, "answered", "bridged", ana.id)]
    kinds = [e.kind for e in done[0].events]
    assert kinds[0] == "join" and "announce" in kinds and kinds[-2:] == ["answer", "call_end"]
    est = done[0].estimates[0]
    assert est.band == "about 5 minutes" and est.actual_seconds == pytest.approx(45)
    assert est.within_band is True and "QL-m" in est.explanation
    r = services_of(app).redis
    assert get_presence(services_of(app).db, r, ana.id, clock()).status == "available"
    assert r.zcard(line.CALLERS.format(queue="billing")) == 0
    learned = queue_history.history(r, "billing")
    assert learned.outcome_count == 2 and learned.handle_count == 2


def test_abandon_while_waiting(app, client, queues, twilio_cloud, clock):
    agent(app, clock, "Ana", ANA, status="busy")
    caller = queues.enqueue(to_billing(client))
    queues.wait_hit(caller)
    clock.advance(95)
    turn = queues.leave(caller, "hangup")
    assert turn.said == [] and turn.waiting == "hangup"
    [visit] = visits(app)
    assert (visit.outcome, visit.wait_seconds) == ("abandoned", 95)
    assert visit.estimates[0].actual_seconds is None  # censored: never scored
    r = services_of(app).redis
    assert r.zcard(line.CALLERS.format(queue="billing")) == 0
    assert queue_history.history(r, "billing").abandon_weight == pytest.approx(1.0)


def test_press_0_while_holding_says_already_waiting(app, client, queues, clock):
    agent(app, clock, "Ana", ANA, status="busy")
    caller = queues.enqueue(to_billing(client))
    queues.wait_hit(caller)
    twiml = queues.press(caller, "0")
    assert "already waiting for a person" in twiml
    assert "/voice/queue/wait?queue=billing</Redirect>" in twiml


def test_callback_while_holding_keeps_place(app, client, queues, clock):
    agent(app, clock, "Ana", ANA, status="busy")
    first = queues.enqueue(to_billing(client, "+14155550123"))
    queues.wait_hit(first)
    clock.advance(20)
    second = queues.enqueue(to_billing(client, "+14155550124"))
    queues.wait_hit(second)
    r = services_of(app).redis
    joined = holding.load(r, second.call.call_sid).first_asked

    assert "<Leave" in queues.press(second, "1")
    turn = queues.leave(second, "leave")
    assert "number ending in 0 1 2 4" in turn.text and turn.waiting == "gather"
    turn = second.call.press("1")  # confirm the caller ID
    assert "call you back" in turn.text
    with services_of(app).db.session() as s:
        [req] = s.scalars(select(CallbackRequest)).all()
    assert req.phone == "+14155550124" and req.queue == "billing"
    assert req.first_asked_at.timestamp() == pytest.approx(joined)
    assert line.waiting_callbacks(r, "billing") == {str(req.id)}

    clock.advance(40)
    assert queues.wait_hit(first).said[0] == "You are next in line."
    third = queues.enqueue(to_billing(client, "+14155550125"))
    # Behind the first caller and the callback that kept the second caller's place.
    assert queues.wait_hit(third).said[0] == "You are number 3 in line."
    [visit] = visits(app)
    assert visit.outcome == "callback" and visit.call_sid == second.call.call_sid


@pytest.mark.parametrize("closed", [False, True], ids=["nobody-staffed", "closed"])
def test_no_agent_or_closed_gets_a_callback_offer(app, client, queues, clock, closed):
    if closed:
        agent(app, clock, "Ana", ANA, queues=("support", "billing"))
        clock.at = dt.datetime(2026, 11, 29, 23, 30, tzinfo=dt.UTC)  # Sunday night
    call = SimulatedCall(flask_transport(client, BASE_URL), BASE_URL, AUTH_TOKEN,
                         called=MAIN_LINE)
    call.dial()
    turn = call.press("0")
    assert turn.waiting == "gather" and "call you back" in turn.text
    assert nobody_in_line(app)


def nobody_in_line(app) -> bool:
    """Nobody joined a hold queue: no caller is in any line."""
    r = services_of(app).redis
    return all(r.zcard(line.CALLERS.format(queue=q)) == 0 for q in ("support", "billing"))


def test_agents_sign_out_while_caller_waits_then_max_wait(app, client, queues, clock):
    ana = agent(app, clock, "Ana", ANA, status="busy")
    caller = queues.enqueue(to_billing(client))
    queues.wait_hit(caller)
    set_presence(services_of(app).db, services_of(app).redis, ana.id, "offline",
                 now=clock())
    clock.advance(30)
    heard = queues.wait_hit(caller)
    assert "Nobody on this team can answer right now" in " ".join(heard.said)
    set_presence(services_of(app).db, services_of(app).redis, ana.id, "busy",
                 now=clock())
    clock.advance(600)  # billing's max_wait is 600 s: offer a callback, never hang up
    heard = queues.wait_hit(caller)
    assert any("waited so long" in s for s in heard.said) and "<Hangup" not in heard.documents[0]
    assert "<Leave" in queues.press(caller, "1")
    assert "We can call you back" in queues.leave(caller, "leave").text


def test_overdue_estimate_is_never_shortened(app, client, queues, clock):
    agent(app, clock, "Ana", ANA, status="busy")
    caller = queues.enqueue(to_billing(client))
    said = [queues.wait_hit(caller).said[1]]
    for _ in range(12):
        clock.advance(30)
        heard = queues.wait_hit(caller).said
        said.append(next(s for s in heard if s.startswith("Your estimated wait")))
    assert said[0] == "Your estimated wait is about 5 minutes."
    minutes = [int(s.split("about ")[1].split()[0]) if "about" in s else 0 for s in said]
    lapsed = minutes.index(next(m for m in minutes[1:] if m != 5))
    assert minutes[lapsed] > 5  # after 5.5 minutes the promise lapsed: a longer band, not less


@pytest.mark.parametrize("script", [CallScript(digits="2"), CallScript(answer="no-answer")],
                         ids=["declines", "no-answer"])
def test_next_agent_tried(app, client, queues, twilio_cloud, clock, script):
    ana = agent(app, clock, "Ana", ANA)
    ben = agent(app, clock, "Ben", BEN)
    twilio_cloud.script(ANA, script)
    caller = queues.enqueue(to_billing(client))
    queues.wait_hit(caller)
    assert [c.to for c in twilio_cloud.placed] == [ANA]  # the longest-idle agent first
    assert twilio_cloud.drive_pending() == 2
    assert [c.to for c in twilio_cloud.placed] == [ANA, BEN]
    assert caller.bridged_to == twilio_cloud.placed[1].sid
    [visit] = visits(app)
    assert (visit.outcome, visit.agent_id) == ("answered", ben.id)
    expected = "available" if script.answer == "human" else "offline"
    assert get_presence(services_of(app).db, services_of(app).redis, ana.id,
                        clock()).status == expected


def test_visit_events_are_in_sql(app, client, queues, clock):
    agent(app, clock, "Ana", ANA, status="busy")
    caller = queues.enqueue(to_billing(client))
    queues.wait_hit(caller)
    queues.press(caller, "0")
    queues.leave(caller, "hangup")
    with services_of(app).db.session() as s:
        kinds = [e.kind for e in s.scalars(select(QueueEvent).order_by(QueueEvent.id))]
        estimates = s.scalars(select(WaitEstimate)).all()
    assert kinds == ["join", "announce", "key", "abandon"]
    assert len(estimates) == 1 and json.dumps(estimates[0].band)
    assert isinstance(estimates[0].given_at, dt.datetime)


def test_caller_lost_without_a_leave_is_not_offered_to_agents(app, client, queues, twilio_cloud,
                                                               clock):
    from ivr.hold.connect import connect_agents

    agent(app, clock, "Ana", ANA, status="busy")
    caller = queues.enqueue(to_billing(client))
    queues.wait_hit(caller)
    r = services_of(app).redis
    # Twilio never reported the leave and the wait URL stopped: the record expired.
    r.delete(holding.RECORD.format(sid=caller.call.call_sid))
    ana = agent(app, clock, "Ann", BEN)
    assert ana.id and connect_agents(app, "billing") == []
    assert twilio_cloud.placed == [] and r.zcard(line.CALLERS.format(queue="billing")) == 0


def test_whisper_carries_order_number_and_returning_caller(app, client, queues, twilio_cloud,
                                                           clock):
    agent(app, clock, "Ana", ANA, queues=("support",))
    earlier = SimulatedCall(flask_transport(client, BASE_URL), BASE_URL, AUTH_TOKEN,
                            caller="+14155550199", called=MAIN_LINE)
    earlier.dial()
    earlier.hang_up()
    call = SimulatedCall(flask_transport(client, BASE_URL), BASE_URL, AUTH_TOKEN,
                         caller="+14155550199", called=MAIN_LINE)
    call.dial()
    call.wait()
    call.press("1")
    call.press("12345")
    assert call.press("0").queue == "support"
    clock.advance(125)
    holding_call = queues.enqueue(call)
    holding_call.joined = clock() - dt.timedelta(seconds=125)
    queues.wait_hit(holding_call)
    twilio_cloud.drive_pending()
    whisper = twilio_cloud.placed[0].said[0]
    assert whisper.startswith("Support. Pressed 1, 1 2 3 4 5, 0. Order number 1 2 3 4 5.")
    assert "Waited 2 minutes. Returning caller." in whisper
    assert holding_call.bridged_to == twilio_cloud.placed[0].sid
