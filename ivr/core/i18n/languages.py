"""The languages the service speaks by itself: voices, scripts and speech models.

A flow names its languages by code (`hi`, `bn`, `ta`, `en`, `ko`). Each code here has working
defaults for Twilio's `<Say>` (Polly has Hindi and Indian English voices; Bengali and Tamil
only have Google voices) and the Unicode script its sentences are written in, which the tests
use to check that a caller hears their own language and nothing else.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from speech.models import PUBLISHED_MODELS


@dataclass(frozen=True, slots=True)
class LanguageInfo:
    """What the service knows about one language code."""

    code: str
    english_name: str
    say: str  # <Say language=...>
    voice: str  # <Say voice=...>
    script: re.Pattern[str]  # the letters its sentences are written in
    vosk_model: str | None  # the Vosk model that hears it, when one is published
    # Its imperative "say" (not "talk to"): a keypress-only language's prompts must not use it.
    say_word: re.Pattern[str] | None = None


def _letters(ranges: str) -> re.Pattern[str]:
    return re.compile(f"[{ranges}]")


LANGUAGES: dict[str, LanguageInfo] = {
    info.code: info for info in (
        LanguageInfo("en", "English", "en-IN", "Polly.Raveena", _letters("A-Za-z"),
                     PUBLISHED_MODELS.get("en")),
        LanguageInfo("hi", "Hindi", "hi-IN", "Polly.Aditi", _letters("\u0900-\u097f"),
                     PUBLISHED_MODELS.get("hi")),
        # Vosk publishes no Bengali or Tamil model: those menus take keypresses only.
        LanguageInfo("bn", "Bengali", "bn-IN", "Google.bn-IN-Standard-A",
                     _letters("\u0980-\u09ff"), None, re.compile("বলুন|বলো|উচ্চারণ করুন")),
        LanguageInfo("ta", "Tamil", "ta-IN", "Google.ta-IN-Standard-A",
                     _letters("\u0b80-\u0bff"), None,
                     re.compile("சொல்லுங்கள்|கூறுங்கள்|சொல்லவும்|கூறவும்")),
        LanguageInfo("ko", "Korean", "ko-KR", "Polly.Seoyeon", _letters("\uac00-\ud7a3"),
                     PUBLISHED_MODELS.get("ko")),
    )
}

# Any letter of any script: a sentence's letters minus its language's are the foreign ones.
_ANY_LETTER = re.compile(r"[^\W\d_]")


def info(code: str) -> LanguageInfo | None:
    """The known language `code` (a base code such as 'hi'; 'hi-IN' is taken as 'hi')."""
    return LANGUAGES.get(code.split("-")[0].lower())


def foreign_letters(code: str, text: str) -> str:
    """The letters of `text` that are not in `code`'s script (empty when all are)."""
    known = info(code)
    if known is None:
        return ""
    return "".join(ch for ch in _ANY_LETTER.findall(text) if not known.script.match(ch))


TWILIO_QUEUE_NAME_MAX = 64


def twilio_queue(queue: str, language: str, default_language: str) -> str:
    """The Twilio queue that holds `queue`'s callers who speak `language`.

    `<Dial><Queue>` bridges the longest-waiting caller of the Twilio queue it names, so each
    language waits in a queue of its own: an agent rung for the English caller behind a Hindi
    one gets that English caller. The flows' default language keeps the plain name."""
    if not language or language == default_language:
        return queue
    # A flow queue's name has no '.' (the schema says so), so this cannot collide; Twilio
    # takes names of up to 64 characters.
    return f"{queue[:TWILIO_QUEUE_NAME_MAX - len(language) - 1]}.{language}"
