"""The service under gunicorn in its own process, as the Procfile (or another setting) runs it.

    web = Gunicorn(workdir, env)              # the Procfile's `web:` command, PORT given
    web = Gunicorn(workdir, env, GTHREAD)     # the serving model before the Procfile's gevent
    with web: requests.get(web.url + "/healthz")

Its output goes to a file (`log_text()`): a pipe nobody reads fills up and hangs the process.
`memory()` reads each process's RSS and PSS (proportional set size: a page shared by n
processes counts 1/n in each) from /proc, so a model shared by every worker is counted once.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]
# The serving model the Procfile had before gevent: 4 gthread workers of 16 threads, each
# loading its own speech model (the baseline the capacity bench compares with).
GTHREAD = ("gunicorn --workers ${WEB_CONCURRENCY:-4} --threads ${WEB_THREADS:-16} "
           "--bind 0.0.0.0:${PORT:-8000} --timeout 20 'ivr:create_app()'")


def procfile_web() -> str:
    """The Procfile's `web:` command, as a platform would run it."""
    for line in (ROOT / "Procfile").read_text().splitlines():
        if line.startswith("web:"):
            return line.split(":", 1)[1].strip()
    raise AssertionError("the Procfile has no web process")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def process_cpu_seconds(pid: int) -> float:
    """User plus system CPU seconds one process has used so far (/proc)."""
    stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(stat[11]) + int(stat[12])) / os.sysconf("SC_CLK_TCK")


class Gunicorn:
    """One gunicorn arbiter and its workers, started from a Procfile-style command line."""

    def __init__(self, workdir: Path, env: dict[str, str], command: str | None = None) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**env, "PORT": str(self.port)}
        self.command = command or procfile_web()
        self.proc: subprocess.Popen | None = None
        self.log = workdir / f"gunicorn-{self.port}.log"

    def start(self, timeout: float = 90) -> Gunicorn:
        # `sh -c` expands ${VAR:-default} as a platform's Procfile runner does; `exec` leaves
        # gunicorn itself as the process we signal. The venv's bin comes first on PATH.
        env = {**self.env, "PATH": f"{Path(sys.executable).parent}:{self.env.get('PATH', '')}"}
        with open(self.log, "w") as out:
            self.proc = subprocess.Popen(["sh", "-c", "exec " + self.command], cwd=self.workdir,
                                         env=env, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"gunicorn exited: {self.log_text()[-3000:]}")
            try:
                if requests.get(self.url + "/healthz", timeout=2).status_code == 200 and \
                        len(self.workers()) >= self._expected_workers():
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.2)
        self.stop()
        raise AssertionError(f"gunicorn did not come up: {self.log_text()[-3000:]}")

    def _expected_workers(self) -> int:
        return int(self.env.get("WEB_CONCURRENCY") or 1)

    def workers(self) -> list[int]:
        """The worker processes' pids."""
        if self.proc is None:
            return []
        found = subprocess.run(["pgrep", "-P", str(self.proc.pid)], capture_output=True,
                               text=True)
        return [int(p) for p in found.stdout.split()]

    def memory(self) -> dict[str, dict[str, float]]:
        """RSS and PSS in MB of the arbiter and each worker."""
        out = {}
        assert self.proc is not None
        for role, pid in [("arbiter", self.proc.pid)] + [
                (f"worker{i}", p) for i, p in enumerate(self.workers())]:
            fields = {}
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                name, _, rest = line.partition(":")
                if name in ("Rss", "Pss"):
                    fields[name.lower() + "_mb"] = int(rest.split()[0]) / 1024
            out[role] = fields
        return out

    def cpu_seconds(self) -> dict[str, float]:
        """User plus system CPU seconds so far, of the arbiter and each worker."""
        assert self.proc is not None
        return {role: process_cpu_seconds(pid) for role, pid in [("arbiter", self.proc.pid)] + [
            (f"worker{i}", p) for i, p in enumerate(self.workers())]}

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def __enter__(self) -> Gunicorn:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
