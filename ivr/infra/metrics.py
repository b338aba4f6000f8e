"""Prometheus metrics: calls, node visits, escapes, errors and webhook latency."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable

from flask import request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily
from rq import Queue
from rq.registry import FailedJobRegistry

log = logging.getLogger(__name__)

CALLS = Counter("ivr_calls_total", "Calls answered by the IVR", ["flow"])
NODE_VISITS = Counter("ivr_node_visits_total", "Nodes entered", ["flow", "node"])
ESCAPES = Counter("ivr_escapes_total", "Operator escapes taken", ["flow", "node"])
OUTCOMES = Counter("ivr_call_outcomes_total", "How calls left the flow", ["outcome"])
ERRORS = Counter("ivr_webhook_errors_total", "Webhooks answered with the safe fallback", ["kind"])
STALE_WEBHOOKS = Counter(
    "ivr_stale_webhooks_total",
    "Webhooks from an older document (late, repeated or raced), answered with the current one",
    ["kind"])
HOLD_VISITS = Counter("ivr_hold_visits_total", "Hold-queue visits that ended, by how",
                      ["queue", "outcome"])
CALLBACK_JOB_FAILURES = Counter("ivr_callback_job_failures_total",
                                "Callback RQ jobs that raised (see the log for why)", ["job"])
WEBHOOK_SECONDS = Histogram(
    "ivr_webhook_seconds",
    "Time to answer a Twilio webhook",
    ["endpoint"],
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)


class JobQueueCollector:
    """Read at scrape time from Redis, so every process reports the same: jobs waiting and
    jobs that failed (kept for a day) on each RQ queue."""

    def __init__(self, redis_client, queues: Iterable[str]) -> None:
        self.redis, self.queues = redis_client, tuple(queues)

    def collect(self):
        waiting = GaugeMetricFamily("ivr_rq_jobs_queued", "RQ jobs waiting", labels=["queue"])
        failed = GaugeMetricFamily("ivr_rq_jobs_failed",
                                   "RQ jobs that failed in the last day", labels=["queue"])
        for name in self.queues:
            queue = Queue(name, connection=self.redis)
            waiting.add_metric([name], queue.count)
            failed.add_metric([name], FailedJobRegistry(queue=queue).count)
        yield waiting
        yield failed


class ListLengthCollector:
    """Gauges read at scrape time from the length of Redis lists: every process agrees."""

    def __init__(self, redis_client, lists: Iterable[tuple[str, str, str]]) -> None:
        self.redis, self.lists = redis_client, tuple(lists)  # (metric, help, key)

    def collect(self):
        pipe = self.redis.pipeline(transaction=False)
        for _name, _help, key in self.lists:
            pipe.llen(key)
        for (name, text, _key), length in zip(self.lists, pipe.execute(), strict=True):
            yield GaugeMetricFamily(name, text, value=length)


def exposition(*extra) -> tuple[bytes, str]:
    """The metrics page; aggregates all gunicorn workers when PROMETHEUS_MULTIPROC_DIR is set.

    `extra` collectors are read for this page only (they read shared state at scrape time).
    """
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        body = generate_latest(registry)
    else:
        body = generate_latest(REGISTRY)
    if extra:
        scraped = CollectorRegistry()
        for collector in extra:
            scraped.register(collector)
        try:
            body += generate_latest(scraped)
        except Exception as exc:  # Redis or the database down: the rest still answers
            log.warning("metrics read from Redis and SQL left out: %s", exc)
    return body, CONTENT_TYPE_LATEST


def time_webhooks(app, webhook_paths: Iterable[str]) -> None:
    """Observe how long every Twilio webhook of `app` takes to answer (ivr_webhook_seconds)."""
    watched = frozenset(webhook_paths)
    timers: dict[str, Histogram] = {}  # endpoint -> its histogram (labels() takes a lock)

    @app.before_request
    def _start() -> None:
        if request.path in watched:
            request.environ["ivr.started"] = time.perf_counter()

    @app.after_request
    def _observe(response):
        started = request.environ.get("ivr.started")
        if started is not None and (endpoint := request.endpoint):
            timer = timers.get(endpoint) or timers.setdefault(
                endpoint, WEBHOOK_SECONDS.labels(endpoint))
            timer.observe(time.perf_counter() - started)
        return response
