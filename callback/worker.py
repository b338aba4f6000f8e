"""A callback worker process: an RQ worker (with the scheduler) plus the dispatcher/sweeper.

`python -m callback.worker` reads the same environment as the app (DATABASE_URL, REDIS_URL,
TWILIO_*, PUBLIC_BASE_URL, IVR_FLOWS, CALLBACK_*). Jobs run in this process (SimpleWorker):
one set of pooled connections, no fork per job, so a dial starts within milliseconds.
`start_dispatcher(app)` runs only the dispatcher/sweeper thread, for `ivr serve` or a worker
started elsewhere.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time

import redis
from flask import Flask
from rq import SimpleWorker

from callback import deps as runtime
from callback.deps import RQ_QUEUE, Deps, deps_of
from callback.dispatch import Dispatcher
from ivr.redis_conn import connect

log = logging.getLogger(__name__)


def worker_deps(app: Flask) -> Deps:
    """Deps for a worker: like the app's, with a Redis client patient enough for blocking calls."""
    base = deps_of(app)
    return Deps(db=base.db, redis=connect(app.config.get("REDIS_URL"), timeout=10),
                telephony=base.telephony, config=base.config, flows=base.flows, now=base.now)


def start_dispatcher(app: Flask) -> Dispatcher:
    """Start the dispatcher and sweeper in a daemon thread of this process; bind jobs' Deps."""
    deps = worker_deps(app)
    runtime.bind(deps)
    return Dispatcher(deps).start()


def main(argv: list[str] | None = None) -> int:
    """Run the worker until killed (or, with --burst, until the queue is empty)."""
    parser = argparse.ArgumentParser(prog="python -m callback.worker")
    parser.add_argument("--burst", action="store_true")
    parser.add_argument("--no-dispatcher", action="store_true")
    parser.add_argument("--name", default=None)
    args = parser.parse_args(argv)
    from ivr import create_app

    app = create_app()
    deps = worker_deps(app)
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
