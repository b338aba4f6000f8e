"""Status callbacks out of order or repeated, by Twilio's SequenceNumber: applied once each,
in order. The hold queue's agent status webhook learns one handle time per conversation, and
a late `ringing` after `completed` changes nothing.

The webhook test is a guard the old code passes too (the closed offer and the progress rule
already stop these two); the sequence check now stops them first, for every status webhook.
"""

from __future__ import annotations

import pytest
from sqlalchemy.exc import OperationalError

from ivr.hold import connect
from ivr.hold import webhooks as hold_webhooks
from ivr.infra import ordering, queue_history
from ivr.infra.agents import add_agent, attach_call, claim_agent, get_presence, set_presence
from ivr.infra.services import services_of
from tests.conftest import BASE_URL, sign


def test_only_a_higher_number_is_newest(redis_client):
    r = redis_client
    assert ordering.is_newest(r, "CA1", "0")
    assert ordering.is_newest(r, "CA1", "3")
    assert not ordering.is_newest(r, "CA1", "3")  # a repeat
    assert not ordering.is_newest(r, "CA1", "1")  # late
    assert ordering.is_newest(r, "CA1", "4")
    assert ordering.is_newest(r, "CA2", "1")  # per call
    assert ordering.is_newest(r, "CA1", None)  # no number: applied
    assert ordering.is_newest(r, "CA1", "x")
    assert 0 < r.ttl(ordering.KEY.format(sid="CA1")) <= ordering.KEEP_SECONDS


def test_a_number_whose_handling_failed_is_taken_back(redis_client, caplog):
    r = redis_client
    with ordering.applying(r, "CA1", "2") as newest:
        assert newest
    with pytest.raises(RuntimeError), ordering.applying(r, "CA1", "5") as newest:
        assert newest
        raise RuntimeError("the database went away")
    with ordering.applying(r, "CA1", "5") as newest:  # its repeat
        assert newest
    with ordering.applying(r, "CA1", "5") as newest:  # applied now: a repeat changes nothing
        assert not newest
    # A first callback that fails leaves no number at all; one that is not newest, nothing.
    with pytest.raises(RuntimeError), ordering.applying(r, "CA2", "0"):
        raise RuntimeError("boom")
    assert r.get(ordering.KEY.format(sid="CA2")) is None
    with pytest.raises(RuntimeError), ordering.applying(r, "CA1", "3") as newest:
        assert not newest
        raise RuntimeError("boom")
    assert r.get(ordering.KEY.format(sid="CA1")) == b"5"
    assert not [x for x in caplog.records if x.name == ordering.__name__], caplog.text


def test_a_failure_taken_back_never_undoes_a_newer_number(redis_client):
    r = redis_client
    with pytest.raises(RuntimeError), ordering.applying(r, "CA1", "4"):
        assert ordering.is_newest(r, "CA1", "6")  # applied while 4 was being handled
        raise RuntimeError("boom")
    assert r.get(ordering.KEY.format(sid="CA1")) == b"6"
    assert not ordering.is_newest(r, "CA1", "4")


def _status(client, agent_id: int, sid: str, status: str, seq: int):
    path = f"/voice/hold/agent/status?queue=support&agent={agent_id}"
    form = {"CallSid": sid, "AccountSid": "AC" + "1" * 32, "CallStatus": status,
            "SequenceNumber": str(seq), "CallDuration": "60"}
    resp = client.post(path, data=form, headers={"X-Twilio-Signature": sign(BASE_URL + path,
                                                                           form)})
    assert resp.status_code == 204


def _rung_agent(app, call_sid: str):
    """Ana, claimed for the support queue and rung on `call_sid`: (db, redis, now, her row)."""
    services = services_of(app)
    db, r = services.db, services.redis
    now = services.now()
    row, _ = add_agent(db, r, name="Ana", kind="phone", address="+12125550001",
                       queues=["support"], wrap_up_seconds=0, now=now)
    set_presence(db, r, row.id, "available", now=now)
    claim_agent(db, r, "support", now)
    attach_call(r, row.id, call_sid)
    return db, r, now, row


def test_a_repeated_completed_is_learned_once_and_a_late_ringing_is_ignored(app, client):
    db, r, now, row = _rung_agent(app, "CAagent")
    r.hset(connect.OFFER.format(sid="CAagent"), mapping={"bridged_at": now.timestamp() - 60})

    _status(client, row.id, "CAagent", "in-progress", 2)
    _status(client, row.id, "CAagent", "completed", 3)
    learned = queue_history.history(r, "support").handle_count
    assert learned == 1  # the conversation taught the queue its handle time once
    _status(client, row.id, "CAagent", "completed", 3)  # Twilio repeats it
    _status(client, row.id, "CAagent", "ringing", 1)  # and a late one arrives

    assert queue_history.history(r, "support").handle_count == learned
    assert get_presence(db, r, row.id).status.value == "available"


def test_the_final_status_of_a_call_already_ended_never_frees_the_agent_from_the_next(
        app, client):
    """Freed by their <Dial> action, the agent is claimed at once for the next caller (the
    claim clears the call SID); the first call's final status then arrives and must not free
    them mid-ring, or two callers could be offered to one agent."""
    from ivr.infra.agents import release_agent

    db, r, now, row = _rung_agent(app, "CAfirst")
    release_agent(db, r, row.id, now=now, reason="conversation ended", call_sid="CAfirst")
    assert claim_agent(db, r, "support", now).id == row.id  # rung for the next caller
    _status(client, row.id, "CAfirst", "completed", 5)  # the first call's end, late
    assert get_presence(db, r, row.id).status.value == "busy"
    attach_call(r, row.id, "CAsecond")
    _status(client, row.id, "CAsecond", "completed", 3)
    assert get_presence(db, r, row.id).status.value == "available"


def test_an_agent_status_that_failed_is_applied_when_twilio_repeats_it(app, client,
                                                                       monkeypatch):
    """The database fails while the agent's `completed` is applied; the service answers
    Twilio all the same. The repeat that follows frees the agent."""
    db, r, now, row = _rung_agent(app, "CAagent")
    real = hold_webhooks.on_agent_call_status
    failures = []

    def fails_once(*args, **kwargs):
        if not failures:
            failures.append(1)
            raise OperationalError("UPDATE agents", {}, Exception("database is locked"))
        return real(*args, **kwargs)

    monkeypatch.setattr(hold_webhooks, "on_agent_call_status", fails_once)
    _status(client, row.id, "CAagent", "completed", 3)
    assert failures and get_presence(db, r, row.id).status.value == "busy"
    _status(client, row.id, "CAagent", "completed", 3)  # Twilio repeats it
    assert get_presence(db, r, row.id).status.value == "available"
