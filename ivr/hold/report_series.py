"""The series behind the console's report charts: the figures of `ivr report` hour by hour,
the spread of waits, the estimates callers heard against the waits that followed, and when
callers hang up.

Every series covers the visits that ended in [since, until) (of one queue, when given), as
`ivr.hold.report.summarize` does, and uses its definitions: an hour's service level is the one
`ivr report` would print for that hour alone.
"""

from __future__ import annotations

import bisect
import datetime as dt
from collections.abc import Sequence
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from ivr.hold.report import figures as report_figures
from ivr.infra.db import Database
from ivr.infra.queue_models import QueueVisit, WaitEstimate

# Lower bounds (seconds) of the wait buckets; each runs to the next, the last has no end.
WAIT_BUCKETS: tuple[int, ...] = (0, 10, 20, 30, 60, 120, 300, 600)
# Enough points to see the shape of the estimator's errors, few enough for a browser.
ESTIMATE_POINTS = 2000
# The figures of one hour (an hour has no estimates of its own to score).
HOURLY_FIGURES = ("visits", "answered", "abandoned", "callbacks", "service_level",
                  "wait_avg_seconds", "wait_p90_seconds", "abandonment_rate")

HOUR = dt.timedelta(hours=1)


def hourly(db: Database, *, since: dt.datetime, until: dt.datetime, zone: str,
           queue: str | None = None, answer_within: float = 20.0) -> list[dict[str, Any]]:
    """Every hour of the period in `zone`, with the report's figures over the visits that
    ended in it (empty hours included, so a chart shows the quiet ones)."""
    return _hourly(_visits(db, since, until, queue), since, until, zone, answer_within)


def wait_distribution(db: Database, *, since: dt.datetime, until: dt.datetime,
                      queue: str | None = None) -> list[dict[str, Any]]:
    """How many answered callers waited how long, in the fixed `WAIT_BUCKETS`."""
    return _wait_distribution(_visits(db, since, until, queue))


def abandonment_by_wait(db: Database, *, since: dt.datetime, until: dt.datetime,
                        queue: str | None = None) -> list[dict[str, Any]]:
    """For each wait bucket: the visits still waiting when it began, and the share of them
    who hung up before it ended."""
    return _abandonment_by_wait(_visits(db, since, until, queue))


def announced_vs_actual(db: Database, *, since: dt.datetime, until: dt.datetime,
                        queue: str | None = None,
                        limit: int = ESTIMATE_POINTS) -> dict[str, Any]:
    """The newest `limit` scored estimates (of answered visits): the wait announced, the wait
    that followed, and the band the caller heard; with how many were scored in all."""
    scored = (WaitEstimate.actual_seconds.is_not(None), QueueVisit.left_at >= since,
              QueueVisit.left_at < until, *((QueueVisit.queue == queue,) if queue else ()))
    with db.session() as session:
        total = session.scalar(select(func.count(WaitEstimate.id)).join(WaitEstimate.visit)
                               .where(*scored)) or 0
        rows = session.execute(
            select(WaitEstimate.expected_seconds, WaitEstimate.actual_seconds,
                   WaitEstimate.band, WaitEstimate.band_lower_seconds,
                   WaitEstimate.band_upper_seconds, WaitEstimate.within_band)
            .join(WaitEstimate.visit).where(*scored)
            .order_by(WaitEstimate.given_at.desc(), WaitEstimate.id.desc()).limit(limit)).all()
    points = [{"expected": r.expected_seconds, "actual": r.actual_seconds, "band": r.band,
               "lower": r.band_lower_seconds, "upper": r.band_upper_seconds,
               "within_band": bool(r.within_band)} for r in rows]
    return {"points": points, "scored": total, "shown": len(points)}


def series(db: Database, *, since: dt.datetime, until: dt.datetime, zone: str,
           queue: str | None = None, answer_within: float = 20.0) -> dict[str, Any]:
    """All four series of the reports page, reading the period's visits once."""
    visits = _visits(db, since, until, queue)
    return {
        "hourly": _hourly(visits, since, until, zone, answer_within),
        "waits": _wait_distribution(visits),
        "estimates": announced_vs_actual(db, since=since, until=until, queue=queue),
        "abandonment": _abandonment_by_wait(visits),
    }


