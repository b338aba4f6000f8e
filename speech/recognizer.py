"""Per-call speech recognition restricted to a menu's phrases, fed like a phone line.

A `SpeechSession` takes 20 ms frames of 8 kHz mu-law (Twilio Media Streams) or PCM, resamples
them to the model's rate, runs a Vosk recogniser whose grammar holds only the menu's phrases
(plus `[unk]` where the model has it), and decides as soon as the caller stops talking.
`recognize_file` drives the same session from a file, for the CLI and `<Record>` fallbacks.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from speech.audio import TELEPHONE_RATE, Audio, Resampler, mulaw_decode, read_audio
from speech.errors import AudioError
from speech.matcher import (
    DEFAULT_ACCEPT,
    DEFAULT_CONFIRM,
    MatchResult,
    match_choice,
    tokenize,
)
from speech.models import LoadedModel, find_model, load_model
from speech.nbest import combine, vote

FRAME_MS = 20  # Twilio sends 20 ms media frames; voice activity is judged per frame
DEFAULT_ALTERNATIVES = 10  # n-best size scored per option (speech.nbest)
DEFAULT_TEMPOS = (1.0,)  # tempo variants decoded and averaged; each costs one more decoder


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


class Endpointer:
    """Energy-based voice activity with an adaptive noise floor, judged per 20 ms frame."""

    def __init__(self, config: EndpointConfig, rate: int) -> None:
        self.config = config
        self.rate = rate
        self.noise = config.energy_floor / config.noise_ratio
        self.speech_ms = 0
        self.silence_ms = 0
        self.samples = 0
        self.speech_end_sample: int | None = None  # end of the last voiced frame

    def update(self, frame: np.ndarray) -> str | None:
        """Take one frame; returns why the answer is over ("silence", "max_speech") or None."""
        ms = len(frame) * 1000 / self.rate
        self.samples += len(frame)
        rms = float(np.sqrt(np.mean(frame.astype(np.float64) ** 2))) if len(frame) else 0.0
        voiced = rms > max(self.config.energy_floor, self.noise * self.config.noise_ratio)
        if voiced:
            self.speech_ms += ms
            self.silence_ms = 0
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


@dataclass(frozen=True)
class Decision:
    """What the recogniser decided, with the evidence the call journey records."""

    match: MatchResult
    words: tuple[tuple[str, float], ...]
    reason: str  # "silence", "max_speech", "vosk_endpoint" or "end_of_audio"
    audio_seconds: float  # audio fed when the decision was made
    speech_end_seconds: float | None  # where the last voiced frame ended, if any
    decision_ms: float  # compute time from the endpoint to the decision
    restricted: bool
    phrases: tuple[str, ...] = field(default=(), repr=False)

    @property
    def latency_ms(self) -> float:
        """Delay after the end of speech on a real-time stream: trailing silence plus compute."""
        if self.speech_end_seconds is None:
            return self.decision_ms
        return (self.audio_seconds - self.speech_end_seconds) * 1000 + self.decision_ms

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready fields: choice, text, confidence and the timings."""
        return {
            "choice": self.match.key,
            "text": self.match.text,
            "confidence": self.match.confidence,
            "needs_confirmation": self.match.needs_confirmation,
            "words": [{"word": w, "conf": round(c, 4)} for w, c in self.words],
            "endpoint": self.reason,
            "audio_seconds": round(self.audio_seconds, 3),
            "decision_ms": round(self.decision_ms, 2),
            "latency_ms": round(self.latency_ms, 2),
            "restricted": self.restricted,
        }


def choices_from_list(phrases: Sequence[str]) -> dict[str, list[str]]:
    """Each phrase as its own choice, keyed by the phrase itself (the CLI's `--choices a,b`)."""
    return {p.strip(): [p.strip()] for p in phrases if p.strip()}


def grammar_for(model: LoadedModel, choices: Mapping[str, Sequence[str]]) -> list[str]:
    """The grammar phrases: every choice phrase whose words the model knows, plus `[unk]`."""
    phrases: list[str] = []
    for options in choices.values():
        for phrase in options:
            words = tokenize(phrase)
            text = " ".join(words)
            if words and text not in phrases and all(model.knows(w) for w in words):
                phrases.append(text)
    if model.has_unk:
        phrases.append("[unk]")
    return phrases


