"""Prometheus metrics: calls, node visits, escapes, errors and webhook latency."""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)

CALLS = Counter("ivr_calls_total", "Calls answered by the IVR", ["flow"])
NODE_VISITS = Counter("ivr_node_visits_total", "Nodes entered", ["flow", "node"])
ESCAPES = Counter("ivr_escapes_total", "Operator escapes taken", ["flow", "node"])
OUTCOMES = Counter("ivr_call_outcomes_total", "How calls left the flow", ["outcome"])
ERRORS = Counter("ivr_webhook_errors_total", "Webhooks answered with the safe fallback", ["kind"])
WEBHOOK_SECONDS = Histogram(
    "ivr_webhook_seconds",
    "Time to answer a Twilio webhook",
    ["endpoint"],
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)


def exposition() -> tuple[bytes, str]:
    """The metrics page; aggregates all gunicorn workers when PROMETHEUS_MULTIPROC_DIR is set."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    from prometheus_client import REGISTRY

    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
