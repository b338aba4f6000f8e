"""Numbers as the caller's voice should read them: words in Hindi, Bengali and Tamil."""

from __future__ import annotations

import pytest

from ivr.core.i18n.catalog import Phrasebook
from ivr.core.i18n.numbers import cardinal, digits, ordinal


@pytest.mark.parametrize(("language", "n", "word"), [
    ("hi", 3, "तीन"), ("hi", 45, "पैंतालीस"), ("hi", 99, "निन्यान्बे"),
    ("bn", 12, "বারো"), ("bn", 45, "পঁয়তাল্লিশ"),
    ("ta", 5, "ஐந்து"), ("ta", 1, "ஒரு"), ("ta", 100, "நூறு"),
    ("en", 45, "45"), ("ko", 45, "45"),  # these voices read digits right
])
def test_cardinals(language, n, word):
    assert cardinal(language, n) == word


@pytest.mark.parametrize(("language", "n", "word"), [
    ("hi", 1, "पहले"), ("hi", 3, "तीसरे"), ("hi", 5, "पाँचवें"), ("hi", 6, "छठे"),
    ("bn", 2, "দ্বিতীয়"), ("bn", 10, "দশম"), ("bn", 11, "এগারতম"),
    ("ta", 1, "முதலாவது"), ("ta", 3, "மூன்றாவது"), ("ta", 5, "ஐந்தாவது"),
    ("en", 3, "third"), ("en", 22, "22nd"), ("en", 13, "13th"),
])
def test_ordinals(language, n, word):
    assert ordinal(language, n) == word


def test_a_phone_numbers_last_digits_are_read_one_by_one():
    assert digits("hi", "4501") == "चार पाँच शून्य एक"
    assert digits("ta", "1") == "ஒன்று"  # a digit on its own, not the counting form
    assert digits("en", "0123") == "0 1 2 3"


def test_numbers_inside_sentences_are_words():
    book = Phrasebook()
    assert book.say("hi", "hold.position", position=3) == "लाइन में आप तीसरे नंबर पर हैं।"
    assert "৪" not in book.say("bn", "offer.callback", last4="4567")
    assert "চার পাঁচ ছয় সাত" in book.say("bn", "offer.callback", last4="4567")
    assert "ஒரு நிமிடத்துக்கு" in book.say("ta", "callback.whisper.asked_one")
    assert "இரண்டு நிமிடங்களில்" in book.say("ta", "offer.wait", minutes=2)
