"""The recognition pool and the admission of streams, part by part (the journey is
tests/speech/test_green_serving.py): work runs on the pool's threads, the pool says how far
behind it is, and a stream that starts while it is behind is declined, not heard late."""

from __future__ import annotations

import base64
import json
import threading
import time

from ivr.core.callstate import CallState
from speech.live.capacity import Streams
from speech.live.pool import RecognitionPool
from speech.live.session import Close, MediaStreamHandler
from tests.speech.conftest import KOREAN_CHOICES

CALL = "CA" + "5" * 32
STREAM = "MZ" + "5" * 32
START = {"event": "start", "streamSid": STREAM, "start": {
    "streamSid": STREAM, "callSid": CALL, "accountSid": "AC" + "1" * 32,
    "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
    "customParameters": {"flow": "korean", "node": "ko_menu", "language": "ko",
                         "choices": json.dumps(KOREAN_CHOICES)}}}


def media() -> str:
    """20 ms of a quiet line."""
    return json.dumps({"event": "media", "streamSid": STREAM, "media": {
        "track": "inbound", "payload": base64.b64encode(b"\xff" * 160).decode()}})


def test_work_runs_on_the_pools_threads_and_returns_its_result():
    pool = RecognitionPool(2)
    caller = threading.get_ident()
    try:
        ran_on = pool.run(threading.get_ident)
        assert ran_on != caller
        assert pool.run(sum, [1, 2, 3]) == 6
        assert pool.pending == 0
    finally:
        pool.shutdown()


def test_lag_is_how_long_work_waited_for_a_thread():
    pool = RecognitionPool(1)
    release = threading.Event()
    try:
        blocker = threading.Thread(target=pool.run, args=(release.wait,))
        blocker.start()
        time.sleep(0.05)
        behind = threading.Thread(target=pool.run, args=(time.sleep, 0))
        behind.start()  # waits for the one thread while the blocker holds it
        time.sleep(0.4)
        assert pool.pending == 2
        release.set()
        blocker.join()
        behind.join()
        assert 0.35 <= pool.lag() < 5
        assert pool.pending == 0
    finally:
        pool.shutdown()


def test_an_idle_pool_is_not_behind():
    pool = RecognitionPool(1)
    try:
        for _ in range(5):
            pool.run(time.sleep, 0.01)
        assert pool.lag() < 0.25
    finally:
        pool.shutdown()


