"""The simulated caller follows hold-queue TwiML as Twilio does: wait URL, keys, <Leave>."""

from __future__ import annotations

from tests.conftest import AUTH_TOKEN, BASE_URL
from tests.ivr.helpers import staff
from tests.support.caller import SimulatedCall, flask_transport


def test_hold_then_leave_for_a_callback(app):
    staff(app, ["support"], status="busy")  # staffed, but nobody free: the caller holds
    call = SimulatedCall(flask_transport(app.test_client(), BASE_URL), BASE_URL, AUTH_TOKEN)
    call.dial()
    turn = call.press("0")
    assert turn.waiting == "queue" and turn.queue == "support"

    turn = call.hold()
    assert "next in line" in turn.text, turn.text
    assert turn.waiting == "gather"  # the wait music listens for keys
    turn = call.wait()  # music ends: Twilio asks the wait URL again
    assert turn.waiting == "gather"

    turn = call.press("1")  # leave the line for a callback that keeps the place
    assert call.queue is None
    assert "0 1 2 3" in turn.text and turn.waiting == "gather"
    turn = call.press("1")  # confirm the caller ID
    assert "call you back" in turn.text
    assert turn.waiting == "hangup"


def test_hold_requires_a_queue(app):
    call = SimulatedCall(flask_transport(app.test_client(), BASE_URL), BASE_URL, AUTH_TOKEN)
    call.dial()
    try:
        call.hold()
    except RuntimeError as exc:
        assert "not in a hold queue" in str(exc)
    else:
        raise AssertionError("hold() outside a queue must fail")
