"""When the media stream fails, the caller's answer is recorded, downloaded with the account's
credentials from the Twilio stand-in, recognised by the real model, and the call continues."""

from __future__ import annotations

import datetime as dt
import xml.etree.ElementTree as ET
from urllib.parse import parse_qs, urlsplit

import pytest

from speech.live.calls import mark_stream_ended
from tests.conftest import AUTH_TOKEN, BASE_URL, sign
from tests.ivr.helpers import staff
from tests.speech.live import (
    ACCOUNT_SID,
    dial,
    fixture_for,
    gather_node,
    stream_spec,
    wav_of,
    webhook,
)
from tests.support.twilio_cloud import TwilioCloud

OPEN = dt.datetime(2026, 11, 24, 16, 0, tzinfo=dt.UTC)


@pytest.fixture
def cloud():
    with TwilioCloud(ACCOUNT_SID, AUTH_TOKEN) as stand_in:
        yield stand_in


@pytest.fixture
def app_config(app_config: dict, cloud: TwilioCloud) -> dict:
    return {**app_config, "TWILIO_API_BASE": cloud.base_url, "CLOCK": lambda: OPEN}


def stream_error(app, call, stream_sid: str = "MZ" + "1" * 32) -> None:
    """Twilio reports that the menu's stream failed (its statusCallback)."""
    spec = stream_spec(call.turn.documents[-1])
    assert spec is not None
    client = app.test_client()
    form = {**call.params, "StreamSid": stream_sid, "StreamName": spec.name,
            "StreamEvent": "stream-error",
            "StreamError": "31920 Stream - WebSocket - Handshake Error", "Timestamp": "now"}
    url = spec.status_callback
    resp = client.post(url[len(BASE_URL):], data=form,
                       headers={"X-Twilio-Signature": sign(url, form)})
    assert resp.status_code == 204


def recording_turn(app, cloud, call) -> tuple[str, ET.Element]:
    """The redirect to the recording fallback, followed: (Record action URL, TwiML root)."""
    update = cloud.updates(call.call_sid)[-1]
    url = update.value("Url")
    assert url.startswith(f"{BASE_URL}/speech/record?")
    menu_turn = parse_qs(urlsplit(call.turn.gather_action).query)["t"]
    # The menu's own turn goes with it, so the recording's answer is taken at that menu only.
    assert parse_qs(urlsplit(url).query) == {"flow": ["korean"], "node": ["ko_menu"],
                                             "t": menu_turn}
    root = ET.fromstring(webhook(app, call, url))
    record = root.find("Record")
    assert record is not None
    return record.get("action", ""), root


def test_stream_error_records_the_answer_and_recognises_it(app, cloud, caplog):
    call = dial(app, cloud)
    stream_error(app, call)
    assert "media stream failed: 31920 Stream - WebSocket - Handshake Error" in caplog.text
    action, root = recording_turn(app, cloud, call)
    # The prompt is said again with keys live, then the answer is recorded, then no-input.
    assert [v.tag for v in root] == ["Gather", "Record", "Redirect"]
    assert "주문은 1번" in root.find("Gather/Say").text
    assert gather_node(ET.tostring(root, encoding="unicode")) == ("korean", "ko_menu")
    record = root.find("Record")
    assert record.get("playBeep") == "true" and record.get("maxLength") == "6"
    assert action.startswith(f"{BASE_URL}/speech/recorded?")

    recording_url = cloud.add_recording(wav_of(fixture_for("3")))
    document = webhook(app, call, action, {"RecordingUrl": recording_url,
                                           "RecordingDuration": "2", "RecordingSid": "RE1"})
    assert gather_node(document) == ("korean", "ko_returns")
    fetched = [r for r in cloud.requests if r.method == "GET" and "/Recordings/" in r.path]
    assert len(fetched) == 1 and fetched[0].authorized
    assert fetched[0].path.endswith(".wav")


def test_spoken_operator_in_a_recording_reaches_a_person(app, cloud):
    staff(app, ["support"])
    call = dial(app, cloud)
    stream_error(app, call)
    action, _ = recording_turn(app, cloud, call)
    recording_url = cloud.add_recording(wav_of(fixture_for("operator")))
    root = ET.fromstring(webhook(app, call, action, {"RecordingUrl": recording_url,
                                                     "RecordingDuration": "2"}))
    assert root.find("Enqueue").text == "support.ko"  # the Korean callers' Twilio queue


def test_a_key_pressed_during_the_recording_is_the_answer(app, cloud):
    call = dial(app, cloud)
    stream_error(app, call)
    action, _ = recording_turn(app, cloud, call)
    recording_url = cloud.add_recording(wav_of(b"\xff" * 800))
    document = webhook(app, call, action, {"RecordingUrl": recording_url, "Digits": "1",
                                           "RecordingDuration": "1"})
    assert gather_node(document) == ("korean", "ko_orders")
    assert not [r for r in cloud.requests if "/Recordings/" in r.path]


def test_a_recording_that_cannot_be_fetched_counts_as_no_answer(app, cloud, caplog):
    call = dial(app, cloud)
    stream_error(app, call)
    action, _ = recording_turn(app, cloud, call)
    missing = f"{cloud.base_url}/2010-04-01/Accounts/{ACCOUNT_SID}/Recordings/RE{'0' * 32}"
    document = webhook(app, call, action, {"RecordingUrl": missing, "RecordingDuration": "2"})
    assert gather_node(document) == ("korean", "ko_menu")
    assert "죄송합니다. 아무 말씀도 듣지 못했습니다." in document  # the no-input re-prompt
    assert "could not download the recording" in caplog.text and "HTTP 404" in caplog.text


def test_credentials_go_only_to_twilio_hosts(app, cloud):
    from speech.live.fallback import _trusted

    with app.app_context():
        assert _trusted(app, "https://api.twilio.com/2010-04-01/Accounts/AC1/Recordings/RE1")
        assert _trusted(app, f"{cloud.base_url}/x")  # the configured API base
        assert not _trusted(app, "https://evil.example.com/Recordings/RE1")
        assert not _trusted(app, "https://api.twilio.com.evil.example.com/RE1")


def test_stream_error_after_the_caller_moved_on_does_nothing(app, cloud):
    call = dial(app, cloud)
    turn_document = call.turn.documents[-1]
    call.press("3")
    call.turn.documents.append(turn_document)  # the status callback names the old stream
    stream_error(app, call)
    assert cloud.updates(call.call_sid) == []


def test_error_report_for_a_stream_we_closed_is_ignored(app, cloud):
    call = dial(app, cloud)
    mark_stream_ended(app, "MZ" + "5" * 32)
    stream_error(app, call, stream_sid="MZ" + "5" * 32)
    assert cloud.updates(call.call_sid) == []


def test_other_stream_events_are_only_logged(app, cloud):
    call = dial(app, cloud)
    spec = stream_spec(call.turn.documents[-1])
    form = {**call.params, "StreamSid": "MZ1", "StreamEvent": "stream-started"}
    resp = app.test_client().post(spec.status_callback[len(BASE_URL):], data=form,
                                  headers={"X-Twilio-Signature": sign(spec.status_callback,
                                                                      form)})
    assert resp.status_code == 204
    unsigned = app.test_client().post(spec.status_callback[len(BASE_URL):], data=form)
    assert unsigned.status_code == 403
    assert cloud.updates(call.call_sid) == []
