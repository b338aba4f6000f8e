"""Telephone audio: G.711 mu-law coding, resampling to the model's rate, and reading files.

Twilio sends 8 kHz mu-law; Vosk wants signed 16-bit PCM at the model's rate. `audioop` is gone in
Python 3.13, so the codec is written from the G.711 formula with numpy.
"""

from __future__ import annotations

import io
import math
import struct
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from speech.errors import AudioError

TELEPHONE_RATE = 8000
_BIAS = 0x84  # 132: G.711's bias of 33 in the 14-bit domain, scaled to 16-bit samples
_CLIP = 32635  # largest magnitude that still encodes without overflowing the top segment


def _build_decode_table() -> np.ndarray:
    # Each code is stored inverted; sign bit set means positive, then a 3-bit segment (exponent)
    # and a 4-bit step inside the segment (G.711 section 3).
    codes = ~np.arange(256, dtype=np.int32) & 0xFF
    exponent = (codes >> 4) & 0x07
    mantissa = codes & 0x0F
    magnitude = (((mantissa << 3) + _BIAS) << exponent) - _BIAS
    return np.where(codes & 0x80, -magnitude, magnitude).astype(np.int16)


MULAW_DECODE_TABLE = _build_decode_table()


def mulaw_decode(data: bytes) -> np.ndarray:
    """Decode G.711 mu-law bytes into int16 samples (one sample per byte)."""
    return MULAW_DECODE_TABLE[np.frombuffer(data, dtype=np.uint8)]


def mulaw_encode(samples: np.ndarray) -> bytes:
    """Encode int16 samples as G.711 mu-law bytes (the inverse of `mulaw_decode`)."""
    pcm = np.asarray(samples, dtype=np.int32)
    sign = np.where(pcm < 0, 0x80, 0x00)
    magnitude = np.minimum(np.abs(pcm), _CLIP) + _BIAS
    # The segment is the position of the highest set bit above bit 7 (0..7).
    _, bit_length = np.frexp(magnitude)  # exact, unlike floor(log2(x))
    exponent = np.clip(bit_length.astype(np.int32) - 8, 0, 7)
    mantissa = (magnitude >> (exponent + 3)) & 0x0F
    code = ~(sign | (exponent << 4) | mantissa) & 0xFF
    return code.astype(np.uint8).tobytes()


