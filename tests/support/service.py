"""`ivr serve` in its own process, as a user starts it, and the `ivr` CLI run beside it.

`Service` starts the README's command in a directory of its own with nothing exported (the
embedded Valkey, SQLite, the in-process worker and the Twilio emulator), and talks to it over
HTTP, the emulator's control API and the CLI only. The journeys and the chaos bench use it.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests
import yaml

from tests.conftest import SHOP_FLOWS

CUSTOMER = "+14155550123"  # San Francisco: 9:00 there at the chosen time
EMPTIED = ("REDIS_URL", "DATABASE_URL", "TWILIO_AUTH_TOKEN", "TWILIO_ACCOUNT_SID",
           "PUBLIC_BASE_URL", "TWILIO_API_BASE", "IVR_FLOWS", "IVR_RUN_FILE")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Service:
    """`ivr serve` in its own process, and the CLI run next to it, in one directory."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {k: v for k, v in os.environ.items() if k not in EMPTIED}
        self.proc: subprocess.Popen | None = None

    def start(self, *args: str) -> None:
        # Its output goes to a file: a pipe nobody reads fills up (64 KB of logs), and then
        # every thread that logs blocks, which looks like a hung service.
        self.log = self.workdir / "ivr-serve.log"
        with open(self.log, "w") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "ivr.cli", "serve", "--port", str(self.port), *args],
                cwd=self.workdir, env=self.env, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if requests.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return
            except requests.RequestException:  # not listening yet, or a slow first answer
                time.sleep(0.1)
        raise AssertionError("ivr serve did not come up: " + self.stop())

    def stop(self) -> str:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        return self.log.read_text(errors="replace")

    def cli(self, *args: str, timeout: float = 90) -> subprocess.CompletedProcess:
        """An `ivr` command run where the service runs, with nothing exported."""
        return subprocess.run([sys.executable, "-m", "ivr.cli", *args], cwd=self.workdir,
                              env=self.env, capture_output=True, text=True, timeout=timeout)

    def call(self, *script: str, caller: str = CUSTOMER) -> list[dict]:
        """`ivr simulate --url` with a script; its JSON turns."""
        done = self.cli("simulate", "--url", self.url, "--from", caller, "--script",
                        ",".join(script), "--json")
        assert done.returncode == 0, done.stdout + done.stderr
        return [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]

    def report(self) -> dict:
        done = self.cli("report", "--json")
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)["queues"].get("support", {})

    @property
    def auth_token(self) -> str:
        """The run's own Twilio auth token (from the run file): it signs the webhooks."""
        return json.loads((self.workdir / "var" / "ivr-serve.json").read_text())[
            "twilio_auth_token"]

    def emulator(self, method: str, path: str, **kwargs) -> requests.Response:
        """The emulated network's control API, with the run's own account."""
        return requests.request(method, self.url + "/_twilio/_emulator" + path,
                                auth=("AC" + "0" * 32, self.auth_token), timeout=10, **kwargs)

    def events(self) -> list[dict]:
        """What the emulated network did."""
        return self.emulator("GET", "/events").json()["events"]


def open_all_day(workdir: Path, source: Path = SHOP_FLOWS) -> Service:
    """A Service in `workdir`, with the shop's flows (or `source`) open around the clock."""
    flows = yaml.safe_load(source.read_text())
    flows["hours"]["shop"] = {"timezone": "America/New_York", "weekly": {"daily": "00:00-24:00"}}
    (workdir / "flows.yaml").write_text(yaml.safe_dump(flows, allow_unicode=True))
    return Service(workdir)


def until(read, ok, seconds: float):
    deadline = time.monotonic() + seconds
    value = read()
    while not ok(value):
        if time.monotonic() > deadline:
            raise AssertionError(f"still {value!r} after {seconds} s")
        time.sleep(0.3)
        value = read()
    return value
