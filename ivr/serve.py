"""`ivr serve` and `ivr worker`: the service on a laptop, and the production worker."""

from __future__ import annotations

import logging
import os
import threading

import click
from rq import SimpleWorker, Worker

from ivr.config import load_config

log = logging.getLogger(__name__)

# Every RQ queue the project uses; workers listen on all of them, in this order.
QUEUES = ("callbacks", "default")


class ThreadWorker(SimpleWorker):
    """An RQ worker for a thread of `ivr serve`: signal handlers belong to the main thread."""

    def _install_signal_handlers(self) -> None:
        pass


def run(*, host: str, port: int, with_worker: bool) -> None:
    """Start the web app with embedded defaults, an in-process worker, and print the Twilio URLs."""
    from ivr import create_app
    from ivr.calls import start_journey_writer
    from ivr.redis_conn import embedded_redis_url

    if not os.environ.get("REDIS_URL"):
        # One embedded Valkey shared by the app, the worker and any `ivr simulate --url`.
        os.environ["REDIS_URL"] = embedded_redis_url()
    app = create_app()
    start_journey_writer(app)
    cfg = app.config
    base = (cfg.get("PUBLIC_BASE_URL") or f"http://{host}:{port}").rstrip("/")
    click.echo(_banner(cfg, base))
    if with_worker:
        thread = threading.Thread(target=_work_in_thread, args=(os.environ["REDIS_URL"],),
                                  name="rq-worker", daemon=True)
        thread.start()
    app.run(host=host, port=port, threaded=True, use_reloader=False)


def run_worker(*, burst: bool = False) -> None:
    """Run a forking RQ worker with the scheduler, as the Procfile's worker line does."""
    from ivr.redis_conn import connect

    cfg = load_config()
    if not cfg.get("REDIS_URL"):
        raise click.UsageError("REDIS_URL is not set: `ivr worker` needs the shared Redis.")
    conn = connect(cfg["REDIS_URL"], timeout=30)
    Worker(list(QUEUES), connection=conn).work(burst=burst, with_scheduler=True)


def _work_in_thread(redis_url: str) -> None:
    from ivr.redis_conn import connect

    conn = connect(redis_url, timeout=30)
    ThreadWorker(list(QUEUES), connection=conn).work(with_scheduler=True)


def _banner(cfg, base: str) -> str:
    lines = [
        "IVR service",
        f"  flows:      {cfg['IVR_FLOWS']}",
        f"  database:   {cfg['DATABASE_URL']}",
        f"  redis:      {os.environ.get('REDIS_URL')}",
        "  telephony:  " + ("simulated (no TWILIO_AUTH_TOKEN set)"
                            if cfg["SIMULATED_TELEPHONY"] else "Twilio"),
        "",
        "Configure your Twilio number with:",
        f"  A call comes in (POST):   {base}/voice/incoming",
        f"  Primary handler fails:    {base}/voice/fallback",
        f"  Call status changes:      {base}/voice/status",
        "",
        f"Try it: ivr simulate --url {base}",
        f"Health: {base}/healthz   Metrics: {base}/metrics   Callback page: {base}/callback",
    ]
    return "\n".join(lines)
