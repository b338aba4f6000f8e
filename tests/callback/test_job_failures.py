"""A callback job that raises is visible: in the request's status, once in the log, and in
/metrics; after CALLBACK_MAX_JOB_FAILURES it ends as failed instead of being resent forever."""

from __future__ import annotations

import logging
import re

from rq import SimpleWorker

from callback.dispatch import dispatch_once, sweep
from callback.settings import RQ_QUEUE
from tests.callback.conftest import CUSTOMER


def _counter(client, name: str, labels: str) -> float:
    text = client.get("/metrics").get_data(as_text=True)
    found = re.search(rf"^{name}{{{labels}}} ([0-9.e+]+)$", text, re.M)
    return float(found.group(1)) if found else 0.0


def test_a_failing_job_shows_everywhere_then_gives_up(client, callback_app, deps, agent, clock,
                                                     caplog):
    made = client.post("/callbacks", json={"consent": True, "phone": CUSTOMER}).get_json()
    # An admin's typo in the settings: every dial job now raises.
    callback_app.config["CALLBACK_CALLING_WINDOW"] = "whenever"
    callback_app.config["CALLBACK_MAX_JOB_FAILURES"] = 3
    before = _counter(client, "ivr_callback_job_failures_total", 'job="place_callback"')
    caplog.set_level(logging.ERROR, logger="callback.jobs")

    assert dispatch_once(deps) == [1]
    SimpleWorker([RQ_QUEUE], connection=deps.redis).work(burst=True)
    state = client.get(f"/callbacks/{made['id']}",
                       headers={"X-Callback-Token": made["token"]}).get_json()
    assert state["problem"] == "Placing this call failed 1 time on our side; we keep trying."
    assert state["status"] == "dispatched" and state["attempts"] == 0
    failures = [r for r in caplog.records if r.getMessage() == "callback job failed"]
    assert len(failures) == 1
    assert "ValueError" in failures[0].error and failures[0].callback_id == 1
    after = _counter(client, "ivr_callback_job_failures_total", 'job="place_callback"')
    assert after == before + 1
    assert _counter(client, "ivr_rq_jobs_failed", 'queue="callbacks"') == 1.0

    for _ in range(2):  # the sweeper sends the job again after its grace; it fails again
        clock.advance(31)
        assert sweep(deps)["resent"] == 1
        SimpleWorker([RQ_QUEUE], connection=deps.redis).work(burst=True)
    state = client.get(f"/callbacks/{made['id']}",
                       headers={"X-Callback-Token": made["token"]}).get_json()
    assert (state["status"], state["outcome"]) == ("failed", "error")
    assert state["problem"].startswith("We could not place this call: our system failed 3 times")
    gave_up = [r for r in caplog.records if "given up" in r.getMessage()]
    assert len(gave_up) == 1
    clock.advance(31)
    assert sweep(deps)["resent"] == 0  # a failed request is never sent again


def test_a_job_failing_after_its_call_was_placed_leaves_that_call_to_settle_the_request(
        client, callback_app, deps, agent, twilio_cloud, monkeypatch):
    """The dial went out, then the job raised (Redis failed as the agent's call was noted) on
    its last allowed failure: the request is not given up under the ringing call; how that
    call ends decides it."""
    made = client.post("/callbacks", json={"consent": True, "phone": CUSTOMER}).get_json()
    callback_app.config["CALLBACK_MAX_JOB_FAILURES"] = 1

    def redis_fails(*args, **kwargs):
        raise RuntimeError("Redis went away as the call was noted")

    monkeypatch.setattr("callback.jobs.attach_call", redis_fails)
    assert dispatch_once(deps) == [1]
    SimpleWorker([RQ_QUEUE], connection=deps.redis).work(burst=True)
    view = {"X-Callback-Token": made["token"]}
    state = client.get(f"/callbacks/{made['id']}", headers=view).get_json()
    assert len(twilio_cloud.placed) == 1
    assert state["status"] == "dialing"  # not "failed" while its call rings
    twilio_cloud.drive_pending()  # the agent answers, then the customer
    state = client.get(f"/callbacks/{made['id']}", headers=view).get_json()
    assert (state["status"], state["outcome"]) == ("completed", "connected")
