"""The agent admin API and agent self-service, through the real app, database and Redis."""

from __future__ import annotations

import pytest

ADMIN = "admin-secret-for-tests-7c1e9a0b42"
AUTH = {"Authorization": f"Bearer {ADMIN}"}


@pytest.fixture
def app_config(app_config):
    return {**app_config, "IVR_ADMIN_TOKEN": ADMIN}


def create(client, **body):
    body = {"name": "Ann", "phone": "+14155550100", "queues": ["support"], **body}
    return client.post("/admin/agents", json=body, headers=AUTH)


def test_admin_requires_a_bearer_token(client):
    response = client.get("/admin/agents")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert "Authorization: Bearer" in response.get_json()["error"]
    response = client.get("/admin/agents", headers={"Authorization": "Bearer wrong"})
    assert response.status_code == 403
    assert response.get_json() == {"error": "that admin token is not valid"}


@pytest.mark.parametrize("token", [None, ""])
def test_admin_api_is_closed_without_a_configured_token(app, token):
    app.config["IVR_ADMIN_TOKEN"] = token
    response = app.test_client().get("/admin/agents", headers={"Authorization": "Bearer x"})
    assert response.status_code == 403
    assert "set IVR_ADMIN_TOKEN" in response.get_json()["error"]


def test_crud_round_trip(client):
    response = create(client, wrap_up_seconds=45, phone="+1 415 555 0100")
    assert response.status_code == 201
    body = response.get_json()
    agent = body["agent"]
    assert agent["address"] == "+14155550100" and agent["kind"] == "phone"
    assert agent["presence"]["status"] == "offline"
    assert body["token"]
    agent_id = agent["id"]

    listed = client.get("/admin/agents", headers=AUTH).get_json()["agents"]
    assert [a["name"] for a in listed] == ["Ann"]
    assert "token_hash" not in listed[0]

    response = client.patch(f"/admin/agents/{agent_id}", json={"queues": "support,billing",
                                                               "name": "Ann B"}, headers=AUTH)
    assert response.status_code == 200
    assert response.get_json()["agent"]["queues"] == ["support", "billing"]
    assert response.get_json()["agent"]["name"] == "Ann B"

    response = client.put(f"/admin/agents/{agent_id}/presence", json={"status": "available"},
                          headers=AUTH)
    assert response.get_json()["presence"]["status"] == "available"
    counts = client.get("/admin/agents?queue=billing", headers=AUTH).get_json()
    assert (counts["staffed"], counts["available"]) == (1, 1)
    history = client.get(f"/admin/agents/{agent_id}", headers=AUTH).get_json()["agent"]["history"]
    assert history[0]["from"] == "offline" and history[0]["to"] == "available"

    assert client.delete(f"/admin/agents/{agent_id}", headers=AUTH).status_code == 204
    response = client.get(f"/admin/agents/{agent_id}", headers=AUTH)
    assert response.status_code == 404
    assert response.get_json() == {"error": f"no agent with id {agent_id}"}
    assert client.get("/admin/agents?queue=billing", headers=AUTH).get_json()["staffed"] == 0


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"phone": "4155550100"}, "E.164"),
        ({"phone": "+1415555"}, "not a valid number"),
        ({"phone": None, "sip": "bob@example.com"}, "SIP URI"),
        ({"sip": "sip:a@b.example", "client": "a"}, "not several"),
        ({"queues": []}, "at least one queue"),
        ({"queues": ["bad name"]}, "queue name 'bad name'"),
        ({"wrap_up_seconds": "30"}, "wrap_up_seconds must be a whole number"),
        ({"wrap_up_seconds": -1}, "between 0 and 3600"),
        ({"name": ""}, "name must be 1 to 100 characters"),
        ({"colour": "red"}, "unknown field 'colour'"),
        ({"status": "sleeping"}, "status must be one of available, busy, wrap_up, offline"),
    ],
)
def test_create_validation_says_what_is_wrong(client, body, message):
    body = {"name": "Ann", "phone": "+14155550100", "queues": ["support"], **body}
    body = {k: v for k, v in body.items() if v is not None}
    response = client.post("/admin/agents", json=body, headers=AUTH)
    assert response.status_code == 400
    assert message in response.get_json()["error"]
    assert client.get("/admin/agents", headers=AUTH).get_json()["agents"] == []


def test_non_json_body_is_a_400_with_a_hint(client):
    response = client.post("/admin/agents", data="name=Ann", headers=AUTH)
    assert response.status_code == 400
    assert "JSON object" in response.get_json()["error"]


def test_duplicate_address_is_409(client):
    assert create(client).status_code == 201
    response = create(client, name="Bob")
    assert response.status_code == 409
    assert "+14155550100" in response.get_json()["error"]


def test_agent_sets_own_presence_with_their_token(client):
    token = create(client).get_json()["token"]
    me = {"Authorization": f"Bearer {token}"}
    response = client.put("/agents/me/presence", json={"status": "available"}, headers=me)
    assert response.status_code == 200
    assert response.get_json()["presence"]["status"] == "available"
    whoami = client.get("/agents/me", headers=me).get_json()["agent"]
    assert whoami["name"] == "Ann" and whoami["presence"]["status"] == "available"
    assert whoami["history"][0]["reason"] == "agent"

    response = client.put("/agents/me/presence", json={"status": "busy"}, headers=me)
    assert response.status_code == 400
    assert "busy and wrap-up follow your calls" in response.get_json()["error"]


def test_agent_token_is_checked_and_can_be_rotated(client):
    body = create(client).get_json()
    old = {"Authorization": f"Bearer {body['token']}"}
    assert client.get("/agents/me").status_code == 401
    bad = client.get("/agents/me", headers={"Authorization": "Bearer nope"})
    assert bad.status_code == 403
    assert "not valid" in bad.get_json()["error"]
    new_token = client.post(f"/admin/agents/{body['agent']['id']}/token",
                            headers=AUTH).get_json()["token"]
    assert client.get("/agents/me", headers=old).status_code == 403
    new = {"Authorization": f"Bearer {new_token}"}
    assert client.get("/agents/me", headers=new).status_code == 200


def test_deactivated_agent_loses_self_service(client):
    body = create(client, status="available").get_json()
    assert body["agent"]["presence"]["status"] == "available"
    me = {"Authorization": f"Bearer {body['token']}"}
    client.patch(f"/admin/agents/{body['agent']['id']}", json={"active": False}, headers=AUTH)
    assert client.get("/agents/me", headers=me).status_code == 403
    listed = client.get("/admin/agents", headers=AUTH).get_json()["agents"]
    assert listed[0]["presence"]["status"] == "offline"
