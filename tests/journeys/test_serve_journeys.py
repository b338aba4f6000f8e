"""The README's `ivr serve`, started as a user starts it, walked through HTTP and the CLI only.

Embedded defaults (SQLite, an embedded Valkey, the in-process worker, the Twilio emulator), no
PUBLIC_BASE_URL and no Twilio credentials; a flows file open around the clock. The clock is
set with `--at` to a Wednesday at noon in New York, so the callers' calling hours (8:00-21:00
where the number is) hold whatever time the suite runs at.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests
from twilio.request_validator import RequestValidator

from tests.support.proof import solve_over_http
from tests.support.service import CUSTOMER, Service, open_all_day
from tests.support.service import until as _until

AGENT_PHONE = "+14155550100"


@pytest.fixture
def service(tmp_path: Path):
    svc = open_all_day(tmp_path)
    svc.start("--at", "2026-12-02 12:00")
    yield svc
    out = svc.stop()
    assert svc.proc.returncode == 0, out
    assert "IVR service stopped." in out
    assert not (tmp_path / "var" / "ivr-serve.json").exists()  # the run file goes with it


def test_the_three_journeys_through_http_and_the_cli(service: Service):
    banner_check = requests.get(service.url + "/healthz", timeout=5).json()
    assert banner_check["status"] == "ok"
    added = service.cli("agents", "add", "Dana", "--phone", AGENT_PHONE, "--queues",
                        "support,billing", "--wrap-up", "0")
    assert added.returncode == 0, added.stderr
    on = service.cli("agents", "status", "Dana", "available")
    assert (on.returncode, on.stdout.strip()) == (0, "agent 1 (Dana) is available")

    # 1. A web callback with an agent on duty: placed, then completed.
    #    As the widget does: consent ticked, the proof of work solved, then the details read
    #    with the token the answer holds.
    bare = requests.post(service.url + "/callbacks", json={"phone": CUSTOMER, "consent": True},
                         timeout=10)
    assert (bare.status_code, bare.json()["error"]) == (403, "proof_required")
    proof = solve_over_http(lambda url: requests.get(url, timeout=5), service.url)
    made = requests.post(service.url + "/callbacks", json={
        "phone": CUSTOMER, "name": "Mia", "reason": "a late parcel", "consent": True,
        "altcha": proof}, timeout=10)
    assert made.status_code == 202, made.text
    request_id, token = made.json()["id"], made.json()["token"]
    state = _until(lambda: requests.get(f"{service.url}/callbacks/{request_id}", timeout=5,
                                        headers={"X-Callback-Token": token}).json(),
                   lambda s: s["status"] == "completed", 60)
    assert (state["attempts"], state["outcome"], state["problem"]) == (1, "connected", None)
    heard = [e["text"] for e in service.events() if e["to"] == AGENT_PHONE and e["kind"] == "say"]
    assert heard[0] == ("Callback for the support line. English caller. Mia. About: a late "
                        "parcel. They asked just now. Connecting you now.")
    _until(lambda: service.cli("agents", "list", "--json").stdout,
           lambda out: json.loads(out)["agents"][0]["presence"]["status"] == "available", 20)

    # 2. A caller presses 0, holds, hears the agent answer after the whisper: answered.
    turns = service.call("0", "hold")
    after_zero, held = turns[1], turns[2]
    assert after_zero["waiting"] == "queue" and after_zero["queue"] == "support"
    assert "You are next in line." in after_zero["said"]
    assert f"{AGENT_PHONE} hears: English caller. Support line. Pressed 0. Waited less than a " \
           "minute. Press 1 to take the call, or 2 to pass." in held["others"]
    assert f"{AGENT_PHONE} pressed 1" in held["others"]
    assert held["bridged"] and "Thank you for waiting. Connecting you now." in held["said"]
    report = _until(service.report, lambda r: r.get("answered") == 1, 20)
    assert (report["visits"], report["abandoned"]) == (1, 0)

    # 3. Two callers hang up while holding: abandoned, and the next caller is first in line.
    busy = service.cli("agents", "status", "Dana", "busy")
    assert busy.returncode == 0, busy.stderr
    for caller in ("+14155550111", "+14155550112"):
        turns = service.call("0", "hold:1", "hangup", caller=caller)
        assert turns[1]["waiting"] == "queue"
    report = _until(service.report, lambda r: r.get("abandoned") == 2, 20)
    assert (report["visits"], report["answered"]) == (3, 1)
    next_caller = service.call("0", caller="+14155550113")
    assert "You are next in line." in next_caller[1]["said"]


def test_a_late_gather_never_moves_a_live_call_back(service: Service):
    """A caller at the billing menu of a running service; the main menu's Gather (digit 3)
    arrives again, signed as Twilio signs it. The caller stays at billing, and their next key
    is taken there."""
    sid = service.emulator("POST", "/calls", json={"from": CUSTOMER, "to": "+18005550100"}
                           ).json()["sid"]

    def waiting():
        return service.emulator("GET", f"/calls/{sid}").json()["waiting_for_input"]

    def heard(text: str):
        return [e for e in service.events() if e["call"] == sid and e["kind"] == "say"
                and text in e["text"]]

    _until(waiting, bool, 20)
    service.emulator("POST", f"/calls/{sid}/act", json={"action": "wait"})  # the welcome
    _until(lambda: heard("For an order, press 1"), bool, 20)
    _until(waiting, bool, 20)
    service.emulator("POST", f"/calls/{sid}/act", json={"action": "2"})
    _until(lambda: heard("For a copy of an invoice"), bool, 20)
    _until(waiting, bool, 20)
    menu_gather = next(e["text"] for e in service.events() if e["call"] == sid
                       and e["kind"] == "webhook" and "/voice/gather" in e["text"]
                       and "node=main_menu" in e["text"])

    form = {"CallSid": sid, "AccountSid": "AC" + "0" * 32, "From": CUSTOMER,
            "To": "+18005550100", "CallStatus": "in-progress", "Direction": "inbound",
            "Digits": "3"}
    signature = RequestValidator(service.auth_token).compute_signature(menu_gather, form)
    late = requests.post(menu_gather, data=form, headers={"X-Twilio-Signature": signature},
                         timeout=10)

    assert late.status_code == 200
    assert "return anything within 30 days" not in late.text
    assert "For a copy of an invoice" in late.text  # where the caller really is
    service.emulator("POST", f"/calls/{sid}/act", json={"action": "1"})
    _until(lambda: heard("download every invoice"), bool, 20)
    assert not heard("return anything within 30 days")
    service.emulator("POST", f"/calls/{sid}/act", json={"action": "hangup"})
