"""Operations endpoints: health of Redis and the database, and Prometheus metrics.

Anyone may ask whether the service is up; only an admin learns why it is not (the checks'
errors name hosts, ports and drivers). Metrics can be kept behind a token of their own.
"""

from __future__ import annotations

import time

from flask import Blueprint, Response, current_app, jsonify

from ivr.infra import journey, logs, metrics
from ivr.infra.config import RQ_QUEUES
from ivr.infra.security import admin_refusal, bearer_token, is_token
from ivr.infra.services import Services, services_of

bp = Blueprint("ops", __name__)

@bp.get("/healthz")
def healthz():
    """200 {"status": "ok"} when Redis and the database answer, 503 {"status": "down"} when
    not; with the admin token, also each check (and why it failed) and the flows' problems."""
    services = services_of(current_app)
    checks = _checks(services)
    healthy = checks["redis"]["ok"] and checks["database"]["ok"]
    body: dict = {"status": "ok" if healthy else "down"}
    if admin_refusal(current_app.config, bearer_token()) is None:
        body["checks"] = checks
    return jsonify(body), (200 if healthy else 503)


@bp.get("/metrics")
def prometheus():
    """Prometheus exposition; with METRICS_TOKEN set, only for `Authorization: Bearer <it>`."""
    expected = current_app.config.get("METRICS_TOKEN")
    if expected and not is_token(bearer_token(), expected):
        response = jsonify(error="send 'Authorization: Bearer <METRICS_TOKEN>'")
        response.status_code = 401
        response.headers["WWW-Authenticate"] = 'Bearer realm="ivr-metrics"'
        return response
    r = services_of(current_app).redis
    jobs = metrics.JobQueueCollector(r, RQ_QUEUES)
    lists = metrics.ListLengthCollector(r, [
        ("ivr_journey_queued", "Journey rows waiting to be written to the database",
         journey.QUEUE_KEY),
        ("ivr_journey_dead_letters", "Journey rows the database refused (kept, with the error)",
         journey.DEAD_KEY),
    ])
    # Packages above this one (the console) add collectors of their own at start-up.
    extra = current_app.extensions.get("ivr.metrics_collectors", [])
    body, content_type = metrics.exposition(jobs, lists, *extra)
    return Response(body, content_type=content_type)


def _checks(services: Services) -> dict[str, dict]:
    checks: dict[str, dict] = {}
    secrets = logs.secrets_of(current_app.config)
    for name, probe in (("redis", services.redis.ping), ("database", services.db.ping)):
        started = time.perf_counter()
        try:
            probe()
            checks[name] = {"ok": True}
        except Exception as exc:  # any failure is a failed check, reported by type
            error = logs.mask_secrets(f"{type(exc).__name__}: {exc}", secrets)
            checks[name] = {"ok": False, "error": error[:300]}
        checks[name]["ms"] = round((time.perf_counter() - started) * 1000, 2)
    flows = services.flows
    checks["flows"] = {"ok": not flows.last_problems, "version": flows.current().version,
                       "problems": [str(p) for p in flows.last_problems][:20]}
    return checks
