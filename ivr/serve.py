"""`ivr serve` and `ivr worker`: the service on a laptop, and the production worker."""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import threading

import click
from rq import SimpleWorker

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
    from ivr.redis_conn import embedded_redis_url

    if not os.environ.get("REDIS_URL"):
        # One embedded Valkey shared by the app, the worker and any `ivr simulate --url`.
        os.environ["REDIS_URL"] = embedded_redis_url()
    app = create_app()
    cfg = app.config
    base = (cfg.get("PUBLIC_BASE_URL") or f"http://{host}:{port}").rstrip("/")
    click.echo(_banner(cfg, base))
    if with_worker:
        from callback.worker import start_dispatcher, worker_deps

        start_dispatcher(app)
        thread = threading.Thread(target=_work_in_thread, args=(worker_deps(app).redis,),
                                  name="rq-worker", daemon=True)
        thread.start()
    # RQ's helpers may leave SIGINT/SIGTERM ignored; Ctrl-C and `kill` must stop the server.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        app.run(host=host, port=port, threaded=True, use_reloader=False)
    except KeyboardInterrupt:
        pass
    finally:
        # RQ runs its scheduler in a child process: stop it too, then end the daemon threads
        # (worker, dispatcher, journey writer) with the process.
        for child in multiprocessing.active_children():
            child.terminate()
            child.join(5)
        click.echo("IVR service stopped.")
        os._exit(0)


def run_worker(*, burst: bool = False, dispatch_only: bool = False) -> None:
    """Production worker: RQ jobs with the scheduler, plus the callback dispatcher/sweeper."""
    if dispatch_only:
        from callback.worker import start_dispatcher
        from ivr import create_app

        start_dispatcher(create_app())
        threading.Event().wait()
    from callback.worker import main as worker_main

    raise SystemExit(worker_main(["--burst"] if burst else []))


def _raise_interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def _work_in_thread(conn) -> None:
    ThreadWorker(list(QUEUES), connection=conn).work(with_scheduler=True,
                                                     logging_level="WARNING")


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
