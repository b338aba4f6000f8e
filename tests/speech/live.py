"""Helpers for live-call speech tests: the app on a real port, a Twilio-like media stream, calls."""

from __future__ import annotations

import base64
import io
import json
import time
import uuid
import wave
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from threading import Thread
from urllib.parse import parse_qs, urlsplit

from simple_websocket import Client, ConnectionClosed
from werkzeug.serving import make_server

from speech.audio import mulaw_decode
from tests.conftest import AUTH_TOKEN, BASE_URL, sign
from tests.support.caller import SimulatedCall, flask_transport
from tests.support.twilio_cloud import RecordedRequest, TwilioCloud

ACCOUNT_SID = "AC" + "1" * 32
KOREAN_NUMBER = "+18005550199"
STREAM_URL = "wss://ivr.example.com/speech/stream"
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "speech"
FRAME = 160  # 20 ms of 8 kHz mu-law, as Twilio sends it
SILENCE = b"\xff" * FRAME


@contextmanager
def serve(app) -> Iterator[str]:
    """Serve `app` on a free local port (werkzeug, threaded); yields ws://127.0.0.1:PORT."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = Thread(target=server.serve_forever, daemon=True, name="test-server")
    thread.start()
    try:
        yield f"ws://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def fixture_for(key: str) -> bytes:
    """The first committed utterance (raw mu-law) of choice `key`."""
    from tests.speech.conftest import MANIFEST

    name = next(f for f, meta in sorted(MANIFEST["files"].items()) if meta["key"] == key)
    return (FIXTURES / name).read_bytes()


def dial(app, cloud: TwilioCloud, number: str = KOREAN_NUMBER) -> SimulatedCall:
    """A caller dials `number` through signed webhooks; Twilio's API knows the live call."""
    call = SimulatedCall(flask_transport(app.test_client(), BASE_URL), BASE_URL, AUTH_TOKEN,
                         called=number, account_sid=ACCOUNT_SID)
    call.dial()
    cloud.inbound_call(call.call_sid, to=number, from_=call.params["From"])
    return call


@dataclass
class StreamSpec:
    """The <Start><Stream> of a TwiML document."""

    url: str
    track: str
    name: str
    status_callback: str
    parameters: dict[str, str]


def stream_spec(document: str) -> StreamSpec | None:
    """The Stream a TwiML document starts, if any."""
    root = ET.fromstring(document)
    node = root.find("./Start/Stream")
    if node is None:
        return None
    params = {p.get("name", ""): p.get("value", "") for p in node.findall("Parameter")}
    return StreamSpec(node.get("url", ""), node.get("track", ""), node.get("name", ""),
                      node.get("statusCallback", ""), params)


def webhook(app, call: SimulatedCall, url: str, extra: dict | None = None) -> str:
    """Twilio requests `url` for the live call (signed); returns the TwiML."""
    form = {**call.params, **(extra or {})}
    parts = urlsplit(url)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    resp = app.test_client().post(path, data=form,
                                  headers={"X-Twilio-Signature": sign(url, form)})
    assert resp.status_code == 200, resp.get_data(as_text=True)
    return resp.get_data(as_text=True)


def gather_node(document: str) -> tuple[str, str] | None:
    """(flow, node) of the Gather a TwiML document waits in."""
    gather = ET.fromstring(document).find("Gather")
    if gather is None:
        return None
    query = parse_qs(urlsplit(gather.get("action", "")).query)
    return query["flow"][0], query["node"][0]


def wait_for_update(cloud: TwilioCloud, call_sid: str, timeout: float = 30.0
                    ) -> RecordedRequest | None:
    """The first REST update of the call (a redirect), waiting for it to arrive."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        updates = cloud.updates(call_sid)
        if updates:
            return updates[0]
        time.sleep(0.05)
    return None


def wav_of(ulaw: bytes) -> bytes:
    """A 16-bit PCM WAV of mu-law audio, as Twilio serves a recording."""
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(mulaw_decode(ulaw).astype("<i2").tobytes())
    return out.getvalue()


class TwilioStream:
    """A websocket client that talks like Twilio's Media Streams."""

    def __init__(self, server: str, *, url: str = STREAM_URL, signed: bool = True) -> None:
        headers = {"X-Twilio-Signature": sign(url, {})} if signed else {}
        self.ws = Client.connect(server + urlsplit(url).path, headers=headers)
        self.stream_sid = "MZ" + uuid.uuid4().hex
        self.seq = 0
        self.chunk = 0
        self.closed_by_server = False

    def send(self, message: dict) -> bool:
        """Send one message; False once the server has closed the socket."""
        self.seq += 1
        try:
            self.ws.send(json.dumps({**message, "sequenceNumber": str(self.seq)}))
        except ConnectionClosed:
            self.closed_by_server = True
        return not self.closed_by_server

    def start(self, call_sid: str, parameters: dict[str, str],
              account_sid: str = ACCOUNT_SID) -> bool:
        """`connected`, then `start` with the Stream's custom parameters."""
        self.send({"event": "connected", "protocol": "Call", "version": "1.0.0"})
        return self.send({
            "event": "start", "streamSid": self.stream_sid,
            "start": {"accountSid": account_sid, "streamSid": self.stream_sid,
                      "callSid": call_sid, "tracks": ["inbound"],
                      "customParameters": parameters,
                      "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000,
                                      "channels": 1}}})

    def media(self, payload: str, stream_sid: str | None = None) -> bool:
        """One `media` message with a base64 payload as given."""
        self.chunk += 1
        return self.send({"event": "media", "streamSid": stream_sid or self.stream_sid,
                          "media": {"track": "inbound", "chunk": str(self.chunk),
                                    "timestamp": str((self.chunk - 1) * 20),
                                    "payload": payload}})

    def play(self, audio: bytes, trailing_silence_ms: int = 1000) -> None:
        """Stream audio as 20 ms frames, then the quiet line after the caller stops talking."""
        audio += SILENCE * (trailing_silence_ms // 20)
        for i in range(0, len(audio), FRAME):
            frame = audio[i:i + FRAME].ljust(FRAME, b"\xff")
            if not self.media(base64.b64encode(frame).decode()):
                return

    def stop(self, call_sid: str) -> bool:
        """`stop`: the stream ended."""
        return self.send({"event": "stop", "streamSid": self.stream_sid,
                          "stop": {"accountSid": ACCOUNT_SID, "callSid": call_sid}})

    def wait_closed(self, timeout: float = 30.0) -> bool:
        """True when the server closes the socket within `timeout`."""
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                self.ws.receive(timeout=0.2)
        except ConnectionClosed:
            return True
        return False

    def close(self) -> None:
        try:
            self.ws.close()
        except ConnectionClosed:
            pass
