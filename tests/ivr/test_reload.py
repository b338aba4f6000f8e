"""Hot reload seen from calls: new calls get the edit, calls under way keep their version,
a broken edit is refused and the last good flows keep serving."""

from __future__ import annotations

import os
import time
from pathlib import Path

from ivr.infra.services import services_of
from tests.conftest import AUTH_TOKEN, BASE_URL
from tests.support.caller import SimulatedCall, flask_transport

OLD_WELCOME = "Thanks for calling Juniper and Pine."
NEW_WELCOME = "Hello from the edited flow."
ADMIN = "admin-token-for-reload-tests-9b27d4"


def new_call(app) -> SimulatedCall:
    return SimulatedCall(flask_transport(app.test_client(), BASE_URL), BASE_URL, AUTH_TOKEN)


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))
    # Make sure the change is visible even on filesystems with coarse timestamps.
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 2_000_000_000))


def until(check, seconds: float = 5.0):
    """The service looks at the file beside the requests: wait for its look to land."""
    deadline = time.monotonic() + seconds
    while not (value := check()):
        assert time.monotonic() < deadline, "the edit was not picked up"
        time.sleep(0.02)
    return value


def test_edit_applies_to_new_calls_and_running_calls_keep_their_version(app, flows_path):
    running = new_call(app)
    assert OLD_WELCOME in running.dial().text

    # Rename the order menu option's target and reword the welcome.
    edit(flows_path, OLD_WELCOME, NEW_WELCOME)
    edit(flows_path, "goto: order_number}", "goto: order_number_v2}")
    edit(flows_path, "      order_number:\n", "      order_number_v2:\n")
    registry = services_of(app).flows
    before = registry.version
    until(lambda: registry.current().version != before)

    fresh = new_call(app)
    assert NEW_WELCOME in fresh.dial().text

    # The call that started before the edit walks the old version: 'order_number' still exists.
    running.wait()
    turn = running.press("1")
    assert "five digit order number" in turn.text
    assert "node=order_number&" in turn.gather_action + "&"

    fresh.wait()
    turn = fresh.press("1")
    assert "node=order_number_v2" in turn.gather_action


def test_broken_edit_is_refused_and_last_good_version_keeps_serving(app, flows_path, caplog):
    registry = services_of(app).flows
    good = registry.current().version
    edit(flows_path, "next: open_check", "next: opne_check")
    until(lambda: registry.current() and registry.last_problems)
    call = new_call(app)
    assert OLD_WELCOME in call.dial().text
    assert registry.current().version == good
    problems = [str(p) for p in registry.last_problems]
    assert any("unknown node 'opne_check'" in p and "open_check" in p for p in problems)
    assert any(str(flows_path) in p or flows_path.name in p for p in problems)
    # The problem is reported by /healthz too, to an admin.
    app.config["IVR_ADMIN_TOKEN"] = ADMIN
    health = app.test_client().get("/healthz", headers={"Authorization": f"Bearer {ADMIN}"})
    health = health.get_json()
    assert health["checks"]["flows"]["ok"] is False
    assert any("opne_check" in p for p in health["checks"]["flows"]["problems"])

    # Fixing the file is picked up again.
    edit(flows_path, "next: opne_check", "next: open_check")
    until(lambda: registry.current() and not registry.last_problems)
    assert new_call(app).dial().status == 200
    assert registry.current().version == good
    assert registry.last_problems == []
