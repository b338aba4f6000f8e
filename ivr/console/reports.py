"""The console's reports page: the figures of `ivr report` over a chosen period, four charts
(service level and calls per hour, waits, announced against actual waits, abandonment against
time waited) and a CSV download.

The period is whole days of the flows' home time zone (`ivr.core.hours.home_zone`), from the
first day's midnight to the end of the last day or now, whichever is sooner. The page, its
chart data (`/console/reports/data`) and the CSV (`/console/reports.csv`) take the same query
parameters: `from` and `to` (dates), `queue` (empty: all) and `within` (service-level seconds).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from flask import Response, abort, current_app, render_template, request, url_for

from ivr.console import auth
from ivr.console.blueprint import bp
from ivr.core.hours import home_zone
from ivr.errors import IvrError
from ivr.hold.report import ALL, summarize
from ivr.hold.report_series import HOURLY_FIGURES, hourly, series
from ivr.infra.services import services_of

DEFAULT_DAYS = 7
MAX_DAYS = 93  # a quarter: the hourly chart stays readable and the query light
DEFAULT_WITHIN = 20.0
MIN_WITHIN = 1.0  # as a queue's own service_level.seconds
MAX_WITHIN = 3600.0
DAY = dt.timedelta(days=1)

QUEUE_FIGURES = ("visits", "answered", "abandoned", "callbacks", "service_level",
                 "wait_avg_seconds", "wait_p90_seconds", "abandonment_rate",
                 "estimates_scored", "estimate_mae_seconds", "estimate_within_band")


class BadReportRequest(IvrError, ValueError):
    """The report's form was filled in wrongly; `problems` holds one sentence per field."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__(" ".join(problems))


@dataclass(frozen=True)
class ReportRequest:
    """What a report is asked for: whole local days, a queue (or all) and the SL threshold."""

    first: dt.date
    last: dt.date
    since: dt.datetime  # aware UTC: midnight starting `first` in `zone`
    until: dt.datetime  # aware UTC: midnight ending `last`, or now if sooner
    zone: str
    queue: str | None
    answer_within: float

    def args(self) -> dict[str, str]:
        """The query parameters that ask for this report again."""
        return {"from": self.first.isoformat(), "to": self.last.isoformat(),
                "queue": self.queue or "", "within": f"{self.answer_within:g}"}


def read_request(args: Mapping[str, str], *, now: dt.datetime, zone: str,
                 queues: list[str]) -> ReportRequest:
    """The report `args` ask for (defaults: the last 7 days up to now, all queues, 20 s).

    Raises:
        BadReportRequest: with every problem found, each a sentence for the page.
    """
    tz = ZoneInfo(zone)
    today = now.astimezone(tz).date()
    problems: list[str] = []
    first = _date(args.get("from"), today - (DEFAULT_DAYS - 1) * DAY, "From", problems)
    last = _date(args.get("to"), today, "To", problems)
    if first and last:
        if last < first:
            problems.append(f"“To” ({last:%d %b %Y}) is before “From” ({first:%d %b %Y}).")
        elif (last - first).days + 1 > MAX_DAYS:
            problems.append(f"The period is {(last - first).days + 1} days long; choose at "
                            f"most {MAX_DAYS} days.")
        elif first > today:
            problems.append(f"“From” ({first:%d %b %Y}) is in the future: today is "
                            f"{today:%d %b %Y}.")
    queue = (args.get("queue") or "").strip() or None
    if queue is not None and queue not in queues:
        problems.append(f"There is no queue named “{queue}”: choose one of "
                        f"{', '.join(queues)}, or all queues.")
    within = _seconds(args.get("within"), problems)
    if problems or first is None or last is None or within is None:
        raise BadReportRequest(problems)
    try:
        since = _midnight(first, tz)
        until = min(_midnight(min(last, today) + DAY, tz), now)
    except OverflowError:
        raise BadReportRequest(["Choose dates nearer to today."]) from None
    return ReportRequest(first, last, since, until, zone, queue, within)


def _date(text: str | None, default: dt.date, field: str,
          problems: list[str]) -> dt.date | None:
    text = (text or "").strip()
    if not text:
        return default
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        problems.append(f"“{field}” must be a date such as {default.isoformat()} "
                        f"(year-month-day), not “{text}”.")
        return None


def _seconds(text: str | None, problems: list[str]) -> float | None:
    text = (text or "").strip()
    if not text:
        return DEFAULT_WITHIN
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (MIN_WITHIN <= value <= MAX_WITHIN):  # nan fails this too
        problems.append(f"The service-level threshold must be a number of seconds from "
                        f"{MIN_WITHIN:g} to {MAX_WITHIN:g}, not “{text}”.")
        return None
    return value


def _midnight(day: dt.date, tz: ZoneInfo) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(0), tzinfo=tz).astimezone(dt.UTC)


# --- views ---------------------------------------------------------------------------------


@bp.get("/reports")
@auth.signed_in("admin")
def reports():
    """The reports page: the period form, the per-queue figures, and the charts."""
    services = services_of(current_app)
    zone, queues = _home_and_queues()
    try:
        asked = read_request(request.args, now=services.now(), zone=zone, queues=queues)
    except BadReportRequest as exc:
        return _page(None, queues, zone, form=request.args, problems=exc.problems), 400
    report = summarize(services.db, since=asked.since, until=asked.until, queue=asked.queue,
                       answer_within=asked.answer_within)
    return _page(asked, queues, zone, form=asked.args(), rows=_rows(report, asked))


