"""A supervisor watches the wallboard in Chromium while calls arrive, are answered, are
abandoned and ask for callbacks, on the README's `ivr serve` (a real process, the emulator).

Each figure is asserted to reach its right value within 2 s of the change that moved it. The
page records, in the browser, when each figure took each value (a MutationObserver installed
by the test, reading the `data-figure` elements); the change's moment is taken from outside
the service: the emulated network's journal (when Twilio's webhook was answered, or when the
agent's phone began to ring) or the moment the test's own request returned. Both clocks are
this machine's.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from pathlib import Path

import requests
from selenium.webdriver.common.by import By

from tests.callback.browsing import chromium, wait_for
from tests.console.conftest import ADMIN, sign_in_browser
from tests.support.proof import solve_over_http
from tests.support.service import CUSTOMER, Service
from tests.support.service import until as _until

AGENT_PHONE = "+14155550100"
CALLER_A, CALLER_B = "+14155550111", "+14155550112"
LIVE_SECONDS = 2.0

# Installed in the page: every change of the wallboard's figures, with the browser's time.
RECORDER = """
window.__seen = [];
function snap() {
  var o = {};
  document.querySelectorAll('[data-figure]').forEach(function (e) {
    o[e.getAttribute('data-figure')] = e.textContent.trim(); });
  window.__seen.push({at: Date.now() / 1000, v: o});
}
snap();
new MutationObserver(snap).observe(document.getElementById('wallboard'),
  {childList: true, subtree: true, characterData: true});
