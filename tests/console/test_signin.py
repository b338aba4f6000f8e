"""Signing in to the console: tokens, the session cookie, CSRF, and who may see what."""

from __future__ import annotations

import pytest

from ivr.infra.agents import rotate_token
from ivr.infra.services import services_of
from tests.console.conftest import ADMIN, csrf_of, sign_in

HTML = {"Accept": "text/html"}


def test_a_page_sends_a_stranger_to_the_sign_in_form_and_a_script_gets_401(client):
    page = client.get("/console", headers=HTML)
    assert page.status_code == 302
    assert page.headers["Location"].startswith("/console/signin?next=/console")
    script = client.get("/console/wallboard.json")
    assert script.status_code == 401
    assert script.get_json() == {"error": "console_401",
                                 "message": "sign in to the console first"}


def test_the_admin_signs_in_and_the_cookie_is_httponly_lax_and_secure_over_https(client):
    form = client.get("/console/signin", headers=HTML)
    assert form.status_code == 200 and 'name="csrf_token"' in form.text
    done = client.post("/console/signin", data={"token": ADMIN,
                                                "csrf_token": csrf_of(form.text)})
    assert (done.status_code, done.headers["Location"]) == (302, "/console")
    cookie = next(c for c in done.headers.getlist("Set-Cookie")
                  if c.startswith("ivr_console="))
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Secure" in cookie  # the test app's PUBLIC_BASE_URL is https
    assert client.get("/console", headers=HTML).status_code == 200


@pytest.fixture
def plain_http_config(app_config: dict) -> dict:
    return {**app_config, "PUBLIC_BASE_URL": "http://127.0.0.1:5000"}


def test_over_plain_http_the_cookie_is_not_marked_secure(plain_http_config):
    from ivr import create_app

    client = create_app(plain_http_config).test_client()
    form = client.get("/console/signin", headers=HTML)
    done = client.post("/console/signin", data={"token": ADMIN,
                                                "csrf_token": csrf_of(form.text)})
    cookie = next(c for c in done.headers.getlist("Set-Cookie")
                  if c.startswith("ivr_console="))
    assert "Secure" not in cookie and "HttpOnly" in cookie


def test_a_wrong_token_or_a_missing_csrf_token_is_refused(client):
    form = client.get("/console/signin", headers=HTML)
    wrong = client.post("/console/signin", data={"token": "not-it",
                                                 "csrf_token": csrf_of(form.text)},
                        headers=HTML)
    assert wrong.status_code == 403
    assert "That token is not the admin token or an agent&#39;s token." in wrong.text
    bare = client.post("/console/signin", data={"token": ADMIN}, headers=HTML)
    assert bare.status_code == 400
    assert "did not come from the console" in bare.text
    assert client.get("/console", headers=HTML).status_code == 302  # still signed out


def test_sign_in_never_sends_the_browser_off_site(client):
    form = client.get("/console/signin?next=https://evil.example/console", headers=HTML)
    done = client.post("/console/signin", data={
        "token": ADMIN, "csrf_token": csrf_of(form.text), "next": "//evil.example/console"})
    assert done.headers["Location"] == "/console"
    form = client.get("/console/signin", headers=HTML)
    done = client.post("/console/signin", data={
        "token": ADMIN, "csrf_token": csrf_of(form.text), "next": "/console/flows"})
    assert done.headers["Location"] == "/console/flows"


def test_an_agent_signs_in_to_their_own_view_and_not_the_admin_pages(app, client, add_agent):
    _agent, token = add_agent()
    form = client.get("/console/signin", headers=HTML)
    done = client.post("/console/signin", data={"token": token,
                                                "csrf_token": csrf_of(form.text)})
    assert done.headers["Location"] == "/console/agent"
    for page in ("/console", "/console/callbacks", "/console/flows", "/console/reports",
                 "/console/wallboard.json", "/console/events"):
        assert client.get(page, headers=HTML).status_code == 403, page


def test_a_new_token_ends_the_sessions_made_with_the_old_one(app, client, add_agent):
    agent, token = add_agent()
    sign_in(client, token)
    assert client.get("/console/agent", headers=HTML).status_code == 200
    rotate_token(services_of(app).db, agent.id)
    assert client.get("/console/agent", headers=HTML).status_code == 302

    admin = app.test_client()
    sign_in(admin, ADMIN)
    app.config["IVR_ADMIN_TOKEN"] = "a-new-admin-token-0123456789abcdefgh"
    assert admin.get("/console", headers=HTML).status_code == 302


def test_signing_out_needs_the_csrf_token_and_ends_the_session(admin):
    client, csrf = admin
    assert client.post("/console/signout").status_code == 400
    assert client.get("/console", headers=HTML).status_code == 200
    assert client.post("/console/signout", data={"csrf_token": csrf}).status_code == 302
    assert client.get("/console", headers=HTML).status_code == 302


def test_the_console_is_never_framed_nor_cached(admin):
    client, _csrf = admin
    page = client.get("/console", headers=HTML)
    assert page.headers["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
    assert page.headers["Cache-Control"] == "no-store"
    script = client.get("/console/static/vendor/htmx.min.js")
    assert script.status_code == 200 and "no-store" not in script.headers.get(
        "Cache-Control", "")
