"""Erlang C staffing: agents needed for a service-level target, with service level and ASA.

The model is M/M/N without abandonment (Erlang C), the industry's standard sizing tool. The
probability of waiting is computed from the Erlang B recursion
``B(0) = 1, B(k) = A*B(k-1) / (k + A*B(k-1))`` and ``C = N*B / (N - A*(1 - B))``, which never forms
``A**N`` or ``N!`` and so stays finite for loads of thousands of Erlangs.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from ivr.errors import IvrError

__all__ = [
    "StaffingError",
    "StaffingResult",
    "erlang_b",
    "erlang_c",
    "evaluate_staffing",
    "required_agents",
]


class StaffingError(IvrError):
    """Staffing inputs that describe no answerable question (e.g. zero handle time)."""


@dataclass(frozen=True, slots=True)
class StaffingResult:
    """Erlang C figures for one number of agents."""

    agents: int
    traffic_erlangs: float
    occupancy: float
    probability_wait: float
    service_level: float
    asa_seconds: float
    answer_within_seconds: float
    target: float | None = None

    def to_dict(self) -> dict[str, float | int | None]:
        """Plain dict for JSON output."""
        return asdict(self)


def erlang_b(agents: int, traffic: float) -> float:
    """Blocking probability of Erlang B, by the stable recursion over agent count."""
    if agents < 0 or traffic < 0:
        raise StaffingError("agents and traffic must not be negative")
    blocking = 1.0
    for k in range(1, agents + 1):
        blocking = traffic * blocking / (k + traffic * blocking)
    return blocking


def erlang_c(agents: int, traffic: float) -> float:
    """Probability that a call waits (Erlang C); 1.0 when the agents cannot keep up."""
    if agents <= traffic:
        return 1.0
    blocking = erlang_b(agents, traffic)
    return agents * blocking / (agents - traffic * (1.0 - blocking))


def _traffic(calls_per_hour: float, handle_seconds: float) -> float:
    if calls_per_hour < 0:
        raise StaffingError("calls per hour must not be negative")
    if handle_seconds <= 0:
        raise StaffingError("handle time must be more than 0 seconds")
    return calls_per_hour * handle_seconds / 3600.0


def _result(
    agents: int,
    traffic: float,
    handle_seconds: float,
    answer_within: float,
    target: float | None,
    blocking: float,
) -> StaffingResult:
    if agents <= traffic:
        # Overloaded: the queue grows without bound, nobody is promised anything.
        return StaffingResult(
            agents, traffic, 1.0, 1.0, 0.0, math.inf, answer_within, target
        )
    wait = agents * blocking / (agents - traffic * (1.0 - blocking))
    service_level = 1.0 - wait * math.exp(-(agents - traffic) * answer_within / handle_seconds)
    asa = wait * handle_seconds / (agents - traffic)
    return StaffingResult(
        agents=agents,
        traffic_erlangs=traffic,
        occupancy=traffic / agents,
        probability_wait=wait,
        service_level=service_level,
        asa_seconds=asa,
        answer_within_seconds=answer_within,
        target=target,
    )


def evaluate_staffing(
    agents: int, calls_per_hour: float, handle_seconds: float, answer_within: float
) -> StaffingResult:
    """Erlang C service level and average speed of answer for a given number of agents."""
    if agents < 1:
        raise StaffingError("at least one agent is needed")
    if answer_within < 0:
        raise StaffingError("answer-within seconds must not be negative")
    traffic = _traffic(calls_per_hour, handle_seconds)
    return _result(
        agents, traffic, handle_seconds, answer_within, None, erlang_b(agents, traffic)
    )


def required_agents(
    calls_per_hour: float, handle_seconds: float, answer_within: float, target: float
) -> StaffingResult:
    """Fewest agents whose Erlang C service level reaches `target` (a fraction, e.g. 0.8)."""
    if not 0.0 < target < 1.0:
        raise StaffingError("target service level must be between 0 and 1, e.g. 0.8")
    if answer_within < 0:
        raise StaffingError("answer-within seconds must not be negative")
    traffic = _traffic(calls_per_hour, handle_seconds)
    # Walk the Erlang B recursion upwards once; each step reuses the previous blocking value.
    blocking = 1.0
    agents = 0
    while True:
        agents += 1
        blocking = traffic * blocking / (agents + traffic * blocking)
        if agents <= traffic:
            continue
        result = _result(agents, traffic, handle_seconds, answer_within, target, blocking)
        if result.service_level >= target:
            return result
