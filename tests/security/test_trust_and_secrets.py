"""Holes 1 and 2 of the security review: proxy headers are believed only from configured
proxies, and no process serves on a public development token or a weak admin token."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import pytest

from ivr import create_app
from ivr.errors import ConfigError
from tests.conftest import AUTH_TOKEN, BASE_URL, ROOT, sign

CALL = {"CallSid": "CA" + "a" * 32, "From": "+14155550123", "To": "+18005550100",
        "AccountSid": "AC" + "1" * 32, "CallStatus": "ringing"}


def _post_callback(client, address_header: str | None):
    headers = {"X-Forwarded-For": address_header} if address_header else {}
    return client.post("/callbacks", json={"phone": "+14155550123", "consent": True},
                       headers=headers, environ_base={"REMOTE_ADDR": "203.0.113.9"})


def test_a_client_cannot_pick_its_own_address(app_config, tmp_path):
    """The per-address limit holds against a client that sends a new X-Forwarded-For each time
    (today's default trusted one proxy, so each forged address got a fresh allowance)."""
    app = create_app({**app_config, "CALLBACK_LIMIT_PER_ADDRESS": "2/600",
                      "CALLBACK_LIMIT_PER_NUMBER": "50/600", "CALLBACK_PROOF_OF_WORK": "off"})
    client = app.test_client()
    codes = [_post_callback(client, f"198.51.100.{i}").status_code for i in range(4)]
    assert codes[2:] == [429, 429]


def test_a_configured_proxy_is_believed(app_config):
    app = create_app({**app_config, "TRUSTED_PROXIES": "203.0.113.0/24",
                      "CALLBACK_LIMIT_PER_ADDRESS": "2/600", "CALLBACK_LIMIT_PER_NUMBER": "50/600",
                      "CALLBACK_PROOF_OF_WORK": "off"})
    client = app.test_client()
    codes = [_post_callback(client, f"198.51.100.{i}").status_code for i in range(4)]
    assert 429 not in codes  # four different real clients behind the trusted proxy


def test_a_client_cannot_pick_the_host_its_signature_is_checked_against(app_config):
    """Without PUBLIC_BASE_URL, a webhook signed for another host is refused even when it says
    X-Forwarded-Host: that host (today the header was believed)."""
    app = create_app({**app_config, "PUBLIC_BASE_URL": None})
    forged_for = "https://evil.example/voice/incoming"
    response = app.test_client().post(
        "/voice/incoming", data=CALL, base_url="https://ivr.example.com",
        headers={"X-Twilio-Signature": sign(forged_for, CALL),
                 "X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "https"})
    assert response.status_code == 403
    honest = app.test_client().post(
        "/voice/incoming", data=CALL, base_url="https://ivr.example.com",
        headers={"X-Twilio-Signature": sign("https://ivr.example.com/voice/incoming", CALL)})
    assert honest.status_code == 200


def test_no_twilio_token_no_service(app_config):
    """Today an unset TWILIO_AUTH_TOKEN fell back to a public development token."""
    with pytest.raises(ConfigError, match="TWILIO_AUTH_TOKEN is not set"):
        create_app({**app_config, "TWILIO_AUTH_TOKEN": None})


@pytest.mark.parametrize(("settings", "words"), [
    ({"IVR_ADMIN_TOKEN": "admin"}, "too weak"),
    ({"IVR_ADMIN_TOKEN": "short-but-random-9x"}, "too weak"),
    ({"IVR_ADMIN_TOKEN": "a" * 40}, "too weak"),
    ({"IVR_ADMIN_API": "on", "IVR_ADMIN_TOKEN": None}, "IVR_ADMIN_TOKEN is not set"),
])
def test_a_weak_or_missing_admin_token_is_refused(app_config, settings, words):
    with pytest.raises(ConfigError, match=words):
        create_app({**app_config, **settings})


def test_a_weak_admin_token_is_fine_when_the_admin_api_is_off(app_config):
    app = create_app({**app_config, "IVR_ADMIN_TOKEN": "admin", "IVR_ADMIN_API": "off"})
    response = app.test_client().get("/admin/agents", headers={"Authorization": "Bearer admin"})
    assert response.status_code == 403


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _environment(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("TWILIO_", "IVR_ADMIN", "PUBLIC_BASE_URL"))}
    return {**env, "IVR_FLOWS": str(ROOT / "tests/fixtures/flows/shop.yaml"), **extra}


def test_gunicorn_without_a_token_refuses_to_start_and_says_why(redis_url, tmp_path):
    port = _free_port()
    env = _environment(REDIS_URL=redis_url, DATABASE_URL=f"sqlite:///{tmp_path}/g.sqlite3")
    done = subprocess.run(
        [sys.executable, "-m", "gunicorn", "--workers", "1", "--bind", f"127.0.0.1:{port}",
         "ivr:create_app()"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert "TWILIO_AUTH_TOKEN is not set: Twilio's webhooks could not be checked" in done.stderr


def test_the_worker_without_a_token_refuses_to_start_in_one_line(redis_url, tmp_path):
    env = _environment(REDIS_URL=redis_url, DATABASE_URL=f"sqlite:///{tmp_path}/w.sqlite3")
    done = subprocess.run([sys.executable, "-m", "ivr.cli", "worker", "--burst"], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "Error: TWILIO_AUTH_TOKEN is not set: Twilio's webhooks could not be checked. Set it "
        "and TWILIO_ACCOUNT_SID, or run `ivr serve`, which emulates Twilio on this machine"]


def test_ivr_serve_makes_a_token_for_each_run_and_says_so(tmp_path):
    port = _free_port()
    env = _environment()
    env.pop("REDIS_URL", None)
    env.pop("DATABASE_URL", None)
    proc = subprocess.Popen([sys.executable, "-m", "ivr.cli", "serve", "--port", str(port)],
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 30
        run_file = tmp_path / "var" / "ivr-serve.json"
        while not run_file.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        token = json.loads(run_file.read_text())["twilio_auth_token"]
    finally:
        proc.send_signal(2)
        out, _ = proc.communicate(timeout=20)
    assert len(token) >= 32 and token != AUTH_TOKEN
    assert "signed with a token made for this run (simulated telephony)" in out
    assert token not in out  # the banner shows no secret
    assert BASE_URL not in out
