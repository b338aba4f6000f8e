"""The real Korean model on the committed fixtures, fed like a phone line."""

from __future__ import annotations

import numpy as np
import pytest

from speech.errors import AudioError, ModelNotFound
from speech.recognizer import SpeechSession, grammar_for, recognize_file
from tests.speech.conftest import FIXTURES, KOREAN_CHOICES, MANIFEST

SPOKEN = sorted(n for n, f in MANIFEST["files"].items() if f["key"] is not None)


@pytest.mark.parametrize("name", SPOKEN)
def test_fixture_is_recognised_as_its_choice(korean_model, name):
    expected = MANIFEST["files"][name]
    result = recognize_file(FIXTURES / name, KOREAN_CHOICES, "ko", model=korean_model)
    assert result["choice"] == expected["key"]
    assert result["text"] == expected["phrase"]
    # Vosk's confidences move a little with what the shared model decoded before (seen:
    # 0.79 vs 1.0 for one file), so only the accept threshold is asserted.
    assert 0.5 <= result["confidence"] <= 1.0
    assert result["endpoint"] == "silence"  # decided when the caller stopped, not at file end
    assert result["decision_ms"] > 0


def test_every_option_and_the_operator_phrase_are_covered():
    keys = {f["key"] for f in MANIFEST["files"].values()}
    assert keys == {"1", "2", "3", "operator", None}
    assert sum(f["phrase"] == "상담원" for f in MANIFEST["files"].values()) >= 3


def test_streaming_20ms_mulaw_frames_decides_when_speech_ends(korean_model):
    name = next(n for n in SPOKEN if MANIFEST["files"][n]["key"] == "operator")
    data = (FIXTURES / name).read_bytes() + b"\xff" * 8000  # then a second of line silence
    session = SpeechSession(korean_model, KOREAN_CHOICES)
    decided_at = None
    for i in range(0, len(data), 160):
        result = session.feed_mulaw(data[i:i + 160])
        if result is not None:
            decided_at = i + 160
            break
    assert result is not None and result.key == "operator"
    # Decided inside the trailing silence, long before the extra second of audio ran out.
    assert decided_at is not None and decided_at < len(data) - 4000
    decision = session.decision
    assert decision is not None and decision.reason == "silence"
    assert 0 < decision.speech_end_seconds < decision.audio_seconds
    assert session.feed_mulaw(b"\xff" * 160) is None  # nothing more after the decision


def test_silence_gives_no_choice(korean_model):
    result = recognize_file(FIXTURES / "silence.ulaw", KOREAN_CHOICES, "ko", model=korean_model)
    assert result["choice"] is None
    assert result["endpoint"] == "end_of_audio"


def test_session_can_listen_to_the_next_menu(korean_model):
    session = SpeechSession(korean_model, {"x": ["반품"]})
    first = next(n for n in SPOKEN if MANIFEST["files"][n]["key"] == "3")
    second = next(n for n in SPOKEN if MANIFEST["files"][n]["key"] == "operator")
    session.feed_mulaw((FIXTURES / first).read_bytes())
    assert session.finish().key == "x"
    session.listen(KOREAN_CHOICES)
    assert not session.is_decided
    session.feed_mulaw((FIXTURES / second).read_bytes())
    assert session.finish().key == "operator"


def test_grammar_keeps_known_phrases_only(korean_model):
    phrases = grammar_for(korean_model, {"a": ["주문", "billing"], "b": ["결제"]})
    # English words are not in the Korean vocabulary; [unk] only where the model has it.
    assert phrases[:2] == ["주문", "결제"]
    assert phrases[2:] == (["[unk]"] if korean_model.has_unk else [])


def test_unrestricted_mode_runs_on_the_same_path(korean_model):
    name = SPOKEN[0]
    result = recognize_file(FIXTURES / name, KOREAN_CHOICES, "ko", model=korean_model,
                            restricted=False)
    assert result["restricted"] is False
    assert isinstance(result["text"], str) and result["choice"] in {*KOREAN_CHOICES, None}


def test_pcm_wav_input_at_16khz(korean_model, tmp_path):
    import wave

    from speech.audio import read_audio, resample

    name = next(n for n in SPOKEN if MANIFEST["files"][n]["key"] == "operator")
    audio = read_audio(FIXTURES / name)
    wav = tmp_path / "answer.wav"
    with wave.open(str(wav), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(resample(audio.samples, 8000, 16000).astype("<i2").tobytes())
    assert recognize_file(wav, KOREAN_CHOICES, "ko", model=korean_model)["choice"] == "operator"


def test_corrupt_audio_is_a_clear_error(korean_model, tmp_path):
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunkjunk")
    with pytest.raises(AudioError, match="bad.wav"):
        recognize_file(bad, KOREAN_CHOICES, "ko", model=korean_model)
    session = SpeechSession(korean_model, KOREAN_CHOICES)
    with pytest.raises(AudioError, match="even number of bytes"):
        session.feed_pcm16(b"\x00\x01\x02")
    # Garbage payload bytes are still valid mu-law: the session survives and decides.
    noise = np.random.default_rng(7).integers(0, 256, 8000, dtype=np.uint8).tobytes()
    session.feed_mulaw(noise)
    assert session.finish().key in {*KOREAN_CHOICES, None}


def test_missing_model_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.delenv("VOSK_MODEL_PATH", raising=False)
    monkeypatch.setenv("IVR_MODELS_DIR", str(tmp_path))
    with pytest.raises(ModelNotFound, match="no Vosk model for language 'en'"):
        recognize_file(FIXTURES / SPOKEN[0], ["billing"], "en")
