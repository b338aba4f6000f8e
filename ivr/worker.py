"""The callback worker process (`ivr worker`, `python -m ivr.worker`): an RQ worker with the
scheduler, plus the dispatcher/sweeper and the call journeys' writer.

It reads the same environment as the app (DATABASE_URL, REDIS_URL, TWILIO_*, PUBLIC_BASE_URL,
IVR_FLOWS, CALLBACK_*) and builds the shared services, not a Flask app. Jobs run in this process
(SimpleWorker): one set of pooled connections, no fork per job, so a dial starts within
milliseconds. `start_dispatcher(services)` runs only the dispatcher/sweeper thread, for `ivr
serve` or beside a plain `rq worker` (the Procfile).

The journey writer (ivr.infra.journey) moves call journeys from Redis to SQL. It runs wherever the
dispatcher does, so the Procfile's web processes need not: their gevent workers then never wait
on SQL (SQLite's calls block the event loop) and spend their CPU on webhooks and speech alone.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import threading
import time

import click
import redis
from rq import SimpleWorker

from callback import runtime
from callback.deps import Deps
from callback.dispatch import Dispatcher
from callback.settings import RQ_QUEUE
from ivr.errors import ConfigError
from ivr.infra import logs, runfile
from ivr.infra.config import check_secrets, load_config
from ivr.infra.journey import JourneyWriter
from ivr.infra.redis_conn import connect
from ivr.infra.services import Services, build_services
from ivr.voice.repair import end_lost_calls

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
    return dispatcher_for(deps).start()


def start_journey_writer(services: Services) -> JourneyWriter:
    """Start moving call journeys from Redis to SQL in a daemon thread of this process."""
    writer = JourneyWriter(services.db, services.redis)
    writer.start()
    return writer


def dispatcher_for(deps: Deps) -> Dispatcher:
    """The callback dispatcher and sweeper, with the call journeys' repair pass."""
    return Dispatcher(deps, repairs=[functools.partial(end_lost_calls, deps.services)])


@click.command("worker")
@click.option("--burst", is_flag=True, help="Exit when the queues are empty.")
@click.option("--dispatch-only", is_flag=True,
              help="Only place due callbacks when agents are free, and write call journeys to "
                   "SQL (beside `rq worker`).")
@click.option("--no-dispatcher", is_flag=True,
              help="Only run RQ jobs (no dispatcher, no journey writer).")
@click.option("--name", default=None, help="The RQ worker's name.")
def worker_command(burst: bool, dispatch_only: bool, no_dispatcher: bool,
                   name: str | None) -> None:
    """Run an RQ worker with the scheduler, the callback dispatcher and the journey writer."""
    try:  # beside an `ivr serve` in this directory, its Redis, database and emulator
        config = load_config(runfile.running_settings())
        check_secrets(config)
        logs.configure_process(config)
        services = build_services(config)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    if not no_dispatcher:
        start_journey_writer(services)
    if dispatch_only:
        start_dispatcher(services)
        threading.Event().wait()
    deps = worker_deps(services)
    runtime.bind(deps)
    dispatcher = None if no_dispatcher else dispatcher_for(deps).start()
    try:
        while True:
            try:
                worker = SimpleWorker([RQ_QUEUE], connection=deps.redis, name=name)
                worker.work(burst=burst, with_scheduler=True, logging_level="WARNING")
                return
            except redis.ConnectionError as exc:
                # Ride out a Redis outage: requests wait in SQL, the sweeper re-sends them.
                log.warning("Redis unavailable; worker restarts", extra={"error": str(exc)})
                time.sleep(1.0)
    finally:
        if dispatcher:
            dispatcher.stop()


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    worker_command()
