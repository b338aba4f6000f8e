"""The chaos workload: callers, web callbacks and agents against `ivr serve`, with Twilio's
delivery at its worst and workers killed, and the counts of what must never happen.

`ivr serve --no-worker --chaos ...` runs with two `ivr worker` processes beside it (the RQ
worker, its scheduler and the callback dispatcher). The emulated network delays, repeats and
reorders every webhook and status callback, loses a share of final status callbacks, and
drops the connection of a share of REST requests, before or after acting on them. Every few
seconds one worker is killed with SIGKILL (mid-job, as the OOM killer does) and started again.

Meanwhile callers dial in and press 0: most hold until a person answers, some hang up while
holding, some leave the line for a callback that keeps their place, some walk a menu and
hang up. Web visitors ask for callbacks. Scripted agents take every call.

Once the run has settled, `INVARIANTS` are counted; each must be 0:
- callers who never reached a person, a callback or their own hang-up;
- agents left busy;
- callbacks lost (not ended), failed, dialled twice or never dialled;
- journey rows lost (an inbound call with no row, or none with its end) or duplicated;
- ghosts left in the line.

Used by tests/bench/chaos.py (300 calls, 100 callbacks, 5 agents) and, smaller, by
tests/journeys/test_chaos.py. Proof of work on POST /callbacks is off here (its cost is
measured in tests/bench/proof.py), and the per-address limit is raised: every visitor of the
run comes from 127.0.0.1.
"""

from __future__ import annotations

import json
import random
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import redis
import requests

from tests.support.event_pump import Pump
from tests.support.service import Service, open_all_day

AT = "2026-12-02 12:00"  # a Wednesday noon in the shop's zone: open, inside calling hours
MIX = (("hold", 0.55), ("abandon", 0.15), ("callback", 0.12), ("menu", 0.18))


@dataclass
class Caller:
    number: str
    kind: str
    sid: str = ""
    outcome: str = "pending"  # bridged | hung-up | callback | stranded: <why>
    waited: float | None = None  # seconds from pressing 0 to a person


