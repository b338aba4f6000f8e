"""`ivr report`: how the hold queues did, from the visits and estimates recorded in SQL.

Definitions (per queue and overall, over visits that ended in the period):
- service level: visits answered within `--answer-within` seconds / all visits (callers who
  hung up or left for a callback count as not answered in time);
- wait: seconds from joining to the bridge, over answered visits (average and 90th percentile);
- abandonment rate: visits that ended with the caller hanging up / all visits;
- estimate accuracy: over estimates given to callers who were then answered, the mean absolute
  error of the expected remaining wait, and the share answered within the band they heard.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable

from sqlalchemy import select

from ivr.infra.db import Database, utcnow
from ivr.infra.queue_models import QueueVisit, WaitEstimate

ALL = "*"


def percentile(values: list[float], q: float) -> float | None:
    """The q-quantile (0..1) by linear interpolation between order statistics; None if empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = q * (len(ordered) - 1)
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def _mean(values: Iterable[float]) -> float | None:
    items = list(values)
    return sum(items) / len(items) if items else None


def figures(visits: list[QueueVisit], estimates: list[WaitEstimate],
            answer_within: float) -> dict:
    """The report's figures (see the module's definitions) over these visits and estimates."""
    total = len(visits)
    answered = [v for v in visits if v.outcome == "answered"]
    waits = [v.wait_seconds for v in answered]
    scored = [e for e in estimates if e.actual_seconds is not None]
    return {
        "visits": total,
        "answered": len(answered),
        "abandoned": sum(v.outcome == "abandoned" for v in visits),
        "callbacks": sum(v.outcome == "callback" for v in visits),
        "service_level": (sum(w <= answer_within for w in waits) / total) if total else None,
        "wait_avg_seconds": _mean(waits),
        "wait_p90_seconds": percentile(waits, 0.9),
        "abandonment_rate": (sum(v.outcome == "abandoned" for v in visits) / total
                             if total else None),
        "estimates_scored": len(scored),
        "estimate_mae_seconds": _mean(abs(e.expected_seconds - e.actual_seconds)
                                      for e in scored),
        "estimate_within_band": _mean(1.0 if e.within_band else 0.0 for e in scored),
    }


def summarize(db: Database, *, since: dt.datetime, until: dt.datetime | None = None,
              queue: str | None = None, answer_within: float = 20.0) -> dict:
    """The report as plain data: {'period', 'answer_within', 'queues': {name|'*': figures}}."""
    until = until or utcnow()
    with db.session() as session:
        query = select(QueueVisit).where(QueueVisit.left_at >= since, QueueVisit.left_at < until)
        if queue:
            query = query.where(QueueVisit.queue == queue)
        visits = list(session.scalars(query))
        ids = [v.id for v in visits]
        estimates = list(session.scalars(
            select(WaitEstimate).where(WaitEstimate.visit_id.in_(ids)))) if ids else []
    queue_of = {v.id: v.queue for v in visits}
    names = sorted({v.queue for v in visits})
    out = {name: figures([v for v in visits if v.queue == name],
                          [e for e in estimates if queue_of[e.visit_id] == name], answer_within)
           for name in names}
    out[ALL] = figures(visits, estimates, answer_within)
    return {
        "period": {"since": since.isoformat(), "until": until.isoformat()},
        "answer_within": answer_within,
        "queues": out,
    }


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"


def _sec(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}s"


def render_text(report: dict) -> str:
    """A table a person can read: one row per queue, then all queues."""
    within = report["answer_within"]
    head = (f"{'queue':<12} {'visits':>6} {'answered':>8} {f'SL {within:g}s':>8} "
            f"{'avg wait':>8} {'p90 wait':>8} {'abandon':>8} {'est MAE':>8} {'in band':>8} "
            f"{'scored':>6}")
    lines = [f"Hold queues {report['period']['since']} .. {report['period']['until']}", head,
             "-" * len(head)]
    for name, f in sorted(report["queues"].items(), key=lambda kv: (kv[0] == ALL, kv[0])):
        label = "all" if name == ALL else name
        lines.append(
            f"{label:<12} {f['visits']:>6} {f['answered']:>8} {_pct(f['service_level']):>8} "
            f"{_sec(f['wait_avg_seconds']):>8} {_sec(f['wait_p90_seconds']):>8} "
            f"{_pct(f['abandonment_rate']):>8} {_sec(f['estimate_mae_seconds']):>8} "
            f"{_pct(f['estimate_within_band']):>8} {f['estimates_scored']:>6}")
    return "\n".join(lines)
