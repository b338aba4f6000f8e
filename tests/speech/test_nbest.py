"""Scoring choices from one decode's n-best alternatives: each choice by its best alternative."""

from __future__ import annotations

import pytest

from speech.nbest import (
    Hypothesis,
    best_choice,
    heard_text,
    hypotheses,
    rival_score,
    silence_score,
)

CHOICES = {"1": ["주문"], "2": ["결제"], "operator": ["상담원"]}
# The English operator has five phrases, the other choices one or two.
ENGLISH = {"2": ["billing"], "3": ["returns"],
           "operator": ["agent", "person", "representative", "operator", "customer care"]}


def result(*alternatives: tuple[str, float]) -> dict:
    return {"alternatives": [{"text": t, "confidence": c} for t, c in alternatives]}


def test_alternatives_become_hypotheses_best_first_with_the_choices_they_name():
    hyps = hypotheses(result(("주문", 30.0), ("상담원", 34.5), ("", 31.0)), CHOICES)
    assert [(h.text, h.score, h.key) for h in hyps] == [
        ("상담원", 34.5, "operator"), ("", 31.0, None), ("주문", 30.0, "1")]
    assert best_choice(hyps).key == "operator"
    assert rival_score(hyps, "operator") == 30.0  # 주문; silence is no choice's rival
    assert silence_score(hyps) == 31.0


def test_each_choice_competes_by_its_best_alternative_not_by_how_many_phrases_it_has():
    # Three operator phrases just behind one billing alternative. Summing the alternatives'
    # probability (as the scorer before did) gave the operator 2.5 times billing's mass.
    hyps = hypotheses(result(("agent", 10.0), ("billing", 10.1), ("person", 9.9),
                             ("representative", 9.8)), ENGLISH)
    top = best_choice(hyps)
    assert top.key == "2"
    assert top.score - rival_score(hyps, "2") == pytest.approx(0.1)


def test_an_alternative_naming_two_choices_backs_neither_but_rivals_both():
    hyps = hypotheses(result(("주문 결제", 12.0), ("결제", 11.0)), CHOICES)
    assert hyps[0].keys == {"1", "2"} and hyps[0].key is None
    assert best_choice(hyps).key == "2"
    assert rival_score(hyps, "2") == 12.0  # the winner is behind: a negative margin
    assert best_choice(hypotheses(result(("주문 결제", 12.0)), CHOICES)) is None


def test_no_rival_in_the_n_best_is_none_not_zero():
    hyps = hypotheses(result(("결제", 20.0), ("결제 결제", 18.5)), CHOICES)
    assert best_choice(hyps).key == "2"
    assert rival_score(hyps, "2") is None  # the lattice beam cut the others off
    assert silence_score(hyps) is None


def test_plain_results_count_as_one_hypothesis_and_silence_as_nothing_heard():
    assert hypotheses({"text": "결제"}, CHOICES) == [Hypothesis("결제", 0.0, frozenset({"2"}))]
    assert hypotheses({"alternatives": []}, CHOICES) == []
    quiet = hypotheses(result(("", 40.0), ("[unk]", 39.0)), CHOICES)
    assert best_choice(quiet) is None and heard_text(quiet) == ""
    assert heard_text(hypotheses(result(("", 40.0), ("상담원", 39.0)), CHOICES)) == "상담원"


@pytest.mark.parametrize("options", [
    {"alternatives": 0},  # the plain best transcript, weighed by per-word confidence
    {},  # n-best margins (the default)
])
def test_each_scoring_mode_recognises_a_fixture(korean_model, options):
    """3_f2 is a fixture the pipeline before this change also recognised."""
    from speech.audio import read_audio
    from speech.calibration import reseed_dither
    from speech.recognizer import recognize_audio
    from tests.speech.conftest import FIXTURES, KOREAN_CHOICES

    reseed_dither(1)
    decision = recognize_audio(read_audio(FIXTURES / "3_f2_s120_p40.ulaw"), KOREAN_CHOICES,
                               korean_model, **options)
    assert decision.match.key == "3"
    assert decision.match.text.split()[0] == "반품"
    assert 0.5 <= decision.match.confidence <= 1.0
    assert (decision.margin is None) == (options.get("alternatives") == 0)
