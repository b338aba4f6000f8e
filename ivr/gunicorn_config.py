"""The web process's gunicorn settings (the Procfile's): green threads, one speech model per host.

    gunicorn -c python:ivr.gunicorn_config

- **gevent workers.** A Media Streams websocket (a caller in a speech menu) or a console event
  stream is a greenlet, not one of a fixed number of threads: webhooks keep their latency
  however many callers are speaking. Recognition runs on real threads, one per core
  (speech.live.pool), and a process that falls behind declines new streams, whose menus then
  take keys (speech.live.capacity).
- **One model per host.** The flows' speech models are loaded here, in the arbiter, before it
  forks: every worker shares those pages (copy-on-write) instead of loading a copy of its own.
  A model first named by a flows reload is loaded by each worker that needs it.
- **Start-up objects frozen.** What the arbiter and then each worker made before serving is
  moved out of the garbage collector's full collections (ivr.infra.heap): such a collection
  otherwise held a worker's GIL for about 200 ms every 20-30 s under load.
- **No SQL beside the webhooks.** The call journeys are written from Redis to SQL by the
  Procfile's `dispatcher` (`ivr worker --dispatch-only`), not by a thread in each web worker:
  under gevent that thread is a greenlet, and SQLite's calls (and SQLAlchemy's per-row work,
  0.13 ms of CPU per webhook, a tenth of the web's own) would hold up every webhook and stream
  of the worker.
  Journeys wait in Redis (`ivr_journey_queued`) while no dispatcher runs; none is lost.
- gevent patches the standard library first of all, in the arbiter too, so that nothing
  (requests, urllib3, ssl) is imported unpatched and then inherited by the workers.

Settings from the environment: WEB_CONCURRENCY (workers, default 2), WEB_CONNECTIONS (open
connections per worker, default 1000), PORT (default 8000), SPEECH_THREADS, and the service's
own settings (IVR_FLOWS, VOSK_MODEL_PATH...).
"""

from gevent import monkey

monkey.patch_all()

import logging  # noqa: E402
import os  # noqa: E402

wsgi_app = "ivr:create_app({'JOURNEY_WRITER_THREAD': False})"
worker_class = "gevent"
workers = int(os.environ.get("WEB_CONCURRENCY") or 2)
worker_connections = int(os.environ.get("WEB_CONNECTIONS") or 1000)
bind = [f"0.0.0.0:{os.environ.get('PORT') or 8000}"]
timeout = 20
graceful_timeout = 20

log = logging.getLogger("ivr.gunicorn")


def on_starting(server) -> None:
    """Load the flows' speech models before the workers are forked."""
    from ivr.core.flows.loader import load_flows
    from ivr.infra.config import load_config
    from speech.live.catalog import preload

    config = load_config()
    try:
        flowfile = load_flows(config["IVR_FLOWS"]).file
    except Exception as exc:  # the workers report a broken flows file in their own words
        server.log.warning("speech models not preloaded: %s", exc)
        return
    models = preload(flowfile, config.get("VOSK_MODEL_PATH"))
    names = ", ".join(f"{m.info.name} ({m.info.language})" for m in models) or "none"
    server.log.info("speech models loaded before fork, shared by every worker: %s", names)


def pre_fork(server, worker) -> None:
    """Freeze the arbiter's objects before each fork: the worker's collections leave them (and
    the pages they share with the arbiter) alone."""
    from ivr.infra.heap import freeze_startup_objects

    freeze_startup_objects()


def post_worker_init(worker) -> None:
    """The worker has built its app: freeze what it made, before it serves."""
    from ivr.infra.heap import freeze_startup_objects

    frozen = freeze_startup_objects()
    worker.log.debug("%d start-up objects frozen out of garbage collection", frozen)
