"""The whole life of a callback request through the API, RQ jobs, the real twilio Client and
the REST stand-in: create, dial, answer, complete; no-answer and retry; cancel; duplicate."""

from __future__ import annotations

import datetime as dt
import threading
import time

import pytest

from callback import admin
from callback.consent import Consent
from callback.errors import ActionRefused
from callback.models import CallbackAttempt, CallbackRequest
from tests.callback.conftest import ACCOUNT_SID, AGENT_NUMBER, CUSTOMER, ask
from tests.conftest import BASE_URL
from tests.support.twilio_cloud import CallScript


def _row(deps, public_id: str) -> CallbackRequest:
    from sqlalchemy import select

    with deps.db.session() as s:
        return s.scalar(select(CallbackRequest).where(CallbackRequest.public_id == public_id))


def _attempts(deps, request_id: int) -> list[CallbackAttempt]:
    from sqlalchemy import select

    with deps.db.session() as s:
        return list(s.scalars(select(CallbackAttempt).where(
            CallbackAttempt.request_id == request_id).order_by(CallbackAttempt.attempt_no)))


def test_create_dial_answer_complete(client, deps, agent, twilio_cloud, run_jobs):
    body = ask(client, {"phone": "(415) 555-0123", "name": "Mia",
                        "reason": "refund for order 1234"})
    assert body["status"] == "waiting"
    assert body["position"] == 1
    assert body["estimated_wait_seconds"] is not None
    assert body["token"]
    row = _row(deps, body["id"])
    assert row.phone == CUSTOMER
    # Our own wording and its version, never words the client sent.
    wording = Consent.of(deps.setting("CALLBACK_CONSENT_TEXT"))
    assert (row.consent_text, row.consent_version) == (wording.text, wording.version)
    assert row.consent_address == "127.0.0.1"
    assert row.consent_at is not None
    view = {"X-Callback-Token": body["token"]}

    run_jobs()
    assert len(twilio_cloud.placed) == 1
    call = twilio_cloud.placed[0]
    attempt = _attempts(deps, row.id)[0]
    # Agent-first: the agent's phone rings first, from our number, with our URLs.
    assert call.to == AGENT_NUMBER
    assert call.from_ == "+18005550100"
    assert call.url == f"{BASE_URL}/callbacks/voice/agent?attempt={attempt.id}"
    assert call.status_callback == f"{BASE_URL}/callbacks/status?attempt={attempt.id}&leg=agent"
    create = twilio_cloud.creates()[0]
    assert create.authorized
    assert create.path == f"/2010-04-01/Accounts/{ACCOUNT_SID}/Calls.json"
    assert create.form["StatusCallbackEvent"] == ["initiated", "ringing", "answered", "completed"]
    assert client.get(f"/callbacks/{body['id']}", headers=view).get_json()["status"] == "dialing"

    twilio_cloud.drive_pending()
    # The agent heard the context, then the customer was dialled.
    assert any("refund for order 1234" in s for s in call.said)
    # The customer's answer is screened (the request becomes connected), then they are joined.
    picked_up = f"{BASE_URL}/callbacks/voice/picked-up?attempt={attempt.id}"
    assert f'<Number method="POST" url="{picked_up}">{CUSTOMER}</Number>' in call.documents[0]
    final = client.get(f"/callbacks/{body['id']}", headers=view).get_json()
    assert final["status"] == "completed"
    assert final["outcome"] == "connected"
    assert _attempts(deps, row.id)[0].status == "completed"
    assert _attempts(deps, row.id)[0].call_sid == call.sid


def test_no_answer_is_retried_then_fails_after_max_attempts(client, deps, agent, twilio_cloud,
                                                           run_jobs):
    twilio_cloud.script(CUSTOMER, CallScript(answer="no-answer"))  # the agent's <Dial> rings out
    body = client.post("/callbacks", json={"consent": True, "phone": CUSTOMER}).get_json()
    row = _row(deps, body["id"])
    for attempt_no in (1, 2, 3):
        run_jobs()
        assert len(twilio_cloud.placed) == attempt_no
        twilio_cloud.drive_pending()
    attempts = _attempts(deps, row.id)
    assert [a.attempt_no for a in attempts] == [1, 2, 3]
    assert [a.status for a in attempts] == ["no-answer"] * 3
    final = _row(deps, body["id"])
    assert final.status == "failed"
    assert final.outcome == "no-answer"
    run_jobs()
    assert len(twilio_cloud.placed) == 3  # no fourth call


