"""G.711 mu-law and resampling checked against the standard's formula and against sox."""

from __future__ import annotations

import io
import subprocess
import wave
from pathlib import Path

import numpy as np
import pytest

from speech.audio import (
    Resampler,
    mulaw_decode,
    mulaw_encode,
    read_audio,
    read_wav,
    resample,
)
from speech.errors import AudioError


def g711_reference(code: int) -> int:
    """Decode one mu-law byte from G.711's segment description (14-bit value, scaled by 4)."""
    inverted = code ^ 0xFF
    segment, step = (inverted >> 4) & 7, inverted & 0x0F
    magnitude = ((2 * step + 33) << segment) - 33  # 14-bit magnitude
    return -4 * magnitude if inverted & 0x80 else 4 * magnitude


def sox(*args: str, stdin: bytes) -> bytes:
    return subprocess.run(["sox", "-D", *args], input=stdin, capture_output=True,
                          check=True).stdout


def test_decode_matches_the_standard_formula_for_all_codes():
    got = mulaw_decode(bytes(range(256)))
    assert [int(v) for v in got] == [g711_reference(c) for c in range(256)]


@pytest.mark.parametrize(("code", "value"), [
    (0xFF, 0), (0x7F, 0), (0x80, 32124), (0x00, -32124), (0xFE, 8), (0x7E, -8),
    # First value of each segment, as tabulated for 16-bit mu-law decoders.
    (0xEF, 132), (0xDF, 396), (0xCF, 924), (0xBF, 1980), (0x8F, 16764), (0x0F, -16764),
])
def test_decode_known_values(code, value):
    assert int(mulaw_decode(bytes([code]))[0]) == value


def test_decode_matches_sox_for_all_codes():
    ref = np.frombuffer(sox("-t", "ul", "-r", "8000", "-c", "1", "-", "-t", "s16", "-",
                            stdin=bytes(range(256))), dtype="<i2")
    assert np.array_equal(mulaw_decode(bytes(range(256))), ref)


def test_encode_matches_sox_on_14_bit_samples():
    # G.711 is defined on 14-bit samples; how 16-bit input is rounded to 14 bits varies by tool.
    pcm = np.arange(-32768, 32768, 4, dtype=np.int16)
    ref = sox("-t", "s16", "-r", "8000", "-c", "1", "-", "-t", "ul", "-", stdin=pcm.tobytes())
    assert mulaw_encode(pcm) == ref


def test_round_trip_every_code():
    codes = bytes(range(256))
    again = mulaw_encode(mulaw_decode(codes))
    # 0x7F is negative zero, which encodes back as positive zero.
    assert again == codes.replace(b"\x7f", b"\xff")


def test_decoding_a_sox_tone_gives_the_tone():
    tone = subprocess.run(["sox", "-D", "-n", "-r", "8000", "-c", "1", "-e", "mu-law", "-t", "raw",
                           "-", "synth", "1", "sine", "1000", "vol", "0.5"],
                          capture_output=True, check=True).stdout
    pcm = mulaw_decode(tone)
    assert len(pcm) == 8000
    spectrum = np.abs(np.fft.rfft(pcm.astype(float)))
    assert np.argmax(spectrum) == 1000  # 1 Hz bins over one second
    assert 0.45 * 32767 < np.abs(pcm).max() < 0.55 * 32767


@pytest.mark.parametrize(("rate_in", "rate_out"), [(8000, 16000), (16000, 8000), (8000, 22050)])
def test_resampled_sine_stays_aligned(rate_in, rate_out):
    t = np.arange(rate_in) / rate_in
    x = np.rint(10000 * np.sin(2 * np.pi * 440 * t)).astype(np.int16)
    y = resample(x, rate_in, rate_out)
    assert len(y) == rate_out
    expected = 10000 * np.sin(2 * np.pi * 440 * np.arange(len(y)) / rate_out)
    assert np.abs(y[50:-50] - expected[50:-50]).max() < 20


def test_streaming_resampler_equals_whole_signal():
    x = np.random.default_rng(1).integers(-8000, 8000, 8000).astype(np.int16)
    r = Resampler(8000, 16000)
    chunks = [r.process(x[i:i + 160]) for i in range(0, len(x), 160)] + [r.flush()]
    assert np.array_equal(np.concatenate(chunks), resample(x, 8000, 16000))


def test_downsampling_removes_content_above_the_new_nyquist():
    t = np.arange(16000) / 16000
    x = np.rint(10000 * np.sin(2 * np.pi * 6000 * t)).astype(np.int16)
    assert np.abs(resample(x, 16000, 8000)[50:-50]).max() < 300


def wav_bytes(samples: np.ndarray, rate: int, width: int = 2, channels: int = 1) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(samples.tobytes())
    return buf.getvalue()


def test_read_pcm_wav_and_stereo_mixdown():
    x = np.array([100, -100, 2000, 4000], dtype="<i2")
    audio = read_wav(wav_bytes(x, 8000, channels=2))
    assert audio.rate == 8000
    assert audio.samples.tolist() == [0, 3000]


def test_read_mulaw_wav_made_by_sox(tmp_path: Path):
    tone = tmp_path / "tone.wav"
    subprocess.run(["sox", "-D", "-n", "-r", "8000", "-c", "1", "-e", "mu-law", str(tone),
                    "synth", "0.5", "sine", "440"], check=True)
    audio = read_audio(tone)
    raw = sox(str(tone), "-t", "ul", "-", stdin=b"")
    assert audio.rate == 8000
    assert np.array_equal(audio.samples, mulaw_decode(raw))


def test_read_raw_mulaw_by_suffix(tmp_path: Path):
    path = tmp_path / "answer.ulaw"
    path.write_bytes(bytes([0xFF, 0x80, 0x00]))
    audio = read_audio(path)
    assert (audio.rate, audio.samples.tolist()) == (8000, [0, 32124, -32124])


@pytest.mark.parametrize(("name", "data", "message"), [
    ("empty.wav", b"", "audio file is empty"),
    ("junk.wav", b"this is not audio at all", "not a WAV file"),
    ("cut.wav", b"RIFF\x24\x00\x00\x00WAVEfmt \x10\x00\x00\x00\x01\x00", "WAV"),
    ("adpcm.wav", b"RIFF\x24\x00\x00\x00WAVEfmt \x10\x00\x00\x00\x11\x00\x01\x00"
                  b"\x40\x1f\x00\x00\x40\x1f\x00\x00\x01\x00\x04\x00data\x00\x00\x00\x00",
     "unsupported WAV encoding"),
])
def test_bad_audio_gives_a_clear_error(tmp_path: Path, name, data, message):
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(AudioError, match=message):
        read_audio(path)


def test_missing_file_is_an_audio_error(tmp_path: Path):
    with pytest.raises(AudioError, match="cannot read audio file"):
        read_audio(tmp_path / "nope.wav")