class Workers:
    """`ivr worker` processes beside the service; SIGKILLed and restarted when chaos is on."""

    def __init__(self, svc: Service, count: int) -> None:
        self.svc, self.kills = svc, 0
        self.procs = [self._start(i) for i in range(count)]
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _start(self, i: int) -> subprocess.Popen:
        log = open(self.svc.workdir / f"worker{i}.log", "a")  # noqa: SIM115 - kept with the proc
        return subprocess.Popen([sys.executable, "-m", "ivr.cli", "worker"], cwd=self.svc.workdir,
                                env=self.svc.env, stdout=log, stderr=subprocess.STDOUT)

    def kill_every(self, seconds: float, rng: random.Random) -> None:
        def run() -> None:
            while not self._stop.wait(seconds * (0.5 + rng.random())):
                i = rng.randrange(len(self.procs))
                self.procs[i].send_signal(signal.SIGKILL)
                self.procs[i].wait()
                self.kills += 1
                self.procs[i] = self._start(i)

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()

    def stop_killing(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def stop(self) -> None:
        self.stop_killing()
        for proc in self.procs:
            proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()


@dataclass(frozen=True)
class Workload:
    """How much to run, and how hard Twilio and the machine are on it."""

    calls: int = 300
    callbacks: int = 100
    agents: int = 5
    seed: int = 5
    gap: float = 0.35  # mean seconds between arrivals
    concurrency: int = 48  # callers at once, at most
    kill_every: float = 8.0  # mean seconds between worker SIGKILLs (with chaos)
    chaos: str = "delay=0.8,repeat=0.3,drop=0.15,rest=0.05"  # ivr serve --chaos, and a seed
    settle_limit: float = 600  # how long the books may take to close once callers are done


def run_once(args: Workload, *, chaos: bool) -> dict:
    """Run the workload against a fresh `ivr serve` and two workers; the figures and counts."""
    rng = random.Random(args.seed)
    workdir = Path(tempfile.mkdtemp(prefix="ivr-chaos-"))
    svc = open_all_day(workdir)
    svc.env.update(CALLBACK_STUCK_AFTER="8", CALLBACK_SWEEP_INTERVAL="1",
                   CALLBACK_LOST_AFTER="10", CALLBACK_DISPATCH_GRACE="5", CALL_CHECK_AFTER="8",
                   CALLBACK_RETRY_BACKOFF="5,10",
                   CALLBACK_PROOF_OF_WORK="off", CALLBACK_LIMIT_PER_ADDRESS="100000/60",
                   LOG_LEVEL="WARNING")
    serve_args = ["--no-worker", "--at", AT]
    if chaos:
        serve_args += ["--chaos", f"seed={args.seed},{args.chaos}"]
    svc.start(*serve_args)
    workers = Workers(svc, 2)
    pump = Pump(svc)
    started = time.monotonic()
    try:
        agents = _staff(svc, args.agents)
        number = svc.emulator("GET", "").json()["numbers"][0]
        if chaos:
            workers.kill_every(args.kill_every, random.Random(args.seed + 1))
        callers = [Caller(f"+1415555{2000 + i:04d}", _kind(rng)) for i in range(args.calls)]
        customers = [f"+1415555{6000 + i:04d}" for i in range(args.callbacks)]
        plan = [("call", c) for c in callers] + [("web", p) for p in customers]
        rng.shuffle(plan)
        made: list[dict] = []
        with ThreadPoolExecutor(max_workers=args.concurrency) as pool:
            futures = []
            for what, item in plan:
                time.sleep(rng.random() * 2 * args.gap)
                if what == "call":
                    futures.append(pool.submit(_call, svc, pump, item, number, rng.random(),
                                                args.settle_limit))
                else:
                    futures.append(pool.submit(_ask_callback, svc, item, made))
            for f in futures:
                f.result()
        offered_seconds = time.monotonic() - started
        workers.stop_killing()
        settled = _settle(svc, made, args.settle_limit)
        settle_seconds = time.monotonic() - started - offered_seconds
        figures = _count(svc, pump, callers, customers, made, agents)
        chaos_counts = svc.emulator("GET", "").json()["chaos"] or {}
        waits = [c.waited for c in callers if c.waited is not None]
        return {
            **figures, "settled": settled, "worker_kills": workers.kills,
            "chaos": {k: chaos_counts.get(k, 0) for k in ("repeated", "dropped", "rest_lost")},
            "offered_seconds": round(offered_seconds, 1),
            "settle_seconds": round(settle_seconds, 1),
            "wait_to_agent_p50": round(statistics.median(waits), 2) if waits else None,
            "wait_to_agent_p95": round(_p95(waits), 2) if waits else None,
            "outcomes": _tally(c.outcome.split(":")[0] for c in callers),
        }
    finally:
        pump.stop()
        workers.stop()
        svc.stop()


def _kind(rng: random.Random) -> str:
    x, total = rng.random(), 0.0
    for kind, share in MIX:
        total += share
        if x < total:
            return kind
    return MIX[-1][0]


def _staff(svc: Service, count: int) -> dict[str, str]:
    agents = {f"Agent{i}": f"+1415555{100 + i:04d}" for i in range(count)}
    for name, phone in agents.items():
        added = svc.cli("agents", "add", name, "--phone", phone, "--queues", "support,billing",
                        "--wrap-up", "0")
        assert added.returncode == 0, added.stderr
        assert svc.cli("agents", "status", name, "available").returncode == 0
        # They answer at once, take the call at the whisper, and talk for a second and a half.
        svc.emulator("PUT", f"/parties/{phone}", json={
            "ring_seconds": 0.3, "digits": ["1"], "talk_seconds": 1.5}).raise_for_status()
    return agents


def _call(svc: Service, pump: Pump, caller: Caller, number: str, patience: float,
          settle: float) -> None:
    http = requests.Session()
    http.auth = ("AC" + "0" * 32, svc.auth_token)
    base = svc.url + "/_twilio/_emulator/calls"

    def act(action: str) -> None:
        http.post(f"{base}/{caller.sid}/act", json={"action": action}, timeout=30)

    if caller.kind == "callback":
        _quick(svc, caller.number)
    try:
        caller.sid = http.post(base, json={"from": caller.number, "to": number},
                               timeout=30).json()["sid"]
        if not pump.wait(caller.sid, lambda v: v.gathers >= 1 or v.ended, 60):
            caller.outcome = "stranded: no menu"
            return
        if caller.kind == "menu":
            act("2")
            pump.wait(caller.sid, lambda v: v.gathers >= 2 or v.ended, 30)
            act("hangup")
            caller.outcome = "hung-up"
            return
        pressed = time.monotonic()
        act("0")
        if not pump.wait(caller.sid, lambda v: v.enqueued or v.ended, 60):
            caller.outcome = "stranded: never queued"
            return
        if caller.kind in ("abandon", "callback"):
            pump.wait(caller.sid, lambda v: v.bridged or v.ended, 0.5 + 3.0 * patience)
        elif pump.wait(caller.sid, lambda v: v.bridged or v.ended, settle):
            pass
        view = pump.view(caller.sid)
        if view.bridged:
            caller.outcome, caller.waited = "bridged", time.monotonic() - pressed
        elif view.ended:
            caller.outcome = "stranded: ended while holding"
        elif caller.kind == "abandon":
            act("hangup")
            caller.outcome = "hung-up"
        elif caller.kind == "callback":
            seen = view.gathers
            act("1")  # leave the line for a callback that keeps the place
            if pump.wait(caller.sid, lambda v: v.gathers > seen or v.bridged or v.ended, 60):
                if pump.view(caller.sid).bridged:
                    caller.outcome, caller.waited = "bridged", time.monotonic() - pressed
                    return
                act("1")  # "to confirm, press 1"
                pump.wait(caller.sid, lambda v: v.ended, 60)
                caller.outcome = "callback"
            else:
                caller.outcome = "stranded: no callback offer"
        else:
            caller.outcome = "stranded: nobody answered"
    finally:
        pump.wait(caller.sid, lambda v: v.ended, 60) if caller.sid else None
        if caller.sid and not pump.view(caller.sid).ended:
            act("hangup")


def _quick(svc: Service, phone: str) -> None:
    """A customer who answers soon and talks briefly when called back."""
    svc.emulator("PUT", f"/parties/{phone}", json={
        "ring_seconds": 0.5, "digits": ["1"], "talk_seconds": 1.5}).raise_for_status()


def _ask_callback(svc: Service, phone: str, made: list[dict]) -> None:
    _quick(svc, phone)
    answer = requests.post(svc.url + "/callbacks", json={
        "phone": phone, "consent": True, "name": "Bench", "reason": "chaos"}, timeout=30)
    assert answer.status_code == 202, answer.text
    made.append({**answer.json(), "phone": phone})


def _states(svc: Service, made: list[dict]) -> list[str]:
    return [requests.get(f"{svc.url}/callbacks/{m['id']}", timeout=10,
                         headers={"X-Callback-Token": m["token"]}).json()["status"] for m in made]


def _settle(svc: Service, made: list[dict], seconds: float) -> bool:
    """Wait until every callback ended and nobody is busy; False when it never did."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        open_ = [s for s in _states(svc, made) if s not in ("completed", "failed", "cancelled")]
        db = _db(svc)
        try:
            open_requests = db.execute(
                "SELECT COUNT(*) FROM callback_requests WHERE status NOT IN "
                "('completed', 'failed', 'cancelled')").fetchone()[0]
            open_journeys = db.execute(
                "SELECT COUNT(*) FROM calls WHERE ended_at IS NULL").fetchone()[0]
        finally:
            db.close()
        queued = _gauge(requests.get(svc.url + "/metrics", timeout=10).text,
                        "ivr_journey_queued")
        if not (open_ or open_requests or open_journeys or queued or _busy(svc)):
            return True
        time.sleep(1)
    return False


def _busy(svc: Service) -> list[str]:
    out = json.loads(svc.cli("agents", "list", "--json").stdout)["agents"]
    return [a["name"] for a in out if a["presence"]["status"] not in ("available", "wrap_up")]


def _db(svc: Service) -> sqlite3.Connection:
    return sqlite3.connect(svc.workdir / "ivr.sqlite3", timeout=30)


def _count(svc: Service, pump: Pump, callers: list[Caller], customers: list[str],
           made: list[dict], agents: dict[str, str]) -> dict:
    events = list(pump.events)
    # Who the network rang, per number: a customer is dialled once per callback.
    rung: dict[str, set[str]] = {}
    for e in events:
        if e["kind"] == "ringing" and e["direction"] != "inbound":  # every dial, answered or not
            rung.setdefault(e["to"], set()).add(e["call"])
    agent_numbers = set(agents.values())
    states = _states(svc, made)
    db = _db(svc)
    try:
        asked_from_calls = {row[0] for row in db.execute(
            "SELECT phone FROM callback_requests WHERE status = 'completed'")}
        doubled = db.execute("SELECT COUNT(*) FROM (SELECT call_id, seq FROM call_events "
                             "GROUP BY call_id, seq HAVING COUNT(*) > 1)").fetchone()[0]
        rows = {sid: ended for sid, ended in db.execute("SELECT call_sid, ended_at FROM calls")}
    finally:
        db.close()
    inbound = [c.sid for c in callers if c.sid]
    unserved = [c for c in callers if c.outcome.startswith("stranded")
                or (c.outcome == "callback" and c.number not in asked_from_calls)]
    run = json.loads((svc.workdir / "var" / "ivr-serve.json").read_text())
    r = redis.Redis.from_url(run["redis_url"])
    try:
        left = {k.decode(): [m.decode() for m in r.zrange(k, 0, -1)]
                for k in r.scan_iter("ivr:line:*") if r.type(k) == b"zset" and r.zcard(k)}
    finally:
        r.close()
    metrics = requests.get(svc.url + "/metrics", timeout=10).text
    dead = _gauge(metrics, "ivr_journey_dead_letters")
    return {
        "callers_unserved": len(unserved),
        "unserved_why": _tally(c.outcome for c in unserved),
        "agents_busy": len(_busy(svc)),
        "callbacks_lost": sum(s not in ("completed", "failed", "cancelled") for s in states),
        "callbacks_failed": sum(s == "failed" for s in states),
        "callbacks_dialled_twice": sum(
            1 for number, calls in rung.items() if number not in agent_numbers and len(calls) > 1),
        "callbacks_never_dialled": sum(1 for p in customers if p not in rung),
        "journey_rows_lost": sum(1 for sid in inbound if rows.get(sid) is None)
        + (int(dead) if dead == dead else 1),  # NaN: the gauge is missing, count it as lost
        "journey_rows_duplicated": doubled,
        "ghosts_in_line": sum(len(members) for members in left.values()),
        "ghosts_where": left,
        "events_missed": pump.missed,
    }


def _gauge(metrics: str, name: str) -> float:
    for line in metrics.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return float("nan")


def _tally(items) -> dict[str, int]:
    out: dict[str, int] = {}
    for item in items:
        out[item] = out.get(item, 0) + 1
    return out


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]


INVARIANTS = ("callers_unserved", "agents_busy", "callbacks_lost", "callbacks_failed",
              "callbacks_dialled_twice", "callbacks_never_dialled", "journey_rows_lost",
              "journey_rows_duplicated", "ghosts_in_line")
