"""Estimated-wait accuracy: a call-centre simulation feeding the real estimator and baselines.

Discrete-event simulation (fixed numpy seed): time-varying Poisson arrivals (a sinusoid that
swings between underload and overload), several agents, lognormal handle times, exponential
patience (abandonment). At each arrival that finds every agent busy, the project's estimator
(`ivr.hold.estimate_wait`, learning from the simulated history as the service would) and these
baselines predict the caller's wait, in the same run:

- oracle: Ibrahim & Whitt's QL-m with the TRUE service and abandonment rates;
- ql_true_mu: plain QL (n+1)/(s*mu) with the true service rate, ignoring abandonment;
- asterisk: app_queue's holdtime H = (3H + wait)/4 after each answered call, announced H - waited;
- twilio_avg: AvgQueueTime, the mean elapsed wait of the callers in the queue now;
- les: the wait of the last caller to enter service; hol: the head-of-line caller's wait so far.

Scored over callers who had to wait and were then answered (abandoners have no answered wait):
RASE = mean squared error / (mean wait)^2, MAE, and within_band = share of those callers whose
wait kept the band they were told on entry. Waiting callers are also re-announced every 30 s
through `Estimate.announce` (the wait handler's honest rule): the run reports how many of all
those promises were kept, and how often a caller already past a lapsed promise heard that band
or a shorter one again, ours against Asterisk's ``H - waited`` countdown.
Usage: python tests/bench/ewt.py [--hours H] [--seed S] [--agents N] [--sigma S] [--load RHO]
"""

from __future__ import annotations

import argparse
import heapq
import json
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from ivr.core.waits import Announcement, Band, HistoryStats, band_for, estimate_wait  # noqa: E402

DEFAULT_HANDLE = 240.0  # the queue's configured cold-start guess (deliberately not the truth)
WARMUP = 1800.0  # seconds excluded from scoring for every predictor alike
PREDICTORS = ["ours", "oracle", "ql_true_mu", "asterisk", "twilio_avg", "les", "hol"]


@dataclass(frozen=True)
class Scenario:
    """The simulated call centre (defaults: the reported run)."""

    agents: int = 10
    mean_handle: float = 300.0  # seconds; capacity = 10 * 3600 / 300 = 120 calls/h
    handle_sigma: float = 0.8  # lognormal shape: cv^2 = exp(0.64) - 1 = 0.90
    mean_patience: float = 600.0  # exponential patience
    load: float = 0.95  # average arrival rate / capacity: 114 calls/h with 10 agents
    swing: float = 0.3  # +-30%: peaks at rho 1.24, troughs at rho 0.67
    period_hours: float = 4.0

    @property
    def base_rate(self) -> float:
        """Average arrivals per second."""
        return self.load * self.agents / self.mean_handle

    def arrival_rate(self, t: float) -> float:
        """Arrivals per second at time t."""
        phase = 2.0 * math.pi * t / (self.period_hours * 3600.0)
        return self.base_rate * (1.0 + self.swing * math.sin(phase))

    def oracle_ql_m(self, ahead: int) -> float:
        """QL-m with the true rates: sum over i = 0..ahead of 1 / (s*mu + i*theta)."""
        s_mu = self.agents / self.mean_handle
        theta = 1.0 / self.mean_patience
        return sum(1.0 / (s_mu + i * theta) for i in range(ahead + 1))


def arrivals(rng: np.random.Generator, sc: Scenario, horizon: float) -> np.ndarray:
    """Non-homogeneous Poisson arrival times by thinning."""
    peak = sc.base_rate * (1.0 + sc.swing)
    n = rng.poisson(peak * horizon)
    times = np.sort(rng.uniform(0.0, horizon, n))
    rates = np.array([sc.arrival_rate(t) for t in times])
    return times[rng.uniform(0.0, 1.0, n) < rates / peak]


