"""Output hygiene: log lines carry no passwords or tokens, /healthz tells strangers only up or
down, and /metrics can be kept behind a token of its own."""

from __future__ import annotations

import io
import json
import logging

import pytest
import redis

from ivr import create_app
from ivr.infra.logs import JsonFormatter
from ivr.infra.services import services_of
from tests.conftest import AUTH_TOKEN

ADMIN = "admin-token-for-hygiene-4f9c2e7a81"
METRICS = "metrics-token-for-hygiene-b3d05c"
PASSWORD = "s3cretpass"
# Nothing listens on port 1: every Redis call fails, and the URL carries a password.
DEAD_REDIS = f"redis://:{PASSWORD}@127.0.0.1:1/0"


@pytest.fixture
def hygiene_app(app_config):
    app = create_app({**app_config, "IVR_ADMIN_TOKEN": ADMIN, "METRICS_TOKEN": METRICS})
    yield app
    services_of(app).db.dispose()


def _log_lines(emit) -> list[dict]:
    """The JSON lines the configured `ivr` handler writes while `emit()` logs."""
    handler = next(h for h in logging.getLogger("ivr").handlers
                   if isinstance(h.formatter, JsonFormatter))
    out = io.StringIO()
    previous = handler.setStream(out)
    try:
        emit()
    finally:
        handler.setStream(previous)
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_log_lines_mask_url_passwords_and_the_configured_secrets(hygiene_app):
    """Message, arguments, extras and the traceback all pass through the one mask (today a
    Redis URL with its password, or a token in an error, was written out as it came)."""
    log = logging.getLogger("ivr.ops")  # a module's logger: its records reach the handler above

    def emit():
        try:
            raise redis.ConnectionError(f"no answer from {DEAD_REDIS} (token {AUTH_TOKEN})")
        except redis.ConnectionError:
            log.exception("Redis at %s refused; admin %s", DEAD_REDIS, ADMIN,
                          extra={"error": f"metrics token {METRICS}"})
        with hygiene_app.test_request_context("/healthz"):
            log.warning("inside a request: %s", f"postgresql://ivr:{PASSWORD}@db/ivr")

    first, second = _log_lines(emit)
    text = json.dumps([first, second])
    for secret in (PASSWORD, AUTH_TOKEN, ADMIN, METRICS):
        assert secret not in text
    assert first["msg"] == "Redis at redis://:***@127.0.0.1:1/0 refused; admin ***"
    assert first["error"] == "metrics token ***"
    assert "no answer from redis://:***@127.0.0.1:1/0 (token ***)" in first["exc"]
    assert second["msg"] == "inside a request: postgresql://ivr:***@db/ivr"


def test_healthz_says_only_up_or_down_without_the_admin_token(app_config, client):
    """Today anyone read which backend failed and its error text (hosts, ports, drivers)."""
    healthy = client.get("/healthz")
    assert (healthy.status_code, healthy.get_json()) == (200, {"status": "ok"})

    app = create_app({**app_config, "REDIS_URL": DEAD_REDIS, "IVR_ADMIN_TOKEN": ADMIN})
    try:
        dead = app.test_client()
        for headers in ({}, {"Authorization": "Bearer not-the-admin-token-000000000"}):
            response = dead.get("/healthz", headers=headers)
            assert (response.status_code, response.get_json()) == (503, {"status": "down"})
            text = response.get_data(as_text=True)
            for leak in (PASSWORD, "ConnectionError", "127.0.0.1", "checks"):
                assert leak not in text

        admin = dead.get("/healthz", headers={"Authorization": f"Bearer {ADMIN}"})
        assert admin.status_code == 503
        body = admin.get_json()
        assert body["status"] == "down"
        assert body["checks"]["redis"]["ok"] is False
        assert body["checks"]["redis"]["error"].startswith("ConnectionError: ")
        assert body["checks"]["database"]["ok"] is True
        assert PASSWORD not in admin.get_data(as_text=True)
    finally:
        services_of(app).db.dispose()


def test_metrics_need_the_metrics_token_when_one_is_set(hygiene_app, client):
    """Today /metrics answered anyone, whatever METRICS_TOKEN said."""
    assert client.get("/metrics").status_code == 200  # no METRICS_TOKEN: open, as before

    metrics = hygiene_app.test_client()
    for headers in ({}, {"Authorization": "Bearer wrong-token"},
                    {"Authorization": f"Basic {METRICS}"}, {"Authorization": f"Bearer {ADMIN}"}):
        refused = metrics.get("/metrics", headers=headers)
        assert refused.status_code == 401, headers
        assert refused.headers["WWW-Authenticate"] == 'Bearer realm="ivr-metrics"'
        assert "ivr_" not in refused.get_data(as_text=True)
    allowed = metrics.get("/metrics", headers={"Authorization": f"Bearer {METRICS}"})
    assert allowed.status_code == 200
    assert "ivr_webhook_seconds" in allowed.get_data(as_text=True)
