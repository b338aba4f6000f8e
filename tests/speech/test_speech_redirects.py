"""The gather URL a speech decision redirects to: unsure choices are confirmed by key, an
unmatched transcript re-prompts without being matched again, and stale keys are refused."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from urllib.parse import urlencode

import pytest

from ivr.core.i18n.catalog import Phrasebook
from tests.conftest import AUTH_TOKEN, BASE_URL, sign
from tests.speech.live import KOREAN_NUMBER, gather_node, stream_spec
from tests.support.caller import SimulatedCall, flask_transport


def dial(app) -> SimulatedCall:
    call = SimulatedCall(flask_transport(app.test_client(), BASE_URL), BASE_URL, AUTH_TOKEN,
                         called=KOREAN_NUMBER)
    call.dial()
    return call


def redirected(app, call: SimulatedCall, **query: str) -> str:
    """Twilio fetches the gather URL the recogniser redirected the call to."""
    url = f"{BASE_URL}/voice/gather?" + urlencode({"flow": "korean", "node": "ko_menu", **query})
    resp = app.test_client().post(url[len(BASE_URL):], data=call.params,
                                  headers={"X-Twilio-Signature": sign(url, call.params)})
    assert resp.status_code == 200
    return resp.get_data(as_text=True)


def test_unsure_choice_is_confirmed_by_a_key(app):
    call = dial(app)
    document = redirected(app, call, choice="1", transcript="주문", confidence="0.6",
                          decision_ms="12.5", confirm="1")
    assert Phrasebook().say("ko", "menu.did_you_say", choice="주문") in document
    assert gather_node(document) == ("korean", "ko_menu")
    assert stream_spec(document) is None  # a yes/no by key, not another menu
    call.turn.gather_action = ET.fromstring(document).find("Gather").get("action")
    call.turn.waiting = "gather"
    assert gather_node(call.press("1").documents[-1]) == ("korean", "ko_orders")


@pytest.mark.parametrize("query", [
    {"choice": "", "transcript": "주문", "confidence": "0.3"},  # too unsure to take
    {"choice": "7", "transcript": "칠", "confidence": "0.9"},  # not an option of this menu
])
def test_recogniser_rejections_re_prompt_without_matching_again(app, query):
    call = dial(app)
    document = redirected(app, call, **query)
    assert "죄송합니다. 없는 선택입니다." in document
    assert gather_node(document) == ("korean", "ko_menu")
