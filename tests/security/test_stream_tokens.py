"""Media Streams cannot be replayed: a <Stream> URL carries no query, so the upgrade's signature is
the same for every call. Each stream therefore presents a token bound to its call, its menu and an
expiry, and a socket that presents anything else is closed before it hears a word.

Each test starts a real call on the Korean menu (which streams), then opens a signed socket to the
app on a real port with the menu's own parameters, altered in one way."""

from __future__ import annotations

import logging

import pytest

from ivr.infra.security import STREAM_TOKEN_SECONDS
from tests.ivr.helpers import staff
from tests.speech.live import (
    TwilioStream,
    dial,
    fixture_for,
    serve,
    stream_spec,
    wait_for_update,
)

REFUSED = "stream refused: its token is not for this call and menu, or has expired"


@pytest.fixture
def server(callback_app):
    staff(callback_app, ["support", "billing"])
    with serve(callback_app) as base:
        yield base


def menu_stream(app, cloud):
    """A live call waiting in the Korean menu, and the stream its TwiML starts."""
    call = dial(app, cloud)
    spec = stream_spec(call.turn.documents[-1])
    assert spec is not None and {"token", "expires"} <= spec.parameters.keys()
    return call, spec


def opened(server: str, call_sid: str, parameters: dict) -> TwilioStream:
    stream = TwilioStream(server)
    stream.start(call_sid, parameters)
    stream.play(fixture_for("1"), trailing_silence_ms=200)
    return stream


def test_a_fresh_token_for_its_own_call_is_heard(callback_app, twilio_cloud, server, caplog):
    """The control: the menu's own parameters open a socket that recognises speech."""
    caplog.set_level(logging.INFO)
    call, spec = menu_stream(callback_app, twilio_cloud)
    stream = TwilioStream(server)
    stream.start(call.call_sid, spec.parameters)
    stream.play(fixture_for("1"))
    assert wait_for_update(twilio_cloud, call.call_sid) is not None, "the choice moved the call"
    stream.close()
    assert REFUSED not in caplog.text


def test_another_calls_token_is_refused(callback_app, twilio_cloud, server, caplog):
    first, first_spec = menu_stream(callback_app, twilio_cloud)
    second, _ = menu_stream(callback_app, twilio_cloud)
    stream = opened(server, second.call_sid, first_spec.parameters)
    assert stream.wait_closed()
    assert REFUSED in caplog.text
    assert twilio_cloud.updates(second.call_sid) == []
    assert twilio_cloud.updates(first.call_sid) == []


@pytest.mark.parametrize("change", [
    {"node": "billing"},                       # another menu of the same call
    {"flow": "main"},                          # another flow
    {"expires": "9999999999"},                 # a later expiry than the one signed
    {"token": "0" * 64},                       # a made-up token
    {"token": ""},                             # none at all
    {"expires": "soon"},
])
def test_an_altered_stream_is_refused(callback_app, twilio_cloud, server, caplog, change):
    call, spec = menu_stream(callback_app, twilio_cloud)
    stream = opened(server, call.call_sid, {**spec.parameters, **change})
    assert stream.wait_closed()
    assert REFUSED in caplog.text
    assert twilio_cloud.updates(call.call_sid) == []


def test_an_expired_token_is_refused(callback_app, twilio_cloud, server, clock, caplog):
    call, spec = menu_stream(callback_app, twilio_cloud)
    clock.advance(STREAM_TOKEN_SECONDS + 1)
    stream = opened(server, call.call_sid, spec.parameters)
    assert stream.wait_closed()
    assert REFUSED in caplog.text
    assert twilio_cloud.updates(call.call_sid) == []