def _lowpass_taps(up: int, down: int, taps_per_phase: int) -> tuple[np.ndarray, int]:
    """Kaiser-windowed sinc low-pass with gain `up`, and its delay in upsampled samples."""
    length = up * taps_per_phase
    centre = (taps_per_phase // 2) * up  # a whole number of input samples: no fractional delay
    cutoff = 0.5 / max(up, down) * 0.97  # just below the narrower side's Nyquist frequency
    n = np.arange(length) - centre
    window = np.kaiser(2 * centre + 1, 8.0)[:length]
    taps = 2 * cutoff * np.sinc(2 * cutoff * n) * window
    return taps / taps.sum() * up, centre


class Resampler:
    """Streaming rational-ratio resampler for int16 mono audio, aligned with its input.

    Output sample n is the input signal at time n / out_rate; the filter needs
    `taps_per_phase // 2` input samples of look-ahead, which `flush()` releases at the end.
    """

    def __init__(self, in_rate: int, out_rate: int, taps_per_phase: int = 16) -> None:
        if in_rate <= 0 or out_rate <= 0:
            raise AudioError(f"sample rates must be positive, got {in_rate} -> {out_rate}")
        g = math.gcd(in_rate, out_rate)
        self.in_rate, self.out_rate = in_rate, out_rate
        self.up, self.down = out_rate // g, in_rate // g
        self._k = taps_per_phase
        taps, self._delay = _lowpass_taps(self.up, self.down, taps_per_phase)
        # Row p holds the taps of phase p, ordered to meet input samples newest-first.
        self._phases = taps.reshape(taps_per_phase, self.up).T
        self._history = np.zeros(taps_per_phase - 1, dtype=np.float64)
        self._consumed = 0  # input samples seen so far
        self._produced = 0  # output samples produced so far

    def process(self, samples: np.ndarray) -> np.ndarray:
        """Resample one chunk; returns every output sample the input so far determines."""
        samples = np.asarray(samples)
        if self.up == self.down:
            return samples.astype(np.int16)
        x = np.concatenate([self._history, samples.astype(np.float64)])
        total_in = self._consumed + len(samples)
        # Output n needs upsampled position n*down + delay, whose newest input is pos // up.
        n_end = max(self._produced, (total_in * self.up - 1 - self._delay) // self.down + 1)
        pos = np.arange(self._produced, n_end) * self.down + self._delay
        newest = pos // self.up - self._consumed + (self._k - 1)  # index into x
        idx = newest[:, None] - np.arange(self._k)[None, :]
        out = np.einsum("ij,ij->i", x[idx], self._phases[pos % self.up])
        self._consumed, self._produced = total_in, n_end
        self._history = x[len(x) - (self._k - 1):]
        return np.clip(np.rint(out), -32768, 32767).astype(np.int16)

    def flush(self) -> np.ndarray:
        """Release the look-ahead tail at the end of a stream."""
        if self.up == self.down:
            return np.zeros(0, dtype=np.int16)
        expected = -(-self._consumed * self.up // self.down)  # ceil: output length of the input
        tail = self.process(np.zeros(self._k, dtype=np.int16))
        return tail[: max(0, expected - (self._produced - len(tail)))]


def resample(samples: np.ndarray, in_rate: int, out_rate: int) -> np.ndarray:
    """Resample a whole int16 signal from `in_rate` to `out_rate`."""
    r = Resampler(in_rate, out_rate)
    return np.concatenate([r.process(samples), r.flush()])


@dataclass(frozen=True)
class Audio:
    """Mono int16 samples with their rate."""

    samples: np.ndarray
    rate: int

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return len(self.samples) / self.rate

    def to_rate(self, rate: int) -> Audio:
        """Return this audio resampled to `rate`."""
        if rate == self.rate:
            return self
        return Audio(resample(self.samples, self.rate, rate), rate)

    def pcm16(self) -> bytes:
        """Little-endian signed 16-bit PCM bytes, as Vosk takes them."""
        return self.samples.astype("<i2").tobytes()


def _mono(samples: np.ndarray, channels: int) -> np.ndarray:
    if channels == 1:
        return samples
    frames = samples[: len(samples) - len(samples) % channels].reshape(-1, channels)
    return frames.mean(axis=1).astype(np.int16)


def _read_wav_chunks(data: bytes, name: str) -> Audio:
    """Parse RIFF chunks ourselves for formats `wave` refuses (mu-law WAV, format 7)."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise AudioError(f"{name}: not a WAV file (no RIFF/WAVE header)")
    pos, fmt, payload = 12, None, None
    while pos + 8 <= len(data):
        cid, size = data[pos:pos + 4], struct.unpack("<I", data[pos + 4:pos + 8])[0]
        body = data[pos + 8:pos + 8 + size]
        if cid == b"fmt " and len(body) >= 16:
            fmt = struct.unpack("<HHIIHH", body[:16])
        elif cid == b"data":
            payload = body
        pos += 8 + size + (size & 1)
    if fmt is None or payload is None:
        raise AudioError(f"{name}: WAV file has no fmt or data chunk")
    tag, channels, rate, _, _, bits = fmt
    if tag == 7 and bits == 8:
        return Audio(_mono(mulaw_decode(payload), channels), rate)
    raise AudioError(f"{name}: unsupported WAV encoding (format tag {tag}, {bits} bits); "
                     "use 16-bit PCM or 8-bit mu-law")


def read_wav(data: bytes, name: str = "audio") -> Audio:
    """Decode a WAV file (PCM 8/16/32-bit or mu-law) to mono int16."""
    try:
        with wave.open(io.BytesIO(data), "rb") as w:
            channels, width, rate = w.getnchannels(), w.getsampwidth(), w.getframerate()
            frames = w.readframes(w.getnframes())
    except wave.Error as exc:
        if "unknown format" in str(exc):
            return _read_wav_chunks(data, name)
        raise AudioError(f"{name}: not a readable WAV file ({exc})") from exc
    except (EOFError, struct.error) as exc:
        raise AudioError(f"{name}: truncated WAV file") from exc
    if width == 2:
        samples = np.frombuffer(frames[: len(frames) // 2 * 2], dtype="<i2").astype(np.int16)
    elif width == 1:  # 8-bit WAV is unsigned
        samples = ((np.frombuffer(frames, dtype=np.uint8).astype(np.int16) - 128) << 8)
    elif width == 4:
        samples = (np.frombuffer(frames[: len(frames) // 4 * 4], dtype="<i4") >> 16)
        samples = samples.astype(np.int16)
    else:
        raise AudioError(f"{name}: unsupported WAV sample width {width * 8} bits")
    if rate <= 0:
        raise AudioError(f"{name}: WAV header gives an invalid sample rate {rate}")
    return Audio(_mono(samples, channels), rate)


MULAW_SUFFIXES = (".ulaw", ".ul", ".mulaw", ".raw", ".pcmu", ".mu")


def read_audio(path: str | Path) -> Audio:
    """Read a WAV file, or raw 8 kHz mu-law (by suffix `.ulaw`, `.raw`, ...), as mono int16."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise AudioError(f"{path}: cannot read audio file ({exc.strerror})") from exc
    if not data:
        raise AudioError(f"{path}: audio file is empty")
    if path.suffix.lower() in MULAW_SUFFIXES and data[:4] != b"RIFF":
        return Audio(mulaw_decode(data), TELEPHONE_RATE)
    if data[:4] != b"RIFF":
        raise AudioError(f"{path}: not a WAV file; raw 8 kHz mu-law needs a suffix such as "
                         f"{', '.join(MULAW_SUFFIXES[:3])}")
    return read_wav(data, str(path))


def model_sample_rate(model_dir: str | Path) -> int:
    """The sample rate a model was trained at (conf/mfcc.conf, else Kaldi's default 16 kHz)."""
    conf = Path(model_dir) / "conf" / "mfcc.conf"
    try:
        for line in conf.read_text().splitlines():
            line = line.split("#", 1)[0].strip()
            if line.startswith("--sample-frequency="):
                return int(float(line.split("=", 1)[1]))
    except (OSError, ValueError):
        pass
    return 16000
