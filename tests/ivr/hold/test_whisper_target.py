"""Which caller an agent who answers is told about (and then bridged to), on a real Redis."""

from __future__ import annotations

import time

from ivr.hold import connect, holding
from ivr.hold.holding import Holder
from ivr.infra import line

QUEUE = "support"


def hold(r, sid: str, first_asked: float, twilio_queue: str) -> None:
    holder = Holder(call_sid=sid, queue=QUEUE, first_asked=first_asked, joined_at=first_asked,
                    language=twilio_queue.partition(".")[2], twilio_queue=twilio_queue)
    assert holding.join(r, holder, {"kind": "join", "at": first_asked, "elapsed": 0})


def offer(r, agent_call: str, caller: str, twilio_queue: str) -> None:
    r.zadd(connect.OFFERS.format(queue=QUEUE), {agent_call: time.time() + 60})
    r.hset(connect.OFFER.format(sid=agent_call),
           mapping={"queue": QUEUE, "caller_sid": caller, "twilio_queue": twilio_queue})


def test_an_agent_who_answers_before_their_offer_is_read_is_told_of_their_caller(redis_client):
    """The provider may deliver the agent's answer before the ring's offer is written: the
    offer is read again, and the agent's own offer does not hide their caller."""
    r = redis_client
    hold(r, "CA-hindi", 100.0, "support.hi")
    line.join_caller(r, QUEUE, "CA-hindi", 100.0)
    offer(r, "CA-agent", "CA-hindi", "support.hi")
    assert connect.whisper_target(r, QUEUE, {}, "CA-agent") == "CA-hindi"


def test_an_agent_whose_caller_left_takes_the_next_of_that_language(redis_client):
    r = redis_client
    for sid, at, tq in (("CA-en", 100.0, "support"), ("CA-hi-offered", 101.0, "support.hi"),
                        ("CA-hi-next", 102.0, "support.hi")):
        hold(r, sid, at, tq)
        line.join_caller(r, QUEUE, sid, at)
    offer(r, "CA-other-agent", "CA-hi-offered", "support.hi")
    gone = {"caller_sid": "CA-hi-left", "twilio_queue": "support.hi"}  # hung up meanwhile
    # Not the English caller at the front (a different Twilio queue), not the one another agent
    # is being offered: the next Hindi caller, who is who <Dial><Queue>support.hi</Queue> takes.
    assert connect.whisper_target(r, QUEUE, gone, "CA-agent") == "CA-hi-next"
    line.leave_caller(r, QUEUE, "CA-hi-next")
    assert connect.whisper_target(r, QUEUE, gone, "CA-agent") == ""  # nobody: "helped"
