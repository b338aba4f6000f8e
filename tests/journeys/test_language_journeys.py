"""Languages in the README's `ivr serve`, with the shipped flows.yaml: a Hindi caller holds and
is answered by a Hindi-speaking agent, and a Bengali web callback is placed in Bengali
(customer-first, so the customer hears the service's own sentences).

Only HTTP, the emulator's record of what each party heard, and the CLI are used.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import requests

from ivr.core.i18n.languages import foreign_letters
from tests.support.proof import solve_over_http
from tests.support.service import CUSTOMER, Service, open_all_day
from tests.support.service import until as _until

SHIPPED = Path(__file__).resolve().parents[2] / "flows.yaml"
AGENT_PHONE = "+14155550100"


@pytest.fixture
def service(tmp_path: Path):
    svc = open_all_day(tmp_path, SHIPPED)
    # The customer is rung first and hears the service's own sentences (agent-first, they
    # would only hear the agent).
    svc.env["CALLBACK_MODE"] = "customer-first"
    svc.start("--at", "2026-12-02 12:00")
    yield svc
    out = svc.stop()
    assert svc.proc.returncode == 0, out


def heard_by(service: Service, number: str) -> list[str]:
    return [e["text"] for e in service.events() if e["to"] == number and e["kind"] == "say"]


def test_a_hindi_caller_and_a_bengali_callback(service: Service):
    added = service.cli("agents", "add", "Asha", "--phone", AGENT_PHONE, "--queues",
                        "support,billing", "--wrap-up", "0", "--languages", "hi,en")
    assert added.returncode == 0, added.stderr
    assert service.cli("agents", "status", "Asha", "available").returncode == 0

    # A caller picks Hindi (2), presses 0, and holds until Asha answers.
    turns = service.call("2", "0", "hold", caller="+14155550111")
    said = [text for turn in turns[1:] for text in turn["said"]]
    assert said and all(foreign_letters("hi", text) == "" for text in said), said
    assert turns[-1]["bridged"]
    whisper = next(t for t in heard_by(service, AGENT_PHONE) if "हिंदी" in t)
    assert foreign_letters("hi", whisper) == "", whisper  # in her language, naming the caller's

    # A Bengali visitor asks for a callback on the web: the call speaks Bengali to them, and
    # Asha hears (in Hindi) that the customer speaks Bengali.
    proof = solve_over_http(lambda url: requests.get(url, timeout=5), service.url)
    made = requests.post(service.url + "/callbacks", json={
        "phone": CUSTOMER, "consent": True, "altcha": proof, "language": "bn"}, timeout=10)
    assert made.status_code == 202, made.text
    request_id, token = made.json()["id"], made.json()["token"]
    state = _until(lambda: requests.get(f"{service.url}/callbacks/{request_id}", timeout=5,
                                        headers={"X-Callback-Token": token}).json(),
                   lambda s: s["status"] == "completed", 60)
    assert state["language"] == "bn"
    to_customer = heard_by(service, CUSTOMER)
    assert to_customer and all(foreign_letters("bn", t) == "" for t in to_customer), to_customer
    assert any("बंगाली" in t for t in heard_by(service, AGENT_PHONE))
