"""Fixtures for callbacks: the Twilio REST stand-in wired to the app, agents, a clock, a worker,
and for browsers the app on a real port beside a shop's own site."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from rq import SimpleWorker
from werkzeug.serving import make_server

from callback import runtime
from callback.deps import deps_of
from callback.dispatch import dispatch_once
from callback.settings import RQ_QUEUE
from tests.callback.browsing import Site
from tests.conftest import AUTH_TOKEN, BASE_URL
from tests.support.deliveries import flask_deliver
from tests.support.twilio_cloud import TwilioCloud

ACCOUNT_SID = "AC" + "1" * 32
AGENT_NUMBER = "+12125550001"
CUSTOMER = "+14155550123"  # San Francisco


class Clock:
    """A settable aware-UTC clock: the app's one clock (CLOCK)."""

    def __init__(self, at: dt.datetime) -> None:
        self.at = at

    def __call__(self) -> dt.datetime:
        return self.at

    def advance(self, seconds: float) -> None:
        self.at += dt.timedelta(seconds=seconds)


@pytest.fixture
def always_open_flows(flows_path: Path) -> Path:
    """The shipped flows with the support queue open around the clock."""
    data = yaml.safe_load(flows_path.read_text())
    data["queues"]["support"]["hours"] = None
    flows_path.write_text(yaml.safe_dump(data, allow_unicode=True))
    return flows_path


@pytest.fixture
def twilio_cloud() -> Iterator[TwilioCloud]:
    """The REST stand-in on a local port; webhooks are wired to the app by `callback_app`."""
    with TwilioCloud(ACCOUNT_SID, AUTH_TOKEN) as cloud:
        yield cloud


@pytest.fixture
def clock() -> Clock:
    # A Wednesday, 16:00 UTC: noon in New York, 9:00 in San Francisco.
    return Clock(dt.datetime(2026, 3, 11, 16, 0, tzinfo=dt.UTC))


@pytest.fixture
def app_config(app_config: dict, twilio_cloud: TwilioCloud, clock: Clock,
               always_open_flows: Path) -> dict:
    return {
        **app_config,
        "TWILIO_API_BASE": twilio_cloud.base_url,
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "CLOCK": clock,
        "CALLBACK_RETRY_BACKOFF": "0",
        "CALLBACK_LIMIT_PER_ADDRESS": "20/600",
        # The proof of work has its own tests (tests/security, and the widget in Chromium).
        "CALLBACK_PROOF_OF_WORK": "off",
    }


def ask(client, fields: dict, **kwargs) -> dict:
    """Ask for a callback as the widget does (consent ticked), then read its details with the
    token, as the widget does: the details, with the token."""
    made = client.post("/callbacks", json={"consent": True, **fields}, **kwargs)
    assert made.status_code == 202, made.get_json()
    answer = made.get_json()
    details = client.get(f"/callbacks/{answer['id']}",
                         headers={"X-Callback-Token": answer["token"]})
    assert details.status_code == 200, details.get_json()
    return {**details.get_json(), "token": answer["token"]}


@pytest.fixture
def callback_app(app, client, twilio_cloud: TwilioCloud):
    """The app, with the stand-in's webhooks delivered to it and jobs bound to its Deps."""
    twilio_cloud.deliver = flask_deliver(client, BASE_URL)
    runtime.bind(deps_of(app))
    return app


@pytest.fixture
def deps(callback_app):
    return deps_of(callback_app)


@pytest.fixture
def agent(deps):
    """One available phone agent on the support queue."""
    from ivr.infra.agents import add_agent, set_presence

    row, _token = add_agent(deps.db, deps.redis, name="Ana", kind="phone",
                            address=AGENT_NUMBER, queues=["support"], wrap_up_seconds=0,
                            now=deps.now())
    set_presence(deps.db, deps.redis, row.id, "available", now=deps.now())
    return row


@pytest.fixture
def run_jobs(deps, redis_url: str):
    """Dispatch due callbacks and run every queued RQ job in this process."""
    import redis

    conn = redis.Redis.from_url(redis_url)

    def run(dispatch: bool = True) -> int:
        if dispatch:
            dispatch_once(deps)
        worker = SimpleWorker([RQ_QUEUE], connection=conn)
        worker.work(burst=True)
        return worker.successful_job_count

    yield run
    conn.close()


@pytest.fixture
def served(callback_app) -> Iterator[str]:
    """The app on a real local port, for a browser: its base URL."""
    server = make_server("127.0.0.1", 0, callback_app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


@pytest.fixture
def shop(tmp_path) -> Iterator[Site]:
    """A shop's own web server, on another origin than the service's."""
    site = Site(tmp_path)
    yield site
    site.close()
