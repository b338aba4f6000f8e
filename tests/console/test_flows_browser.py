"""The flows page in a real headless Chromium: an admin signs in, a good edit and then a broken
one are saved, and the page shows the refusal at its line, the picture and the reloads."""

from __future__ import annotations

from pathlib import Path

import pytest
from selenium.webdriver.common.by import By

from ivr.infra.services import services_of
from tests.callback.browsing import chromium, wait_for
from tests.console.conftest import ADMIN, sign_in_browser

SHOTS = Path("/tmp/console-shots")


@pytest.fixture
def app_config(app_config: dict) -> dict:
    # Served over plain http to the browser: the session cookie must not be marked Secure.
    return {**app_config, "PUBLIC_BASE_URL": "http://127.0.0.1"}




def test_flows_page_in_chromium(served: str, app, flows_path: Path) -> None:
    registry = services_of(app).flows
    text = flows_path.read_text(encoding="utf-8")
    flows_path.write_text(text.replace("Thanks for calling Juniper and Pine.",
                                       "Welcome to Juniper and Pine!"), encoding="utf-8")
    edited = registry.reload().version
    broken = text.replace("goto: billing_menu}", "goto: biling_menu}", 1)
    line = next(i for i, row in enumerate(broken.splitlines(), 1) if "biling_menu" in row)
    flows_path.write_text(broken, encoding="utf-8")

    with chromium(1280, 800) as browser:
        sign_in_browser(browser, f"{served}/console/flows", ADMIN)
        problems = wait_for(browser, "#problems").text
        assert problems == (f"{flows_path}:{line}: flows.main.nodes.main_menu.options[1].goto: "
                            "unknown node 'biling_menu' (did you mean 'billing_menu'?)")
        assert browser.find_element(By.ID, "serving-version").text == edited
        picture = wait_for(browser, "#flow-picture")
        browser.execute_async_script(  # the SVG has arrived and been drawn
            "const img = arguments[0], done = arguments[1];"
            "img.complete ? done() : img.addEventListener('load', () => done());", picture)
        assert browser.execute_script("return arguments[0].naturalWidth", picture) > 500
        rows = browser.find_elements(By.CSS_SELECTOR, "#reloads tbody tr")
        assert [r.find_element(By.CSS_SELECTOR, ".pill").text for r in rows] == [
            "refused", "taken", "taken"]
        SHOTS.mkdir(parents=True, exist_ok=True)
        browser.save_screenshot(str(SHOTS / "flows.png"))
        browser.execute_script("document.getElementById('reloads').scrollIntoView()")
        browser.save_screenshot(str(SHOTS / "flows-reloads.png"))