def bucket_label(lower: int, upper: int | None) -> str:
    """'30–60 s', '2–5 min', '10 min+': a wait bucket as a supervisor reads it."""
    def unit(seconds: int) -> tuple[int, str]:
        return (seconds // 60, "min") if seconds >= 60 and seconds % 60 == 0 else (seconds, "s")

    low, low_unit = unit(lower)
    if upper is None:
        return f"{low} {low_unit}+"
    high, high_unit = unit(upper)
    if lower and low_unit != high_unit:  # "30–60 s" reads better than "30 s–1 min"
        return f"{lower}–{upper} s"
    return f"{low}–{high} {high_unit}"


# --- over the rows of one period ----------------------------------------------------------


def _visits(db: Database, since: dt.datetime, until: dt.datetime,
            queue: str | None) -> list[Any]:
    # Only the columns the series read: a quarter's visits stay light.
    query = (select(QueueVisit.queue, QueueVisit.left_at, QueueVisit.wait_seconds,
                    QueueVisit.outcome)
             .where(QueueVisit.left_at >= since, QueueVisit.left_at < until))
    if queue:
        query = query.where(QueueVisit.queue == queue)
    with db.session() as session:
        return list(session.execute(query.order_by(QueueVisit.left_at)).all())


def _hour_starts(since: dt.datetime, until: dt.datetime, zone: str) -> list[dt.datetime]:
    # From the start of the local hour holding `since`; stepping in UTC keeps a day with a
    # clock change right (its repeated hour is two buckets, its skipped one none).
    local = since.astimezone(ZoneInfo(zone))
    start = local.replace(minute=0, second=0, microsecond=0).astimezone(dt.UTC)
    starts = []
    while start < until:
        starts.append(start)
        start += HOUR
    return starts


def _hourly(visits: Sequence[Any], since: dt.datetime, until: dt.datetime, zone: str,
            answer_within: float) -> list[dict[str, Any]]:
    starts = _hour_starts(since, until, zone)
    grouped: list[list[Any]] = [[] for _ in starts]
    for visit in visits:
        grouped[bisect.bisect_right(starts, visit.left_at) - 1].append(visit)
    tz = ZoneInfo(zone)
    out = []
    for start, group in zip(starts, grouped, strict=True):
        figures = report_figures(group, [], answer_within)
        out.append({"start": start, "local": start.astimezone(tz),
                    **{name: figures[name] for name in HOURLY_FIGURES}})
    return out


def _bucket_of(wait: float) -> int:
    return max(0, bisect.bisect_right(WAIT_BUCKETS, wait) - 1)


def _buckets() -> list[dict[str, Any]]:
    bounds = list(zip(WAIT_BUCKETS, (*WAIT_BUCKETS[1:], None), strict=True))
    return [{"from": low, "to": high, "label": bucket_label(low, high)} for low, high in bounds]


def _wait_distribution(visits: Sequence[Any]) -> list[dict[str, Any]]:
    counts = [0] * len(WAIT_BUCKETS)
    for visit in visits:
        if visit.outcome == "answered":
            counts[_bucket_of(visit.wait_seconds)] += 1
    total = sum(counts)
    return [{**bucket, "visits": n, "share": n / total if total else None}
            for bucket, n in zip(_buckets(), counts, strict=True)]


def _abandonment_by_wait(visits: Sequence[Any]) -> list[dict[str, Any]]:
    # A visit that left at exactly a bucket's lower bound was still there when it began.
    ended = [0] * len(WAIT_BUCKETS)
    hung_up = [0] * len(WAIT_BUCKETS)
    for visit in visits:
        bucket = _bucket_of(visit.wait_seconds)
        ended[bucket] += 1
        hung_up[bucket] += visit.outcome == "abandoned"
    out, waiting = [], len(visits)
    for bucket, left, gone in zip(_buckets(), ended, hung_up, strict=True):
        out.append({**bucket, "waiting": waiting, "hung_up": gone,
                    "share": gone / waiting if waiting else None})
        waiting -= left
    return out