class Behind:
    """A pool whose work lately waited `seconds` for a thread."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def lag(self) -> float:
        return self.seconds


def test_streams_are_declined_while_recognition_is_behind_and_taken_again_after():
    pool = Behind(0.4)
    streams = Streams(pool, max_lag=0.25, max_streams=0)
    assert streams.admit() == "speech recognition is 400 ms behind (SPEECH_MAX_LAG 250 ms)"
    assert streams.admitted == 0 and streams.declined == 1
    pool.seconds = 0.1
    assert streams.admit() is None
    assert streams.admitted == 1


def test_a_stream_cap_counts_streams_admitted_and_not_yet_released():
    streams = Streams(Behind(0), max_lag=0.25, max_streams=2)
    assert streams.admit() is None and streams.admit() is None
    assert streams.admit() == "2 streams are open here (SPEECH_MAX_STREAMS 2)"
    streams.release()
    assert streams.admit() is None


class BusyPorts:
    """A live call at the Korean menu, the real model, and a stream place granted or not."""

    def __init__(self, model, why: str | None) -> None:
        self.model, self.why = model, why
        self.released = 0
        self.computed = 0
        self.behind: list[float] = []

    def call_state(self, call_sid: str) -> CallState:
        return CallState(call_sid, "korean", "v1", "ko_menu", "ko")

    def is_token_valid(self, start) -> bool:
        return True

    def model_for(self, language: str):
        return self.model

    def decided(self, start, decision) -> None:
        raise AssertionError("a quiet line decides nothing")

    def admit(self) -> str | None:
        return self.why

    def release(self) -> None:
        self.released += 1

    def heard(self, behind: float) -> None:
        self.behind.append(behind)

    def compute(self, fn, *args):
        self.computed += 1
        return fn(*args)


def test_a_declined_stream_is_closed_at_its_start_and_never_recognised(korean_model):
    ports = BusyPorts(korean_model, "speech recognition is 400 ms behind (SPEECH_MAX_LAG 250 ms)")
    handler = MediaStreamHandler(ports)
    assert handler.handle(json.dumps(START)) is False
    assert handler.closed is Close.BUSY and handler.session is None
    assert handler.errors[-1] == ("stream declined: speech recognition is 400 ms behind "
                                  "(SPEECH_MAX_LAG 250 ms); the menu takes keys only for this "
                                  "caller")
    assert handler.handle(media()) is False
    handler.finish()
    assert ports.computed == 0 and ports.released == 0  # nothing was taken, nothing given back


def test_an_admitted_stream_gives_its_place_back_once_when_it_ends(korean_model):
    ports = BusyPorts(korean_model, None)
    handler = MediaStreamHandler(ports)
    assert handler.handle(json.dumps(START))
    assert handler.session is not None and ports.computed == 1  # built on the pool
    handler.finish()
    handler.finish()
    assert ports.released == 1


def test_frames_that_arrive_together_are_decoded_as_one_piece_of_work(korean_model):
    ports = BusyPorts(korean_model, None)
    handler = MediaStreamHandler(ports)
    handler.handle(json.dumps(START))
    before = ports.computed
    assert handler.handle_batch([media() for _ in range(10)])
    assert ports.computed == before + 1


def test_streams_are_declined_when_audio_is_heard_late_though_no_work_waited():
    """Threads that start at once but run slowly (the host's cores busy elsewhere) show no
    wait in the pool; the streams' own lateness shows it."""
    streams = Streams(Behind(0), max_lag=0.25, max_streams=0)
    streams.heard(0.05)
    assert streams.admit() is None
    streams.heard(0.6)
    assert streams.admit() == "speech recognition is 600 ms behind (SPEECH_MAX_LAG 250 ms)"
    assert streams.declined == 1


def test_late_audio_stops_counting_once_it_is_older_than_the_window(monkeypatch):
    streams = Streams(Behind(0), max_lag=0.25, max_streams=0)
    streams.heard(0.6)
    later = time.monotonic() + 3.5
    monkeypatch.setattr("speech.live.capacity.time.monotonic", lambda: later)
    assert streams.behind() == 0 and streams.admit() is None


class SlowPorts(BusyPorts):
    """Recognition that takes `seconds` more than the real model for each piece of audio."""

    def __init__(self, model, seconds: float) -> None:
        super().__init__(model, None)
        self.seconds = seconds

    def compute(self, fn, *args):
        time.sleep(self.seconds)
        return super().compute(fn, *args)


def test_a_stream_reports_how_far_behind_its_caller_recognition_is(korean_model):
    """Audio sent in real time, 20 ms a frame, to a recogniser that needs 60 ms a frame: the
    stream falls behind by about 40 ms a frame, and says so after each piece it decodes."""
    ports = SlowPorts(korean_model, 0.06)
    handler = MediaStreamHandler(ports)
    handler.handle(json.dumps(START))
    sent = time.monotonic()
    for i in range(10):
        time.sleep(max(0.0, sent + i * 0.02 - time.monotonic()))
        assert handler.handle(media())
    assert len(ports.behind) == 10
    assert ports.behind[-1] > 0.25  # ~0.36 s: 10 frames of 60 ms for 200 ms of audio
    assert ports.behind == sorted(ports.behind)  # later and later


def test_audio_sent_faster_than_real_time_is_never_late(korean_model):
    ports = BusyPorts(korean_model, None)
    handler = MediaStreamHandler(ports)
    handler.handle(json.dumps(START))
    for _ in range(5):
        assert handler.handle_batch([media() for _ in range(20)])
    assert ports.behind and max(ports.behind) < 0


def test_a_stream_start_after_the_model_loaded_searches_no_disk(app, monkeypatch):
    """Finding a model reads every installed package's metadata (tens of ms, once on the
    event loop for every stream under gevent). The app finds and loads it once; each stream
    after that is given the loaded model."""
    models = app.extensions["speech.models"]
    first = models.model("ko")
    assert first is not None

    def searched(*args):
        raise AssertionError("the disk was searched again for a loaded model")

    monkeypatch.setattr("speech.live.catalog.find_model", searched)
    monkeypatch.setattr("speech.models.find_model", searched)
    assert all(models.model("ko") is first for _ in range(5))
    assert models.is_available("ko")
