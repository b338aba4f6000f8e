"""The service's books under Twilio's delivery at its worst, at scale, as a user runs it.

The workload and its invariants are tests/support/chaos_run.py: 300 callers and 100 web
callbacks against 5 agents, with every webhook and status callback delayed, repeated and
reordered, final status callbacks lost, REST answers lost, and workers SIGKILLed. The same
workload runs first without chaos and kills, as the baseline of the same run, so the time
figures say what chaos costs. Exits 1 when any invariant count is not 0.

    python tests/bench/chaos.py [--calls 300] [--callbacks 100] [--agents 5] [--seed 5]
                                [--no-baseline]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from pathlib import Path

# This folder holds speech.py, hold.py...: keep them from shadowing the project's packages.
HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
sys.path.insert(0, str(ROOT))

from tests.support.chaos_run import INVARIANTS, Workload, run_once  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    defaults = Workload()
    for f in dataclasses.fields(Workload):
        parser.add_argument("--" + f.name.replace("_", "-"), type=type(getattr(defaults, f.name)),
                            default=getattr(defaults, f.name))
    parser.add_argument("--no-baseline", action="store_true")
    args = parser.parse_args()
    work = Workload(**{f.name: getattr(args, f.name) for f in dataclasses.fields(Workload)})
    baseline = None if args.no_baseline else run_once(work, chaos=False)
    if baseline is not None:
        print("baseline:", json.dumps(baseline), file=sys.stderr)
    chaotic = run_once(work, chaos=True)
    print("chaos:", json.dumps(chaotic), file=sys.stderr)

    def base(key: str):
        return None if baseline is None else baseline[key]

    result = {
        "bench": "chaos", **dataclasses.asdict(work),
        **{name: chaotic[name] for name in INVARIANTS},
        "invariants_broken": sum(chaotic[name] for name in INVARIANTS),
        "baseline_invariants_broken": None if baseline is None else sum(
            baseline[name] for name in INVARIANTS),
        "worker_kills": chaotic["worker_kills"], "chaos_did": chaotic["chaos"],
        "settle_seconds": chaotic["settle_seconds"],
        "baseline_settle_seconds": base("settle_seconds"),
        "wait_to_agent_p50": chaotic["wait_to_agent_p50"],
        "baseline_wait_to_agent_p50": base("wait_to_agent_p50"),
        "wait_to_agent_p95": chaotic["wait_to_agent_p95"],
        "baseline_wait_to_agent_p95": base("wait_to_agent_p95"),
        "outcomes": chaotic["outcomes"],
    }
    print(json.dumps(result))
    sys.exit(1 if result["invariants_broken"] else 0)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
