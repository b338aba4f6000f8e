"""The hosted page and the widget in Bengali and Tamil, in a real headless Chromium at 1280x800:
screenshots (kept under the test's tmp path and copied to /tmp/i18n-shots/), the visible text
checked for its script, and a Bengali request that carries its language to the callback.

The script check takes the whole visible text of the page. It may hold figures (the phone
number, a masked number, a place in line) but no letter of another script, with one exception:
"ALTCHA", the proof-of-work widget's brand in its footer link. The shop page the widget is
embedded on is written in the same language, brand name included.
"""

from __future__ import annotations

import datetime as dt
import shutil
import struct
import subprocess
from pathlib import Path

import pytest
import yaml
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait
from sqlalchemy import select

from callback.models import CallbackRequest
from ivr.core.i18n import catalog
from ivr.core.i18n.languages import foreign_letters
from ivr.infra.services import services_of
from tests.callback.browsing import Site, chromium, wait_for
from tests.callback.languages_support import speak_indian_languages

SHOTS = Path("/tmp/i18n-shots")
SIZE = (1280, 800)
BRAND = "ALTCHA"  # the proof-of-work widget's name, a link in its footer
SHOP_NAME = {"bn": "জুনিপার অ্যান্ড পাইন", "ta": "ஜூனிபர் அண்ட் பைன்"}


@pytest.fixture
def app_config(app_config: dict, flows_path: Path, shop: Site) -> dict:
    speak_indian_languages(flows_path)
    return {**app_config, "CALLBACK_ALLOWED_ORIGINS": shop.origin}


@pytest.fixture(scope="module")
def browser():
    with chromium(*SIZE) as driver:
        yield driver


def _words(lang: str) -> dict[str, str]:
    return catalog.catalogue("web")[lang]


def _shoot(browser, tmp_path: Path, name: str) -> Path:
    """A screenshot of the window, kept with the test and copied for the lead's note."""
    path = tmp_path / f"{name}.png"
    assert browser.save_screenshot(str(path))
    width, height = struct.unpack(">II", path.read_bytes()[16:24])  # the PNG's IHDR
    assert (width, height) == SIZE
    SHOTS.mkdir(parents=True, exist_ok=True)
    shutil.copy(path, SHOTS / path.name)
    return path


def _foreign(browser, lang: str) -> str:
    """Letters of the visible text that are not in `lang`'s script (the brand aside)."""
    shown = browser.find_element(By.TAG_NAME, "body").text
    return foreign_letters(lang, shown.replace(BRAND, ""))


def _fonts_loaded(browser) -> None:
    WebDriverWait(browser, 10).until(
        lambda d: d.execute_script("return document.fonts.status") == "loaded")


@pytest.mark.parametrize("lang", ["bn", "ta", "hi"])
def test_the_machine_has_a_font_for_the_script(lang):
    """Without one Chromium draws empty boxes; tests/run installs Debian's fonts-noto-core."""
    fonts = subprocess.run(["fc-list", f":lang={lang}", "family"], capture_output=True,
                           text=True, check=True).stdout
    assert fonts.strip(), f"no font for '{lang}': apt-get install fonts-noto-core"


@pytest.mark.parametrize("lang", ["bn", "ta"])
def test_hosted_page_in_the_language(served, browser, deps, agent, tmp_path, lang):
    browser.get(f"{served}/callback?lang={lang}")
    wait_for(browser, ".ivr-cb-form")
    words = _words(lang)
    assert browser.find_element(By.TAG_NAME, "html").get_attribute("lang") == lang
    assert browser.title == words["web.page_title"].format(phone="(800) 555-0100")
    assert browser.find_element(By.TAG_NAME, "h1").text == words["web.heading"]
    assert browser.find_element(By.CSS_SELECTOR, "button[type=submit]").text == \
        words["web.submit"]
    assert browser.find_element(By.CSS_SELECTOR, ".ivr-cb-consent span").text == \
        words["web.consent"]
    wait = words["web.wait"].format(wait=words["web.wait.minutes"].format(n="4"))
    assert browser.find_element(By.CSS_SELECTOR, ".ivr-cb-wait").text == wait
    assert _foreign(browser, lang) == ""
    _fonts_loaded(browser)
    _shoot(browser, tmp_path, f"hosted-page-{lang}")


