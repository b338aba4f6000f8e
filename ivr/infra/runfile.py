"""How CLI commands find a running `ivr serve`: the run file it writes where it was started.

`ivr serve` starts its own Valkey on a free port and may run on a shifted clock. It writes both
(with its database and public URL) to `var/ivr-serve.json` in its working directory, readable
only by its user, and removes the file when it stops. `ivr agents`, `ivr report` and `ivr
simulate`, run from the same directory with nothing exported, read it; settings given in the
environment always win.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

# Run-file key -> the setting it stands in for.
SETTINGS = {"redis_url": "REDIS_URL", "database_url": "DATABASE_URL",
            "clock_offset": "IVR_CLOCK_OFFSET", "public_base_url": "PUBLIC_BASE_URL",
            "twilio_api_base": "TWILIO_API_BASE", "twilio_auth_token": "TWILIO_AUTH_TOKEN"}


def path() -> Path:
    """Where the run file of a service started in this directory lives."""
    return Path(os.environ.get("IVR_RUN_FILE") or Path.cwd() / "var" / "ivr-serve.json")


def write(info: dict[str, Any]) -> Path:
    """Write the running service's details (atomically; readable by this user only: it holds
    the URLs of its Redis and database and the emulated account's token)."""
    target = path()
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".ivr-serve-")  # new, 0600
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        json.dump({**info, "pid": os.getpid()}, out, indent=2)
    os.replace(tmp, target)
    return target


def remove() -> None:
    """Forget the run file of this process's service."""
    target = path()
    info = read()
    if info is not None and info.get("pid") == os.getpid():
        target.unlink(missing_ok=True)


def read() -> dict[str, Any] | None:
    """The details of a service started here that is still running, else None.

    Only a file of this user's, that nobody else may read or write, is believed.
    """
    target = path()
    try:
        st = target.stat()
        if st.st_uid != os.getuid() or st.st_mode & 0o077:
            return None
        info = json.loads(target.read_text(encoding="utf-8"))
        os.kill(int(info["pid"]), 0)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return info


def running_settings() -> dict[str, Any]:
    """Settings of the running service for keys the environment does not set."""
    info = read() or {}
    return {setting: info[key] for key, setting in SETTINGS.items()
            if info.get(key) not in (None, "") and not os.environ.get(setting)}
