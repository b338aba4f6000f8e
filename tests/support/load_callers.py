"""Twilio's side of a call, played by a benchmark against a running service: three kinds of
caller (speaking over Media Streams in real time, holding on the wait URL, walking the keypad),
signed webhooks over HTTP, and what each level of load saw (tests/bench/capacity.py).

All of it runs on one asyncio loop, so hundreds of callers cost the load generator little;
the service's REST side (its redirects) is the emulator, `tests.support.twilio_cloud`.
"""

from __future__ import annotations

import asyncio
import base64
import json
import random
import time
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import aiohttp
import numpy as np
from twilio.request_validator import RequestValidator

from tests.support.twilio_cloud import TwilioCloud

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "speech"
TOKEN = "capacity-bench-token"
ACCOUNT = "AC" + "7" * 32
MAIN, KOREAN = "+18005550100", "+18005550199"
WEBHOOK_P99_MS, SPEECH_P95_MS = 100.0, 400.0
FRAME = 160
SILENCE = b"\xff" * FRAME
MEDIA = ('{{"event":"media","streamSid":"{sid}",'
         '"media":{{"track":"inbound","payload":"{payload}"}}}}')


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
        # How late this process sent each media frame after its real-time moment: Twilio sends
        # in real time, so a level where this grows measures the load generator, not the service.
        self.send_late_ms: list[float] = []
        # The service's own compute for each decision (`decision_ms` of its redirect): the
        # rest of speech_ms is waiting (for the audio to be read, for a thread, the redirect).
        self.compute_ms: list[float] = []
        self.measuring = False

    def figures(self) -> dict:
        return {"webhooks": len(self.webhook_ms), "webhook_p50_ms": pct(self.webhook_ms, 50),
                "webhook_p99_ms": pct(self.webhook_ms, 99),
                "speech_decisions": len(self.speech_ms),
                "speech_decision_p50_ms": pct(self.speech_ms, 50),
                "speech_decision_p95_ms": pct(self.speech_ms, 95),
                "speech_compute_p50_ms": pct(self.compute_ms, 50),
                "speech_compute_p95_ms": pct(self.compute_ms, 95),
                "streams_declined": self.declined, "streams_unheard": self.unheard,
                "frames_sent_late_p99_ms": pct(self.send_late_ms, 99),
                "frames_sent_late_max_ms": round(max(self.send_late_ms), 1)
                if self.send_late_ms else None,
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
                    if self.stage.measuring:
                        self.stage.send_late_ms.append(
                            max(0.0, time.monotonic() - (t0 + i / 8000)) * 1000)
                    if ended.done():
                        break
                    payload = base64.b64encode(audio[i:i + FRAME]).decode()
                    try:
                        await ws.send_str(MEDIA.format(sid=sid, payload=payload))
                    except (ConnectionResetError, aiohttp.ClientError):
                        break
                streamed = time.monotonic() - t0
                if not ended.done():
                    try:
                        await ws.send_str(json.dumps({"event": "stop", "streamSid": sid}))
                    except (ConnectionResetError, aiohttp.ClientError):
                        pass  # the service closed it as the audio ended (it had decided)
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
        query = parse_qs(urlsplit(url).query)
        heard = float(query.get("audio_s", ["nan"])[0])
        if heard != heard:
            self._error(f"a redirect without audio_s: {url}")
            return
        sent_at = time.time() - (time.monotonic() - (t0 + heard))  # that audio, on the wall
        if self.stage.measuring:
            self.stage.speech_ms.append((updates[0].at - sent_at) * 1000)
            self.stage.compute_ms.append(float(query.get("decision_ms", ["nan"])[0]))
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
