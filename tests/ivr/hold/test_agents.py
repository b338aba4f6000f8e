"""Agent roster and presence against a real database and a real Redis."""

from __future__ import annotations

import datetime as dt
import itertools
import threading

import pytest
from sqlalchemy import select

from ivr.infra import agents as ag
from ivr.infra.agents import AgentStatus
from ivr.infra.agents.models import AgentPresenceEvent
from tests.ivr.hold.agent_support import T0, at

_numbers = itertools.count(200)


def add(db, r, name, queues="support", wrap_up=30, phone=None):
    number = phone or f"+1415555{next(_numbers):04d}"
    agent, _token = ag.add_agent(
        db, r, name=name, kind="phone", address=number, queues=queues, wrap_up_seconds=wrap_up
    )
    return agent


def history(db, agent_id):
    with db.session() as s:
        rows = s.scalars(
            select(AgentPresenceEvent)
            .where(AgentPresenceEvent.agent_id == agent_id)
            .order_by(AgentPresenceEvent.id)
        ).all()
    return [(e.from_status, e.to_status, e.reason) for e in rows]


def test_new_agent_is_offline_and_address_is_canonical(db, r):
    agent, token = ag.add_agent(
        db, r, name="Ann", kind="phone", address="+1 (415) 555-0100", queues="support, billing"
    )
    assert agent.address == "+14155550100"
    assert agent.queues == ["support", "billing"]
    assert len(token) >= 32
    assert ag.get_presence(db, r, agent.id, T0).status is AgentStatus.OFFLINE
    assert ag.staffed_count(r, "support", T0) == 0
    assert ag.agent_by_token(db, token).id == agent.id
    assert ag.agent_by_token(db, token + "x") is None


@pytest.mark.parametrize(
    ("kind", "address", "message"),
    [
        ("phone", "4155550100", "E.164"),
        ("phone", "+1415555", "not a valid number"),
        ("phone", "+1abc", "not a phone number"),
        ("sip", "alice@pbx.example.com", "SIP URI"),
        ("client", "alice smith", "only letters"),
        ("pager", "123", "kind must be one of"),
    ],
)
def test_bad_addresses_are_refused_with_a_hint(db, r, kind, address, message):
    with pytest.raises(ag.InvalidAgent, match=message):
        ag.add_agent(db, r, name="X", kind=kind, address=address, queues="support")


def test_sip_and_client_addresses_are_accepted(db, r):
    sip, _ = ag.add_agent(db, r, name="S", kind="sip", address="sip:bob@pbx.example.com:5060",
                          queues=["support"])
    client, _ = ag.add_agent(db, r, name="C", kind="client", address="carol_1", queues=["a"])
    assert (sip.kind, client.kind) == ("sip", "client")


def test_duplicate_address_is_a_conflict(db, r):
    add(db, r, "Ann", phone="+14155550100")
    with pytest.raises(ag.AgentConflict, match=r"\+14155550100"):
        add(db, r, "Bob", phone="+14155550100")


def test_claim_picks_the_longest_idle_agent(db, r):
    a = add(db, r, "Ann")
    b = add(db, r, "Bob")
    c = add(db, r, "Cid")
    ag.set_presence(db, r, b.id, "available", now=at(0))
    ag.set_presence(db, r, c.id, "available", now=at(5))
    ag.set_presence(db, r, a.id, "available", now=at(10))
    assert ag.available_count(r, "support", at(11)) == 3
    order = [ag.claim_agent(db, r, "support", at(20 + i)).name for i in range(3)]
    assert order == ["Bob", "Cid", "Ann"]
    assert ag.claim_agent(db, r, "support", at(30)) is None
    assert ag.get_presence(db, r, b.id, at(31)).status is AgentStatus.BUSY
    assert ag.staffed_count(r, "support", at(31)) == 3
    assert ag.available_count(r, "support", at(31)) == 0
    assert history(db, b.id)[-1] == ("available", "busy", "claimed for queue support")


def test_setting_available_again_keeps_the_place_in_line(db, r):
    a = add(db, r, "Ann")
    b = add(db, r, "Bob")
    ag.set_presence(db, r, a.id, "available", now=at(0))
    ag.set_presence(db, r, b.id, "available", now=at(5))
    ag.set_presence(db, r, a.id, "available", now=at(9))  # a repeated click is not a new start
    assert ag.claim_agent(db, r, "support", at(10)).id == a.id
    assert len(history(db, a.id)) == 2  # offline->available, available->busy


