"""Odd inputs that used to answer with Flask's HTML 500 page now get a JSON error a client can
read (or, on a Twilio webhook, TwiML): the probes from the issue, each through the real app."""

from __future__ import annotations

import pytest

from tests.callback.conftest import ask

ADMIN = "admin-secret-for-tests-7c1e9a0b42"
AUTH = {"Authorization": f"Bearer {ADMIN}"}


@pytest.fixture
def app_config(app_config):
    return {**app_config, "IVR_ADMIN_TOKEN": ADMIN, "CALLBACK_PROOF_OF_WORK": "off"}


def is_json_error(response, status: int) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)[:300]
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert isinstance(body.get("error"), str) and body["error"]
    assert "Traceback" not in response.get_data(as_text=True)
    return body


def test_a_preferred_time_at_the_end_of_time(client):
    body = is_json_error(client.post("/callbacks", json={
        "phone": "+14155550123", "consent": True,
        "preferred_time": "9999-12-31T23:59:59Z"}), 400)
    assert "preferred_time" in body["message"]


@pytest.mark.parametrize("token", [123, ["a"], {"t": 1}, None, True])
def test_a_cancel_token_that_is_not_a_string(client, token):
    made = client.post("/callbacks", json={"phone": "+14155550123", "consent": True})
    assert made.status_code == 202, made.get_json()
    response = client.delete(f"/callbacks/{made.get_json()['id']}", json={"token": token})
    assert response.status_code in (400, 401, 403)
    is_json_error(response, response.status_code)


@pytest.mark.parametrize("public_id", ["%00", "%00abc", "x" * 5000, "%ff%fe", "..%2f.."])
def test_odd_callback_ids(client, public_id):
    response = client.get(f"/callbacks/{public_id}", headers={"X-Callback-Token": "t" * 20})
    assert response.status_code in (400, 403, 404)
    is_json_error(response, response.status_code)


@pytest.mark.parametrize("agent_id", [2**63, 2**70, 10**40])
def test_agent_ids_past_64_bits(client, agent_id):
    for method in ("get", "delete"):
        body = is_json_error(getattr(client, method)(f"/admin/agents/{agent_id}",
                                                     headers=AUTH), 404)
        assert "no agent with id" in body["error"]  # the agent API's own error shape
    is_json_error(client.put(f"/admin/agents/{agent_id}/presence", json={"status": "available"},
                             headers=AUTH), 404)


def test_unknown_routes_and_methods_answer_json(client):
    body = is_json_error(client.get("/no/such/page"), 404)
    assert body["error"] == "not_found"
    response = client.put("/healthz")
    is_json_error(response, 405)
    assert "GET" in response.headers["Allow"]


def test_the_ask_helper_still_works(client):
    """The control: an ordinary request through the same app is accepted."""
    assert ask(client, {"phone": "+14155550123"})["status"]


def test_each_webhook_fails_in_the_way_that_suits_its_place_in_the_call(app):
    """An unexpected error: the caller reaches a person; a holding caller keeps holding (no
    <Enqueue> inside a wait URL); an agent's leg hears an apology; a status callback is taken."""
    import xml.etree.ElementTree as ET

    from ivr.app import _webhook_fallbacks
    from ivr.infra import paths

    fallbacks = _webhook_fallbacks(app)
    with app.test_request_context(paths.GATHER, base_url="https://ivr.example.com"):
        caller = ET.fromstring(fallbacks[paths.GATHER]().get_data(as_text=True))
        holding = ET.fromstring(fallbacks[paths.QUEUE_WAIT]().get_data(as_text=True))
        agent = ET.fromstring(fallbacks[paths.HOLD_AGENT_ANSWER]().get_data(as_text=True))
        status = fallbacks[paths.HOLD_AGENT_STATUS]()
    assert [v.tag for v in caller] == ["Say", "Enqueue"]
    assert [v.tag for v in holding] == ["Pause"]
    assert [v.tag for v in agent] == ["Say", "Hangup"]
    assert status.status_code == 204
    assert paths.SPEECH_STREAM not in fallbacks
    assert set(fallbacks) == set(paths.ALL) - {paths.SPEECH_STREAM}
