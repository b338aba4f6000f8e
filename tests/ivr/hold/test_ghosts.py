"""Every hold-queue write expires, and ghosts (callers whose hang-up was never reported) never
hold a place: not for the next caller, not for a callback behind them."""

from __future__ import annotations

import time

from ivr.hold import holding
from ivr.infra import line


def holder(sid: str, first: float, visit: int = 1) -> holding.Holder:
    return holding.Holder(call_sid=sid, queue="support", first_asked=first, joined_at=first,
                          visit=visit)


def test_a_write_after_the_visit_ended_leaves_nothing_behind(redis_client):
    r = redis_client
    h = holder("CAgone", time.time())
    holding.join(r, h, {"kind": "joined", "at": time.time()})
    assert holding.save(r, h, {"kind": "announced", "at": time.time()})
    assert 0 < r.ttl(holding.RECORD.format(sid="CAgone")) <= holding.TTL_SECONDS
    holding.finish(r, "CAgone", 1, time.time())  # the hang-up

    h.announced = 3  # a wait-URL webhook that was already running
    assert not holding.save(r, h, {"kind": "announced", "at": time.time()})

    assert not r.exists(holding.RECORD.format(sid="CAgone"))
    assert not r.exists(holding.LOG.format(sid="CAgone"))
    assert holding.load(r, "CAgone") is None


def test_every_key_a_visit_writes_expires(redis_client):
    """A guard for the conditional write above: the old code passes it too."""
    r = redis_client
    h = holder("CAhere", time.time())
    holding.join(r, h, {"kind": "joined", "at": time.time()})
    holding.save(r, h, {"kind": "announced", "at": time.time()})
    holding.log_item(r, "CAhere", {"kind": "pressed", "at": time.time()})
    for key in (holding.RECORD.format(sid="CAhere"), holding.LOG.format(sid="CAhere")):
        assert 0 < r.ttl(key) <= holding.TTL_SECONDS, key


def test_ghosts_at_the_front_of_the_line_are_dropped_for_whoever_is_behind(redis_client):
    r = redis_client
    now = time.time()
    for sid in ("CAghost1", "CAghost2"):  # in line, but their records expired long ago
        line.join_caller(r, "support", sid, now - 600)
    live = holder("CAlive", now - 60)
    holding.join(r, live, {"kind": "joined", "at": now})
    line.join_callback(r, "support", 7, now - 30)

    front = line.live_head(r, "support", 2)

    assert [(kind, ident) for kind, ident, _ in front] == [("caller", "CAlive"),
                                                          ("callback", "7")]
    assert line.place_of(r, "support", now - 30).position == 2  # the ghosts left the line


def test_a_late_wait_url_request_does_not_bring_back_a_caller_who_left(redis_client):
    """Twilio repeats the wait-URL request of a visit after the caller hung up: no ghost.
    (Found by the chaos bench: the repeat came a second later, so a visit start computed from
    its QueueTime looked newer than the hang-up, and the caller was back in line for good.)"""
    r = redis_client
    joined = time.time() - 40
    assert holding.join(r, holder("CAleft", joined, visit=3), {"kind": "join", "at": joined})
    ended = holding.finish(r, "CAleft", 3, time.time())
    assert ended.holder is not None and not ended.repeated

    for late in (holder("CAleft", time.time(), visit=3),  # the same visit, however late
                 holder("CAleft", time.time(), visit=2)):  # an older one
        assert not holding.join(r, late, {"kind": "join", "at": time.time()})
    assert holding.load(r, "CAleft") is None
    assert r.zscore(line.CALLERS.format(queue="support"), "CAleft") is None
    assert holding.finish(r, "CAleft", 3, time.time()).repeated  # its end, sent again

    again = holder("CAleft", time.time(), visit=5)  # a new visit (back from a callback offer)
    assert holding.join(r, again, {"kind": "join", "at": time.time()})
    assert holding.load(r, "CAleft") is not None


def test_a_visit_without_a_token_is_judged_by_time(redis_client):
    """The outage TwiML's <Enqueue> has no token (it knows no call state): after an ordinary
    visit ended, such a visit still joins the line (found in review: it was refused, and the
    caller held in Twilio's queue with nobody rung for them); its own late request does not."""
    r = redis_client
    now = time.time()
    assert holding.join(r, holder("CAout", now - 60, visit=4), {"kind": "join", "at": now})
    holding.finish(r, "CAout", 4, now - 30)
    assert holding.join(r, holder("CAout", now - 10, visit=0), {"kind": "join", "at": now})
    assert r.zscore(line.CALLERS.format(queue="support"), "CAout") is not None
    holding.finish(r, "CAout", 0, now)
    assert not holding.join(r, holder("CAout", now - 10, visit=0), {"kind": "join", "at": now})
    # The untokened end did not move the token marker back: visit 4's requests stay refused.
    assert not holding.join(r, holder("CAout", now, visit=4), {"kind": "join", "at": now})
