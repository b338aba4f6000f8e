"""Honest phrasing bands and the overdue rule for repeated announcements."""

import pytest

from ivr.core.waits import Announcement, band_for, estimate_wait, honest_announcement


@pytest.mark.parametrize(
    ("seconds", "phrase", "upper"),
    [
        (0, "less than a minute", 60),
        (59.9, "less than a minute", 60),
        (60, "less than a minute", 60),
        (61, "about 2 minutes", 150),
        (150, "about 2 minutes", 150),
        (151, "about 3 minutes", 210),
        (600, "about 10 minutes", 630),
        (1170, "about 19 minutes", 1170),
        (1171, "about 20 minutes", 1200),
        (1200, "about 20 minutes", 1200),
        (1201, "more than 20 minutes", None),
        (36_000, "more than 20 minutes", None),
    ],
)
def test_band_edges(seconds, phrase, upper):
    band = band_for(seconds)
    assert band.phrase == phrase
    assert band.upper_seconds == upper
    assert str(band) == phrase


def test_band_ranks_are_ordered():
    ranks = [band_for(s).rank for s in (10, 100, 200, 700, 1199, 5000)]
    assert ranks == sorted(ranks) and len(set(ranks)) == len(ranks)


def test_promises_kept_or_broken():
    about_three = band_for(200)
    assert about_three.is_kept_by(30) and about_three.is_kept_by(210)
    assert not about_three.is_kept_by(211)
    long_wait = band_for(5000)
    assert long_wait.is_kept_by(1300) and not long_wait.is_kept_by(600)


def test_first_announcement_says_the_estimate():
    said = honest_announcement(band_for(200), 0.0)
    assert said.band.phrase == "about 3 minutes"
    assert not said.is_overdue and not said.was_overdue
    assert said.deadline_seconds == 210


def test_progress_before_the_promise_lapses_may_be_announced_shorter():
    first = honest_announcement(band_for(200), 0.0)
    later = honest_announcement(band_for(40), 120.0, first)  # 2 min in, almost at the front
    assert later.band.phrase == "less than a minute"
    assert not later.is_overdue


def test_overdue_caller_is_never_told_a_shorter_wait():
    first = honest_announcement(band_for(200), 0.0)  # "about 3 minutes": due by 210 s
    late = honest_announcement(band_for(40), 240.0, first)
    assert late.is_overdue
    # Not "less than a minute", and not the lapsed "about 3 minutes" again: one step longer.
    assert late.band.phrase == "about 4 minutes"
    # The floor sticks for the rest of the wait, while the new promise is not yet due.
    later = honest_announcement(band_for(20), 270.0, late)
    assert not later.is_overdue and later.was_overdue
    assert later.band.phrase == "about 4 minutes"


def test_a_countdown_of_short_bands_stops_when_it_lapses():
    said = honest_announcement(band_for(200), 0.0)  # "about 3 minutes", due by 210 s
    said = honest_announcement(band_for(40), 30.0, said)  # progress: "less than a minute"
    assert said.band.phrase == "less than a minute" and not said.is_overdue
    assert said.deadline_seconds == 90
    said = honest_announcement(band_for(40), 60.0, said)
    assert said.band.phrase == "less than a minute"
    said = honest_announcement(band_for(40), 120.0, said)  # 90 s passed: that promise lapsed
    assert said.is_overdue
    assert said.band.phrase == "about 2 minutes"


def test_every_lapsed_promise_counts_not_only_the_latest():
    said = honest_announcement(band_for(500), 0.0)  # "about 8 minutes": due by 510 s
    for elapsed in range(30, 511, 30):
        # Each new band is shorter and its own promise is never the one to lapse first...
        said = honest_announcement(band_for(max(61.0, 500.0 - elapsed)), float(elapsed), said)
        assert not said.is_overdue
    said = honest_announcement(band_for(61.0), 540.0, said)
    # ...but the first promise lapsed at 510 s: nothing below "about 9 minutes" now.
    assert said.is_overdue
    assert said.band.phrase == "about 9 minutes"


def test_overdue_caller_may_be_told_a_longer_wait():
    first = honest_announcement(band_for(50), 0.0)  # "less than a minute"
    late = honest_announcement(band_for(400), 90.0, first)
    assert late.is_overdue
    assert late.band.phrase == "about 7 minutes"


def test_open_ended_band_is_never_overdue():
    first = honest_announcement(band_for(5000), 0.0)
    assert first.deadline_seconds is None
    assert not first.is_overdue_at(100_000)


def test_announcement_round_trips_through_redis_strings():
    first = honest_announcement(band_for(200), 0.0)
    late = honest_announcement(band_for(40), 240.0, first)
    stored = {k: str(v) for k, v in late.to_dict().items()}  # a Redis hash gives back strings
    back = Announcement.from_dict(stored)
    assert back == late
    assert back.band.phrase == "about 4 minutes"
    assert back.promises == late.promises and back.floor_rank == 4
    as_bytes = {k.encode(): str(v).encode() for k, v in late.to_dict().items()}
    assert Announcement.from_dict(as_bytes) == late


def test_estimate_announces_with_its_own_elapsed_wait():
    est = estimate_wait(1, 10, None, elapsed_seconds=500)  # front of the line, long overdue
    previous = honest_announcement(band_for(200), 0.0)
    said = est.announce(previous)
    assert est.band.phrase == "less than a minute"
    assert said.is_overdue and said.band.phrase == "about 4 minutes"
    assert said.announced_at_seconds == 500
