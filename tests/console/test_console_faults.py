"""The console under faults and odd input: a clear answer, never a 500, and the stream lives."""

from __future__ import annotations

import pytest
import redis

from ivr.console import stream
from ivr.infra.services import services_of
from tests.console.conftest import sign_in

HTML = {"Accept": "text/html"}


@pytest.mark.parametrize("path", [
    "/console/callbacks?page=%C2%B2", "/console/callbacks?page=" + "9" * 5000,
    "/console/callbacks?since=0001-01-01", "/console/callbacks?since=9999-12-31",
    "/console/callbacks/99999999999999999999", "/console/reports?since=0001-01-01",
])
def test_odd_query_values_get_a_page_or_a_404_never_a_500(admin, path):
    client, _csrf = admin
    answer = client.get(path, headers=HTML)
    assert answer.status_code in (200, 400, 404), (path, answer.status_code, answer.text[:300])


def test_a_reschedule_to_year_9999_is_a_clear_400(admin):
    client, csrf = admin
    answer = client.post("/console/callbacks/1/reschedule", headers=HTML,
                         data={"csrf_token": csrf, "at": "9999-12-31T23:59"})
    assert answer.status_code in (400, 404), answer.text[:300]


def test_an_agent_call_id_that_is_no_call_sid_is_a_404(client, add_agent):
    _agent, token = add_agent()
    sign_in(client, token)
    for sid in ("%00", "CA" + "1" * 100, "..%2Fadmin"):
        assert client.get(f"/console/agent/calls/{sid}", headers=HTML).status_code == 404


def _break_redis(app, monkeypatch):
    r = services_of(app).redis

    def down(*_args, **_kwargs):
        raise redis.ConnectionError("Redis is down (test)")

    monkeypatch.setattr(r, "execute_command", down)
    monkeypatch.setattr(r, "pipeline", down)
    monkeypatch.setattr(r, "pubsub", down)


def test_with_redis_down_the_wallboard_says_so_with_a_503(app, admin, monkeypatch):
    client, _csrf = admin
    _break_redis(app, monkeypatch)
    page = client.get("/console", headers=HTML)
    assert page.status_code == 503 and page.headers["Retry-After"] == "5"
    assert "Redis is unavailable right now" in page.text
    assert client.get("/console/wallboard.json").status_code == 503


def test_with_redis_down_a_stream_keeps_refreshing_instead_of_failing(app, monkeypatch):
    _break_redis(app, monkeypatch)
    r = services_of(app).redis
    renders = []
    with app.test_request_context("/console/events"):
        response = stream.event_stream(r, lambda: renders.append(1) or {"x": "<b>1</b>"},
                                       user="t", still_allowed=lambda: True, interval=0.1)
        events = iter(response.response)
        assert next(events).startswith("retry: ")
        assert next(events) == "event: x\ndata: <b>1</b>\n\n"
        response.close()
    assert renders


def test_one_browser_gets_three_streams_per_process_and_the_process_its_limit(app):
    r = services_of(app).redis
    app.config["CONSOLE_MAX_STREAMS"] = 4
    opened = []
    with app.test_request_context("/console/events"):
        for _ in range(3):
            opened.append(stream.event_stream(r, dict, user="a", still_allowed=lambda: True))
        with pytest.raises(Exception) as refused:
            stream.event_stream(r, dict, user="a", still_allowed=lambda: True)
        assert refused.value.code == 503 and "3 of yours" in refused.value.description
        opened.append(stream.event_stream(r, dict, user="b", still_allowed=lambda: True))
        with pytest.raises(Exception) as full:
            stream.event_stream(r, dict, user="c", still_allowed=lambda: True)
        assert full.value.code == 503
        opened.pop().close()  # a page closes: its place is free again
        opened.append(stream.event_stream(r, dict, user="c", still_allowed=lambda: True))
        for response in opened:
            response.close()
    assert stream.OPEN.count == 0


def test_a_stream_ends_when_its_session_is_no_longer_good(app, monkeypatch):
    monkeypatch.setattr(stream, "RECHECK", 0.0)
    r = services_of(app).redis
    allowed = [True]
    with app.test_request_context("/console/events"):
        response = stream.event_stream(r, lambda: {"x": "1"}, user="t",
                                       still_allowed=lambda: allowed[0], interval=0.05)
        events = iter(response.response)
        next(events), next(events)
        allowed[0] = False
        assert list(events) == []  # the stream ended
        response.close()


def test_with_redis_down_metrics_still_answer_and_say_what_was_left_out(app, client,
                                                                          monkeypatch, caplog):
    _break_redis(app, monkeypatch)
    answer = client.get("/metrics")
    assert answer.status_code == 200 and "ivr_webhook_seconds" in answer.text
    assert "ivr_queue_waiting" not in answer.text
    assert any("metrics read from Redis and SQL left out" in r.getMessage()
               for r in caplog.records)


def test_an_agent_page_wakes_only_for_changes_that_concern_that_agent():
    from ivr.console.agent import concerns
    from ivr.infra.live import MANY, Notice

    assert concerns(Notice("presence", {"agent_id": 7}), 7)
    assert not concerns(Notice("presence", {"agent_id": 8}), 7)
    assert concerns(Notice("offer", {"agent_id": 7}), 7)
    assert not concerns(Notice("offer", {"agent_id": 8}), 7)
    assert concerns(Notice("request", {"path": "/voice/hold/agent/status"}), 7)
    assert concerns(Notice("request", {"path": "/callbacks/status"}), 7)
    assert not concerns(Notice("request", {"path": "/voice/queue/wait"}), 7)
    assert not concerns(Notice("request", {"path": "/voice/gather"}), 7)
    assert concerns(Notice(MANY, {}), 7)


def test_the_session_key_comes_from_ivr_secret_key_when_it_is_set(app_config, monkeypatch):
    from ivr import create_app
    from ivr.infra.config import load_config

    monkeypatch.setenv("IVR_SECRET_KEY", "a-session-signing-key-0123456789")
    assert load_config()["IVR_SECRET_KEY"] == "a-session-signing-key-0123456789"
    app = create_app({k: v for k, v in app_config.items() if k != "IVR_SECRET_KEY"})
    assert app.secret_key == "a-session-signing-key-0123456789"
    monkeypatch.delenv("IVR_SECRET_KEY")
    derived = create_app(app_config).secret_key
    assert derived and derived != "a-session-signing-key-0123456789"
