"""Every voice catalogue is complete, keeps English's placeholders, and is in its own script."""

from __future__ import annotations

import datetime as dt
import re
import string

import pytest
from babel.dates import format_date

from ivr.core.i18n import numbers
from ivr.core.i18n.catalog import Phrasebook, catalogue, fields, keys
from ivr.core.i18n.languages import LANGUAGES, foreign_letters

LANGUAGES_SPOKEN = ["hi", "bn", "ta", "ko", "en"]
OWN_SCRIPT = ["hi", "bn", "ta", "ko"]
ASCII_DIGIT = re.compile(r"[0-9]")

# What the caller's own words and the queue's label look like, in each language's script.
LOCALES = {"hi": "hi_IN", "bn": "bn_IN", "ta": "ta_IN", "ko": "ko_KR", "en": "en_IN"}
SAMPLE_TEXT = {"hi": "बिलिंग", "bn": "বিলিং", "ta": "பில்லிங்", "ko": "결제", "en": "billing"}

# Words that ask a caller to speak, by their stems at the start of a word. Bengali and Tamil
# have no speech model: a sentence with one of these would invite an answer nobody can hear.
_LETTERS = {"bn": "\u0980-\u09ff", "ta": "\u0b80-\u0bff"}
SPEAK_WORDS = {
    "bn": ("বল", "উচ্চারণ"),  # বলুন, বলেছেন, কথা বলতে; "pronounce"
    "ta": ("சொல்", "சொன்ன", "கூற", "பேச"),  # say, said, tell (கூறுங்கள்), speak (பேசுங்கள்)
}
KEYPRESS_ONLY = sorted(code for code, lang in LANGUAGES.items() if lang.vosk_model is None)


def speak_words(lang: str, text: str) -> list[str]:
    """The words of `text` that invite speech in the keypress-only language `lang`."""
    letter = f"[{_LETTERS[lang]}]"
    stems = "|".join(SPEAK_WORDS[lang])
    return re.findall(f"(?<!{letter})(?:{stems}){letter}*", text)


def literal(template: str) -> str:
    """The sentence's own words: the template with its placeholders taken out."""
    return "".join(text for text, _, _, _ in string.Formatter().parse(template))


def sample(lang: str, template: str, book: Phrasebook) -> dict[str, object]:
    """Values for the placeholders of `template`, shaped like what the service fills in."""
    text = SAMPLE_TEXT[lang]
    values: dict[str, object] = {
        "position": 3, "minutes": 5, "last4": "4567", "value": "4567",
        "band": book.say(lang, "wait.about", minutes=5),
        "wait": book.say(lang, "offer.wait", minutes=5),
        "language": book.say(lang, "language.hi"),
        "whisper": book.say(lang, "whisper.queue", queue=text),
        "keys": numbers.cardinal(lang, 2),
        "queue": text, "said": text, "name": text, "reason": text, "choice": text,
        "hour": 9, "time": book.say(lang, "time.morning", hour=9),
        "when": book.say(lang, "when.tomorrow", time=book.say(lang, "time.morning", hour=9)),
        "day": format_date(dt.date(2026, 12, 4), "EEEE", locale=LOCALES[lang]),
    }
    return {name: values[name] for name in fields(template)}


@pytest.mark.parametrize("lang", LANGUAGES_SPOKEN)
def test_every_english_key_and_no_other(lang):
    table = catalogue("voice")[lang]
    assert sorted(set(keys("voice")) - set(table)) == []
    assert sorted(set(table) - set(keys("voice"))) == []


@pytest.mark.parametrize("lang", LANGUAGES_SPOKEN)
def test_same_placeholders_as_english(lang):
    english = catalogue("voice")["en"]
    wrong = {key: (sorted(fields(text)), sorted(fields(english[key])))
             for key, text in catalogue("voice")[lang].items()
             if fields(text) != fields(english[key])}
    assert wrong == {}


