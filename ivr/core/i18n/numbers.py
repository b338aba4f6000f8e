"""Numbers as words a text-to-speech voice reads in the caller's language.

A Hindi, Bengali or Tamil voice given Latin digits inside its own script may read them in
English, and Hindi and Bengali numbers up to 100 are irregular words that no rule derives, so
for those languages numbers are spelled out with `indic-num2words` (its tables are the
irregular words). English and Korean voices read digits correctly, so digits stay digits.

Ordinals follow each language's own rule: Hindi and Bengali have irregular first ordinals and
a regular suffix after them; Tamil adds -ஆவது to the cardinal.
"""

from __future__ import annotations

from num_to_words import num_to_word

SPELLED = ("hi", "bn", "ta")

# Words the library spells wrongly, as a reader would correct them.
_CORRECTIONS = {("hi", 45): "पैंतालीस", ("bn", 12): "বারো"}
_HINDI_ORDINALS = {1: "पहले", 2: "दूसरे", 3: "तीसरे", 4: "चौथे", 6: "छठे"}  # oblique forms
_BENGALI_ORDINALS = {1: "প্রথম", 2: "দ্বিতীয়", 3: "তৃতীয়", 4: "চতুর্থ", 5: "পঞ্চম",
                     6: "ষষ্ঠ", 7: "সপ্তম", 8: "অষ্টম", 9: "নবম", 10: "দশম"}
_TAMIL_FIRST = "முதலாவது"
_ENGLISH_ORDINALS = {1: "first", 2: "second", 3: "third", 4: "fourth", 5: "fifth",
                     6: "sixth", 7: "seventh", 8: "eighth", 9: "ninth", 10: "tenth",
                     11: "eleventh", 12: "twelfth"}


def base(language: str) -> str:
    return language.split("-")[0].lower()


def cardinal(language: str, n: int, *, standalone: bool = False) -> str:
    """`n` as the language's voice should read it, counting something ("five minutes");
    `standalone` for a number on its own (a digit read out)."""
    lang = base(language)
    if lang not in SPELLED or n < 0:
        return str(n)
    if lang == "ta" and n == 1 and not standalone:
        return "ஒரு"  # Tamil counts with the adjective form: ஒரு நிமிடம், not ஒன்று நிமிடம்
    if n == 100 and lang == "ta":
        return "நூறு"  # the library says "one hundred" word by word
    return _CORRECTIONS.get((lang, n)) or num_to_word(n, lang=lang, separator=" ")


def ordinal(language: str, n: int) -> str:
    """The `n`th, as a word (used where the language says places in line as ordinals)."""
    lang = base(language)
    if n < 1:
        return cardinal(language, n)
    if lang == "hi":
        return _HINDI_ORDINALS.get(n) or cardinal(lang, n) + "वें"
    if lang == "bn":
        return _BENGALI_ORDINALS.get(n) or cardinal(lang, n) + "তম"
    if lang == "ta":
        if n == 1:
            return _TAMIL_FIRST
        word = cardinal(lang, n, standalone=True)
        # A word ending in the vowel sign u drops it before -ஆவது (மூன்று -> மூன்றாவது).
        return (word[:-1] if word.endswith("\u0bc1") else word) + "ாவது"
    if lang == "en":
        if n in _ENGLISH_ORDINALS:
            return _ENGLISH_ORDINALS[n]
        suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
        return f"{n}{suffix}"
    return str(n)


# Bengali says the hour of the clock with its own words (নটা, not নয়): 1 to 12.
_BENGALI_HOURS = ("একটা", "দুটো", "তিনটে", "চারটে", "পাঁচটা", "ছটা", "সাতটা", "আটটা", "নটা",
                  "দশটা", "এগারোটা", "বারোটা")


def clock_hour(language: str, hour: int) -> str:
    """The hour of a 12-hour clock as said in telling the time (`{hour:clock}`)."""
    if base(language) == "bn" and 1 <= hour <= 12:
        return _BENGALI_HOURS[hour - 1]
    return cardinal(language, hour)


def digits(language: str, text: str) -> str:
    """Each digit of `text` on its own, the way a phone number's last digits are read."""
    return " ".join(cardinal(language, int(ch), standalone=True) if ch.isdigit() else ch
                    for ch in text if not ch.isspace())
