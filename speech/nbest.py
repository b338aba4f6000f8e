"""Choosing an option from several recognisers' n-best lists instead of one best transcript.

With a menu grammar, Vosk's single best path often lands on the longest phrase (an utterance of
a two-syllable option heard as the three-syllable operator phrase). Its n-best alternatives keep
the near misses with their total scores, so each option gets the probability mass of the
alternatives that name it (a softmax over the scores). Several recognisers can vote: the same
audio played slightly slower and faster (tempo variants) is decoded by each, and their
per-option probabilities are averaged. The averaged share of the best option is the confidence.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from speech.matcher import NOISE_TOKENS, match_choice, tokenize

# Vosk's alternative "confidence" is a total log-score; a temperature of 1 treats it as such.
TEMPERATURE = 1.0


@dataclass(frozen=True)
class Vote:
    """One recogniser's view: option probabilities and its best transcript."""

    scores: dict[str, float]  # option key -> probability mass (sums to <= 1)
    text: str


def keys_named(text: str, choices: Mapping[str, Sequence[str]]) -> list[str]:
    """Every option whose phrases the text names (typed-text matching, one key per option)."""
    single = match_choice(text, choices)
    if single.key is not None:
        return [single.key]
    return [k for k, phrases in choices.items() if match_choice(text, {k: phrases}).key]


def vote(result: Mapping[str, Any], choices: Mapping[str, Sequence[str]]) -> Vote:
    """Turn one Vosk result (with `alternatives`, or a plain best `text`) into a `Vote`."""
    alternatives = result.get("alternatives")
    if alternatives is None:
        alternatives = [{"text": result.get("text", ""), "confidence": 0.0}]
    if not alternatives:
        return Vote({}, "")
    top = max(float(a.get("confidence", 0.0)) for a in alternatives)
    weights = [math.exp((float(a.get("confidence", 0.0)) - top) / TEMPERATURE)
               for a in alternatives]
    total = sum(weights)
    scores: dict[str, float] = {}
    for alt, weight in zip(alternatives, weights, strict=True):
        keys = keys_named(alt.get("text", ""), choices)
        for key in keys:  # an alternative naming two options splits its mass
            scores[key] = scores.get(key, 0.0) + weight / total / len(keys)
    return Vote(scores, str(alternatives[0].get("text", "")))


def combine(votes: Sequence[Vote]) -> tuple[str | None, float, str]:
    """(best key or None, its averaged probability, the transcript that named it)."""
    if not votes:
        return None, 0.0, ""
    totals: dict[str, float] = {}
    for v in votes:
        for key, score in v.scores.items():
            totals[key] = totals.get(key, 0.0) + score / len(votes)
    if not totals:
        return None, 0.0, votes[0].text
    ranked = sorted(totals.items(), key=lambda kv: kv[1], reverse=True)
    key, share = ranked[0]
    if len(ranked) > 1 and ranked[1][1] == share:
        return None, share, votes[0].text
    # The transcript shown is the best path of the first recogniser that favoured the winner.
    text = next((v.text for v in votes
                 if v.scores and max(v.scores, key=v.scores.__getitem__) == key), votes[0].text)
    return key, share, text


def heard_anything(text: str) -> bool:
    """Whether a transcript has a word that is not noise."""
    return any(t not in NOISE_TOKENS for t in tokenize(text))