def test_agent_in_two_queues_leaves_both_when_claimed(db, r):
    a = add(db, r, "Ann", queues="support,billing")
    ag.set_presence(db, r, a.id, "available", now=at(0))
    assert ag.available_count(r, "billing", at(1)) == 1
    assert ag.claim_agent(db, r, "support", at(2)).id == a.id
    assert ag.available_count(r, "billing", at(3)) == 0
    assert ag.claim_agent(db, r, "billing", at(4)) is None
    assert ag.staffed_count(r, "billing", at(4)) == 1


def test_concurrent_claims_never_share_an_agent(db, r, redis_url):
    import redis as redis_lib

    team = [add(db, r, f"Agent{i}", phone=f"+1415555010{i}") for i in range(5)]
    for i, agent in enumerate(team):
        ag.set_presence(db, r, agent.id, "available", now=at(i))
    results: list = []
    lock = threading.Lock()
    barrier = threading.Barrier(20)

    def worker():
        client = redis_lib.Redis.from_url(redis_url)
        barrier.wait()
        got = ag.claim_agent(db, client, "support", at(100))
        with lock:
            results.append(got.id if got else None)
        client.close()

    threads = [threading.Thread(target=worker) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    claimed = [x for x in results if x is not None]
    assert sorted(claimed) == sorted(a.id for a in team)
    assert results.count(None) == 15


def test_release_wraps_up_then_becomes_available_lazily(db, r):
    a = add(db, r, "Ann", wrap_up=30)
    b = add(db, r, "Bob", wrap_up=30)
    ag.set_presence(db, r, a.id, "available", now=at(0))
    ag.set_presence(db, r, b.id, "available", now=at(50))
    assert ag.claim_agent(db, r, "support", at(60)).id == a.id
    p = ag.release_agent(db, r, a.id, now=at(100))
    assert p.status is AgentStatus.WRAP_UP
    assert p.wrap_up_until == at(130)
    assert ag.available_count(r, "support", at(129)) == 1  # only Bob
    assert ag.available_count(r, "support", at(130)) == 2  # Ann's wrap-up is over
    # Ann idles from 130, Bob from 50: Bob has waited longer and goes first.
    assert ag.claim_agent(db, r, "support", at(140)).id == b.id
    assert ag.claim_agent(db, r, "support", at(141)).id == a.id
    assert ("wrap_up", "available", "wrap-up ended") in history(db, a.id)
    with db.session() as s:
        ended = s.scalar(
            select(AgentPresenceEvent).where(AgentPresenceEvent.reason == "wrap-up ended")
        )
    assert ended.at == at(130)  # recorded when it happened, not when noticed


def test_zero_wrap_up_goes_straight_to_available(db, r):
    a = add(db, r, "Ann", wrap_up=0)
    ag.set_presence(db, r, a.id, "available", now=at(0))
    ag.claim_agent(db, r, "support", at(1))
    assert ag.release_agent(db, r, a.id, now=at(2)).status is AgentStatus.AVAILABLE


def test_list_reports_an_ended_wrap_up_as_available(db, r):
    a = add(db, r, "Ann", queues="billing", wrap_up=10)
    ag.set_presence(db, r, a.id, "available", now=at(0))
    ag.claim_agent(db, r, "billing", at(1))
    ag.release_agent(db, r, a.id, now=at(2))
    [entry] = ag.list_agents(db, r, at(5), queue="billing")
    assert entry.presence.status is AgentStatus.WRAP_UP
    [entry] = ag.list_agents(db, r, at(12))
    assert entry.presence.status is AgentStatus.AVAILABLE
    assert entry.to_dict()["presence"]["status"] == "available"
    assert ag.list_agents(db, r, at(12), queue="support") == []


@pytest.mark.parametrize(
    ("call_status", "expected"),
    [
        ("ringing", AgentStatus.BUSY),
        ("in-progress", AgentStatus.BUSY),
        ("completed", AgentStatus.WRAP_UP),
        ("no-answer", AgentStatus.OFFLINE),
        ("busy", AgentStatus.OFFLINE),
        ("failed", AgentStatus.OFFLINE),
        ("canceled", AgentStatus.AVAILABLE),
    ],
)
def test_call_status_moves_a_claimed_agent(db, r, call_status, expected):
    a = add(db, r, "Ann")
    ag.set_presence(db, r, a.id, "available", now=at(0))
    ag.claim_agent(db, r, "support", at(10))
    p = ag.on_agent_call_status(db, r, a.id, call_status, call_sid="CA1", now=at(20))
    assert p.status is expected
    if expected is AgentStatus.OFFLINE:
        assert history(db, a.id)[-1] == ("busy", "offline", f"missed call ({call_status})")
        assert ag.staffed_count(r, "support", at(21)) == 0


def test_canceled_call_restores_the_place_in_line(db, r):
    a = add(db, r, "Ann")
    b = add(db, r, "Bob")
    ag.set_presence(db, r, a.id, "available", now=at(0))
    ag.set_presence(db, r, b.id, "available", now=at(5))
    ag.claim_agent(db, r, "support", at(10))
    ag.on_agent_call_status(db, r, a.id, "canceled", now=at(11))
    assert ag.get_presence(db, r, a.id, at(12)).idle_since == at(0)
    assert ag.claim_agent(db, r, "support", at(12)).id == a.id


def test_declined_agent_goes_to_the_back_of_the_line(db, r):
    a = add(db, r, "Ann")
    b = add(db, r, "Bob")
    ag.set_presence(db, r, a.id, "available", now=at(0))
    ag.set_presence(db, r, b.id, "available", now=at(5))
    ag.claim_agent(db, r, "support", at(10))
    ag.decline_agent(db, r, a.id, now=at(15))
    # The declined call's leg then completes: Ann is not busy, so no wrap-up.
    p = ag.on_agent_call_status(db, r, a.id, "completed", now=at(16))
    assert p.status is AgentStatus.AVAILABLE
    assert ag.claim_agent(db, r, "support", at(20)).id == b.id


def test_stale_status_of_another_call_is_ignored(db, r):
    a = add(db, r, "Ann")
    ag.set_presence(db, r, a.id, "available", now=at(0))
    ag.claim_agent(db, r, "support", at(1))
    ag.attach_call(r, a.id, "CA-new")
    p = ag.on_agent_call_status(db, r, a.id, "no-answer", call_sid="CA-old", now=at(2))
    assert p.status is AgentStatus.BUSY
    p = ag.on_agent_call_status(db, r, a.id, "completed", call_sid="CA-new", now=at(3))
    assert p.status is AgentStatus.WRAP_UP
    assert p.call_sid == "CA-new"


@pytest.mark.parametrize("late", ["queued", "initiated", "ringing", "in-progress", "answered"])
def test_a_late_progress_event_after_the_end_never_makes_the_agent_busy(db, r, late):
    """Twilio's status callbacks arrive out of order: `ringing` after `completed`."""
    a = add(db, r, "Ann", wrap_up=0)
    ag.set_presence(db, r, a.id, "available", now=at(0))
    ag.claim_agent(db, r, "support", at(1))
    ag.attach_call(r, a.id, "CA1")
    assert ag.on_agent_call_status(db, r, a.id, "completed", call_sid="CA1",
                                   now=at(30)).status in (AgentStatus.WRAP_UP,
                                                          AgentStatus.AVAILABLE)
    p = ag.on_agent_call_status(db, r, a.id, late, call_sid="CA1", now=at(31))
    assert p.status is not AgentStatus.BUSY
    assert ag.claim_agent(db, r, "support", at(40)).id == a.id  # free for the next caller


def test_status_callbacks_leave_an_offline_agent_alone(db, r):
    a = add(db, r, "Ann")
    for status in ("ringing", "completed", "no-answer"):
        p = ag.on_agent_call_status(db, r, a.id, status, now=at(1))
        assert p.status is AgentStatus.OFFLINE
    assert history(db, a.id) == []


def test_unknown_call_status_is_invalid(db, r):
    a = add(db, r, "Ann")
    with pytest.raises(ag.InvalidAgent, match="unknown call status 'ringing-ish'"):
        ag.on_agent_call_status(db, r, a.id, "ringing-ish")


def test_changing_queues_moves_presence_with_them(db, r):
    a = add(db, r, "Ann", queues="support")
    ag.set_presence(db, r, a.id, "available", now=at(0))
    ag.update_agent(db, r, a.id, queues=["billing"], now=at(1))
    assert ag.available_count(r, "support", at(2)) == 0
    assert ag.available_count(r, "billing", at(2)) == 1
    assert ag.get_presence(db, r, a.id, at(2)).idle_since == at(0)


def test_deactivated_agent_goes_offline_and_cannot_come_back(db, r):
    a = add(db, r, "Ann")
    ag.set_presence(db, r, a.id, "available", now=at(0))
    ag.update_agent(db, r, a.id, active=False, now=at(1))
    assert ag.get_presence(db, r, a.id, at(2)).status is AgentStatus.OFFLINE
    with pytest.raises(ag.InvalidAgent, match="deactivated"):
        ag.set_presence(db, r, a.id, "available", now=at(3))


def test_remove_deletes_agent_history_and_presence(db, r):
    a = add(db, r, "Ann")
    ag.set_presence(db, r, a.id, "available", now=at(0))
    ag.remove_agent(db, r, a.id)
    assert ag.staffed_count(r, "support", at(1)) == 0
    assert ag.claim_agent(db, r, "support", at(1)) is None
    assert history(db, a.id) == []
    with pytest.raises(ag.AgentNotFound):
        ag.get_agent(db, a.id)


def test_presence_is_rebuilt_from_sql_after_redis_is_flushed(db, r):
    a = add(db, r, "Ann")
    b = add(db, r, "Bob", wrap_up=30)
    c = add(db, r, "Cid")
    ag.set_presence(db, r, a.id, "available", now=at(0))
    ag.set_presence(db, r, b.id, "available", now=at(1))
    ag.claim_agent(db, r, "support", at(2))  # Ann
    ag.claim_agent(db, r, "support", at(3))  # Bob
    ag.release_agent(db, r, b.id, now=at(10))  # Bob wraps up until 40
    ag.set_presence(db, r, c.id, "available", now=at(20))
    r.flushdb()
    assert ag.restore_presence(db, r, at(30)) == 3
    assert ag.restore_presence(db, r, at(30)) == 0  # once per dataset
    assert ag.get_presence(db, r, a.id, at(31)).status is AgentStatus.BUSY
    assert ag.get_presence(db, r, b.id, at(31)).status is AgentStatus.WRAP_UP
    assert ag.available_count(r, "support", at(41)) == 2
    assert ag.claim_agent(db, r, "support", at(50)).id == c.id  # idle since 20 < 40


def test_find_agent_by_id_name_or_address(db, r):
    a = add(db, r, "Ann", phone="+14155550100")
    assert ag.find_agent(db, str(a.id)).id == a.id
    assert ag.find_agent(db, "Ann").id == a.id
    assert ag.find_agent(db, "+14155550100").id == a.id
    with pytest.raises(ag.AgentNotFound, match="no agent"):
        ag.find_agent(db, "Zed")


def _claim_in_process(database_url: str, redis_url: str, claims: int) -> list:
    import redis as redis_lib

    from ivr.infra.db import Database

    database, client = Database(database_url), redis_lib.Redis.from_url(redis_url)
    got = [ag.claim_agent(database, client, "support", at(100)) for _ in range(claims)]
    database.dispose()
    client.close()
    return [a.id if a else None for a in got]


def test_concurrent_claims_from_processes_never_share_an_agent(db, r, database_url, redis_url):
    import multiprocessing

    team = [add(db, r, f"Agent{i}", phone=f"+1415555011{i}") for i in range(8)]
    for i, agent in enumerate(team):
        ag.set_presence(db, r, agent.id, "available", now=at(i))
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        batches = pool.starmap(_claim_in_process, [(database_url, redis_url, 4)] * 4)
    claimed = [x for batch in batches for x in batch if x is not None]
    assert sorted(claimed) == sorted(a.id for a in team)
    assert sum(x is None for batch in batches for x in batch) == 8


def test_scripts_survive_a_script_cache_flush(db, r):
    a = add(db, r, "Ann")
    ag.set_presence(db, r, a.id, "available", now=at(0))
    r.script_flush()  # e.g. Redis restarted or failed over: EVALSHA misses, EVAL reloads
    assert ag.claim_agent(db, r, "support", at(1)).id == a.id


def test_a_busy_agent_whose_call_is_over_by_the_providers_word_is_released(db, r):
    """The agent leg's final status callback was lost: the provider is asked, after a while."""
    a = add(db, r, "Ann", wrap_up=0)
    b = add(db, r, "Bob", wrap_up=0)
    ag.set_presence(db, r, a.id, "available", now=at(0))
    ag.set_presence(db, r, b.id, "available", now=at(0))
    ag.claim_agent(db, r, "support", at(1))
    ag.attach_call(r, a.id, "CAover")
    ag.claim_agent(db, r, "support", at(1))
    ag.attach_call(r, b.id, "CAtalking")
    provider = {"CAover": "completed", "CAtalking": "in-progress"}
    asked: list[str] = []

    def status(sid: str):
        asked.append(sid)
        return provider.get(sid)

    window = dt.timedelta(minutes=5)
    assert ag.release_finished_calls(db, r, status, at(60), older_than=window) == []
    assert asked == []  # too soon to ask anyone
    assert ag.release_finished_calls(db, r, status, at(400), older_than=window) == [a.id]
    assert ag.get_presence(db, r, a.id, at(401)).status is AgentStatus.AVAILABLE
    assert ag.get_presence(db, r, b.id, at(401)).status is AgentStatus.BUSY  # still talking
    # An agent who set themself busy (no call) is never asked about.
    c = add(db, r, "Cy", wrap_up=0)
    ag.set_presence(db, r, c.id, "busy", now=at(402))
    asked.clear()
    assert ag.release_finished_calls(db, r, status, at(900), older_than=window) == []
    assert asked == []  # Cy has no call; Bob's was asked about within this window already
    assert ag.get_presence(db, r, c.id, at(901)).status is AgentStatus.BUSY


def test_an_agent_claimed_for_a_call_nobody_placed_is_freed_unless_busy_by_hand(db, r):
    """A claim with no call attached (its process died, or the provider's answer was lost):
    after a while the provider is asked for a live call to the agent since the claim."""
    ann = add(db, r, "Ann", wrap_up=0, phone="+14155550201")
    bob = add(db, r, "Bob", wrap_up=0, phone="+14155550202")
    cy = add(db, r, "Cy", wrap_up=0, phone="+14155550203")
    dee = add(db, r, "Dee", wrap_up=0, phone="+14155550204")
    for agent in (ann, bob, dee):
        ag.set_presence(db, r, agent.id, "available", now=at(0))
    for _ in range(3):
        ag.claim_agent(db, r, "support", at(1))
    ag.set_presence(db, r, cy.id, "busy", now=at(1))  # by hand: nobody will free Cy
    provider = {bob.address: "CAringing", dee.address: ag.UNKNOWN}
    asked: list[str] = []

    def live_call(agent, since):
        asked.append(agent.name)
        assert since == at(1)
        return provider.get(agent.address)

    window = dt.timedelta(minutes=5)
    assert ag.release_unplaced_claims(db, r, live_call, at(60), older_than=window) == []
    assert asked == []  # too soon: the dial may be on its way
    assert ag.release_unplaced_claims(db, r, live_call, at(400), older_than=window) == [ann.id]
    assert sorted(asked) == ["Ann", "Bob", "Dee"]
    assert ag.get_presence(db, r, ann.id, at(401)).status is AgentStatus.AVAILABLE
    assert ag.get_presence(db, r, bob.id, at(401)).call_sid == "CAringing"  # attached
    assert ag.get_presence(db, r, dee.id, at(401)).status is AgentStatus.BUSY  # could not say
    assert ag.get_presence(db, r, cy.id, at(401)).status is AgentStatus.BUSY
    with db.session() as s:
        reasons = s.scalars(select(AgentPresenceEvent.reason).where(
            AgentPresenceEvent.agent_id == ann.id)).all()
    assert reasons[-1] == "claimed, but no call reached them"
    # Dee is asked again in the next window, not at every pass.
    asked.clear()
    assert ag.release_unplaced_claims(db, r, live_call, at(450), older_than=window) == []
    assert asked == []
    provider[dee.address] = None
    assert ag.release_unplaced_claims(db, r, live_call, at(720), older_than=window) == [dee.id]


def test_a_claim_whose_record_was_never_written_is_freed_too(db, r):
    """The process died between the claim in Redis and its row in SQL: the history says the
    agent was last made available, which does not explain the busy."""
    from ivr.infra.agents import presence

    ann = add(db, r, "Ann", wrap_up=0)
    ag.set_presence(db, r, ann.id, "available", now=at(0))
    assert presence.claim(r, "support", at(1))[0] == ann.id  # Redis only
    freed = ag.release_unplaced_claims(db, r, lambda agent, since: None, at(400),
                                       older_than=dt.timedelta(minutes=5))
    assert freed == [ann.id]