class _Decoder:
    """One Vosk recogniser, fed the call's audio at one tempo."""

    def __init__(self, model: LoadedModel, input_rate: int, tempo: float, grammar: str | None,
                 alternatives: int) -> None:
        import vosk  # the native library loads with the first model, never for keypress-only

        # Vosk resamples to the model's rate itself; a tempo variant is the same audio
        # resampled and then declared at the input rate, so it plays slower or faster.
        self.tempo = tempo
        self.resampler = (Resampler(input_rate, round(input_rate * tempo))
                          if tempo != 1.0 else None)
        args = (model.model, input_rate, grammar) if grammar else (model.model, input_rate)
        self.rec = vosk.KaldiRecognizer(*args)
        self.rec.SetWords(True)
        if alternatives:
            self.rec.SetMaxAlternatives(alternatives)

    def accept(self, frame: np.ndarray) -> bool:
        data = self.resampler.process(frame) if self.resampler else frame
        return bool(self.rec.AcceptWaveform(data.astype("<i2").tobytes()))

    def final(self) -> dict:
        if self.resampler is not None:
            self.rec.AcceptWaveform(self.resampler.flush().astype("<i2").tobytes())
        return json.loads(self.rec.FinalResult())


class SpeechSession:
    """One call's recogniser: feed audio frames, get a `MatchResult` when the answer ends.

    By default each option is scored from Vosk's n-best alternatives, averaged over the audio
    decoded at a few tempos (speech.nbest); `alternatives=0, tempos=(1.0,)` gives the plain
    single best transcript weighed by per-word confidence.
    """

    def __init__(
        self,
        model: LoadedModel,
        choices: Mapping[str, Sequence[str]],
        *,
        input_rate: int = TELEPHONE_RATE,
        restricted: bool = True,
        endpoint: EndpointConfig | None = None,
        accept_threshold: float = DEFAULT_ACCEPT,
        confirm_threshold: float = DEFAULT_CONFIRM,
        alternatives: int = DEFAULT_ALTERNATIVES,
        tempos: Sequence[float] = DEFAULT_TEMPOS,
    ) -> None:
        self.model = model
        self.input_rate = input_rate
        self.restricted = restricted
        self.endpoint_config = endpoint or EndpointConfig()
        self.accept_threshold = accept_threshold
        self.confirm_threshold = confirm_threshold
        self.alternatives = alternatives
        self.tempos = tuple(tempos) or (1.0,)
        self._frame = input_rate * FRAME_MS // 1000
        self.listen(choices)

    def listen(self, choices: Mapping[str, Sequence[str]]) -> None:
        """Start listening for a (new) menu's choices with fresh recognisers."""
        self.choices = {k: list(v) for k, v in choices.items()}
        self.phrases = grammar_for(self.model, self.choices) if self.restricted else []
        # A grammar with no usable phrase would only ever say [unk]: listen freely instead.
        restrict = self.restricted and any(p != "[unk]" for p in self.phrases)
        grammar = json.dumps(self.phrases, ensure_ascii=False) if restrict else None
        self._decoders = [_Decoder(self.model, self.input_rate, t, grammar, self.alternatives)
                          for t in self.tempos]
        self._endpointer = Endpointer(self.endpoint_config, self.input_rate)
        self._pending = np.zeros(0, dtype=np.int16)
        self.decision: Decision | None = None

    @property
    def is_decided(self) -> bool:
        """Whether this menu's answer has been decided."""
        return self.decision is not None

    def feed_mulaw(self, payload: bytes) -> MatchResult | None:
        """Feed 8 kHz mu-law bytes (a Twilio `media` payload); returns the decision once made."""
        if self.input_rate != TELEPHONE_RATE:
            raise AudioError(f"mu-law input is {TELEPHONE_RATE} Hz; this session expects "
                             f"{self.input_rate} Hz")
        return self.feed_pcm16(mulaw_decode(payload))

    def feed_pcm16(self, samples: np.ndarray | bytes) -> MatchResult | None:
        """Feed int16 samples at the input rate; returns the decision once made, else None."""
        if self.decision is not None:
            return None
        if isinstance(samples, bytes | bytearray | memoryview):
            if len(samples) % 2:
                raise AudioError("PCM16 audio must have an even number of bytes")
            samples = np.frombuffer(samples, dtype="<i2")
        buf = np.concatenate([self._pending, np.asarray(samples, dtype=np.int16)])
        whole = len(buf) - len(buf) % self._frame
        primary = self._decoders[0]
        for start in range(0, whole, self._frame):
            frame = buf[start:start + self._frame]
            kaldi_endpoint = primary.accept(frame)
            for other in self._decoders[1:]:
                other.accept(frame)
            reason = self._endpointer.update(frame)
            if kaldi_endpoint and reason is None:
                # Kaldi closed a segment on its own rules; keep it only if it heard words.
                started = time.perf_counter()
                result = json.loads(primary.rec.Result())
                if _best_text(result):
                    self._decide("vosk_endpoint", result, started)
                    break
            elif reason is not None:
                self._decide(reason)
                break
        self._pending = buf[whole:]
        return self.decision.match if self.decision else None

    def finish(self) -> MatchResult:
        """The audio has ended (stream stopped, file read): decide with what was heard."""
        if self.decision is None:
            if len(self._pending):
                frame = self._pending
                self._pending = np.zeros(0, dtype=np.int16)
                for decoder in self._decoders:
                    decoder.accept(frame)
                self._endpointer.update(frame)
            self._decide("end_of_audio")
        assert self.decision is not None
        return self.decision.match

    def _decide(self, reason: str, primary: dict | None = None, started: float | None = None,
                ) -> None:
        started = started if started is not None else time.perf_counter()
        results = [primary if primary is not None else self._decoders[0].final()]
        results += [d.final() for d in self._decoders[1:]]
        if self.alternatives:
            match, words = self._match_nbest(results)
        else:
            result = results[0]
            words = tuple((w["word"], float(w.get("conf", 1.0)))
                          for w in result.get("result", []))
            match = match_choice(result.get("text", ""), self.choices,
                                 word_confidences=words or None,
                                 accept_threshold=self.accept_threshold,
                                 confirm_threshold=self.confirm_threshold)
        elapsed = (time.perf_counter() - started) * 1000
        ep = self._endpointer
        self.decision = Decision(
            match=match,
            words=words,
            reason=reason,
            audio_seconds=ep.samples / self.input_rate,
            speech_end_seconds=(ep.speech_end_sample / self.input_rate
                                if ep.speech_end_sample is not None else None),
            decision_ms=elapsed,
            restricted=self.restricted,
            phrases=tuple(self.phrases),
        )

    def _match_nbest(self, results: list[dict]) -> tuple[MatchResult, tuple]:
        key, share, text = combine([vote(r, self.choices) for r in results])
        confidence = round(share, 4)
        # Per-word confidences are not given with alternatives: each word carries the share.
        words = tuple((w, confidence) for w in text.split())
        if key is None or confidence < self.accept_threshold:
            return MatchResult(None, text, confidence, False), words
        return MatchResult(key, text, confidence, confidence < self.confirm_threshold), words


