"""Processes the test run leaves behind: any `valkey-server` started during the run that is
still alive at its end (a child of ours, or an orphan reparented to init) is a leak."""

from __future__ import annotations

import os
import signal
from pathlib import Path

PROGRAM = b"valkey-server"


def _stat(pid: int) -> tuple[int, int] | None:
    """(parent pid, start time in clock ticks since boot) of a live `pid` (not a zombie that
    has exited and waits to be reaped)."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2:].split()
    if fields[0] in ("Z", "X"):
        return None
    return int(fields[1]), int(fields[19])


def _is_ours(pid: int, me: int) -> bool:
    seen = 0
    while pid > 1 and seen < 64:
        if pid == me:
            return True
        stat = _stat(pid)
        if stat is None:
            return False
        pid, seen = stat[0], seen + 1
    return False


def now_ticks() -> int:
    """The current time in the clock ticks /proc uses for start times."""
    uptime = float(Path("/proc/uptime").read_text().split()[0])
    return int(uptime * os.sysconf("SC_CLK_TCK"))


def leftover_valkeys(since_ticks: int) -> list[int]:
    """Valkey servers started after `since_ticks` that are ours or orphans, still running."""
    me = os.getpid()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if PROGRAM not in cmdline.split(b"\0")[0]:
            continue
        stat = _stat(int(entry.name))
        if stat is None or stat[1] < since_ticks:
            continue
        parent = stat[0]
        if parent == 1 or _is_ours(parent, me):
            found.append(int(entry.name))
    return found


def kill(pids: list[int]) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
