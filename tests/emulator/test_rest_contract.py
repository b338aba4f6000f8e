"""The emulator's REST answers match Twilio's published OpenAPI contract for Calls and Queues
(tests/fixtures/twilio: status codes, required fields, field types, status values)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import requests
from openapi_core import OpenAPI
from openapi_core.contrib.requests import RequestsOpenAPIRequest, RequestsOpenAPIResponse

from ivr.emulator import InteractiveParty, ScriptedParty
from tests.emulator.conftest import ACCOUNT, NUMBER, TOKEN, twiml

SPEC = Path(__file__).parents[1] / "fixtures" / "twilio" / "api_v2010_calls_queues.json"


@pytest.fixture
def contract(emulator):
    spec = json.loads(SPEC.read_text())
    here = [{"url": emulator.public_url}]  # the contract's https://api.twilio.com, emulated
    spec["servers"] = here
    for path in spec["paths"].values():
        path["servers"] = here
    return OpenAPI.from_dict(spec)


@pytest.fixture
def http(emulator):
    session = requests.Session()
    session.auth = (ACCOUNT, TOKEN)
    return session


def _checked(contract, response: requests.Response) -> dict:
    """The JSON body, after the contract accepted the request and the response."""
    contract.validate_response(RequestsOpenAPIRequest(response.request),
                               RequestsOpenAPIResponse(response))
    return response.json()


def test_calls_create_fetch_list_update_follow_the_contract(emulator, app_server, http,
                                                             contract):
    app_server.route("/out", twiml('<Pause length="30"/>'))
    emulator.set_party("+14155550100", ScriptedParty(ring_seconds=0.1))
    base = f"{emulator.public_url}/2010-04-01/Accounts/{ACCOUNT}"
    created = http.post(f"{base}/Calls.json", data={
        "To": "+14155550100", "From": NUMBER, "Url": app_server.url + "/out",
        "StatusCallback": app_server.url + "/status",
        "StatusCallbackEvent": ["initiated", "answered"]})
    assert created.status_code == 201
    call = _checked(contract, created)
    assert call["status"] in ("queued", "ringing") and call["direction"] == "outbound-api"
    fetched = _checked(contract, http.get(f"{base}/Calls/{call['sid']}.json"))
    assert fetched["sid"] == call["sid"]
    listed = _checked(contract, http.get(f"{base}/Calls.json", params={"To": "+14155550100"}))
    assert [c["sid"] for c in listed["calls"]] == [call["sid"]]
    deadline = time.monotonic() + 5
    while emulator.get(call["sid"]).status.value != "in-progress":
        assert time.monotonic() < deadline
        time.sleep(0.02)
    ended = _checked(contract, http.post(f"{base}/Calls/{call['sid']}.json",
                                         data={"Status": "completed"}))
    assert ended["sid"] == call["sid"]


def test_a_created_call_is_answered_as_queued_however_fast_it_rings(emulator, app_server, http,
                                                                    contract, monkeypatch):
    """Twilio answers the POST with the call as created. On a busy host the call's own thread
    may ring and answer before the POST's answer is written: it must still say queued. Here
    the call is let run until it is in progress before the POST answers."""
    app_server.route("/out", twiml('<Pause length="30"/>'))
    emulator.set_party("+14155550100", ScriptedParty(ring_seconds=0))
    start = emulator._start

    def start_and_run_ahead(call, body):
        start(call, body)
        deadline = time.monotonic() + 5
        while call.status.value != "in-progress":
            assert time.monotonic() < deadline
            time.sleep(0.01)

    monkeypatch.setattr(emulator, "_start", start_and_run_ahead)
    base = f"{emulator.public_url}/2010-04-01/Accounts/{ACCOUNT}"
    created = _checked(contract, http.post(f"{base}/Calls.json", data={
        "To": "+14155550100", "From": NUMBER, "Url": app_server.url + "/out"}))
    assert created["status"] == "queued"
    assert emulator.get(created["sid"]).status.value == "in-progress"


def test_queues_and_members_follow_the_contract(emulator, app_server, http, contract):
    app_server.route("/voice", twiml('<Enqueue waitUrl="/wait">support</Enqueue>'))
    app_server.route("/wait", twiml('<Pause length="5"/>'))
    caller = emulator.dial_in("+14155550123", NUMBER, party=InteractiveParty())
    deadline = time.monotonic() + 5
    while not app_server.got("/wait"):
        assert time.monotonic() < deadline
        time.sleep(0.02)
    base = f"{emulator.public_url}/2010-04-01/Accounts/{ACCOUNT}"
    queues = _checked(contract, http.get(f"{base}/Queues.json"))["queues"]
    assert [(q["friendly_name"], q["current_size"]) for q in queues] == [("support", 1)]
    queue = _checked(contract, http.get(f"{base}/Queues/{queues[0]['sid']}.json"))
    members = _checked(contract, http.get(f"{base}/Queues/{queue['sid']}/Members.json"))
    assert [(m["call_sid"], m["position"]) for m in members["queue_members"]] == [
        (caller.sid, 1)]
    front = _checked(contract, http.get(f"{base}/Queues/{queue['sid']}/Members/Front.json"))
    assert front["call_sid"] == caller.sid
    emulator.act(caller.sid, "hangup")


@pytest.mark.parametrize(("form", "code"), [
    ({"From": NUMBER, "Url": "https://example.com/x"}, 21201),
    ({"To": "+14155550100", "Url": "https://example.com/x"}, 21603),
    ({"To": "+14155550100", "From": NUMBER}, 21205),
    ({"To": "+14155550100", "From": NUMBER, "Url": "/relative"}, 21205),
    ({"To": "+14155550100", "From": NUMBER, "Url": "https://e.com/x", "Method": "PUT"}, 21200),
    ({"To": "+14155550100", "From": "+12125550000", "Url": "https://e.com/x"}, 21210),
    ({"To": "+14155550100", "From": NUMBER, "Twiml": "<Response/>"}, 20001),
])
def test_refusals_carry_twilios_error_shape(emulator, http, form, code):
    resp = http.post(f"{emulator.public_url}/2010-04-01/Accounts/{ACCOUNT}/Calls.json",
                     data=form)
    body = resp.json()
    assert (resp.status_code, body["code"], body["status"]) == (400, code, 400)
    assert body["more_info"] == f"https://www.twilio.com/docs/errors/{code}"
    assert body["message"]


def test_wrong_credentials_are_refused(emulator):
    resp = requests.get(f"{emulator.public_url}/2010-04-01/Accounts/{ACCOUNT}/Calls.json",
                        auth=(ACCOUNT, "wrong"))
    assert (resp.status_code, resp.json()["code"]) == (401, 20003)
