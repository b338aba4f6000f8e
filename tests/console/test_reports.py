"""The reports page: its series over hand-made visits (every bucket and share worked out by
hand below), the page, its chart data and its CSV through a signed-in admin, and its refusals."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from zoneinfo import ZoneInfo

import pytest

from ivr.hold import report_series as rs
from ivr.infra.queue_models import QueueVisit, WaitEstimate
from ivr.infra.services import services_of
from tests.console.conftest import sign_in

NY = ZoneInfo("America/New_York")  # the shop flows' home zone
NOW = dt.datetime(2026, 12, 2, 12, 0, tzinfo=NY).astimezone(dt.UTC)
SINCE = dt.datetime(2026, 11, 26, tzinfo=NY).astimezone(dt.UTC)  # the default: 7 days
ZONE = "America/New_York"


@pytest.fixture
def app_config(app_config: dict) -> dict:
    return {**app_config, "CLOCK": lambda: NOW}


def local(day: int, hour: int, minute: int = 0, second: int = 0, month: int = 12):
    return dt.datetime(2026, month, day, hour, minute, second, tzinfo=NY).astimezone(dt.UTC)


def visit(queue: str, outcome: str, wait: float, left: dt.datetime,
          *estimates: tuple[float, float, float | None, float | None]) -> QueueVisit:
    """A visit; each estimate is (waited when given, expected, band lower, band upper), scored
    as `ivr.hold.tracking` scores it when the visit was answered."""
    row = QueueVisit(call_sid=f"CA{id(object())}", queue=queue,
                     joined_at=left - dt.timedelta(seconds=wait), left_at=left,
                     wait_seconds=wait, outcome=outcome, queue_result=None, announcements=1)
    for elapsed, expected, lower, upper in estimates:
        actual = wait - elapsed if outcome == "answered" else None
        row.estimates.append(WaitEstimate(
            given_at=row.joined_at + dt.timedelta(seconds=elapsed), elapsed_seconds=elapsed,
            position=1, agents=1, expected_seconds=expected, upper_seconds=expected,
            band="test band", band_lower_seconds=lower, band_upper_seconds=upper,
            explanation="test", actual_seconds=actual,
            within_band=None if actual is None else (
                actual >= lower if upper is None else lower <= actual <= upper)))
    return row


@pytest.fixture
def recorded(app):
    """Six visits on 1 Dec (New York time), one the day before the period, one after now."""
    db = services_of(app).db
    with db.session() as s:
        s.add_all([
            # 10:00 hour: answered in 5 s and 25 s, one hung up after 45 s.
            visit("support", "answered", 5, local(1, 10, 15), (0, 30, 0, 60)),  # 5 in band
            visit("support", "answered", 25, local(1, 10, 40),
                  (0, 20, 0, 30),  # actual 25: in band
                  (10, 40, 30, 60)),  # actual 15: outside
            visit("support", "abandoned", 45, local(1, 10, 50), (0, 50, 30, 60)),  # unscored
            # 11:00 hour: answered after 70 s, a callback after 130 s, hung up after 8 s.
            visit("billing", "answered", 70, local(1, 11, 5), (10, 50, 60, None)),  # 60: in
            visit("billing", "callback", 130, local(1, 11, 30)),
            visit("billing", "abandoned", 8, local(1, 11, 59, 59)),
            # Outside the period: the evening before its first day, and later than now.
            visit("support", "answered", 12, local(25, 23, 59, month=11)),
            visit("support", "answered", 3, local(2, 12, 30)),
        ])
    return db


# --- the series -----------------------------------------------------------------------------


def test_hourly_buckets_are_local_hours_with_the_reports_figures(recorded):
    hours = rs.hourly(recorded, since=SINCE, until=NOW, zone=ZONE, answer_within=20)
    assert len(hours) == 6 * 24 + 12  # 26 Nov 00:00 .. 2 Dec 12:00, New York time
    assert hours[0]["local"] == dt.datetime(2026, 11, 26, tzinfo=NY)
    busy = {h["local"].hour: h for h in hours if h["visits"]}
    assert sorted(busy) == [10, 11]
    ten, eleven = busy[10], busy[11]
    assert ten["start"] == local(1, 10)
    assert (ten["visits"], ten["answered"], ten["abandoned"]) == (3, 2, 1)
    assert ten["service_level"] == pytest.approx(1 / 3)  # only the 5 s wait is within 20 s
    assert ten["wait_avg_seconds"] == pytest.approx(15)
    assert ten["wait_p90_seconds"] == pytest.approx(23)  # 5 + 0.9 * (25 - 5)
    assert (eleven["visits"], eleven["answered"], eleven["callbacks"]) == (3, 1, 1)
    assert eleven["service_level"] == 0
    assert eleven["abandonment_rate"] == pytest.approx(1 / 3)
    quiet = hours[0]
    assert (quiet["visits"], quiet["service_level"], quiet["wait_avg_seconds"]) == (0, None, None)
    # A queue alone, and another threshold.
    billing = rs.hourly(recorded, since=SINCE, until=NOW, zone=ZONE, queue="billing",
                        answer_within=90)
    assert [(h["local"].hour, h["visits"], h["service_level"]) for h in billing
            if h["visits"]] == [(11, 3, pytest.approx(1 / 3))]


def test_the_hour_repeated_when_clocks_go_back_is_two_buckets(app):
    db = services_of(app).db
    first = dt.datetime(2026, 11, 1, 1, 30, tzinfo=NY)  # 01:30 EDT
    second = dt.datetime(2026, 11, 1, 1, 30, fold=1, tzinfo=NY)  # 01:30 EST, an hour later
    with db.session() as s:
        s.add_all([visit("support", "answered", 5, first.astimezone(dt.UTC)),
                   visit("support", "abandoned", 50, second.astimezone(dt.UTC))])
    hours = rs.hourly(db, since=dt.datetime(2026, 11, 1, tzinfo=NY).astimezone(dt.UTC),
                      until=dt.datetime(2026, 11, 2, tzinfo=NY).astimezone(dt.UTC), zone=ZONE)
    assert len(hours) == 25
    assert [(h["local"].isoformat(), h["visits"], h["abandoned"]) for h in hours[1:3]] == [
        ("2026-11-01T01:00:00-04:00", 1, 0), ("2026-11-01T01:00:00-05:00", 1, 1)]


def test_wait_distribution_counts_answered_visits_in_fixed_buckets(recorded):
    waits = rs.wait_distribution(recorded, since=SINCE, until=NOW)
    assert [w["label"] for w in waits] == ["0–10 s", "10–20 s", "20–30 s", "30–60 s",
                                           "1–2 min", "2–5 min", "5–10 min", "10 min+"]
    assert [(w["from"], w["to"]) for w in waits][-2:] == [(300, 600), (600, None)]
    # Answered: 5 s, 25 s, 70 s (the hang-ups and the callback are not waits to an answer).
    assert [w["visits"] for w in waits] == [1, 0, 1, 0, 1, 0, 0, 0]
    assert waits[0]["share"] == pytest.approx(1 / 3)
    assert [w["visits"] for w in rs.wait_distribution(recorded, since=SINCE, until=NOW,
                                                      queue="support")] == [1, 0, 1, 0, 0, 0,
                                                                            0, 0]


def test_abandonment_is_the_share_of_callers_still_waiting_who_hung_up(recorded):
    rows = rs.abandonment_by_wait(recorded, since=SINCE, until=NOW)
    # Left after: 5 (answered), 8 (hung up), 25 (answered), 45 (hung up), 70 (answered),
    # 130 (callback).
    assert [(r["waiting"], r["hung_up"]) for r in rows] == [
        (6, 1), (4, 0), (4, 0), (3, 1), (2, 0), (1, 0), (0, 0), (0, 0)]
    assert [r["share"] for r in rows] == [pytest.approx(1 / 6), 0, 0, pytest.approx(1 / 3),
                                          0, 0, None, None]


def test_announced_against_actual_waits_newest_first_and_capped(recorded):
    found = rs.announced_vs_actual(recorded, since=SINCE, until=NOW)
    assert (found["scored"], found["shown"]) == (4, 4)  # the hang-up's estimate is unscored
    pairs = [(p["expected"], p["actual"], p["lower"], p["upper"], p["within_band"])
             for p in found["points"]]
    assert pairs == [(50, 60, 60, None, True),  # billing, given 11:04:00
                     (40, 15, 30, 60, False), (20, 25, 0, 30, True), (30, 5, 0, 60, True)]
    capped = rs.announced_vs_actual(recorded, since=SINCE, until=NOW, limit=2)
    assert (capped["scored"], capped["shown"]) == (4, 2)
    assert [p["expected"] for p in capped["points"]] == [50, 40]
    assert rs.announced_vs_actual(recorded, since=SINCE, until=NOW,
                                  queue="billing")["scored"] == 1


def test_series_gathers_the_four(recorded):
    both = rs.series(recorded, since=SINCE, until=NOW, zone=ZONE)
    assert both["waits"] == rs.wait_distribution(recorded, since=SINCE, until=NOW)
    assert both["abandonment"] == rs.abandonment_by_wait(recorded, since=SINCE, until=NOW)
    assert both["estimates"]["scored"] == 4
    assert sum(h["visits"] for h in both["hourly"]) == 6


# --- the page, its data and its CSV ---------------------------------------------------------


def html_get(client, url: str):
    return client.get(url, headers={"Accept": "text/html"})


def table(html: str) -> dict[str, dict[str, str]]:
    """The report table: {queue: {figure: text}}."""
    rows = re.findall(r'<tr data-queue="([^"]+)"[^>]*>(.*?)</tr>', html, re.S)
    return {queue: {k: v.strip() for k, v in re.findall(r'data-figure="(\w+)">([^<]*)', body)}
            for queue, body in rows}


def test_the_page_shows_the_figures_of_the_last_seven_days(admin, recorded):
    client, _ = admin
    page = html_get(client, "/console/reports")
    assert page.status_code == 200, page.text
    assert 'name="from" value="2026-11-26"' in page.text
    assert 'name="to" value="2026-12-02"' in page.text
    assert ("Visits that ended from Thu 26 Nov 2026 00:00 to Wed 02 Dec 2026 12:00 "
            "(America/New_York time)") in page.text
    figures = table(page.text)
    assert list(figures) == ["billing", "support", "All queues"]
    assert figures["support"] == {
        "visits": "3", "answered": "2", "service_level": "33.3%", "wait_avg": "15 s",
        "wait_p90": "23 s", "abandonment": "33.3%", "estimate_mae": "18 s",  # 55 / 3
        "within_band": "66.7%"}
    assert figures["All queues"] == {
        "visits": "6", "answered": "3", "service_level": "16.7%", "wait_avg": "33 s",
        "wait_p90": "61 s", "abandonment": "33.3%", "estimate_mae": "16 s",  # 65 / 4
        "within_band": "75.0%"}
    # The charts read their data from the same report's JSON, and the CSV link asks for it too.
    assert ('data-src="/console/reports/data?from=2026-11-26&amp;to=2026-12-02&amp;queue=&amp;'
            'within=20"') in page.text
    assert 'href="/console/reports.csv?from=2026-11-26' in page.text
    assert "<script>" not in page.text  # the CSP would refuse it


def test_a_queue_a_period_and_a_threshold_are_chosen_in_the_form(admin, recorded):
    client, _ = admin
    page = html_get(client, "/console/reports?from=2026-12-01&to=2026-12-01&queue=billing"
                            "&within=90")
    assert page.status_code == 200, page.text
    assert table(page.text) == {"billing": {
        "visits": "3", "answered": "1", "service_level": "33.3%", "wait_avg": "70 s",
        "wait_p90": "70 s", "abandonment": "33.3%", "estimate_mae": "10 s",
        "within_band": "100.0%"}}
    assert '<option value="billing" selected>' in page.text
    assert "Service level (90 s)" in page.text
    assert "to Tue 01 Dec 2026 24:00" in page.text
    # A day before any of them: zeros, not errors.
    empty = table(html_get(client, "/console/reports?from=2026-11-20&to=2026-11-20").text)
    assert empty == {"All queues": {
        "visits": "0", "answered": "0", "service_level": "–", "wait_avg": "–", "wait_p90": "–",
        "abandonment": "–", "estimate_mae": "–", "within_band": "–"}}


def test_the_chart_data(admin, recorded):
    client, _ = admin
    data = client.get("/console/reports/data?from=2026-11-26&to=2026-12-02").get_json()
    assert data["zone"] == ZONE
    assert data["period"] == {"since": SINCE.isoformat(), "until": NOW.isoformat()}
    assert len(data["hourly"]) == 156
    busy = [h for h in data["hourly"] if h["visits"]]
    assert busy == [
        {"t": int(local(1, 10).timestamp()), "visits": 3, "answered": 2, "abandoned": 1,
         "service_level": pytest.approx(1 / 3)},
        {"t": int(local(1, 11).timestamp()), "visits": 3, "answered": 1, "abandoned": 1,
         "service_level": 0.0}]
    assert [w["visits"] for w in data["waits"]] == [1, 0, 1, 0, 1, 0, 0, 0]
    assert [a["hung_up"] for a in data["abandonment"]] == [1, 0, 0, 1, 0, 0, 0, 0]
    assert data["estimates"]["scored"] == 4
    assert data["estimates"]["points"][0] == {"expected": 50, "actual": 60, "band": "test band",
                                              "lower": 60, "upper": None, "within_band": True}
    support = client.get("/console/reports/data?queue=support&within=30").get_json()
    assert [h["service_level"] for h in support["hourly"] if h["visits"]] == [
        pytest.approx(2 / 3)]


def test_the_csv_holds_the_queues_then_the_hours(admin, recorded):
    client, _ = admin
    response = client.get("/console/reports.csv?from=2026-11-26&to=2026-12-02")
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"] == (
        'attachment; filename="ivr-report-2026-11-26-to-2026-12-02.csv"')
    rows = list(csv.reader(io.StringIO(response.text)))
    assert rows[0][:6] == ["queue", "visits", "answered", "abandoned", "callbacks",
                           "service_level"]
    queues = {r[0]: dict(zip(rows[0], r, strict=True)) for r in rows[1:4]}
    assert list(queues) == ["billing", "support", "All queues"]
    assert queues["support"]["service_level"] == "0.3333"
    assert queues["All queues"]["estimate_mae_seconds"] == "16.25"
    assert queues["billing"]["estimate_within_band"] == "1.0"
    assert rows[4] == []
    head = rows[5]
    assert head[:3] == ["hour_start_utc", "hour_start_local (America/New_York)", "queue"]
    hours = [dict(zip(head, r, strict=True)) for r in rows[6:]]
    assert len(hours) == 156
    ten = next(h for h in hours if h["visits"] != "0")
    assert ten["hour_start_utc"] == "2026-12-01T15:00:00+00:00"
    assert ten["hour_start_local (America/New_York)"] == "2026-12-01T10:00:00-05:00"
    assert (ten["queue"], ten["answered"], ten["service_level"], ten["wait_p90_seconds"]) == (
        "all", "2", "0.3333", "23.0")
    assert hours[0]["service_level"] == ""  # a quiet hour has no service level
    one = client.get("/console/reports.csv?from=2026-12-01&to=2026-12-01&queue=billing")
    assert one.headers["Content-Disposition"].endswith('-2026-12-01-billing.csv"')
    one_rows = list(csv.reader(io.StringIO(one.text)))
    assert [r[0] for r in one_rows[1:2]] == ["billing"] and one_rows[2] == []


# --- refusals -------------------------------------------------------------------------------


@pytest.mark.parametrize(("query", "message"), [
    ("from=2026-13-01", "“From” must be a date such as 2026-11-26 (year-month-day), not "
                        "“2026-13-01”."),
    ("from=2026-12-01&to=yesterday", "“To” must be a date such as 2026-12-02 (year-month-day), "
                                     "not “yesterday”."),
    ("from=2026-12-02&to=2026-12-01", "“To” (01 Dec 2026) is before “From” (02 Dec 2026)."),
    ("from=2026-08-01&to=2026-11-28", "The period is 120 days long; choose at most 93 days."),
    ("from=2026-12-05&to=2026-12-06", "“From” (05 Dec 2026) is in the future: today is "
                                      "02 Dec 2026."),
    ("queue=sales", "There is no queue named “sales”: choose one of billing, support, or all "
                    "queues."),
    ("within=0", "The service-level threshold must be a number of seconds from 1 to 3600, not "
                 "“0”."),
    ("within=0.5", "The service-level threshold must be a number of seconds from 1 to 3600, "
                   "not “0.5”."),
    ("within=nan", "The service-level threshold must be a number of seconds from 1 to 3600, "
                   "not “nan”."),
])
def test_a_wrong_form_is_refused_with_what_to_fix(admin, query, message):
    client, _ = admin
    page = html_get(client, "/console/reports?" + query)
    assert page.status_code == 400
    assert "This report cannot be shown" in page.text
    assert f"<li>{message}</li>" in page.text.replace("&amp;", "&")
    assert 'id="report-charts"' not in page.text
    for endpoint in ("/console/reports/data?", "/console/reports.csv?"):
        refused = client.get(endpoint + query)
        assert refused.status_code == 400
        assert refused.get_json() == {"error": "console_400", "message": message}


def test_every_problem_is_told_at_once_and_the_form_keeps_what_was_typed(admin):
    client, _ = admin
    page = html_get(client, "/console/reports?from=soon&to=later&within=fast")
    assert page.status_code == 400
    assert page.text.count("<li>") == 3
    assert 'name="from" value="soon"' in page.text


def test_reports_are_for_admins(client, add_agent, recorded):
    assert html_get(client, "/console/reports").headers["Location"].startswith(
        "/console/signin")
    assert client.get("/console/reports/data").status_code == 401
    _agent, token = add_agent()
    sign_in(client, token)
    for url in ("/console/reports", "/console/reports/data", "/console/reports.csv"):
        assert html_get(client, url).status_code == 403
        assert client.get(url).status_code == 403
