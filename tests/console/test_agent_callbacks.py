"""Callbacks ring agents too: the agent's screen pops the callback being dialled (who asked,
why, for which queue), lists it under their calls once they took it, and takes a note."""

from __future__ import annotations

from sqlalchemy import select

from callback.models import CallbackAttempt
from ivr.console import my_calls, screenpop
from ivr.infra.agents import rotate_token
from ivr.infra.notes_models import CallNote
from ivr.infra.services import services_of
from tests.callback import conftest as callbacks
from tests.callback.conftest import CUSTOMER, ask
from tests.console.conftest import sign_in

HTML = {"Accept": "text/html"}
# The callback tests' own set-up: the flows open all day, the emulator on a port, the clock,
# jobs run in this process, and one agent (Ana) on duty.
always_open_flows, app_config, callback_app, clock = (
    callbacks.always_open_flows, callbacks.app_config, callbacks.callback_app, callbacks.clock)
deps, agent, twilio_cloud, run_jobs = (
    callbacks.deps, callbacks.agent, callbacks.twilio_cloud, callbacks.run_jobs)


def test_a_callback_ringing_the_agent_pops_then_is_listed_and_noted(
        app, client, deps, agent, twilio_cloud, run_jobs):
    services = services_of(app)
    ask(client, {"phone": "(415) 555-0123", "name": "Mia", "reason": "refund for order 1234"})
    run_jobs()
    assert [c.to for c in twilio_cloud.placed] == [agent.address]  # agent-first: rung first
    with deps.db.session() as s:
        attempt = s.scalars(select(CallbackAttempt)).one()

    offer = screenpop.current_offer(services, agent.id)
    assert offer is not None and (offer.kind, offer.attempt_id) == ("callback", attempt.id)
    assert offer.call_sid == attempt.call_sid == twilio_cloud.placed[0].sid
    pop = screenpop.pop_of_offer(services, offer)
    assert (pop.kind, pop.caller, pop.name, pop.reason, pop.queue_label) == (
        "callback", CUSTOMER, "Mia", "refund for order 1234", "Support")

    viewer = app.test_client()
    csrf = sign_in(viewer, rotate_token(deps.db, agent.id))
    page = viewer.get("/console/agent", headers=HTML).text
    assert f"Ringing: {CUSTOMER} for Support" in page and "refund for order 1234" in page

    twilio_cloud.drive_pending()  # she answers, the customer is dialled, they talk, hang up
    twilio_cloud.wait_idle(10)
    with deps.db.session() as s:
        assert s.get(CallbackAttempt, attempt.id).status == "completed"
    assert screenpop.current_offer(services, agent.id) is None
    calls = my_calls.agent_calls(services, agent.id, None)
    assert [(c.call_sid, c.kind, c.caller, c.outcome) for c in calls] == [
        (attempt.call_sid, "callback", CUSTOMER, "callback completed")]
    detail = viewer.get(f"/console/agent/calls/{attempt.call_sid}", headers=HTML)
    assert detail.status_code == 200 and "Callback to " + CUSTOMER in detail.text
    saved = viewer.post(f"/console/agent/calls/{attempt.call_sid}/note",
                        data={"csrf_token": csrf, "text": "Refund sent"})
    assert saved.status_code == 303
    with deps.db.session() as s:
        assert [n.text for n in s.scalars(select(CallNote))] == ["Refund sent"]
