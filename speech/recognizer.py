"""Per-call speech recognition restricted to a menu's phrases, fed like a phone line.

A `SpeechSession` takes 20 ms frames of 8 kHz mu-law (Twilio Media Streams) or PCM. It waits for
voice (speech.endpoint), then runs a Vosk recogniser whose grammar holds only the menu's phrases
(plus `[unk]` where the model has it), fed from a short pre-roll before the voice began: the
quiet line while a prompt plays costs no decoding. When the caller stops, the best choice is
weighed against its best rival over the same audio (speech.confidence) and accepted, confirmed
or asked again. `recognize_file` drives the same session from a file, for the CLI and the
`<Record>` fallback.
"""

from __future__ import annotations

import json
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from speech.audio import TELEPHONE_RATE, Audio, mulaw_decode, read_audio
from speech.confidence import DEFAULT_CALIBRATION, Calibration, Verdict, lattice_beam
from speech.endpoint import EndpointConfig, Endpointer
from speech.errors import AudioError
from speech.matcher import (
    DEFAULT_ACCEPT,
    DEFAULT_CONFIRM,
    MatchResult,
    match_choice,
    tokenize,
)
from speech.models import LoadedModel, find_model, load_model
from speech.nbest import (
    Hypothesis,
    best_choice,
    heard_text,
    hypotheses,
    rival_score,
    silence_score,
)

FRAME_MS = 20  # Twilio sends 20 ms media frames; voice activity is judged per frame
DEFAULT_ALTERNATIVES = 10  # n-best size; rivals within the lattice beam come with the decode
# Audio kept from before the first voiced frame: a word's onset is quieter than the energy rule.
PREROLL_MS = 300


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
    margin: float | None = None  # nats the best choice beat its best rival by (grammar n-best)
    candidate: str | None = None  # the best choice, even when it was not sure enough to take

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
            "candidate": self.candidate,
            "margin": self.margin,
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


@lru_cache(maxsize=16)
def _beam_of(model_dir: Path) -> float:
    return lattice_beam(model_dir)


class _Decoder:
    """One Vosk recogniser over one stretch of the call's audio."""

    def __init__(self, model: LoadedModel, input_rate: int, grammar: str | None,
                 alternatives: int) -> None:
        import vosk  # the native library loads with the first model, never for keypress-only

        # Vosk resamples to the model's rate itself.
        args = (model.model, input_rate, grammar) if grammar else (model.model, input_rate)
        self.rec = vosk.KaldiRecognizer(*args)
        if alternatives:
            self.rec.SetMaxAlternatives(alternatives)
        else:
            self.rec.SetWords(True)  # per-word confidences for the plain transcript

    def accept(self, samples: np.ndarray) -> bool:
        return bool(self.rec.AcceptWaveform(samples.astype("<i2").tobytes()))

    def result(self) -> dict:
        return json.loads(self.rec.Result())

    def final(self) -> dict:
        return json.loads(self.rec.FinalResult())


