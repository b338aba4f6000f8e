"""Match a transcript (spoken or typed) to one of a menu's choices.

Pure Python, no Vosk: the flow engine uses it for typed speech too. Each choice key has phrases;
whole words and phrases are matched case-insensitively after Unicode normalisation, the longest
phrase wins where phrases overlap, and per-word recogniser confidences weigh each match.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

# Tokens a recogniser emits for sounds outside its vocabulary; they carry no meaning.
NOISE_TOKENS = frozenset({"[unk]", "<unk>", "[noise]", "<noise>", "[laughter]", "<sil>"})
# One option must hold this share of the matched evidence, or the answer is a tie.
TIE_SHARE = 0.5
DEFAULT_ACCEPT = 0.5
DEFAULT_CONFIRM = 0.8

_WORD = re.compile(r"\[unk\]|<unk>|[\w']+", re.UNICODE)


@dataclass(frozen=True)
class MatchResult:
    """The outcome of matching a transcript against a menu's choices."""

    key: str | None  # the chosen choice key, or None
    text: str  # the transcript that was matched
    confidence: float  # 0..1
    needs_confirmation: bool  # matched, but below the confirm threshold


def normalize(text: str) -> str:
    """Fold case and Unicode forms (NFKC) so typed, spoken and configured text compare equal."""
    # NFKC joins decomposed Hangul jamo into syllables and folds full-width forms.
    return unicodedata.normalize("NFKC", text).casefold().strip()


def tokenize(text: str) -> list[str]:
    """Split normalised text into words, keeping noise markers such as `[unk]` as tokens."""
    return [t.strip("'") or t for t in _WORD.findall(normalize(text))]


def _is_hangul(token: str) -> bool:
    return bool(token) and all("\uac00" <= ch <= "\ud7a3" for ch in token)


def _word_matches(phrase_word: str, word: str, last: bool) -> bool:
    if word == phrase_word:
        return True
    # Korean attaches particles and endings to the word ("주문이요", "결제할게요"); a typed or
    # transcribed word that starts with the phrase's last Hangul word still names it.
    return last and _is_hangul(phrase_word) and _is_hangul(word) and word.startswith(phrase_word)


@dataclass(frozen=True)
class _Hit:
    key: str
    start: int
    end: int  # exclusive
    chars: int
    confidence: float


def _find_hits(
    words: list[str], confs: list[float], choices: Mapping[str, Sequence[str]]
) -> list[_Hit]:
    hits: list[_Hit] = []
    for key, phrases in choices.items():
        for phrase in phrases:
            ptoks = [t for t in tokenize(phrase) if t not in NOISE_TOKENS]
            n = len(ptoks)
            if not n:
                continue
            for start in range(len(words) - n + 1):
                if all(
                    _word_matches(p, words[start + i], i == n - 1) for i, p in enumerate(ptoks)
                ):
                    span = confs[start:start + n]
                    hits.append(_Hit(key, start, start + n, sum(map(len, ptoks)),
                                     sum(span) / n))
    return hits


def _select(hits: list[_Hit]) -> list[_Hit]:
    """Keep non-overlapping hits, most specific (most words, then most letters) first."""
    taken: set[int] = set()
    chosen: list[_Hit] = []
    for hit in sorted(hits, key=lambda h: (-(h.end - h.start), -h.chars, -h.confidence, h.start)):
        span = set(range(hit.start, hit.end))
        if span & taken:
            continue
        taken |= span
        chosen.append(hit)
    return chosen


def match_choice(
    text: str,
    choices: Mapping[str, Sequence[str]],
    *,
    word_confidences: Sequence[tuple[str, float]] | None = None,
    accept_threshold: float = DEFAULT_ACCEPT,
    confirm_threshold: float = DEFAULT_CONFIRM,
) -> MatchResult:
    """Pick the choice whose phrases the transcript names, weighing per-word confidence.

    Typed text (no `word_confidences`) counts as confidence 1.0 per word. When phrases of
    several choices appear, the choice with the larger summed confidence wins; its confidence is
    scaled by its share of all matched evidence, so a near tie falls below the thresholds.
    Below `accept_threshold` no key is returned; between the two thresholds the key is returned
    with `needs_confirmation` set.
    """
    transcript = text.strip()
    if word_confidences is not None:
        pairs = [(tok, max(0.0, min(1.0, float(c))))
                 for word, c in word_confidences for tok in tokenize(word)]
    else:
        pairs = [(tok, 1.0) for tok in tokenize(transcript)]
    # Noise tokens stay in place as gaps, so a phrase never spans a noise marker.
    words = [w for w, _ in pairs]
    confs = [0.0 if w in NOISE_TOKENS else c for w, c in pairs]
    chosen = _select(_find_hits(words, confs, choices))
    if not chosen:
        return MatchResult(None, transcript, 0.0, False)

    evidence: dict[str, float] = {}
    best: dict[str, float] = {}
    for hit in chosen:
        evidence[hit.key] = evidence.get(hit.key, 0.0) + hit.confidence
        best[hit.key] = max(best.get(hit.key, 0.0), hit.confidence)
    ranked = sorted(evidence.items(), key=lambda kv: kv[1], reverse=True)
    key, top = ranked[0]
    total = sum(evidence.values())
    share = top / total if total > 0 else 0.0
    if len(ranked) > 1 and (share <= TIE_SHARE or ranked[1][1] == top):
        # Two options said with equal weight: asking again beats guessing.
        return MatchResult(None, transcript, round(share * best[key], 4), False)
    confidence = round(best[key] * share, 4)
    if confidence < accept_threshold:
        return MatchResult(None, transcript, confidence, False)
    return MatchResult(key, transcript, confidence, confidence < confirm_threshold)
