"""A leg webhook acts only for the attempt that is still open: an attempt the sweeper gave up
on, whose call did go out after all, must not dial the customer when its agent answers late."""

from __future__ import annotations

from sqlalchemy import select

from callback import admin
from callback.dispatch import sweep
from callback.lifecycle import mark_answered
from callback.models import AttemptStatus, CallbackAttempt, CallbackRequest
from tests.callback.conftest import CUSTOMER, ask


def _attempts(deps, request_id: int) -> list[CallbackAttempt]:
    with deps.db.session() as s:
        return list(s.scalars(select(CallbackAttempt).where(
            CallbackAttempt.request_id == request_id).order_by(CallbackAttempt.attempt_no)))


def test_a_dial_the_worker_never_saved_is_adopted_from_the_provider_not_dialled_again(
        client, deps, agent, twilio_cloud, run_jobs, clock):
    made = ask(client, {"phone": CUSTOMER})
    run_jobs()  # attempt 1: the agent's phone is called, but the worker died before saving it
    [first] = twilio_cloud.placed
    with deps.db.session() as s:
        row = s.scalars(select(CallbackAttempt)).one()
        row.call_sid, row.status = None, AttemptStatus.CLAIMED.value
        request_id = row.request_id
    clock.advance(121)
    # Its status callbacks were lost too: the provider's Calls list shows the call was placed.
    assert sweep(deps)["lost"] == 0
    [attempt] = _attempts(deps, request_id)
    assert (attempt.status, attempt.call_sid) == ("dialing", first.sid)

    twilio_cloud.drive(first)  # ...and attempt 1's agent answers: the callback goes ahead
    run_jobs()
    assert len(twilio_cloud.placed) == 1  # nobody was dialled a second time
    customer_dials = [d for d in first.documents if f">{CUSTOMER}</Number>" in d]
    assert len(customer_dials) == 1
    assert [a.status for a in _attempts(deps, request_id)] == ["completed"]
    assert client.get(f"/callbacks/{made['id']}", headers={"X-Callback-Token": made["token"]}
                      ).get_json()["status"] == "completed"


def test_an_attempt_whose_final_status_never_came_is_settled_from_the_provider(
        client, deps, agent, twilio_cloud, run_jobs, clock):
    """The agent's phone rang out, and the final status callback was lost (it arrived during
    a Redis stall, say): the sweeper asks Twilio's Call resource, and the request goes on."""
    from ivr.infra.agents import get_presence
    from tests.support.twilio_cloud import CallScript

    twilio_cloud.script(agent.address, CallScript(answer="no-answer"))
    made = ask(client, {"phone": CUSTOMER})
    run_jobs()
    [first] = twilio_cloud.placed
    first.events = ()  # no status callback reaches us for this call
    twilio_cloud.drive(first)
    [attempt] = _attempts(deps, _request_id(deps, made["id"]))
    assert attempt.status == "dialing"  # what the service knows without the callback
    assert sweep(deps)["settled"] == 0  # too soon to ask

    clock.advance(301)
    assert sweep(deps)["settled"] == 1
    assert sweep(deps)["settled"] == 0  # settled once

    [attempt] = _attempts(deps, attempt.request_id)
    assert attempt.status == "agent-unavailable"
    # The agent did not answer: offline, by the missed-call rule, and not stuck busy.
    assert get_presence(deps.db, deps.redis, agent.id).status == "offline"
    state = client.get(f"/callbacks/{made['id']}", headers={"X-Callback-Token": made["token"]}
                       ).get_json()
    assert state["status"] == "waiting"  # back in line, keeping its place, for the next agent


def _request_id(deps, public_id: str) -> int:
    with deps.db.session() as s:
        return s.scalar(select(CallbackRequest.id).where(CallbackRequest.public_id == public_id))


def test_the_agents_completed_overtaking_the_dial_action_does_not_ring_the_customer_again(
        client, deps, agent, twilio_cloud, run_jobs):
    """Agent-first: the agent talked to the customer and hung up. The agent leg's `completed`
    status callback arrives before the <Dial> action (Twilio sends them independently)."""
    from tests.conftest import BASE_URL, sign

    made = ask(client, {"phone": CUSTOMER})
    run_jobs()
    [leg] = twilio_cloud.placed
    request_id = _request_id(deps, made["id"])
    [attempt] = _attempts(deps, request_id)

    def post(path: str, form: dict):
        form = {"CallSid": leg.sid, "AccountSid": "AC" + "1" * 32, **form}
        resp = client.post(path, data=form, headers={"X-Twilio-Signature": sign(
            BASE_URL + path, form)})
        assert resp.status_code in (200, 204), resp.get_data(as_text=True)

    post(f"/callbacks/status?attempt={attempt.id}&leg=agent",
         {"CallStatus": "completed", "CallDuration": "95"})
    assert [a.status for a in _attempts(deps, request_id)] == ["dialing"]  # not ended by it
    post(f"/callbacks/voice/dialed?attempt={attempt.id}",
         {"DialCallStatus": "completed", "DialCallDuration": "90"})

    assert [a.status for a in _attempts(deps, request_id)] == ["completed"]
    run_jobs()
    assert len(twilio_cloud.placed) == 1  # the customer is not called back a second time
    assert client.get(f"/callbacks/{made['id']}", headers={"X-Callback-Token": made["token"]}
                      ).get_json()["status"] == "completed"