@pytest.mark.parametrize("lang", OWN_SCRIPT)
def test_sentences_are_in_the_language_script_with_numbers_as_words(lang):
    table = catalogue("voice")[lang]
    foreign = {key: foreign_letters(lang, literal(text)) for key, text in table.items()}
    assert {key: letters for key, letters in foreign.items() if letters} == {}
    assert [key for key, text in table.items() if ASCII_DIGIT.search(literal(text))] == []


@pytest.mark.parametrize("lang", LANGUAGES_SPOKEN)
def test_filled_sentences_stay_in_the_language(lang):
    book = Phrasebook()
    spoken = {key: book.say(lang, key, **sample(lang, book.template(lang, key) or "", book))
              for key in keys("voice")}
    assert {key: foreign_letters(lang, text) for key, text in spoken.items()
            if foreign_letters(lang, text)} == {}
    if lang in numbers.SPELLED:  # their voices would read a digit in English
        assert [key for key, text in spoken.items() if ASCII_DIGIT.search(text)] == []
    # A filled sentence joins its parts cleanly: no doubled spaces or stray commas.
    assert [key for key, text in spoken.items()
            if re.search(r"  | [,.।?]|,,|^\s|\s$", text)] == []


@pytest.mark.parametrize("lang", OWN_SCRIPT + ["en"])
def test_callback_taken_reads_with_and_without_a_wait(lang):
    book = Phrasebook()
    without = book.say(lang, "offer.taken", last4="4567", wait="")
    with_wait = book.say(lang, "offer.taken", last4="4567",
                         wait=book.say(lang, "offer.wait", minutes=5))
    for text in (without, with_wait):
        assert not re.search(r"  | [,.।]|,,|,\s*[.।]", text), text
    assert book.say(lang, "offer.wait", minutes=5).strip(" ,") in with_wait
    assert numbers.digits(lang, "4567") in without


def test_keypress_only_languages_are_the_ones_checked_for_speech():
    assert KEYPRESS_ONLY == sorted(SPEAK_WORDS)


@pytest.mark.parametrize("lang", KEYPRESS_ONLY)
def test_keypress_only_languages_never_ask_the_caller_to_speak(lang):
    found = {key: speak_words(lang, text) for key, text in catalogue("voice")[lang].items()}
    assert {key: words for key, words in found.items() if words} == {}


@pytest.mark.parametrize(("lang", "sentence", "word"), [
    ("bn", "আপনার নাম বলুন।", "বলুন"),
    ("bn", "গ্রাহক বলেছেন, 'বিলিং'।", "বলেছেন"),
    ("ta", "உங்கள் பெயரைச் சொல்லுங்கள்.", "சொல்லுங்கள்"),
    ("ta", "விருப்பத்தைக் கூறுங்கள்.", "கூறுங்கள்"),
    ("ta", "பிரதிநிதியுடன் பேச ஒன்றை அழுத்தவும்.", "பேச"),
])
def test_the_speech_check_finds_an_invitation_to_speak(lang, sentence, word):
    assert speak_words(lang, sentence) == [word]


@pytest.mark.parametrize(("lang", "key", "values", "expected"), [
    ("hi", "hold.position", {"position": 3}, "लाइन में आप तीसरे नंबर पर हैं।"),
    ("bn", "hold.position", {"position": 3}, "লাইনে আপনি তিন নম্বরে আছেন।"),
    ("ta", "hold.position", {"position": 3}, "வரிசையில் நீங்கள் மூன்றாவது இடத்தில் இருக்கிறீர்கள்."),
    ("ko", "hold.position", {"position": 3}, "고객님의 대기 순서는 3번입니다."),
    ("hi", "whisper.language", {"language": "बंगाली"}, "बंगाली भाषी ग्राहक।"),
])
def test_places_in_line_and_whisper_read_as_written(lang, key, values, expected):
    assert Phrasebook().say(lang, key, **values) == expected