"""


class Board:
    """The wallboard open in Chromium, and what its figures showed when."""

    def __init__(self, browser) -> None:
        self.browser = browser

    def seen(self) -> list[dict]:
        return self.browser.execute_script("return window.__seen;")

    def texts(self, css: str) -> list[str]:
        """The text of every element matching `css`, read at one instant (the fragment is
        replaced on each update, so elements found earlier go stale)."""
        return self.browser.execute_script(
            "return Array.from(document.querySelectorAll(arguments[0]))"
            ".map(function (e) { return e.textContent.trim(); });", css)

    def value(self, figure: str) -> str:
        return self.browser.find_element(By.CSS_SELECTOR, f'[data-figure="{figure}"]').text

    def reached(self, figure: str, value: str, timeout: float = 30) -> float:
        """When (browser time) `figure` first showed `value`, waiting for it if need be."""
        deadline = time.monotonic() + timeout
        while True:
            for entry in self.seen():
                if entry["v"].get(figure) == value:
                    return entry["at"]
            if time.monotonic() > deadline:
                last = self.seen()[-1]["v"].get(figure)
                raise AssertionError(f"{figure} never showed {value!r} (last {last!r})")
            time.sleep(0.1)

    def within(self, change_at: float, expected: dict[str, str]) -> None:
        """Each figure showed its value within LIVE_SECONDS of `change_at`."""
        late = {}
        for figure, value in expected.items():
            lag = self.reached(figure, value) - change_at
            if lag > LIVE_SECONDS:
                late[figure] = round(lag, 2)
        assert not late, f"shown later than {LIVE_SECONDS} s after the change: {late}"


def journal(service: Service, kind: str, *, to: str | None = None, path: str = "",
            call_from: str | None = None) -> float:
    """When the emulated network last did `kind` (for a webhook: answered one for `path`)."""
    events = [e for e in service.events() if e["kind"] == kind
              and (to is None or e["to"] == to) and path in e["text"]
              and (call_from is None or e["from"] == call_from)]
    assert events, f"no {kind} {path} event in the journal"
    return events[-1]["at"]


def first_journal(service: Service, kind: str, *, path: str, call_from: str) -> float:
    events = [e for e in service.events() if e["kind"] == kind and path in e["text"]
              and e["from"] == call_from]
    assert events, f"no {kind} {path} event from {call_from}"
    return events[0]["at"]


def test_the_wallboard_follows_calls_answers_abandons_and_callbacks(service: Service,
                                                                    tmp_path: Path):
    added = service.cli("agents", "add", "Dana", "--phone", AGENT_PHONE, "--queues", "support",
                        "--wrap-up", "0")
    assert added.returncode == 0, added.stderr
    # Dana's phone rings 8 s before she answers, so the wallboard can show her ringing.
    service.emulator("PUT", f"/parties/{AGENT_PHONE}", json={
        "answers": "human", "ring_seconds": 8, "digits": ["1"], "talk_seconds": 3})
    assert service.cli("agents", "status", "Dana", "available").returncode == 0

    with chromium(1280, 800) as browser:
        sign_in_browser(browser, service.url + "/console", ADMIN)
        wait_for(browser, '[data-figure="support.waiting"]')
        browser.execute_script(RECORDER)
        board = Board(browser)
        assert board.value("support.waiting") == "0"
        assert board.value("support.agents.available") == "1"
        assert board.value("all.escapes") == "0"
        assert board.value("support.service_level") == "–"

        # 1. Caller A presses 0 and holds; Dana is rung, answers after 8 s, and is bridged.
        a = threading.Thread(target=service.call, args=("0", "hold"),
                             kwargs={"caller": CALLER_A})
        a.start()
        board.reached("support.waiting", "1")
        board.within(first_journal(service, "webhook", path="/voice/queue/wait",
                                   call_from=CALLER_A),
                     {"support.waiting": "1", "all.waiting": "1", "all.escapes": "1"})
        board.reached("support.agents.ringing", "1")
        board.within(journal(service, "ringing", to=AGENT_PHONE),
                     {"support.agents.ringing": "1", "support.agents.available": "0"})
        # While A waits, their row says where they stand and what they pressed.
        # (What they pressed reaches SQL within the journey writer's half second.)
        cells = _until(lambda: board.texts("table.callers tbody tr td"),
                       lambda c: "pressed 0" in c, 5)
        assert cells[:3] == ["1", CALLER_A, "en"]
        a.join(timeout=60)
        board.reached("support.answered", "1")
        board.within(journal(service, "webhook", path="/voice/queue/left", call_from=CALLER_A),
                     {"support.answered": "1", "support.waiting": "0",
                      "support.service_level": "100%", "all.answered": "1"})

        # 2. Dana is busy elsewhere; caller B holds a round and hangs up: abandoned.
        assert service.cli("agents", "status", "Dana", "busy").returncode == 0
        board.reached("support.agents.on_call", "1")
        b = threading.Thread(target=service.call, args=("0", "hold:1", "hangup"),
                             kwargs={"caller": CALLER_B})
        b.start()
        board.reached("support.waiting", "1")
        told_band = _until(lambda: board.texts("table.callers tbody tr td"),
                           lambda c: len(c) >= 5 and c[4] != "–", 10)[4]
        b.join(timeout=60)
        board.reached("support.abandoned", "1")
        # A hung-up caller's Enqueue action is not journaled as a webhook; the moment they
        # left the queue is earlier still than when the service heard of it.
        board.within(journal(service, "left-queue", call_from=CALLER_B),
                     {"support.abandoned": "1", "support.waiting": "0",
                      "support.service_level": "50%", "all.escapes": "2"})

        # 3. A visitor asks for a callback on the web while nobody is free: due.
        proof = solve_over_http(lambda url: requests.get(url, timeout=5), service.url)
        made = requests.post(service.url + "/callbacks", json={
            "phone": CUSTOMER, "consent": True, "altcha": proof}, timeout=10)
        assert made.status_code == 202, made.text
        board.within(time.time(), {"support.callbacks_due": "1", "all.callbacks_due": "1"})
        Path("/tmp/console-shots").mkdir(exist_ok=True)
        browser.save_screenshot("/tmp/console-shots/wallboard.png")

    # What the board said agrees with the service's own records.
    report = _until(service.report, lambda r: r.get("visits") == 2, 20)
    assert (report["answered"], report["abandoned"], report["service_level"]) == (1, 1, 0.5)
    with sqlite3.connect(tmp_path / "ivr.sqlite3") as db:
        bands = [row[0] for row in db.execute(
            "SELECT e.band FROM wait_estimates e JOIN queue_visits v ON v.id = e.visit_id "
            "WHERE v.caller = ? ORDER BY e.id", (CALLER_B,))]
    assert told_band and told_band == bands[-1], (told_band, bands)
    metrics = requests.get(service.url + "/metrics", timeout=10).text
    assert 'ivr_queue_abandoned_today{queue="support"} 1.0' in metrics
    assert 'ivr_queue_callbacks{queue="support",state="due"} 1.0' in metrics
    assert "ivr_escapes_today 2.0" in metrics
    assert json.loads(service.cli("agents", "list", "--json").stdout)["agents"][0][
        "presence"]["status"] == "busy"