def test_the_agent_is_free_when_the_callback_ends_even_if_no_status_callback_comes(
        client, deps, agent, twilio_cloud, run_jobs):
    """Agent-first: every status callback of the agent's call is lost. The <Dial> action that
    ends the conversation with the customer frees the agent (before, only the repair pass did,
    CALLBACK_STUCK_AFTER later: five minutes of an agent by default)."""
    from ivr.infra.agents import get_presence

    made = ask(client, {"phone": CUSTOMER})
    run_jobs()
    [call] = twilio_cloud.placed
    call.events = ()  # no status callback reaches us for this call
    twilio_cloud.drive(call)
    assert get_presence(deps.db, deps.redis, agent.id).status.value == "available"
    assert client.get(f"/callbacks/{made['id']}", headers={"X-Callback-Token": made["token"]}
                      ).get_json()["status"] == "completed"


def test_an_agent_claimed_by_a_worker_that_died_before_any_call_is_freed_by_the_sweeper(
        client, deps, agent, twilio_cloud, run_jobs, clock):
    """The worker was SIGKILLed between claiming the agent and saving the attempt (the chaos
    bench caught one: an agent busy for good, with no call and no attempt). The sweeper asks
    Twilio's Calls list for a live call to them since the claim, finds none, and frees them."""
    from ivr.infra.agents import claim_agent, get_presence

    assert claim_agent(deps.db, deps.redis, "support", deps.now()).id == agent.id
    assert sweep(deps)["unclaimed"] == 0  # too soon: a dial may be on its way
    clock.advance(301)
    assert sweep(deps)["unclaimed"] == 1
    assert get_presence(deps.db, deps.redis, agent.id).status == "available"
    assert twilio_cloud.placed == []  # nobody was called by the sweep itself

    # The freed agent takes the next callback as always.
    ask(client, {"phone": CUSTOMER})
    run_jobs()
    assert [p.to for p in twilio_cloud.placed] == [agent.address]


def test_a_claimed_agent_whose_call_did_go_out_gets_it_attached_not_freed(
        client, deps, agent, twilio_cloud, run_jobs, clock):
    """The create's answer was lost and the Calls list failed too (TelephonyUnsure): the
    call may be ringing. The sweeper finds it in the Calls list and attaches it, so its
    status callbacks move the agent as always."""
    from ivr.infra.agents import get_presence

    ask(client, {"phone": CUSTOMER})
    run_jobs()
    [placed] = twilio_cloud.placed  # ringing the agent (not driven: it rings on)
    deps.redis.hdel(f"ivr:presence:agent:{agent.id}", "call_sid")  # as if never attached
    clock.advance(301)
    assert sweep(deps)["unclaimed"] == 0
    now = get_presence(deps.db, deps.redis, agent.id)
    assert (now.status, now.call_sid) == ("busy", placed.sid)


def test_a_cancel_landing_while_the_sweeper_adopts_an_unconfirmed_dial_hangs_it_up(
        client, deps, agent, twilio_cloud, run_jobs, clock, monkeypatch):
    """The worker never saved its dial and the status callbacks were lost; the sweeper finds
    the call in the provider's list just as the request is cancelled, with no SID for the
    cancel to hang up. The sweeper must hang up what it found, not leave it ringing."""
    made = ask(client, {"phone": CUSTOMER})
    run_jobs()
    [first] = twilio_cloud.placed
    first.events = ()  # no status callback reaches us for this call...
    twilio_cloud.deliver_sent()  # ...after the ones already on their way
    with deps.db.session() as s:
        row = s.scalars(select(CallbackAttempt)).one()
        row.call_sid, row.status = None, AttemptStatus.CLAIMED.value
        request_id = row.request_id
    clock.advance(121)
    telephony = type(deps.telephony)
    real = telephony.adopt_placed
    cancels = []

    def found_as_the_cancel_lands(self, *args, **kwargs):
        found = real(self, *args, **kwargs)
        cancels.append(admin.cancel_by_admin(deps, request_id, "admin"))
        return found

    monkeypatch.setattr(telephony, "adopt_placed", found_as_the_cancel_lands)
    sweep(deps)
    assert len(cancels) == 1
    assert "completed" in [u.value("Status") for u in twilio_cloud.updates(first.sid)]
    assert [(a.status, a.call_sid) for a in _attempts(deps, request_id)] == [
        ("cancelled", first.sid)]
    assert client.get(f"/callbacks/{made['id']}", headers={"X-Callback-Token": made["token"]}
                      ).get_json()["status"] == "cancelled"


def test_an_answer_noted_while_the_sweeper_settles_a_customer_leg_counts_as_talked(
        client, callback_app, deps, agent, twilio_cloud, run_jobs, clock, monkeypatch):
    """Customer-first: the sweeper read the attempt as dialing; before it asked Twilio, the
    customer's answer was noted. The leg's final "completed" then means they talked: the
    request is completed, not declined and counted against the customer."""
    callback_app.config["CALLBACK_MODE"] = "customer-first"
    made = ask(client, {"phone": CUSTOMER})
    run_jobs()
    [first] = twilio_cloud.placed
    first.events = ()
    twilio_cloud.deliver_sent()
    [attempt] = _attempts(deps, _request_id(deps, made["id"]))
    assert attempt.status == "dialing"
    clock.advance(301)

    def answered_then_over(self, sid):
        mark_answered(deps, attempt.id)  # the customer's answer lands meanwhile
        return "completed"

    monkeypatch.setattr(type(deps.telephony), "call_status", answered_then_over)
    assert sweep(deps)["settled"] == 1
    [attempt] = _attempts(deps, attempt.request_id)
    assert attempt.status == "completed"
    with deps.db.session() as s:
        req = s.get(CallbackRequest, attempt.request_id)
        assert (req.status, req.outcome, req.customer_failures) == ("completed", "connected", 0)
