"""A callback worker process: an RQ worker (with the scheduler) plus the dispatcher/sweeper.

`python -m ivr.worker` reads the same environment as the app (DATABASE_URL, REDIS_URL,
TWILIO_*, PUBLIC_BASE_URL, IVR_FLOWS, CALLBACK_*). Jobs run in this process (SimpleWorker):
one set of pooled connections, no fork per job, so a dial starts within milliseconds.
`start_dispatcher(services)` runs only the dispatcher/sweeper thread, for `ivr serve` or a
worker started elsewhere.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
import time

import redis
from rq import SimpleWorker

from callback import deps as runtime
from callback.deps import RQ_QUEUE, Deps
from callback.dispatch import Dispatcher
from ivr.infra.config import load_config
from ivr.infra.redis_conn import connect
from ivr.infra.services import Services, build_services

log = logging.getLogger(__name__)


def worker_deps(services: Services) -> Deps:
    """Deps for a worker: the shared services, with a Redis client patient enough for the
    blocking calls of RQ and the dispatcher."""
    patient = connect(services.config.get("REDIS_URL"), timeout=10)
    return Deps(dataclasses.replace(services, redis=patient))


def start_dispatcher(services: Services) -> Dispatcher:
    """Start the dispatcher and sweeper in a daemon thread of this process; bind jobs' Deps."""
    deps = worker_deps(services)
    runtime.bind(deps)
    return Dispatcher(deps).start()


def main(argv: list[str] | None = None) -> int:
    """Run the worker until killed (or, with --burst, until the queue is empty)."""
    parser = argparse.ArgumentParser(prog="python -m ivr.worker")
    parser.add_argument("--burst", action="store_true")
    parser.add_argument("--no-dispatcher", action="store_true")
    parser.add_argument("--name", default=None)
    args = parser.parse_args(argv)
    deps = worker_deps(build_services(load_config()))
    runtime.bind(deps)
    dispatcher = None if args.no_dispatcher else Dispatcher(deps).start()
    try:
        while True:
            try:
                worker = SimpleWorker([RQ_QUEUE], connection=deps.redis, name=args.name)
                worker.work(burst=args.burst, with_scheduler=True, logging_level="WARNING")
                return 0
            except redis.ConnectionError as exc:
                # Ride out a Redis outage: requests wait in SQL, the sweeper re-sends them.
                log.warning("Redis unavailable; worker restarts", extra={"error": str(exc)})
                time.sleep(1.0)
    finally:
        if dispatcher:
            dispatcher.stop()


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    sys.exit(main())