def simulate(sc: Scenario, hours: float, seed: int, announce_every: float = 30.0) -> dict:
    """Run the call centre; return per-predictor predictions and actual waits."""
    rng = np.random.default_rng(seed)
    horizon = hours * 3600.0
    times = arrivals(rng, sc, horizon)
    n = len(times)
    mu_log = math.log(sc.mean_handle) - sc.handle_sigma**2 / 2.0  # lognormal mean is exact
    handles = rng.lognormal(mu_log, sc.handle_sigma, n)
    patience = rng.exponential(sc.mean_patience, n)

    events: list[tuple[float, int, str, int]] = [(t, i, "arrive", i) for i, t in enumerate(times)]
    heapq.heapify(events)
    seq = n
    waiting: dict[int, float] = {}  # caller -> arrival time, in line order (dicts keep order)
    free = sc.agents
    stats = HistoryStats()
    asterisk_h = 0.0
    last_entered_wait = 0.0
    scored: dict[int, dict] = {}  # caller -> predictions (for callers who had to wait)
    outcome: dict[int, float] = {}  # caller -> actual wait (answered only)
    abandoned = answered = 0
    # Repeated announcements (every `announce_every` s while a scored caller waits): what we last
    # told each caller, every promise (due, rank) made by us and by Asterisk's countdown, and
    # how often a caller past a lapsed promise heard that band or a shorter one again.
    told_ours: dict[int, Announcement] = {}
    made: dict[str, dict[int, list[tuple[float, int]]]] = {"ours": {}, "asterisk": {}}
    promises: list[tuple[int, float, Band]] = []
    overdue = {"ours": 0, "ours_repeated": 0, "asterisk": 0, "asterisk_repeated": 0}

    def promise(who: str, caller: int, waited: float, band: Band) -> None:
        """Record a promise; count it if it repeats or undercuts one that already lapsed."""
        past = made[who].setdefault(caller, [])
        lapsed = [rank for due, rank in past if waited > due]
        if lapsed:
            overdue[who] += 1
            overdue[f"{who}_repeated"] += band.rank <= max(lapsed)
        if band.upper_seconds is not None:
            past.append((waited + band.upper_seconds, band.rank))

    def start_service(caller: int, now: float) -> None:
        nonlocal seq, free, asterisk_h, last_entered_wait, answered
        wait = now - times[caller]
        free -= 1
        answered += 1
        outcome[caller] = wait
        stats.record_answered(wait)
        asterisk_h = (3.0 * asterisk_h + wait) / 4.0
        last_entered_wait = wait
        seq += 1
        heapq.heappush(events, (now + handles[caller], seq, "done", caller))

    while events:
        now, _, kind, caller = heapq.heappop(events)
        if kind == "arrive":
            if free > 0:
                start_service(caller, now)
                continue
            ahead = len(waiting)
            if now >= WARMUP:
                est = estimate_wait(
                    ahead + 1, sc.agents, stats, default_handle_seconds=DEFAULT_HANDLE
                )
                head_wait = now - next(iter(waiting.values())) if waiting else 0.0
                twilio = (
                    sum(now - t for t in waiting.values()) / len(waiting) if waiting else 0.0
                )
                said = est.announce(None)
                told_ours[caller] = said
                promises.append((caller, 0.0, said.band))
                promise("ours", caller, 0.0, said.band)
                promise("asterisk", caller, 0.0, band_for(asterisk_h))
                seq += 1
                heapq.heappush(events, (now + announce_every, seq, "announce", caller))
                scored[caller] = {
                    "ours": est.seconds,
                    "band": est.band,
                    "oracle": sc.oracle_ql_m(ahead),
                    "ql_true_mu": (ahead + 1) * sc.mean_handle / sc.agents,
                    "asterisk": max(0.0, asterisk_h),  # H - waited, with waited = 0 on arrival
                    "twilio_avg": twilio,
                    "les": last_entered_wait,
                    "hol": head_wait,
                }
            waiting[caller] = times[caller]
            seq += 1
            heapq.heappush(events, (now + patience[caller], seq, "abandon", caller))
        elif kind == "announce":
            if caller not in waiting:
                continue
            waited = now - times[caller]
            position = list(waiting).index(caller) + 1
            est = estimate_wait(
                position, sc.agents, stats, elapsed_seconds=waited,
                default_handle_seconds=DEFAULT_HANDLE,
            )
            said = est.announce(told_ours[caller])
            told_ours[caller] = said
            promises.append((caller, waited, said.band))
            promise("ours", caller, waited, said.band)
            # Asterisk: H - waited, phrased with our bands (kinder to it than whole minutes).
            promise("asterisk", caller, waited, band_for(max(0.0, asterisk_h - waited)))
            seq += 1
            heapq.heappush(events, (now + announce_every, seq, "announce", caller))
        elif kind == "abandon":
            if caller in waiting:
                del waiting[caller]
                abandoned += 1
                stats.record_abandoned(now - times[caller])
        else:  # "done": the agent takes the next caller in line
            stats.record_handled(handles[caller])
            free += 1
            if waiting:
                nxt = next(iter(waiting))
                del waiting[nxt]
                start_service(nxt, now)
    return {
        "calls": n,
        "answered": answered,
        "abandoned": abandoned,
        "scored": scored,
        "outcome": outcome,
        "promises": promises,
        "overdue": overdue,
    }


