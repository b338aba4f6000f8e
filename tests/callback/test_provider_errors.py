"""The provider's trouble is not the customer's: a call create that Twilio answers with a 5xx
(or that cannot reach it) uses up none of the customer's attempts, and the request is tried
again after a pause that doubles while the trouble lasts, never in a hot loop. A refusal
(4xx) does count: that number will not be called however often we try.

Found by the chaos bench: two lost REST answers in a row had used two of a customer's three
attempts and put their callback off by twelve minutes of back-off. (The refusal test is a
guard the old code passes too.)"""

from __future__ import annotations

import datetime as dt

from callback.jobs import PROVIDER_RETRY_SECONDS
from tests.callback.conftest import ask
from tests.callback.test_lifecycle import _attempts, _row


def test_a_provider_failure_costs_no_attempt_and_is_retried_soon(client, deps, agent,
                                                                   twilio_cloud, run_jobs, clock):
    twilio_cloud.fail_creates = 3
    made = ask(client, {"phone": "+14155550123"})
    row = _row(deps, made["id"])
    for failures in (1, 2, 3):
        run_jobs()
        attempts = _attempts(deps, row.id)
        assert [a.status for a in attempts] == ["provider-error"] * failures
        req = _row(deps, made["id"])
        assert req.customer_failures == 0 and req.status == "scheduled"
        pause = PROVIDER_RETRY_SECONDS * 2 ** (failures - 1)  # doubled while it lasts
        assert req.scheduled_for == clock.at + dt.timedelta(seconds=pause)
        run_jobs()  # not due yet: nothing is dialled in between
        assert len(_attempts(deps, row.id)) == failures
        clock.advance(pause + 31)
        from callback.dispatch import sweep

        sweep(deps)  # releases the request whose time has come
    run_jobs()
    assert len(twilio_cloud.placed) == 1  # the fourth try reached Twilio
    twilio_cloud.drive_pending()
    assert _row(deps, made["id"]).status == "completed"


def test_a_refusal_counts_against_the_request(client, deps, agent, twilio_cloud, run_jobs):
    made = ask(client, {"phone": "+14155550123"})
    twilio_cloud.emulator.caller_ids.clear()  # Twilio now refuses our caller ID (error 21210)
    run_jobs()
    [attempt] = _attempts(deps, _row(deps, made["id"]).id)
    assert attempt.status == "failed" and "not yet verified" in attempt.error
    assert _row(deps, made["id"]).customer_failures == 1