def _best_text(result: dict) -> str:
    alternatives = result.get("alternatives")
    if alternatives:
        return str(alternatives[0].get("text", ""))
    return str(result.get("text", ""))


def recognize_audio(
    audio: Audio,
    choices: Mapping[str, Sequence[str]],
    model: LoadedModel,
    *,
    restricted: bool = True,
    **options: Any,
) -> Decision:
    """Recognise a whole recording as a live call would hear it: 20 ms frames, then the end.

    `options` go to `SpeechSession` (thresholds, alternatives, tempos).
    """
    if not choices:
        raise AudioError("no choices to listen for")
    session = SpeechSession(model, choices, input_rate=audio.rate, restricted=restricted,
                            **options)
    frame = audio.rate * FRAME_MS // 1000
    pcm = audio.samples
    for start in range(0, len(pcm), frame):
        if session.feed_pcm16(pcm[start:start + frame]) is not None:
            break
    session.finish()
    assert session.decision is not None
    return session.decision


def recognize_file(
    path: str | Path,
    choices: Mapping[str, Sequence[str]] | Sequence[str],
    language: str | None = None,
    *,
    model: LoadedModel | None = None,
    model_setting: str | None = None,
    restricted: bool = True,
) -> dict[str, Any]:
    """Recognise a WAV or raw 8 kHz mu-law file through a live-call session; returns JSON fields.

    Raises:
        AudioError: the file is unreadable or not audio.
        ModelNotFound, ModelLoadError: no usable model for `language`.
    """
    path = Path(path)
    if not isinstance(choices, Mapping):
        choices = choices_from_list(list(choices))
    if not choices:
        raise AudioError("no choices to listen for")
    audio = read_audio(path)  # validates the file before a model is loaded
    loaded = model or load_model(find_model(language, model_setting))
    # Raw mu-law decodes to the same samples `feed_mulaw` would make of Twilio's frames.
    out = recognize_audio(audio, choices, loaded, restricted=restricted).as_dict()
    out.update(file=str(path), language=language or loaded.info.language,
               model=loaded.info.name)
    return out


__all__ = ["Decision", "EndpointConfig", "SpeechSession", "choices_from_list", "grammar_for",
           "recognize_audio", "recognize_file"]
