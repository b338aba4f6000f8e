"""The widget in a real headless Chromium: the hosted page, an embed on an allowed origin and on
one that is not, and the ALTCHA proof of work solved by the browser."""

from __future__ import annotations

import datetime as dt

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait
from sqlalchemy import select

from callback.models import CallbackRequest
from tests.callback.browsing import Site, chromium, wait_for


@pytest.fixture
def app_config(app_config: dict, shop: Site) -> dict:
    # The shop's pages may embed the widget; any other site may not.
    return {**app_config, "CALLBACK_ALLOWED_ORIGINS": shop.origin}


@pytest.fixture(scope="module")
def browser():
    with chromium(900, 900) as driver:
        yield driver



def test_hosted_page_shows_number_wait_and_confirmation(served, browser, deps, agent, tmp_path):
    browser.get(f"{served}/callback")
    wait_for(browser, ".ivr-cb-form")
    phone = browser.find_element(By.CSS_SELECTOR, ".ivr-cb-phone")
    assert phone.text == "(800) 555-0100"
    assert phone.get_attribute("href") == "tel:+18005550100"
    assert "expected wait about 4 minutes" in browser.find_element(
        By.CSS_SELECTOR, ".ivr-cb-wait").text
    consent_shown = browser.find_element(By.CSS_SELECTOR, ".ivr-cb-consent span").text
    assert consent_shown == deps.setting("CALLBACK_CONSENT_TEXT")

    browser.find_element(By.NAME, "phone").send_keys("415 555 0123")
    browser.find_element(By.NAME, "name").send_keys("Mia")
    browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    assert "Please tick the box" in wait_for(browser, ".ivr-cb-error").text

    browser.find_element(By.NAME, "consent").click()
    browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    done = wait_for(browser, ".ivr-cb-confirmation").text
    browser.save_screenshot(str(tmp_path / "widget.png"))
    assert "We'll call you back at +*******0123." in done
    assert "You are number 1 in line." in done
    assert "Expected wait: about 4 minutes." in done
    with deps.db.session() as s:
        row = s.scalar(select(CallbackRequest))
    assert row.phone == "+14155550123"
    assert row.name == "Mia"
    assert row.consent_text == consent_shown
    assert row.consent_address == "127.0.0.1"

    browser.find_element(By.CSS_SELECTOR, ".ivr-cb-cancel").click()
    WebDriverWait(browser, 10).until(
        ec.text_to_be_present_in_element((By.CSS_SELECTOR, ".ivr-cb-confirmation"),
                                         "Your callback is cancelled"))
    with deps.db.session() as s:
        assert s.scalar(select(CallbackRequest.status)) == "cancelled"


def _embed(served: str, extra: str = "") -> str:
    return ("<!doctype html><html><body><h1>Juniper &amp; Pine</h1>"
            f'<div data-ivr-callback data-ivr-base="{served}"{extra}></div>'
            f'<script src="{served}/callbacks/static/widget.js" async></script></body></html>')


def test_embedded_on_a_shop_page_of_another_origin(served, browser, deps, shop):
    browser.get(shop.page("shop.html", _embed(served)))
    wait_for(browser, ".ivr-cb-form")
    assert browser.find_element(By.CSS_SELECTOR, ".ivr-cb-phone").text == "(800) 555-0100"
    browser.find_element(By.NAME, "phone").send_keys("+1 900 555 1234")
    browser.find_element(By.NAME, "consent").click()
    browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    WebDriverWait(browser, 10).until(
        ec.text_to_be_present_in_element((By.CSS_SELECTOR, ".ivr-cb-error"), "premium-rate"))
    with deps.db.session() as s:
        assert s.scalar(select(CallbackRequest)) is None


def test_a_site_not_in_the_allowed_origins_cannot_use_the_api(served, browser, deps, shop,
                                                              tmp_path):
    other = Site(tmp_path)  # the same page, on an origin nobody listed
    try:
        browser.get(other.page("elsewhere.html", _embed(served)))
        # The browser will not hand it the service's answers (no CORS grant) ...
        WebDriverWait(browser, 10).until(ec.text_to_be_present_in_element(
            (By.CSS_SELECTOR, "[data-ivr-callback]"), "Please call us."))
        # ... and a post it makes anyway is refused by the service.
        status = browser.execute_async_script("""
            const done = arguments[arguments.length - 1];
            fetch(arguments[0] + "/callbacks", {method: "POST", mode: "no-cors",
                  headers: {"Content-Type": "text/plain"},
                  body: JSON.stringify({phone: "+14155550123", consent: true})})
              .then(() => done("sent"), (e) => done("error " + e));""", served)
        assert status == "sent"
    finally:
        other.close()
    with deps.db.session() as s:
        assert s.scalar(select(CallbackRequest)) is None


def _reopen_hours(flows_path) -> None:
    """The support queue keeps the shop's opening hours again (the fixture opened it 24/7)."""
    import yaml

    data = yaml.safe_load(flows_path.read_text())
    data["queues"]["support"]["hours"] = "shop"
    flows_path.write_text(yaml.safe_dump(data, allow_unicode=True))


