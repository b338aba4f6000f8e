"""The console through Flask's test client: an app with an admin token, signed-in clients."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator

import pytest
from selenium.webdriver.common.by import By
from werkzeug.serving import make_server

from ivr.infra import agents as ag
from ivr.infra.services import services_of

ADMIN = "console-admin-token-0123456789abcdef"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
def app_config(app_config: dict) -> dict:
    return {**app_config, "IVR_ADMIN_TOKEN": ADMIN}


def csrf_of(html: str) -> str:
    """The CSRF token a console page's forms carry."""
    found = _CSRF.search(html)
    assert found, "no CSRF token on the page"
    return found.group(1)


def sign_in(client, token: str) -> str:
    """Sign `client` in with `token`; the CSRF token of its session."""
    page = client.get("/console/signin", headers={"Accept": "text/html"})
    response = client.post("/console/signin", data={"token": token,
                                                    "csrf_token": csrf_of(page.text)})
    assert response.status_code == 302, response.text
    return csrf_of(client.get(response.headers["Location"],
                              headers={"Accept": "text/html"}).text)


@pytest.fixture
def admin(client):
    """A test client signed in as admin, and its CSRF token: (client, csrf)."""
    return client, sign_in(client, ADMIN)


@pytest.fixture
def add_agent(app):
    """Add an agent: (agent, token)."""
    services = services_of(app)

    def add(name: str = "Dana", phone: str = "+14155550100", queues: str = "support",
            **extra):
        return ag.add_agent(services.db, services.redis, name=name, kind="phone",
                            address=phone, queues=[q for q in queues.split(",") if q],
                            **extra)

    return add


@pytest.fixture
def served(app) -> Iterator[str]:
    """The app on a real local port, for a browser or an event stream: its base URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


def sign_in_browser(browser, url: str, token: str) -> None:
    """Open `url` in Chromium and sign in through the form it is sent to."""
    from tests.callback.browsing import wait_for

    browser.get(url)
    wait_for(browser, "#token").send_keys(token)
    browser.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()


@pytest.fixture
def service(tmp_path):
    """The README's `ivr serve` in its own process (embedded defaults, the Twilio emulator),
    open all day, a Wednesday at noon in New York, with a known admin token."""
    from tests.support.service import open_all_day

    svc = open_all_day(tmp_path)
    svc.env["IVR_ADMIN_TOKEN"] = ADMIN
    svc.start("--at", "2026-12-02 12:00")
    yield svc
    out = svc.stop()
    assert svc.proc.returncode == 0, out
