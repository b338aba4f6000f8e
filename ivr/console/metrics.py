"""The wallboard's live figures as Prometheus gauges, per queue (read at scrape time).

Every process reads the same shared snapshot, so a scrape of any web process agrees with the
wallboard. Names (the Grafana dashboard in `grafana-dashboard.json` uses them):
`ivr_queue_waiting`, `ivr_queue_longest_wait_seconds`, `ivr_queue_agents{state}`,
`ivr_queue_service_level_today`, `ivr_queue_answered_today`, `ivr_queue_abandoned_today`,
`ivr_queue_callbacks{state}`, `ivr_queue_estimate_accuracy_today`, `ivr_escapes_today`.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client.core import GaugeMetricFamily

from ivr.console.figures import AGENT_STATES


class WallboardCollector:
    """A prometheus_client collector over `read()`, the wallboard's snapshot."""

    def __init__(self, read: Callable[[], dict]) -> None:
        self.read = read

    def describe(self):
        return []  # registering must not read the snapshot: only a scrape does

    def collect(self):
        snap = self.read()
        now = snap["now"]

        def gauge(name: str, text: str, labels: list[str] | None = None) -> GaugeMetricFamily:
            return GaugeMetricFamily(name, text, labels=["queue", *(labels or [])])

        waiting = gauge("ivr_queue_waiting", "Callers holding now")
        longest = gauge("ivr_queue_longest_wait_seconds", "The longest current wait")
        agents = gauge("ivr_queue_agents", "Agents serving the queue, by state", ["state"])
        level = gauge("ivr_queue_service_level_today",
                      "Share of today's visits answered within the queue's target")
        answered = gauge("ivr_queue_answered_today", "Visits answered today")
        abandoned = gauge("ivr_queue_abandoned_today", "Visits abandoned today")
        callbacks = gauge("ivr_queue_callbacks", "Callback requests due or scheduled", ["state"])
        accuracy = gauge("ivr_queue_estimate_accuracy_today",
                         "Share of today's scored estimates the wait kept within their band")
        for q in snap["queues"]:
            name = q["name"]
            waiting.add_metric([name], q["waiting"])
            since = q["longest_since"]
            longest.add_metric([name], max(0.0, now - since) if since is not None else 0.0)
            for state in AGENT_STATES:
                agents.add_metric([name, state], q["agents"][state])
            if q["service_level"] is not None:
                level.add_metric([name], q["service_level"])
            answered.add_metric([name], q["answered"])
            abandoned.add_metric([name], q["abandoned"])
            callbacks.add_metric([name, "due"], q["callbacks_due"])
            callbacks.add_metric([name, "scheduled"], q["callbacks_scheduled"])
            if q["estimate_accuracy"] is not None:
                accuracy.add_metric([name], q["estimate_accuracy"])
        yield from (waiting, longest, agents, level, answered, abandoned, callbacks, accuracy)
        yield GaugeMetricFamily("ivr_escapes_today", "Callers who pressed 0 (or asked for a "
                                "person) today", value=snap["escapes_today"])
