"""The run file `ivr serve` leaves for the CLI: found while the service runs, and believed only
when it is this user's own and private."""

from __future__ import annotations

import json
import os

from ivr.infra import runfile


def test_a_running_service_is_found_and_a_stale_or_open_file_is_not(tmp_path, monkeypatch):
    monkeypatch.setenv("IVR_RUN_FILE", str(tmp_path / "var" / "ivr-serve.json"))
    monkeypatch.delenv("REDIS_URL", raising=False)
    path = runfile.write({"redis_url": "redis://127.0.0.1:1/0", "clock_offset": 60})
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert runfile.read()["pid"] == os.getpid()
    assert runfile.running_settings() == {"REDIS_URL": "redis://127.0.0.1:1/0",
                                          "IVR_CLOCK_OFFSET": 60}
    monkeypatch.setenv("REDIS_URL", "redis://mine/0")  # the environment wins
    assert "REDIS_URL" not in runfile.running_settings()

    path.chmod(0o644)  # readable by others: not believed
    assert runfile.read() is None
    path.chmod(0o600)
    info = json.loads(path.read_text())
    path.write_text(json.dumps({**info, "pid": 2**22 + 7}))  # no such process
    assert runfile.read() is None
    runfile.remove()  # not ours any more (another pid): left alone
    assert path.exists()
