"""The README's `ivr serve`, started as a user starts it, walked through HTTP and the CLI only.

Embedded defaults (SQLite, an embedded Valkey, the in-process worker, the Twilio emulator), no
PUBLIC_BASE_URL and no Twilio credentials; a flows file open around the clock. The clock is
set with `--at` to a Wednesday at noon in New York, so the callers' calling hours (8:00-21:00
where the number is) hold whatever time the suite runs at.
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

import pytest
import requests
import yaml
from twilio.request_validator import RequestValidator

from tests.conftest import SHOP_FLOWS
from tests.support.proof import solve_over_http

CUSTOMER = "+14155550123"  # San Francisco: 9:00 there at the chosen time
AGENT_PHONE = "+14155550100"
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
            except requests.ConnectionError:
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


def open_all_day(workdir: Path) -> Service:
    """A Service in `workdir`, with the shop's flows open around the clock."""
    flows = yaml.safe_load(SHOP_FLOWS.read_text())
    flows["hours"]["shop"] = {"timezone": "America/New_York", "weekly": {"daily": "00:00-24:00"}}
    (workdir / "flows.yaml").write_text(yaml.safe_dump(flows, allow_unicode=True))
    return Service(workdir)


@pytest.fixture
def service(tmp_path: Path):
    svc = open_all_day(tmp_path)
    svc.start("--at", "2026-12-02 12:00")
    yield svc
    out = svc.stop()
    assert svc.proc.returncode == 0, out
    assert "IVR service stopped." in out
    assert not (tmp_path / "var" / "ivr-serve.json").exists()  # the run file goes with it


def test_the_three_journeys_through_http_and_the_cli(service: Service):
    banner_check = requests.get(service.url + "/healthz", timeout=5).json()
    assert banner_check["status"] == "ok"
    added = service.cli("agents", "add", "Dana", "--phone", AGENT_PHONE, "--queues",
                        "support,billing", "--wrap-up", "0")
    assert added.returncode == 0, added.stderr
    on = service.cli("agents", "status", "Dana", "available")
    assert (on.returncode, on.stdout.strip()) == (0, "agent 1 (Dana) is available")

    # 1. A web callback with an agent on duty: placed, then completed.
    #    As the widget does: consent ticked, the proof of work solved, then the details read
    #    with the token the answer holds.
    bare = requests.post(service.url + "/callbacks", json={"phone": CUSTOMER, "consent": True},
                         timeout=10)
    assert (bare.status_code, bare.json()["error"]) == (403, "proof_required")
    proof = solve_over_http(lambda url: requests.get(url, timeout=5), service.url)
    made = requests.post(service.url + "/callbacks", json={
        "phone": CUSTOMER, "name": "Mia", "reason": "a late parcel", "consent": True,
        "altcha": proof}, timeout=10)
    assert made.status_code == 202, made.text
    request_id, token = made.json()["id"], made.json()["token"]
    state = _until(lambda: requests.get(f"{service.url}/callbacks/{request_id}", timeout=5,
                                        headers={"X-Callback-Token": token}).json(),
                   lambda s: s["status"] == "completed", 60)
    assert (state["attempts"], state["outcome"], state["problem"]) == (1, "connected", None)
    heard = [e["text"] for e in service.events() if e["to"] == AGENT_PHONE and e["kind"] == "say"]
    assert heard[0] == ("Callback for the support line. Mia. About: a late parcel. "
                        "They asked 0 minutes ago. Connecting you now.")
    _until(lambda: service.cli("agents", "list", "--json").stdout,
           lambda out: json.loads(out)["agents"][0]["presence"]["status"] == "available", 20)

    # 2. A caller presses 0, holds, hears the agent answer after the whisper: answered.
    turns = service.call("0", "hold")
    after_zero, held = turns[1], turns[2]
    assert after_zero["waiting"] == "queue" and after_zero["queue"] == "support"
    assert "You are next in line." in after_zero["said"]
    assert f"{AGENT_PHONE} hears: Support. Pressed 0. Waited less than a minute. Press 1 to take " \
           "the call, or 2 to pass." in held["others"]
    assert f"{AGENT_PHONE} pressed 1" in held["others"]
    assert held["bridged"] and "Thank you for waiting. Connecting you now." in held["said"]
    report = _until(service.report, lambda r: r.get("answered") == 1, 20)
    assert (report["visits"], report["abandoned"]) == (1, 0)

    # 3. Two callers hang up while holding: abandoned, and the next caller is first in line.
    busy = service.cli("agents", "status", "Dana", "busy")
    assert busy.returncode == 0, busy.stderr
    for caller in ("+14155550111", "+14155550112"):
        turns = service.call("0", "hold:1", "hangup", caller=caller)
        assert turns[1]["waiting"] == "queue"
    report = _until(service.report, lambda r: r.get("abandoned") == 2, 20)
    assert (report["visits"], report["answered"]) == (3, 1)
    next_caller = service.call("0", caller="+14155550113")
    assert "You are next in line." in next_caller[1]["said"]


def test_a_late_gather_never_moves_a_live_call_back(service: Service):
    """A caller at the billing menu of a running service; the main menu's Gather (digit 3)
    arrives again, signed as Twilio signs it. The caller stays at billing, and their next key
    is taken there."""
    sid = service.emulator("POST", "/calls", json={"from": CUSTOMER, "to": "+18005550100"}
                           ).json()["sid"]

    def waiting():
        return service.emulator("GET", f"/calls/{sid}").json()["waiting_for_input"]

    def heard(text: str):
        return [e for e in service.events() if e["call"] == sid and e["kind"] == "say"
                and text in e["text"]]

    _until(waiting, bool, 20)
    service.emulator("POST", f"/calls/{sid}/act", json={"action": "wait"})  # the welcome
    _until(lambda: heard("For an order, press 1"), bool, 20)
    _until(waiting, bool, 20)
    service.emulator("POST", f"/calls/{sid}/act", json={"action": "2"})
    _until(lambda: heard("For a copy of an invoice"), bool, 20)
    _until(waiting, bool, 20)
    menu_gather = next(e["text"] for e in service.events() if e["call"] == sid
                       and e["kind"] == "webhook" and "/voice/gather" in e["text"]
                       and "node=main_menu" in e["text"])

    form = {"CallSid": sid, "AccountSid": "AC" + "0" * 32, "From": CUSTOMER,
            "To": "+18005550100", "CallStatus": "in-progress", "Direction": "inbound",
            "Digits": "3"}
    signature = RequestValidator(service.auth_token).compute_signature(menu_gather, form)
    late = requests.post(menu_gather, data=form, headers={"X-Twilio-Signature": signature},
                         timeout=10)

    assert late.status_code == 200
    assert "return anything within 30 days" not in late.text
    assert "For a copy of an invoice" in late.text  # where the caller really is
    service.emulator("POST", f"/calls/{sid}/act", json={"action": "1"})
    _until(lambda: heard("download every invoice"), bool, 20)
    assert not heard("return anything within 30 days")
    service.emulator("POST", f"/calls/{sid}/act", json={"action": "hangup"})


def _until(read, ok, seconds: float):
    deadline = time.monotonic() + seconds
    value = read()
    while not ok(value):
        if time.monotonic() > deadline:
            raise AssertionError(f"still {value!r} after {seconds} s")
        time.sleep(0.3)
        value = read()
    return value
