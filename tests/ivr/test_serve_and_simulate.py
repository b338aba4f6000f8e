"""`ivr serve` on embedded defaults, and `ivr simulate` calling it over real HTTP."""

from __future__ import annotations

import json

import requests
from click.testing import CliRunner

from ivr.cli import main
from tests.conftest import SHOP_FLOWS
from tests.support.service import Service


def turns_of(output: str) -> list[dict]:
    """The simulator's JSON turns (log lines are JSON too, but have no 'action')."""
    rows = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    return [row for row in rows if "action" in row]


def test_simulate_scripted_in_process(flows_path, tmp_path, monkeypatch):
    """The terminal caller walks the sample flow and ends up with a person or a callback."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("IVR_FLOWS", str(flows_path))
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'sim.sqlite3'}")
    result = CliRunner().invoke(main, ["simulate", "--script", "wait,0", "--json"])
    assert result.exit_code == 0, result.output
    turns = turns_of(result.stdout)
    assert turns[0]["action"] == "dial"
    assert "press 0 or say agent" in turns[0]["said"][0]
    # Pressing 0 reaches the person queue, or (nobody staffed here) a callback offer.
    last = turns[-1]
    assert last["waiting"] == "queue" or "call you back" in " ".join(last["said"])


def test_serve_runs_on_embedded_defaults_and_answers_a_simulated_call(tmp_path, monkeypatch):
    svc = Service(tmp_path)
    svc.env["IVR_FLOWS"] = str(SHOP_FLOWS)
    svc.start()
    try:
        health = requests.get(svc.url + "/healthz", timeout=10).json()
        assert health["status"] == "ok"
        assert (tmp_path / "ivr.sqlite3").exists()  # the default SQLite file
        # Where `ivr serve` runs, its run file gives the emulated account's credentials. The
        # simulator asks the server which number to call: no local flows file is read.
        monkeypatch.chdir(tmp_path)
        result = CliRunner().invoke(main, ["simulate", "--url", svc.url, "--script",
                                           "wait,4,wait,2", "--json"],
                                    env={"IVR_FLOWS": "/nonexistent.yaml"})
        assert result.exit_code == 0, result.output
        said = " ".join(" ".join(t["said"]) for t in turns_of(result.stdout))
        assert "Thanks for calling Juniper and Pine" in said
    finally:
        out = svc.stop()
    assert f"{svc.url}/voice/incoming" in out
    assert "simulated" in out


def test_simulate_refuses_a_server_that_uses_real_twilio(app, tmp_path, monkeypatch):
    """A server with Twilio credentials has no emulator: say so, do not pretend to call."""
    import threading

    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.chdir(tmp_path)
    try:
        result = CliRunner().invoke(main, ["simulate", "--url",
                                           f"http://127.0.0.1:{server.server_port}",
                                           "--script", "0"])
    finally:
        server.shutdown()
    assert result.exit_code == 1
    assert "this server does not emulate Twilio" in result.output
