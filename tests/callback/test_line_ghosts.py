"""A caller who hung up on hold during a Redis stall is a ghost in the line: their record
expires, but their entry stays. The dispatcher must not leave callbacks waiting behind them."""

from __future__ import annotations

from ivr.infra import line
from tests.callback.conftest import ask


def test_a_callback_behind_a_ghost_is_placed(client, deps, agent, twilio_cloud, run_jobs):
    line.join_caller(deps.redis, "support", "CAghost", deps.now().timestamp() - 3600)  # no record
    made = ask(client, {"phone": "+14155550123"})

    run_jobs()

    assert len(twilio_cloud.placed) == 1
    twilio_cloud.drive_pending()
    assert client.get(f"/callbacks/{made['id']}", headers={"X-Callback-Token": made["token"]}
                      ).get_json()["status"] == "completed"
    assert deps.redis.zscore(line.CALLERS.format(queue="support"), "CAghost") is None
