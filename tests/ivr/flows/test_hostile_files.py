"""Flows files that would take the service down: refused with a file:line message, quickly,
and a running service keeps serving its last good version, answering while it looks."""

from __future__ import annotations

import os
import time
from pathlib import Path

from ivr.core.flows.loader import check_text
from ivr.core.flows.source import MAX_BYTES, MAX_DEPTH
from ivr.infra.services import services_of

CORPUS = Path(__file__).parent / "corpus"


def test_deep_nesting_is_refused_with_its_line():
    text = "version: 1\nflows:\n  main: " + "[" * (MAX_DEPTH + 10) + "]" * (MAX_DEPTH + 10) + "\n"
    loaded, problems = check_text(text, "deep.yaml")
    assert loaded is None
    assert [str(p) for p in problems if "nested more than" in p.message] == [
        f"deep.yaml:3: the file expands to nested more than {MAX_DEPTH} deep; refused"]


def test_a_file_past_the_size_limit_is_refused_before_it_is_parsed():
    text = "version: 1\n" + "#" * MAX_BYTES + "\n"
    loaded, problems = check_text(text, "big.yaml")
    assert loaded is None
    assert [p.message for p in problems] == [
        f"the file is {len(text)} characters long; a flows file may be at most {MAX_BYTES}"]


def test_a_billion_laughs_saved_under_a_running_service(app, client, flows_path):
    registry = services_of(app).flows
    good = registry.current().version
    flows_path.write_text((CORPUS / "billion_laughs.yaml").read_text())
    st = flows_path.stat()
    os.utime(flows_path, ns=(st.st_atime_ns, st.st_mtime_ns + 2_000_000_000))

    assert client.get("/healthz").status_code == 200  # answered while the file is looked at
    deadline = time.monotonic() + 20
    while not registry.last_problems:
        assert time.monotonic() < deadline, "the hostile file was never looked at"
        assert client.get("/healthz").status_code == 200
        time.sleep(0.05)
    assert registry.current().version == good
    assert [p.message for p in registry.last_problems] == [
        "the file expands to more than 100000 values (aliases that repeat aliases?); refused"]