class SpeechSession:
    """One call's recogniser: feed audio frames, get a `MatchResult` when the answer ends.

    Restricted to a grammar (the default), each choice is scored by its best n-best alternative
    and the winner's margin over the best other choice gives the confidence (speech.confidence);
    a rival outside the n-best is measured by decoding the answer once more without the winner,
    at decision time only. `alternatives=0`, or an unrestricted session, weighs the plain best
    transcript by per-word confidence instead (speech.matcher's thresholds).
    """

    def __init__(
        self,
        model: LoadedModel,
        choices: Mapping[str, Sequence[str]],
        *,
        input_rate: int = TELEPHONE_RATE,
        restricted: bool = True,
        endpoint: EndpointConfig | None = None,
        calibration: Calibration = DEFAULT_CALIBRATION,
        alternatives: int = DEFAULT_ALTERNATIVES,
        accept_threshold: float = DEFAULT_ACCEPT,
        confirm_threshold: float = DEFAULT_CONFIRM,
    ) -> None:
        self.model = model
        self.input_rate = input_rate
        self.restricted = restricted
        self.endpoint_config = endpoint or EndpointConfig()
        self.calibration = calibration
        self.alternatives = alternatives
        self.accept_threshold = accept_threshold
        self.confirm_threshold = confirm_threshold
        self._frame = input_rate * FRAME_MS // 1000
        self._beam = _beam_of(model.info.path)
        self.listen(choices)

    def listen(self, choices: Mapping[str, Sequence[str]]) -> None:
        """Start listening for a (new) menu's choices, waiting for the caller to speak."""
        self.choices = {k: list(v) for k, v in choices.items()}
        self.phrases = grammar_for(self.model, self.choices) if self.restricted else []
        # A grammar with no usable phrase would only ever say [unk]: listen freely instead.
        restrict = self.restricted and any(p != "[unk]" for p in self.phrases)
        self._grammar = json.dumps(self.phrases, ensure_ascii=False) if restrict else None
        self._endpointer = Endpointer(self.endpoint_config, self.input_rate)
        self._decoder: _Decoder | None = None
        self._preroll: deque[np.ndarray] = deque(maxlen=max(1, PREROLL_MS // FRAME_MS))
        self._segment: list[np.ndarray] = []  # exactly what the decoder was fed
        self._pending = np.zeros(0, dtype=np.int16)
        self.decision: Decision | None = None

    @property
    def is_decided(self) -> bool:
        """Whether this menu's answer has been decided."""
        return self.decision is not None

    @property
    def is_decoding(self) -> bool:
        """Whether voice was heard and the recogniser is running."""
        return self._decoder is not None

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
        for start in range(0, whole, self._frame):
            reason, kaldi_endpoint = self._take(buf[start:start + self._frame])
            if kaldi_endpoint and reason is None:
                # Kaldi closed a segment on its own rules; keep it only if it heard words.
                started = time.perf_counter()
                assert self._decoder is not None
                result = self._decoder.result()
                if heard_text(hypotheses(result, self.choices)):
                    self._decide("vosk_endpoint", result, started)
                    break
                self._segment = []  # Vosk decodes what follows as a new utterance
            elif reason is not None:
                self._decide(reason)
                break
        self._pending = buf[whole:]
        return self.decision.match if self.decision else None

    def finish(self) -> MatchResult:
        """The audio has ended (stream stopped, file read): decide with what was heard."""
        if self.decision is None:
            if len(self._pending):
                frame, self._pending = self._pending, np.zeros(0, dtype=np.int16)
                self._take(frame)
            self._decide("end_of_audio")
        assert self.decision is not None
        return self.decision.match

    def _take(self, frame: np.ndarray) -> tuple[str | None, bool]:
        """One frame through the endpointer and, once voice was heard, the recogniser."""
        ep = self._endpointer
        reason = ep.update(frame)
        self._preroll.append(frame)
        if self._decoder is None:
            if not ep.voiced:
                return None, False
            self._decoder = _Decoder(self.model, self.input_rate, self._grammar,
                                     self.alternatives if self._grammar else 0)
            self._segment = list(self._preroll)
            kaldi_endpoint = self._decoder.accept(np.concatenate(self._segment))
        else:
            self._segment.append(frame)
            kaldi_endpoint = self._decoder.accept(frame)
        if ep.is_idle:  # a click, then quiet: stop decoding until somebody speaks
            ep.forget_speech()
            self._decoder, self._segment = None, []
            return None, False
        return reason, kaldi_endpoint

    def _decide(self, reason: str, result: dict | None = None, started: float | None = None,
                ) -> None:
        started = started if started is not None else time.perf_counter()
        if result is None:
            result = self._decoder.final() if self._decoder is not None else {}
        margin = candidate = None
        if self._grammar and self.alternatives:
            match, margin, candidate = self._judge(result)
            words = tuple((w, match.confidence) for w in match.text.split())
        else:
            words = tuple((w["word"], float(w.get("conf", 1.0)))
                          for w in result.get("result", []))
            match = match_choice(result.get("text", ""), self.choices,
                                 word_confidences=words or None,
                                 accept_threshold=self.accept_threshold,
                                 confirm_threshold=self.confirm_threshold)
            candidate = match.key
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
            margin=margin,
            candidate=candidate,
        )
        self._decoder, self._segment = None, []

    def _judge(self, result: dict) -> tuple[MatchResult, float | None, str | None]:
        """The best choice, its margin over the best rival, and the calibrated verdict."""
        hyps = hypotheses(result, self.choices)
        top = best_choice(hyps)
        if top is None or top.key is None:
            # No alternative names one choice: words of none, two at once, or only silence.
            return MatchResult(None, heard_text(hyps), 0.0, False), None, None
        rival = rival_score(hyps, top.key)
        if rival is None:
            rival = self._rival_without(top, hyps)
        margin = round(top.score - rival, 3)
        confidence = self.calibration.confidence(margin)
        verdict = self.calibration.verdict(margin)
        if verdict is Verdict.REPROMPT:
            return MatchResult(None, top.text, confidence, False), margin, top.key
        return (MatchResult(top.key, top.text, confidence, verdict is Verdict.CONFIRM),
                margin, top.key)

    def _rival_without(self, top: Hypothesis, hyps: list[Hypothesis]) -> float:
        """The best other choice's score, from decoding the answer again without `top`'s."""
        others = {k: v for k, v in self.choices.items() if k != top.key}
        phrases = grammar_for(self.model, others)
        if not self._segment or not any(p != "[unk]" for p in phrases):
            # No other choice to say: the rival is silence, or anything the beam cut off.
            quiet = silence_score(hyps)
            return quiet if quiet is not None else top.score - self._beam
        decoder = _Decoder(self.model, self.input_rate,
                           json.dumps(phrases, ensure_ascii=False), self.alternatives)
        decoder.accept(np.concatenate(self._segment))
        rest = hypotheses(decoder.final(), others)
        named = [h.score for h in rest if h.keys]
        if named:
            return max(named)
        # Only silence (or [unk]) survived: every other choice is more than a beam behind it.
        return (rest[0].score if rest else top.score) - self._beam


def recognize_audio(
    audio: Audio,
    choices: Mapping[str, Sequence[str]],
    model: LoadedModel,
    *,
    restricted: bool = True,
    **options: Any,
) -> Decision:
    """Recognise a whole recording as a live call would hear it: 20 ms frames, then the end.

    `options` go to `SpeechSession` (calibration, alternatives, thresholds).
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
