"""What one grammar decode says about each choice: its n-best alternatives, scored per choice.

Vosk gives each alternative a total score (log-likelihood, higher is better) over the same
audio, so two alternatives compare by their difference. Each choice is scored by its single
best alternative: a choice with five phrases (the English operator) gets no more weight than a
choice with one, so every choice competes on equal terms. An alternative naming two choices
("주문 결제") backs neither; it counts only as a rival to each.

The n-best list only holds paths within the model's lattice beam of the best one, so a rival
that is missing is merely "worse by more than the beam": speech.recognizer then decodes the
answer again without the winner to measure it (speech.confidence).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from speech.matcher import NOISE_TOKENS, match_choice, tokenize


@dataclass(frozen=True)
class Hypothesis:
    """One alternative of a decode: its transcript, score and the choices it names."""

    text: str
    score: float
    keys: frozenset[str]

    @property
    def key(self) -> str | None:
        """The one choice this alternative names, or None (none, or several)."""
        return next(iter(self.keys)) if len(self.keys) == 1 else None


def keys_named(text: str, choices: Mapping[str, Sequence[str]]) -> frozenset[str]:
    """Every choice whose phrases the text names (typed-text matching)."""
    single = match_choice(text, choices)
    if single.key is not None:
        return frozenset({single.key})
    return frozenset(k for k, phrases in choices.items() if match_choice(text, {k: phrases}).key)


def hypotheses(result: Mapping[str, Any], choices: Mapping[str, Sequence[str]],
               ) -> list[Hypothesis]:
    """A Vosk result's alternatives (or its plain `text`, scored 0), best first."""
    alternatives = result.get("alternatives")
    if alternatives is None:
        alternatives = [{"text": result.get("text", ""), "confidence": 0.0}]
    hyps = [Hypothesis(str(a.get("text", "")), float(a.get("confidence", 0.0)),
                       keys_named(str(a.get("text", "")), choices)) for a in alternatives]
    return sorted(hyps, key=lambda h: h.score, reverse=True)


def best_choice(hyps: Sequence[Hypothesis]) -> Hypothesis | None:
    """The best-scoring alternative that names exactly one choice."""
    return max((h for h in hyps if h.key is not None), key=lambda h: h.score, default=None)


def rival_score(hyps: Sequence[Hypothesis], key: str) -> float | None:
    """The best score of an alternative naming any choice but `key` alone, or None."""
    return max((h.score for h in hyps if h.keys and h.keys != {key}), default=None)


def silence_score(hyps: Sequence[Hypothesis]) -> float | None:
    """The best score of an alternative naming no choice (silence, or words of none)."""
    return max((h.score for h in hyps if not h.keys), default=None)


def heard_text(hyps: Sequence[Hypothesis]) -> str:
    """The best transcript that has a word in it, or ""."""
    return next((h.text for h in hyps if heard_anything(h.text)), "")


def heard_anything(text: str) -> bool:
    """Whether a transcript has a word that is not noise."""
    return any(t not in NOISE_TOKENS for t in tokenize(text))


__all__ = ["Hypothesis", "best_choice", "heard_anything", "heard_text", "hypotheses",
           "keys_named", "rival_score", "silence_score"]
