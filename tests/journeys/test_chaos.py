"""`ivr serve --chaos` with two `ivr worker` processes beside it, one of them SIGKILLed every
few seconds: the emulated Twilio delivers webhooks and status callbacks late, twice and out of
order, loses final status callbacks and the answers of REST requests. A seeded run of callers
and web callbacks against two agents, then the invariants that must hold whatever happened
(tests/support/chaos_run.py; tests/bench/chaos.py runs the same code at 300 calls):
- every caller reached a person, a callback or their own hang-up;
- no agent is left busy;
- every callback ended completed, its customer dialled exactly once;
- every journey row reached the database, none twice, every call's end among them;
- nobody, and no ghost, is left in the line.
"""

from __future__ import annotations

from tests.support.chaos_run import INVARIANTS, Workload, run_once

WORK = Workload(calls=16, callbacks=6, agents=2, seed=11, gap=0.3, concurrency=16,
                kill_every=5.0, chaos="delay=0.6,repeat=0.3,drop=0.2,rest=0.15",
                settle_limit=180)


def test_invariants_hold_under_late_repeated_and_lost_deliveries_and_killed_workers():
    figures = run_once(WORK, chaos=True)
    assert figures["settled"], figures
    assert {name: figures[name] for name in INVARIANTS} == dict.fromkeys(INVARIANTS, 0), figures
    assert figures["events_missed"] == 0, figures  # the books were read from every event
    # The run was chaotic: every kind of trouble happened at least once.
    did = figures["chaos"]
    assert did["repeated"] > 0 and did["dropped"] > 0 and did["rest_lost"] > 0, did
    assert figures["worker_kills"] >= 1, figures
    outcomes = figures["outcomes"]
    assert outcomes.get("bridged", 0) > 0 and outcomes.get("hung-up", 0) > 0, outcomes
