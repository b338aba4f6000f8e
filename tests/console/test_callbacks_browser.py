"""The callbacks page in a real headless Chromium: sign in, cancel one request and retry
another by clicking their buttons, and see the rows change and the actions listed."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from callback.deps import deps_of
from tests.callback.browsing import chromium, wait_for
from tests.callback.conftest import Clock
from tests.console.conftest import ADMIN, sign_in_browser
from tests.console.test_callbacks_page import make_request, status_of

SHOTS = Path("/tmp/console-shots")


@pytest.fixture
def clock() -> Clock:
    # A Wednesday, 16:00 UTC: noon in New York (the shop is open), 9:00 in San Francisco.
    return Clock(dt.datetime(2026, 3, 11, 16, 0, tzinfo=dt.UTC))


@pytest.fixture
def app_config(app_config: dict, clock: Clock) -> dict:
    return {**app_config, "CLOCK": clock}




def _row_status(browser, request_id: int) -> str:
    return browser.find_element(By.CSS_SELECTOR, f'tr[data-id="{request_id}"]'
                                ).get_attribute("data-status")


def test_cancel_and_retry_from_the_page(served, app, clock):
    deps = deps_of(app)
    # A morning's requests, as a supervisor would find them.
    clock.at -= dt.timedelta(hours=3)
    make_request(deps, "+12125551240", status="completed", name="Ravi",
                 reason="delivery date", outcomes=("completed",))
    clock.advance(1800)
    failed = make_request(deps, "+13125550142", status="failed", name="Priya",
                          reason="wrong size", outcomes=("no-answer",) * 3)
    clock.advance(1800)
    make_request(deps, "+12125551241", status="cancelled", name="Tom")
    clock.advance(1800)
    make_request(deps, "+12125551242", status="dialing", name="Ana", reason="invoice copy",
                 outcomes=("no-answer", "dialing"))
    clock.advance(1800)
    scheduled = make_request(deps, "+14155550123", name="Mia", reason="refund for order 1234",
                             preferred_time=dt.datetime(2026, 3, 11, 20, 0, tzinfo=dt.UTC))
    clock.advance(1200)
    make_request(deps, "+16175550100", queue="billing", name="Lee", reason="double charge")
    clock.advance(600)
    make_request(deps, "+12125551243", name="Sam")

    with chromium(1280, 800) as browser:
        sign_in_browser(browser, f"{served}/console/signin?next=/console/callbacks", ADMIN)
        wait_for(browser, "table.requests")
        assert browser.title == "Callbacks · IVR console"
        assert _row_status(browser, scheduled.id) == "scheduled"
        assert _row_status(browser, failed.id) == "failed"
        assert browser.find_elements(By.CSS_SELECTOR, ".recent-actions tbody tr") == []

        # Cancel asks once more before it acts: cancelling is final.
        row = browser.find_element(By.CSS_SELECTOR, f'tr[data-id="{scheduled.id}"]')
        row.find_element(By.CSS_SELECTOR, "summary.cancel").click()
        row.find_element(By.CSS_SELECTOR, "button.confirm-cancel").click()
        notice = wait_for(browser, ".notice")
        assert notice.text == (f"Callback #{scheduled.id} is cancelled: we will not call "
                               "this request again.")
        assert _row_status(browser, scheduled.id) == "cancelled"
        row = browser.find_element(By.CSS_SELECTOR, f'tr[data-id="{scheduled.id}"]')
        assert row.find_elements(By.CSS_SELECTOR, "form") == []  # nothing more to do to it

        browser.find_element(By.CSS_SELECTOR, f'tr[data-id="{failed.id}"] button.retry').click()
        WebDriverWait(browser, 10).until(ec.text_to_be_present_in_element(
            (By.CSS_SELECTOR, ".notice"), f"Callback #{failed.id} is in line now"))
        assert _row_status(browser, failed.id) == "waiting"

        actions = [(r.get_attribute("data-request"), r.get_attribute("data-action"))
                   for r in browser.find_elements(By.CSS_SELECTOR, ".recent-actions tbody tr")]
        assert actions == [(str(failed.id), "retry"), (str(scheduled.id), "cancel")]
        first = browser.find_element(By.CSS_SELECTOR, ".recent-actions tbody tr").text
        assert "admin" in first and "Failed → Waiting for an agent" in first

        SHOTS.mkdir(parents=True, exist_ok=True)
        browser.save_screenshot(str(SHOTS / "callbacks.png"))

        # The request's own page: its three unanswered attempts and the retry.
        browser.find_element(By.CSS_SELECTOR, f'tr[data-id="{failed.id}"] td a').click()
        assert wait_for(browser, "h1").text == f"Callback #{failed.id} Waiting for an agent"
        assert [r.get_attribute("data-status") for r in browser.find_elements(
            By.CSS_SELECTOR, "table.attempts tbody tr")] == ["no-answer"] * 3
        assert [r.get_attribute("data-action") for r in browser.find_elements(
            By.CSS_SELECTOR, ".recent-actions tbody tr")] == ["retry"]
        browser.save_screenshot(str(SHOTS / "callback-detail.png"))

    assert status_of(deps, scheduled.id) == "cancelled"
    assert status_of(deps, failed.id) == "waiting"