def score(result: dict) -> tuple[dict[str, dict[str, float]], float, int]:
    """RASE and MAE per predictor, and the band calibration of ours."""
    outcome = result["outcome"]
    rows = [(p, outcome[c]) for c, p in result["scored"].items() if c in outcome]
    actual = np.array([w for _, w in rows])
    mean_wait = float(actual.mean())
    table: dict[str, dict[str, float]] = {}
    for name in PREDICTORS:
        pred = np.array([p[name] for p, _ in rows])
        err = pred - actual
        table[name] = {
            "rase": float(np.mean(err**2) / mean_wait**2),
            "mae": float(np.mean(np.abs(err))),
            "bias": float(np.mean(err)),
        }
    kept = sum(1 for p, w in rows if p["band"].is_kept_by(w))
    return table, kept / len(rows), len(rows)


def main() -> None:
    """Run the simulation, print the table and the JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=200.0)
    parser.add_argument("--seed", type=int, default=20240603)
    default = Scenario()
    parser.add_argument("--agents", type=int, default=default.agents, help="team size")
    parser.add_argument("--sigma", type=float, default=default.handle_sigma,
                        help="lognormal shape of handle times")
    parser.add_argument("--patience", type=float, default=default.mean_patience,
                        help="mean patience in seconds")
    parser.add_argument("--load", type=float, default=default.load, help="average rho")
    args = parser.parse_args()
    sc = Scenario(agents=args.agents, handle_sigma=args.sigma, mean_patience=args.patience,
                  load=args.load)

    started = time.perf_counter()
    result = simulate(sc, args.hours, args.seed)
    table, within_band, n_scored = score(result)
    elapsed = time.perf_counter() - started
    mean_wait = float(np.mean([result["outcome"][c] for c in result["scored"]
                               if c in result["outcome"]]))

    print(f"ewt: {args.hours:.0f} simulated hours, {sc.agents} agents, handle lognormal mean "
          f"{sc.mean_handle:.0f}s (cv^2 {math.exp(sc.handle_sigma**2) - 1:.2f}), patience exp "
          f"mean {sc.mean_patience:.0f}s, arrivals {sc.base_rate * 3600:.0f}/h (rho "
          f"{sc.load:.2f}) +-{sc.swing:.0%} over {sc.period_hours:.0f}h, seed {args.seed}")
    print(f"calls {result['calls']}, answered {result['answered']}, abandoned "
          f"{result['abandoned']}; scored (waited, then answered) {n_scored}, "
          f"mean wait {mean_wait:.1f}s; run {elapsed:.1f}s")
    print(f"{'predictor':<12} {'RASE':>7} {'MAE s':>8} {'bias s':>8} {'RASE/oracle':>12}")
    oracle = table["oracle"]["rase"]
    for name in PREDICTORS:
        row = table[name]
        print(f"{name:<12} {row['rase']:7.3f} {row['mae']:8.1f} {row['bias']:8.1f} "
              f"{row['rase'] / oracle:12.2f}")
    print(f"within_band (answered no later than the announced band's edge): {within_band:.1%}")
    outcome = result["outcome"]
    kept = [band.is_kept_by(outcome[c] - at) for c, at, band in result["promises"] if c in outcome]
    repeat_kept = sum(kept) / len(kept)
    od = result["overdue"]
    ours_repeated = od["ours_repeated"] / max(1, od["ours"])
    ast_repeated = od["asterisk_repeated"] / max(1, od["asterisk"])
    print(f"every announcement (on entry and every 30 s), promise kept: {repeat_kept:.1%} "
          f"of {len(kept)}")
    print(f"announcements to callers past a lapsed promise that repeated it or said shorter: "
          f"ours {od['ours_repeated']}/{od['ours']} ({ours_repeated:.1%}), Asterisk countdown "
          f"{od['asterisk_repeated']}/{od['asterisk']} ({ast_repeated:.1%})")

    figures = {
        "rase": round(table["ours"]["rase"], 4),
        "rase_oracle": round(oracle, 4),
        "rase_ql_true_mu": round(table["ql_true_mu"]["rase"], 4),
        "rase_asterisk": round(table["asterisk"]["rase"], 4),
        "rase_twilio_avg": round(table["twilio_avg"]["rase"], 4),
        "rase_les": round(table["les"]["rase"], 4),
        "rase_hol": round(table["hol"]["rase"], 4),
        "mae_seconds": round(table["ours"]["mae"], 2),
        "mae_oracle_seconds": round(table["oracle"]["mae"], 2),
        "mae_asterisk_seconds": round(table["asterisk"]["mae"], 2),
        "within_band": round(within_band, 4),
        "ratio_to_oracle": round(table["ours"]["rase"] / oracle, 3),
        "reduction_vs_asterisk": round(1.0 - table["ours"]["rase"] / table["asterisk"]["rase"], 3),
        "announcements_kept": round(repeat_kept, 4),
        "overdue_repeated_or_shorter": round(ours_repeated, 4),
        "overdue_repeated_or_shorter_asterisk": round(ast_repeated, 4),
        "scored_callers": n_scored,
        "mean_wait_seconds": round(mean_wait, 1),
        "run_seconds": round(elapsed, 2),
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