@bp.get("/reports/data")
@auth.signed_in("admin")
def reports_data():
    """The charts' data as JSON (the same parameters as the page)."""
    asked = _asked()
    data = _series(asked)
    hours = [{"t": int(hour["start"].timestamp()),
              **{k: hour[k] for k in ("visits", "answered", "abandoned", "service_level")}}
             for hour in data["hourly"]]
    return {
        "zone": asked.zone,
        "queue": asked.queue,
        "answer_within": asked.answer_within,
        "period": {"since": asked.since.isoformat(), "until": asked.until.isoformat()},
        "hourly": hours,
        "waits": data["waits"],
        "estimates": data["estimates"],
        "abandonment": data["abandonment"],
    }


@bp.get("/reports.csv")
@auth.signed_in("admin")
def reports_csv():
    """The per-queue figures, then the hourly series, as one CSV file to download."""
    asked = _asked()
    db = services_of(current_app).db
    report = summarize(db, since=asked.since, until=asked.until, queue=asked.queue,
                       answer_within=asked.answer_within)
    hours = hourly(db, since=asked.since, until=asked.until, zone=asked.zone,
                   queue=asked.queue, answer_within=asked.answer_within)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["queue", *QUEUE_FIGURES])
    for name, figures in _ordered(report, asked):
        writer.writerow([_queue_label(name), *(_cell(figures[k]) for k in QUEUE_FIGURES)])
    writer.writerow([])
    writer.writerow(["hour_start_utc", f"hour_start_local ({asked.zone})", "queue",
                     *HOURLY_FIGURES])
    for hour in hours:
        writer.writerow([hour["start"].isoformat(), hour["local"].isoformat(),
                         asked.queue or "all", *(_cell(hour[k]) for k in HOURLY_FIGURES)])
    name = f"ivr-report-{asked.first}-to-{asked.last}" + (f"-{asked.queue}" if asked.queue
                                                          else "")
    return Response(out.getvalue(), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{name}.csv"'})


def _asked() -> ReportRequest:
    # For the data and the CSV: a bad form is a 400 whose message is every problem in it.
    zone, queues = _home_and_queues()
    try:
        return read_request(request.args, now=services_of(current_app).now(), zone=zone,
                            queues=queues)
    except BadReportRequest as exc:
        abort(400, " ".join(exc.problems))


def _home_and_queues() -> tuple[str, list[str]]:
    flows = services_of(current_app).flows.current().file
    return home_zone(flows), sorted(flows.queues)


def _series(asked: ReportRequest) -> dict[str, Any]:
    return series(services_of(current_app).db, since=asked.since, until=asked.until,
                  zone=asked.zone, queue=asked.queue, answer_within=asked.answer_within)


# --- what the page shows -------------------------------------------------------------------


def _page(asked: ReportRequest | None, queues: list[str], zone: str, *,
          form: Mapping[str, str], rows: list[dict] | None = None,
          problems: list[str] | None = None) -> str:
    return render_template(
        "console/reports.html", user=auth.current_user(), page="reports", asked=asked,
        queues=queues, zone=zone, form=form, rows=rows or [], problems=problems or [],
        period=_period_text(asked) if asked else "",
        data_url=url_for("console.reports_data", **asked.args()) if asked else "",
        csv_url=url_for("console.reports_csv", **asked.args()) if asked else "")


def _ordered(report: dict, asked: ReportRequest) -> list[tuple[str, dict]]:
    # Each queue, then all of them together; one queue asked for is one row (its "all" is it).
    if asked.queue:
        return [(asked.queue, report["queues"][ALL])]
    named = sorted((name, f) for name, f in report["queues"].items() if name != ALL)
    return [*named, (ALL, report["queues"][ALL])]


def _rows(report: dict, asked: ReportRequest) -> list[dict]:
    return [{"queue": _queue_label(name), "is_total": name == ALL,
             "visits": f["visits"], "answered": f["answered"],
             "service_level": _percent(f["service_level"]),
             "wait_avg": _duration(f["wait_avg_seconds"]),
             "wait_p90": _duration(f["wait_p90_seconds"]),
             "abandonment": _percent(f["abandonment_rate"]),
             "estimate_mae": _duration(f["estimate_mae_seconds"]),
             "within_band": _percent(f["estimate_within_band"]),
             "scored": f["estimates_scored"]}
            for name, f in _ordered(report, asked)]


def _queue_label(name: str) -> str:
    return "All queues" if name == ALL else name


def _period_text(asked: ReportRequest) -> str:
    tz = ZoneInfo(asked.zone)
    start, end = asked.since.astimezone(tz), asked.until.astimezone(tz)
    ends = (f"{end - DAY:%a %d %b %Y} 24:00" if end.time() == dt.time(0)
            else f"{end:%a %d %b %Y %H:%M}")
    return f"Visits that ended from {start:%a %d %b %Y} 00:00 to {ends} ({asked.zone} time)"


def _percent(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.1f}%"


def _duration(value: float | None) -> str:
    if value is None:
        return "–"
    seconds = round(value)
    return f"{seconds} s" if seconds < 120 else f"{seconds // 60} min {seconds % 60:02d} s"


def _cell(value: Any) -> Any:
    # Spreadsheets read '' as empty; rounding keeps 1/3 from printing seventeen digits.
    if value is None:
        return ""
    return round(value, 4) if isinstance(value, float) else value