def test_retry_waits_for_backoff(callback_app, client, deps, agent, twilio_cloud, run_jobs,
                                 clock):
    callback_app.config["CALLBACK_RETRY_BACKOFF"] = "600"
    # Agent-first: the agent's call carries the <Dial> to the customer, who is busy once.
    twilio_cloud.script(CUSTOMER, CallScript(answer="busy"), CallScript())
    body = ask(client, {"phone": CUSTOMER})
    run_jobs()
    twilio_cloud.drive_pending()
    row = _row(deps, body["id"])
    assert row.status == "scheduled"
    assert row.scheduled_for == clock.at + dt.timedelta(seconds=600)
    assert client.get(f"/callbacks/{body['id']}", headers={"X-Callback-Token": body["token"]}
                      ).get_json()["estimated_wait_seconds"] == 600
    # Due in RQ's scheduled registry; the sweeper releases it once its time has passed.
    from callback.dispatch import sweep

    clock.advance(600 + 31)
    assert sweep(deps)["released"] == 1
    run_jobs()
    assert len(twilio_cloud.placed) == 2
    twilio_cloud.drive_pending()
    assert _row(deps, body["id"]).status == "completed"


def test_cancel_with_token(client, deps, agent, twilio_cloud, run_jobs):
    body = client.post("/callbacks", json={"consent": True, "phone": CUSTOMER}).get_json()
    bad = client.delete(f"/callbacks/{body['id']}", json={"token": "nope"})
    assert bad.status_code == 403
    assert "not valid" in bad.get_json()["message"]
    ok = client.post(f"/callbacks/{body['id']}/cancel", json={"token": body["token"]})
    assert ok.status_code == 200
    assert ok.get_json()["status"] == "cancelled"
    run_jobs()
    assert twilio_cloud.placed == []
    # Cancelled requests free the number: a new request is not merged.
    again = client.post("/callbacks", json={"consent": True, "phone": CUSTOMER}).get_json()
    assert again["id"] != body["id"]
    assert _row(deps, again["id"]).status == "waiting"  # a request of its own, not a handle


def test_cancel_while_dialing_hangs_up(client, deps, agent, twilio_cloud, run_jobs):
    body = client.post("/callbacks", json={"consent": True, "phone": CUSTOMER}).get_json()
    run_jobs()
    sid = twilio_cloud.placed[0].sid
    resp = client.delete(f"/callbacks/{body['id']}", headers={"X-Callback-Token": body["token"]})
    assert resp.get_json()["status"] == "cancelled"
    updates = twilio_cloud.updates(sid)
    assert [u.value("Status") for u in updates] == ["completed"]
    twilio_cloud.drive_pending()
    assert _row(deps, body["id"]).status == "cancelled"
    assert _attempts(deps, _row(deps, body["id"]).id)[0].status == "cancelled"


def test_duplicate_pending_request_is_merged(client, deps, agent, twilio_cloud, run_jobs):
    first = client.post("/callbacks", json={"consent": True, "phone": CUSTOMER, "name": "Mia"})
    second = client.post("/callbacks", json={"consent": True, "phone": "+1 415-555-0123"})
    assert second.status_code == first.status_code == 202
    made, again = first.get_json(), second.get_json()
    # The same answer as a new request's: its own id and token, nothing of the first one.
    assert again.keys() == made.keys()
    assert again["id"] != made["id"] and again["token"] != made["token"]
    assert {k: v for k, v in again.items() if k not in ("id", "token")} == \
        {k: v for k, v in made.items() if k not in ("id", "token")}
    # The second token opens the same callback, under its own id; one call is placed.
    shared = client.get(f"/callbacks/{again['id']}",
                        headers={"X-Callback-Token": again["token"]}).get_json()
    assert shared["id"] == again["id"] and shared["status"] == "waiting"
    assert client.get(f"/callbacks/{made['id']}",
                      headers={"X-Callback-Token": again["token"]}).status_code == 403
    run_jobs()
    assert len(twilio_cloud.placed) == 1


def test_customer_first_press_1_connects(callback_app, client, deps, agent, twilio_cloud,
                                         run_jobs):
    callback_app.config["CALLBACK_MODE"] = "customer-first"
    body = client.post("/callbacks",
                       json={"consent": True, "phone": CUSTOMER, "name": "Mia"}).get_json()
    run_jobs()
    call = twilio_cloud.placed[0]
    attempt = _attempts(deps, _row(deps, body["id"]).id)[0]
    assert call.to == CUSTOMER
    assert call.machine_detection == "Enable"
    assert call.url == f"{BASE_URL}/callbacks/voice/customer?attempt={attempt.id}"
    assert call.status_callback == (
        f"{BASE_URL}/callbacks/status?attempt={attempt.id}&leg=customer")
    twilio_cloud.drive_pending()
    whisper_url = f"{BASE_URL}/callbacks/voice/whisper?attempt={attempt.id}"
    assert f'<Number method="POST" url="{whisper_url}">{AGENT_NUMBER}</Number>' \
        in call.documents[1]
    # The agent hears who is waiting before being joined, and (the flows speak English and
    # Korean) in which language.
    assert call.whispered == ["Callback for the support line. English caller. Mia. They asked "
                              "just now. Connecting you now."]
    assert _row(deps, body["id"]).status == "completed"