def test_embedded_widget_brings_its_own_styles(served, browser, shop):
    browser.get(shop.page("plain.html", "<!doctype html><html><head></head><body>"
                          f'<div data-ivr-callback data-ivr-base="{served}"></div>'
                          f'<script src="{served}/callbacks/static/widget.js"></script>'
                          "</body></html>"))
    wait_for(browser, ".ivr-cb-form")
    WebDriverWait(browser, 10).until(lambda d: d.execute_script(
        "return getComputedStyle(document.querySelector('.ivr-cb')).borderTopStyle")
        == "solid")
    link = browser.find_element(By.CSS_SELECTOR, "link[rel=stylesheet]")
    assert link.get_attribute("href") == f"{served}/callbacks/static/widget.css"


def test_closed_team_is_not_called_outside_calling_hours(served, browser, clock, flows_path):
    """Closed (the team's hours) and outside calling hours (the caller's) read differently."""
    _reopen_hours(flows_path)
    clock.at = dt.datetime(2026, 3, 15, 16, 0, tzinfo=dt.UTC)  # Sunday: the shop is closed
    browser.execute_cdp_cmd("Emulation.setTimezoneOverride", {"timezoneId": "America/New_York"})
    browser.get(f"{served}/callback")
    wait_text = wait_for(browser, ".ivr-cb-wait").text
    assert wait_text == ("We're closed now. We open again Monday, March 16 at 9:00 AM EDT: ask "
                         "for a callback and we'll call you then.")
    browser.find_element(By.NAME, "phone").send_keys("+1 415 555 0123")
    browser.find_element(By.NAME, "consent").click()
    browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    done = wait_for(browser, ".ivr-cb-confirmation").text
    # Monday 9:00 in New York is 6:00 in San Francisco: the caller's 8:00 comes first.
    assert done.splitlines()[0] == (
        "Thank you! We'll call you back at +*******0123. We're closed now, so we'll call you on "
        "Monday, March 16 at 11:00 AM EDT.")


def test_open_team_but_outside_the_callers_calling_hours(served, browser, clock, agent):
    clock.at = dt.datetime(2026, 3, 11, 14, 0, tzinfo=dt.UTC)  # 7:00 in San Francisco
    browser.execute_cdp_cmd("Emulation.setTimezoneOverride",
                            {"timezoneId": "America/Los_Angeles"})
    browser.get(f"{served}/callback")
    assert "expected wait" in wait_for(browser, ".ivr-cb-wait").text
    browser.find_element(By.NAME, "phone").send_keys("+1 415 555 0123")
    browser.find_element(By.NAME, "consent").click()
    browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    done = wait_for(browser, ".ivr-cb-confirmation").text
    assert done.splitlines()[0] == (
        "Thank you! We'll call you back at +*******0123. It's outside calling hours where you are "
        "(08:00-21:00 your time), so we'll call you on Wednesday, March 11 at 8:00 AM PDT.")
    assert "in line" not in done and "Expected wait" not in done  # one time, nothing else


def test_visitor_chooses_the_time(served, browser, deps, clock):
    browser.execute_cdp_cmd("Emulation.setTimezoneOverride",
                            {"timezoneId": "America/Los_Angeles"})
    browser.get(f"{served}/callback")
    wait_for(browser, ".ivr-cb-form")
    at = browser.find_element(By.NAME, "preferred_at")
    assert not at.is_displayed()  # "as soon as we can" is the default
    browser.find_element(By.CSS_SELECTOR, "input[name=when][value=later]").click()
    assert at.is_displayed()
    browser.find_element(By.NAME, "phone").send_keys("+1 415 555 0123")
    browser.find_element(By.NAME, "consent").click()
    browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    assert "choose the date and time" in wait_for(browser, ".ivr-cb-error").text
    browser.execute_script("arguments[0].value = '2026-03-12T10:30'", at)
    browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    done = wait_for(browser, ".ivr-cb-confirmation").text
    assert "As you asked, we'll call you on Thursday, March 12 at 10:30 AM PDT." in done
    with deps.db.session() as s:
        row = s.scalar(select(CallbackRequest))
    assert row.preferred_time == dt.datetime(2026, 3, 12, 17, 30, tzinfo=dt.UTC)
    assert row.scheduled_for == row.preferred_time


@pytest.mark.parametrize("where", ["hosted", "embedded"])
def test_the_browser_solves_the_proof_of_work(callback_app, served, browser, deps, agent, shop,
                                              where):
    """On by default: the page's ALTCHA widget solves the service's challenge, the request
    carries it, and it is good once."""
    callback_app.config["CALLBACK_PROOF_OF_WORK"] = "on"
    url = f"{served}/callback" if where == "hosted" else shop.page("pow.html", _embed(served))
    browser.get(url)
    wait_for(browser, ".ivr-cb-form")
    assert browser.find_element(By.CSS_SELECTOR, "altcha-widget").get_attribute(
        "challenge") == f"{served}/callbacks/challenge"
    browser.find_element(By.NAME, "phone").send_keys("415 555 0123")
    browser.find_element(By.NAME, "consent").click()
    browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    done = wait_for(browser, ".ivr-cb-confirmation", timeout=60).text
    assert "We'll call you back at +*******0123." in done
    with deps.db.session() as s:
        row = s.scalar(select(CallbackRequest))
    assert row.phone == "+14155550123"
    # What the browser sent cannot be sent again: the solution was used.
    used = deps.redis.keys("ivr:cb:pow:used:*")
    assert len(used) == 1
