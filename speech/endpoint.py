"""When a spoken answer starts and ends: energy-based voice activity on 20 ms frames.

The recogniser only runs once somebody speaks (speech.recognizer), so this decides both when to
start decoding and when the answer is over.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class EndpointConfig:
    """When a short spoken answer is over.

    Kaldi's own endpointing waits 0.5 s of trailing silence (model.conf rule 2); menu answers are
    one or two words, so a shorter energy-based rule decides sooner. (vosk 0.3.45's Python API
    has no SetEndpointerMode/SetEndpointerDelays; they arrived in later releases.)
    """

    trailing_silence_ms: int = 200  # silence after speech that ends the answer
    min_speech_ms: int = 60  # voiced audio needed before silence can end anything
    max_speech_ms: int = 6000  # decide anyway after this much speech (a caller who keeps talking)
    energy_floor: float = 250.0  # RMS (int16 units, about -42 dBFS) that is always silence
    noise_ratio: float = 3.0  # speech is this many times louder than the tracked noise floor
    # Voice too short to be an answer (a click), then this much silence: forget it, stop decoding.
    idle_reset_ms: int = 1000


class Endpointer:
    """Energy-based voice activity with an adaptive noise floor, judged per 20 ms frame."""

    def __init__(self, config: EndpointConfig, rate: int) -> None:
        self.config = config
        self.rate = rate
        self.noise = config.energy_floor / config.noise_ratio
        self.speech_ms = 0.0
        self.silence_ms = 0.0
        self.samples = 0
        self.voiced = False  # whether the last frame was voiced
        self.speech_end_sample: int | None = None  # end of the last voiced frame

    def update(self, frame: np.ndarray) -> str | None:
        """Take one frame; returns why the answer is over ("silence", "max_speech") or None."""
        ms = len(frame) * 1000 / self.rate
        self.samples += len(frame)
        rms = float(np.sqrt(np.mean(frame.astype(np.float64) ** 2))) if len(frame) else 0.0
        self.voiced = rms > max(self.config.energy_floor, self.noise * self.config.noise_ratio)
        if self.voiced:
            self.speech_ms += ms
            self.silence_ms = 0.0
            self.speech_end_sample = self.samples
        else:
            self.silence_ms += ms
            # Follow the background level slowly, and only while nobody is speaking.
            self.noise = 0.95 * self.noise + 0.05 * rms
        if self.speech_ms >= self.config.min_speech_ms:
            if self.silence_ms >= self.config.trailing_silence_ms:
                return "silence"
            if self.speech_ms >= self.config.max_speech_ms:
                return "max_speech"
        return None

    @property
    def is_idle(self) -> bool:
        """Whether the voice heard so far was too short to count and has long gone quiet."""
        return (0 < self.speech_ms < self.config.min_speech_ms
                and self.silence_ms >= self.config.idle_reset_ms)

    def forget_speech(self) -> None:
        """Drop a click or a pop: start again waiting for speech (the noise floor is kept)."""
        self.speech_ms = 0.0
        self.speech_end_sample = None


__all__ = ["EndpointConfig", "Endpointer"]
