"""'After 9 AM tomorrow', said the way each language tells the time."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from ivr.core.i18n.catalog import Phrasebook
from ivr.core.i18n.languages import foreign_letters
from ivr.core.i18n.when import part_of_day, spoken_after

KOLKATA = ZoneInfo("Asia/Kolkata")
NIGHT = dt.datetime(2026, 12, 1, 22, 0, tzinfo=KOLKATA)  # a Tuesday


@pytest.mark.parametrize(("language", "at", "said"), [
    ("en", dt.datetime(2026, 12, 2, 9, 0), "after 9 AM tomorrow"),
    ("en", dt.datetime(2026, 12, 2, 9, 45), "after 9 AM tomorrow"),  # rounded down: still true
    ("en", dt.datetime(2026, 12, 4, 14, 0), "after 2 PM on Friday"),
    ("en", dt.datetime(2026, 12, 1, 23, 0), "after 11 PM today"),
    ("hi", dt.datetime(2026, 12, 2, 9, 0), "कल सुबह नौ बजे के बाद"),
    ("hi", dt.datetime(2026, 12, 4, 18, 0), "शुक्रवार को शाम छः बजे के बाद"),
    ("bn", dt.datetime(2026, 12, 2, 9, 0), "আগামীকাল সকাল নটা বাজার পরে"),  # নটা, not নয়
    ("bn", dt.datetime(2026, 12, 2, 15, 0), "আগামীকাল দুপুর তিনটে বাজার পরে"),
    ("ta", dt.datetime(2026, 12, 2, 9, 0), "நாளை காலை ஒன்பது மணிக்குப் பிறகு"),
    ("ko", dt.datetime(2026, 12, 2, 9, 0), "내일 오전 9시 이후에"),
])
def test_after_a_time(language, at, said):
    assert spoken_after(Phrasebook(), language, at.replace(tzinfo=KOLKATA), NIGHT) == said


@pytest.mark.parametrize("language", ["hi", "bn", "ta", "ko"])
def test_every_hour_of_every_day_stays_in_the_language(language):
    book = Phrasebook()
    for days in range(8):
        for hour in range(24):
            at = NIGHT.replace(hour=hour) + dt.timedelta(days=days)
            text = spoken_after(book, language, at, NIGHT)
            assert foreign_letters(language, text) == "", text
            assert language == "ko" or not any(c.isascii() and c.isdigit() for c in text), text


def test_parts_of_the_day():
    assert [part_of_day(h) for h in (0, 4, 5, 11, 12, 15, 16, 19, 20, 23)] == [
        "early", "early", "morning", "morning", "afternoon", "afternoon", "evening", "evening",
        "night", "night"]
