"""The reports page in a real headless Chromium: signed in through the form, its four uPlot
charts drawn from the chart data, its table, and a 1280x800 screenshot."""

from __future__ import annotations

from pathlib import Path

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from ivr.infra.services import services_of
from tests.callback.browsing import chromium, wait_for
from tests.console.conftest import ADMIN, sign_in_browser
from tests.console.test_reports import NOW, local, visit

SHOTS = Path("/tmp/console-shots")
# How many pixels of a chart's canvas are clearly of one hue (grey axes and white are not).
COLOURED = """
var c = document.querySelector('[data-chart="' + arguments[0] + '"] canvas');
var d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data, n = 0;
var hue = {blue: function (r, g, b) { return b > r + 60 && b > g + 20; },
           green: function (r, g, b) { return g > r + 40 && g > b + 20; },
           red: function (r, g, b) { return r > g + 60 && r > b + 60; }}[arguments[1]];
for (var i = 0; i < d.length; i += 4) if (d[i + 3] > 0 && hue(d[i], d[i + 1], d[i + 2])) n++;
return n;"""


@pytest.fixture
def app_config(app_config: dict) -> dict:
    return {**app_config, "CLOCK": lambda: NOW}




@pytest.fixture
def week(app):
    """A week of visits: 30 a day over the working hours of 26 Nov .. 2 Dec (New York)."""
    rows = []
    for day in range(7):
        date, month = (26 + day, 11) if day < 5 else (day - 4, 12)
        for n in range(30):
            hour = 9 + n % 9
            if (month, date, hour) >= (12, 2, 12):  # nothing after now
                continue
            wait = (7, 15, 25, 40, 75, 150, 320, 5, 12, 18)[n % 10]
            outcome = ("abandoned" if n % 10 in (3, 6) else
                       "callback" if n % 10 == 9 else "answered")
            expected = wait * 1.2 + 10  # too long for short waits: some fall below the band
            rows.append(visit("support" if n % 3 else "billing", outcome, wait,
                              local(date, hour, (n * 7) % 60, month=month),
                              (0, expected, expected * 0.7, expected)))
    with services_of(app).db.session() as s:
        s.add_all(rows)
    return rows


def test_reports_page_draws_four_charts_and_the_table(served, week):
    SHOTS.mkdir(parents=True, exist_ok=True)
    with chromium(1280, 800) as browser:
        sign_in_browser(browser, f"{served}/console/reports", ADMIN)
        wait_for(browser, "#report-table")
        assert browser.current_url.endswith("/console/reports")
        WebDriverWait(browser, 15).until(lambda b: b.find_element(
            By.ID, "report-charts").get_attribute("data-rendered") == "true")
        charts = browser.find_elements(By.CSS_SELECTOR, "[data-chart] .uplot canvas")
        assert len(charts) == 4
        assert all(c.size["width"] > 300 and c.size["height"] > 100 for c in charts)
        # Each chart drew its data, not only axes: pixels of its series' colour (the blue of
        # calls, the green of dots within the band, the red of hang-ups) fill its canvas. With
        # no visits the four count 24, 371 (the zero bars' baseline), 0 and 602 (the % axis).
        for name, colour, least in (("hourly", "blue", 2000), ("waits", "blue", 2000),
                                    ("estimates", "green", 40), ("abandonment", "red", 2000)):
            assert browser.execute_script(COLOURED, name, colour) > least, name
        scored = sum(v.outcome == "answered" for v in week)  # one estimate each
        assert browser.find_element(By.CSS_SELECTOR, '[data-note="estimates"]').text.startswith(
            f"Each dot is one of the {scored} estimates")
        note = browser.find_element(By.CSS_SELECTOR, '[data-note="hourly"]').text
        assert note.startswith(f"{len(week)} calls ended, ")

        cells = {row.get_attribute("data-queue"): [td.text for td in row.find_elements(
            By.TAG_NAME, "td")] for row in browser.find_elements(
            By.CSS_SELECTOR, "#report-table tbody tr")}
        assert list(cells) == ["billing", "support", "All queues"]
        total = cells["All queues"]
        answered = sum(v.outcome == "answered" for v in week)
        within = sum(v.outcome == "answered" and v.wait_seconds <= 20 for v in week)
        hung_up = sum(v.outcome == "abandoned" for v in week)
        assert total[:4] == ["All queues", str(len(week)), str(answered),
                             f"{within / len(week) * 100:.1f}%"]
        assert total[6] == f"{hung_up / len(week) * 100:.1f}%"
        browser.save_screenshot(str(SHOTS / "reports.png"))
        browser.execute_script("window.scrollTo(0, document.body.scrollHeight)")
        browser.save_screenshot(str(SHOTS / "reports-lower.png"))  # the two charts below

        # Another queue through the form: the table and the charts follow it.
        browser.find_element(By.CSS_SELECTOR, "select[name=queue] option[value=billing]").click()
        browser.find_element(By.CSS_SELECTOR, "#report-form button[type=submit]").click()
        WebDriverWait(browser, 15).until(lambda b: "queue=billing" in b.current_url)
        WebDriverWait(browser, 15).until(lambda b: b.find_element(
            By.ID, "report-charts").get_attribute("data-rendered") == "true")
        rows = browser.find_elements(By.CSS_SELECTOR, "#report-table tbody tr")
        billing = [v for v in week if v.queue == "billing"]
        assert [r.get_attribute("data-queue") for r in rows] == ["billing"]
        assert rows[0].find_elements(By.TAG_NAME, "td")[1].text == str(len(billing))
        assert browser.find_element(By.CSS_SELECTOR, '[data-note="hourly"]').text.startswith(
            f"{len(billing)} calls ended, ")
        # No script error, and no failed request (the console's icon is inline).
        assert [e for e in browser.get_log("browser") if e["level"] == "SEVERE"] == []

        # A period typed into the address bar wrongly: the page says what to fix.
        browser.get(f"{served}/console/reports?from=2026-12-05&to=2026-12-01")
        assert wait_for(browser, "#report-problems").text.splitlines()[1] == (
            "“To” (01 Dec 2026) is before “From” (05 Dec 2026).")
        assert browser.find_elements(By.CSS_SELECTOR, "#report-charts") == []
        browser.save_screenshot(str(SHOTS / "reports-refused.png"))