def test_submitting_the_bengali_page_asks_for_a_bengali_callback(served, browser, deps, agent,
                                                                 tmp_path):
    words = _words("bn")
    browser.get(f"{served}/callback?lang=bn")
    wait_for(browser, ".ivr-cb-form")
    browser.find_element(By.NAME, "phone").send_keys("415 555 0123")
    browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    assert wait_for(browser, ".ivr-cb-error").text == words["web.error.unticked"]
    browser.find_element(By.NAME, "consent").click()
    browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    done = wait_for(browser, ".ivr-cb-confirmation").text.splitlines()
    assert done[0] == " ".join([
        words["web.thanks"].format(phone="+*******0123"),
        words["web.position"].format(position="1"),
        words["web.expected_wait"].format(wait=words["web.wait.minutes"].format(n="4"))])
    assert done[1] == words["web.status_line"].format(status=words["web.status.waiting"])
    assert _foreign(browser, "bn") == ""
    _shoot(browser, tmp_path, "hosted-page-bn-confirmation")
    with deps.db.session() as s:
        row = s.scalar(select(CallbackRequest))
    assert (row.phone, row.language, row.consent_text) == ("+14155550123", "bn",
                                                           words["web.consent"])


def _shop_page(served: str, lang: str) -> str:
    """A shop's page in `lang`, the widget embedded with data-lang."""
    return (f'<!doctype html><html lang="{lang}"><head><meta charset="utf-8"></head>'
            '<body style="font-family: sans-serif; margin: 2rem">'
            f"<h1>{SHOP_NAME[lang]}</h1>"
            f'<div data-ivr-callback data-ivr-base="{served}" data-lang="{lang}"></div>'
            f'<script src="{served}/callbacks/static/widget.js" async></script></body></html>')


@pytest.mark.parametrize("lang", ["bn", "ta"])
def test_embedded_widget_in_the_language(callback_app, served, browser, deps, agent, shop,
                                         tmp_path, lang):
    """On a shop's own page, with the proof of work on: its check speaks the language too."""
    callback_app.config["CALLBACK_PROOF_OF_WORK"] = "on"
    words = _words(lang)
    browser.get(shop.page(f"shop-{lang}.html", _shop_page(served, lang)))
    wait_for(browser, ".ivr-cb-form")
    assert browser.find_element(By.CSS_SELECTOR, ".ivr-cb-call").text == \
        f"{words['web.call_free']} (800) 555-0100"
    assert browser.find_element(By.CSS_SELECTOR, "altcha-widget").get_attribute(
        "language") == lang
    WebDriverWait(browser, 10).until(ec.text_to_be_present_in_element(
        (By.CSS_SELECTOR, "altcha-widget"), words["web.proof.label"]))
    assert _foreign(browser, lang) == ""
    _fonts_loaded(browser)
    _shoot(browser, tmp_path, f"widget-{lang}")
    # Its strings came from the service, as any embed gets them.
    assert browser.execute_script(
        "return performance.getEntriesByType('resource').some("
        "e => e.name.endsWith('/callbacks/strings/' + arguments[0]))", lang)


def test_the_opening_time_is_written_in_the_languages_words(served, browser, clock, flows_path,
                                                            callback_app):
    """A closed team: the widget gives the opening time in Bengali words, day period and zone
    name included (CLDR's AM/PM and 'GMT-4' would be Latin letters)."""
    data = yaml.safe_load(flows_path.read_text())
    data["queues"]["support"]["hours"] = "shop"
    flows_path.write_text(yaml.safe_dump(data, allow_unicode=True))
    services_of(callback_app).flows.reload()
    clock.at = dt.datetime(2026, 3, 15, 16, 0, tzinfo=dt.UTC)  # Sunday: closed
    browser.execute_cdp_cmd("Emulation.setTimezoneOverride", {"timezoneId": "America/New_York"})
    browser.get(f"{served}/callback?lang=bn")
    wait_for(browser, ".ivr-cb-form")  # the widget's own line, not the page's fallback
    shown = browser.find_element(By.CSS_SELECTOR, ".ivr-cb-wait").text
    assert shown.startswith("এখন আমরা বন্ধ। আমরা আবার খুলব সোমবার")
    assert "সকাল" in shown and "দিবালোক" in shown
    assert foreign_letters("bn", shown) == ""