def test_customer_first_answering_machine_is_retried(callback_app, client, deps, agent,
                                                      twilio_cloud, run_jobs):
    callback_app.config["CALLBACK_MODE"] = "customer-first"
    twilio_cloud.script(CUSTOMER, CallScript(answer="machine"), CallScript())
    body = client.post("/callbacks", json={"consent": True, "phone": CUSTOMER}).get_json()
    run_jobs()
    twilio_cloud.drive_pending()
    row = _row(deps, body["id"])
    assert [a.status for a in _attempts(deps, row.id)] == ["machine"]
    assert row.status == "waiting"
    run_jobs()
    twilio_cloud.drive_pending()
    assert [a.status for a in _attempts(deps, row.id)] == ["machine", "completed"]
    assert _row(deps, body["id"]).status == "completed"


def test_no_free_agent_keeps_request_waiting(client, deps, twilio_cloud, run_jobs):
    body = client.post("/callbacks", json={"consent": True, "phone": CUSTOMER}).get_json()
    run_jobs()
    assert twilio_cloud.placed == []
    assert _row(deps, body["id"]).status == "waiting"


def test_attempt_lost_before_the_dial_is_swept_and_redialled(client, deps, agent, twilio_cloud,
                                                             run_jobs, clock):
    """A worker that dies after writing the guard row but before dialling loses nothing."""
    from callback.dispatch import dispatch_once, sweep
    from callback.models import AttemptStatus
    from ivr.infra.agents import claim_agent, get_presence

    body = client.post("/callbacks", json={"consent": True, "phone": CUSTOMER}).get_json()
    row = _row(deps, body["id"])
    dispatch_once(deps)
    # What the job had done when it died: agent claimed, guard row written, request dialing.
    claimed = claim_agent(deps.db, deps.redis, "support", clock())
    with deps.db.session() as s:
        s.add(CallbackAttempt(request_id=row.id, attempt_no=1, mode="agent-first",
                              agent_id=claimed.id, agent_address=claimed.address,
                              status=AttemptStatus.CLAIMED.value, created_at=clock()))
        s.get(CallbackRequest, row.id).attempts = 1
        s.get(CallbackRequest, row.id).status = "dialing"
    run_jobs(dispatch=False)  # RQ runs the same job again: the guard stops it
    assert twilio_cloud.placed == []
    clock.advance(121)
    assert sweep(deps)["lost"] == 1
    assert get_presence(deps.db, deps.redis, agent.id).status == "available"
    run_jobs()
    assert len(twilio_cloud.placed) == 1
    twilio_cloud.drive_pending()
    assert [a.status for a in _attempts(deps, row.id)] == ["lost", "completed"]
    assert _row(deps, body["id"]).status == "completed"


def test_agent_first_while_the_two_talk_the_request_is_connected_and_cannot_be_cut_off(
        client, deps, agent, twilio_cloud, run_jobs):
    """The console shows the conversation as connected, and a supervisor's cancel is refused
    for as long as it lasts (it would hang up on a customer talking to an agent)."""
    twilio_cloud.script(CUSTOMER, CallScript(talk_seconds=400))  # 4 s on the test's clock
    body = ask(client, {"phone": CUSTOMER})
    view = {"X-Callback-Token": body["token"]}
    run_jobs()
    [call] = twilio_cloud.placed
    talking = threading.Thread(target=twilio_cloud.drive, args=(call,))
    talking.start()
    try:
        deadline = time.monotonic() + 10
        while client.get(f"/callbacks/{body['id']}", headers=view).get_json()["status"] \
                != "connected":
            assert time.monotonic() < deadline, "never connected"
            time.sleep(0.02)
        with pytest.raises(ActionRefused):
            admin.cancel_by_admin(deps, _row(deps, body["id"]).id, "admin")
        assert [a.status for a in _attempts(deps, _row(deps, body["id"]).id)] == ["answered"]
    finally:
        talking.join(30)
    final = client.get(f"/callbacks/{body['id']}", headers=view).get_json()
    assert (final["status"], final["outcome"]) == ("completed", "connected")
    assert twilio_cloud.updates(call.sid) == []  # nobody hung up on them


def test_agent_first_a_customer_picking_up_after_a_cancel_is_not_joined(
        client, deps, agent, twilio_cloud, run_jobs, twilio_post):
    body = ask(client, {"phone": CUSTOMER})
    run_jobs()
    attempt = _attempts(deps, _row(deps, body["id"]).id)[0]
    admin.cancel_by_admin(deps, attempt.request_id, "admin")
    answer = twilio_post(f"/callbacks/voice/picked-up?attempt={attempt.id}",
                         {"CallSid": "CA" + "1" * 32, "CallStatus": "in-progress"})
    assert answer.status_code == 200
    assert "<Hangup />" in answer.get_data(as_text=True)
    assert _row(deps, body["id"]).status == "cancelled"
