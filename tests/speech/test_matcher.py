"""Choosing a menu option from a transcript: typed text, recogniser words, Korean, ties."""

from __future__ import annotations

import unicodedata

import pytest

from speech.matcher import MatchResult, match_choice

MAIN = {
    "1": ["orders", "order", "order status", "delivery"],
    "2": ["billing", "payment", "invoice", "refund"],
    "3": ["returns", "return", "exchange"],
    "operator": ["agent", "person", "representative", "operator"],
}
KOREAN = {"1": ["주문"], "2": ["결제"], "3": ["반품"], "operator": ["상담원"]}


@pytest.mark.parametrize(("text", "key"), [
    ("billing", "2"),
    ("BILLING", "2"),
    ("I'd like to talk about a Refund, please", "2"),
    ("agent", "operator"),
    ("um, a real person please", "operator"),
    ("order status", "1"),
    ("returns", "3"),
    ("ｂｉｌｌｉｎｇ", "2"),  # full-width letters fold to ASCII
])
def test_typed_text_picks_the_option(text, key):
    result = match_choice(text, MAIN)
    assert result == MatchResult(key, text.strip(), 1.0, False)


@pytest.mark.parametrize("text", ["", "   ", "hello there", "bill", "reorder", "[unk]"])
def test_no_whole_word_means_no_choice(text):
    result = match_choice(text, MAIN)
    assert result.key is None and result.confidence == 0.0


def test_longest_phrase_wins_over_a_shorter_one_inside_it():
    choices = {"track": ["order status"], "buy": ["order"]}
    assert match_choice("order status", choices).key == "track"
    assert match_choice("new order", choices).key == "buy"


def test_two_options_with_equal_weight_are_a_tie():
    result = match_choice("billing or returns", MAIN)
    assert result.key is None
    assert not result.needs_confirmation


def test_higher_summed_confidence_wins_between_two_options():
    words = [("billing", 0.95), ("returns", 0.2)]
    result = match_choice("billing returns", MAIN, word_confidences=words)
    assert result.key == "2"
    assert result.confidence == pytest.approx(0.95 * 0.95 / 1.15, abs=1e-4)
    assert result.needs_confirmation  # another option was heard too


def test_repeated_option_outweighs_a_single_other():
    words = [("refund", 0.9), ("billing", 0.9), ("returns", 0.7)]
    result = match_choice("refund billing returns", MAIN, word_confidences=words)
    assert (result.key, result.needs_confirmation) == ("2", True)
    assert result.confidence == pytest.approx(0.9 * 1.8 / 2.5, abs=1e-4)


@pytest.mark.parametrize(("conf", "key", "confirm"), [
    (0.95, "2", False),
    (0.65, "2", True),
    (0.3, None, False),
])
def test_confidence_thresholds(conf, key, confirm):
    result = match_choice("billing", MAIN, word_confidences=[("billing", conf)])
    assert (result.key, result.needs_confirmation) == (key, confirm)
    assert result.confidence == pytest.approx(conf)


def test_custom_thresholds():
    words = [("billing", 0.65)]
    assert match_choice("billing", MAIN, word_confidences=words,
                        confirm_threshold=0.6).needs_confirmation is False
    assert match_choice("billing", MAIN, word_confidences=words,
                        accept_threshold=0.7).key is None


def test_unk_is_noise_and_breaks_phrases():
    words = [("[unk]", 1.0), ("billing", 0.9), ("[unk]", 1.0)]
    assert match_choice("[unk] billing [unk]", MAIN, word_confidences=words).key == "2"
    # "order [unk] status" is not the phrase "order status"; "order" alone still counts.
    words = [("order", 0.9), ("[unk]", 1.0), ("status", 0.9)]
    result = match_choice("order [unk] status", {"a": ["order status"], "b": ["order"]},
                          word_confidences=words)
    assert result.key == "b"


def test_phrase_confidence_is_the_mean_of_its_words():
    words = [("order", 1.0), ("status", 0.6)]
    result = match_choice("order status", MAIN, word_confidences=words)
    assert (result.key, result.confidence, result.needs_confirmation) == ("1", 0.8, False)


@pytest.mark.parametrize(("text", "key"), [
    ("주문", "1"),
    ("결제", "2"),
    ("반품이요", "3"),  # particle attached to the word
    ("상담원 연결해 주세요", "operator"),
    ("결제할게요", "2"),
])
def test_korean(text, key):
    assert match_choice(text, KOREAN).key == key


def test_korean_decomposed_jamo_is_normalised():
    decomposed = unicodedata.normalize("NFD", "결제")
    assert decomposed != "결제"
    assert match_choice(decomposed, KOREAN).key == "2"


def test_korean_does_not_match_inside_another_word():
    # 재주문 ("re-order") starts with a different syllable: not the whole word 주문.
    assert match_choice("재주문", KOREAN).key is None


def test_recogniser_words_drive_matching_not_the_text():
    result = match_choice("상담원", KOREAN, word_confidences=[("상담원", 0.4)])
    assert result.key is None and result.confidence == pytest.approx(0.4)
    assert result.text == "상담원"
