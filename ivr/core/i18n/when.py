"""When something will happen, as a caller hears it: "after 9 AM tomorrow", "कल सुबह नौ बजे के बाद".

A time is said by the part of the day and the hour (Hindi, Bengali and Tamil name the part of
the day where English says AM or PM), rounded down to the hour so that "after" stays true;
the day is today, tomorrow, or the weekday's name from Babel's locale data.
"""

from __future__ import annotations

import datetime as dt

from babel.dates import format_date

from ivr.core.i18n.catalog import Phrasebook
from ivr.core.i18n.numbers import base

_LOCALES = {"en": "en_IN", "hi": "hi_IN", "bn": "bn_IN", "ta": "ta_IN", "ko": "ko_KR"}
# (first hour, part of the day), latest first.
_PARTS = ((20, "night"), (16, "evening"), (12, "afternoon"), (5, "morning"), (0, "early"))


def part_of_day(hour: int) -> str:
    return next(name for start, name in _PARTS if hour >= start)


def spoken_after(book: Phrasebook, language: str, at: dt.datetime, now: dt.datetime) -> str:
    """'after <time> <day>' for `at`, seen from `now` (both in the place's own time zone)."""
    hour = at.hour % 12 or 12
    time = book.say(language, f"time.{part_of_day(at.hour)}", hour=hour)
    days = (at.date() - now.date()).days
    if days <= 0:
        return book.say(language, "when.today", time=time)
    if days == 1:
        return book.say(language, "when.tomorrow", time=time)
    locale = _LOCALES.get(base(language), "en")
    day = format_date(at.date(), "EEEE", locale=locale)
    return book.say(language, "when.on_day", time=time, day=day)
