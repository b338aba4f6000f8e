"""Operations endpoints: health of Redis and the database, and Prometheus metrics."""

from __future__ import annotations

import time

from flask import Blueprint, Response, current_app, jsonify

from ivr.infra import metrics
from ivr.infra.config import RQ_QUEUES
from ivr.infra.services import services_of

bp = Blueprint("ops", __name__)


@bp.get("/healthz")
def healthz():
    """200 when Redis and the database answer, 503 (with which one failed) when not."""
    checks = {}
    services = services_of(current_app)
    for name, probe in (("redis", services.redis.ping), ("database", services.db.ping)):
        started = time.perf_counter()
        try:
            probe()
            checks[name] = {"ok": True}
        except Exception as exc:  # any failure is a failed check, reported by type
            checks[name] = {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:300]}
        checks[name]["ms"] = round((time.perf_counter() - started) * 1000, 2)
    flows = services.flows
    checks["flows"] = {"ok": not flows.last_problems, "version": flows.current().version,
                       "problems": [str(p) for p in flows.last_problems][:20]}
    healthy = checks["redis"]["ok"] and checks["database"]["ok"]
    return jsonify(status="ok" if healthy else "degraded", checks=checks), (200 if healthy else 503)


@bp.get("/metrics")
def prometheus():
    jobs = metrics.JobQueueCollector(services_of(current_app).redis, RQ_QUEUES)
    body, content_type = metrics.exposition(jobs)
    return Response(body, content_type=content_type)
