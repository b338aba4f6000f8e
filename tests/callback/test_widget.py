"""The widget in a real headless Chromium: the hosted page, and an embed on another origin."""

from __future__ import annotations

import functools
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait
from sqlalchemy import select
from werkzeug.serving import make_server

from callback.models import CallbackRequest


@pytest.fixture
def served(callback_app):
    server = make_server("127.0.0.1", 0, callback_app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


@pytest.fixture(scope="module")
def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=900,900"):
        options.add_argument(arg)
    driver = webdriver.Chrome(options=options, service=Service("/usr/bin/chromedriver"))
    yield driver
    driver.quit()


def _wait(browser, css: str, timeout: float = 10):
    return WebDriverWait(browser, timeout).until(
        ec.visibility_of_element_located((By.CSS_SELECTOR, css)))


def test_hosted_page_shows_number_wait_and_confirmation(served, browser, deps, agent, tmp_path):
    browser.get(f"{served}/callback")
    _wait(browser, ".ivr-cb-form")
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
    assert "Please tick the box" in _wait(browser, ".ivr-cb-error").text

    browser.find_element(By.NAME, "consent").click()
    browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    done = _wait(browser, ".ivr-cb-confirmation").text
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


def test_embedded_on_a_shop_page_of_another_origin(served, browser, deps, tmp_path):
    (tmp_path / "shop.html").write_text(
        "<!doctype html><html><body><h1>Juniper &amp; Pine</h1>"
        f'<div data-ivr-callback data-ivr-base="{served}"></div>'
        f'<script src="{served}/callbacks/static/widget.js" async></script>'
        "</body></html>"
    )
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(tmp_path))
    shop = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=shop.serve_forever, daemon=True).start()
    try:
        browser.get(f"http://127.0.0.1:{shop.server_address[1]}/shop.html")
        _wait(browser, ".ivr-cb-form")
        assert browser.find_element(By.CSS_SELECTOR, ".ivr-cb-phone").text == "(800) 555-0100"
        browser.find_element(By.NAME, "phone").send_keys("+1 900 555 1234")
        browser.find_element(By.NAME, "consent").click()
        browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        WebDriverWait(browser, 10).until(
            ec.text_to_be_present_in_element((By.CSS_SELECTOR, ".ivr-cb-error"), "premium-rate"))
    finally:
        shop.shutdown()
        shop.server_close()
    with deps.db.session() as s:
        assert s.scalar(select(CallbackRequest)) is None
