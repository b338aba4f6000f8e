"""Scoring options from n-best alternatives, and averaging recognisers' votes."""

from __future__ import annotations

import pytest

from speech.nbest import Vote, combine, vote

CHOICES = {"1": ["주문"], "2": ["결제"], "operator": ["상담원"]}


def test_alternatives_share_their_probability_by_option():
    result = {"alternatives": [{"text": "상담원", "confidence": 100.0},
                               {"text": "주문", "confidence": 100.0},
                               {"text": "", "confidence": 100.0 - 50}]}
    v = vote(result, CHOICES)
    assert v.text == "상담원"
    assert v.scores["operator"] == pytest.approx(0.5)
    assert v.scores["1"] == pytest.approx(0.5)
    assert "2" not in v.scores


def test_an_alternative_naming_two_options_splits_its_mass():
    v = vote({"alternatives": [{"text": "주문 결제", "confidence": 3.0}]}, CHOICES)
    assert v.scores == {"1": pytest.approx(0.5), "2": pytest.approx(0.5)}


def test_plain_results_count_as_one_alternative():
    assert vote({"text": "결제"}, CHOICES).scores == {"2": pytest.approx(1.0)}
    assert vote({"alternatives": []}, CHOICES) == Vote({}, "")


def test_votes_are_averaged_and_ties_decide_nothing():
    a = Vote({"1": 0.9, "operator": 0.1}, "주문")
    b = Vote({"operator": 0.8, "1": 0.2}, "상담원")
    c = Vote({"1": 0.6}, "주문")
    key, share, text = combine([b, a, c])
    assert key == "1" and share == pytest.approx((0.2 + 0.9 + 0.6) / 3)
    assert text == "주문"  # the transcript of the first recogniser that favoured the winner
    assert combine([Vote({"1": 0.5}, "주문"), Vote({"2": 0.5}, "결제")])[0] is None
    assert combine([Vote({}, "")]) == (None, 0.0, "")


@pytest.mark.parametrize("options", [
    {"alternatives": 0, "tempos": (1.0,)},  # single best, per-word confidence
    {},  # n-best (the default)
    {"tempos": (1.0, 0.9, 1.1)},  # n-best averaged over tempo variants
])
def test_each_scoring_mode_recognises_a_fixture(korean_model, options):
    from speech.audio import read_audio
    from speech.recognizer import recognize_audio
    from tests.speech.conftest import FIXTURES, KOREAN_CHOICES

    decision = recognize_audio(read_audio(FIXTURES / "3_f1_s120_p40.ulaw"), KOREAN_CHOICES,
                               korean_model, **options)
    assert decision.match.key == "3"
    assert decision.match.text.split()[0] == "반품"
    assert 0.5 <= decision.match.confidence <= 1.0
