"""The flows reload history: every load of a changed file, shared by every process, once each."""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from ivr.infra.flows_registry import (
    HISTORY_KEY,
    HISTORY_LENGTH,
    HISTORY_PROBLEMS,
    FlowRegistry,
    Reload,
)
from ivr.infra.redis_conn import connect
from tests.conftest import SHOP_FLOWS

GOOD = SHOP_FLOWS.read_text(encoding="utf-8")
EDITED = GOOD.replace("Thanks for calling Juniper and Pine.", "Welcome to Juniper and Pine!")
BROKEN = GOOD.replace("goto: billing_menu}", "goto: biling_menu}")
BROKEN_LINE = next(i for i, line in enumerate(BROKEN.splitlines(), 1) if "biling_menu" in line)


class WallClock:
    """Epoch seconds the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1_764_676_800.0  # 2025-12-02 12:00 UTC

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def history_redis(redis_url: str) -> Iterator[redis.Redis]:
    client = connect(redis_url, timeout=2.0)
    _clear(client)
    yield client
    _clear(client)
    client.close()


def _clear(client: redis.Redis) -> None:
    for key in client.scan_iter(match="ivr:flows:*"):
        client.delete(key)


@pytest.fixture
def flows_file(tmp_path: Path) -> Path:
    path = tmp_path / "flows.yaml"
    path.write_text(GOOD, encoding="utf-8")
    return path


def _registry(path: Path, client: redis.Redis | None, wall: WallClock) -> FlowRegistry:
    return FlowRegistry(path, client, check_interval=0, wall_clock=wall)


def test_start_edit_and_refusal_are_recorded_newest_first(
    flows_file: Path, history_redis: redis.Redis
) -> None:
    wall = WallClock()
    registry = _registry(flows_file, history_redis, wall)
    first = registry.current().version
    assert registry.loaded_at == wall.now

    wall.now += 60
    flows_file.write_text(EDITED, encoding="utf-8")
    edited = registry.current().version
    assert registry.loaded_at == wall.now

    wall.now += 60
    flows_file.write_text(BROKEN, encoding="utf-8")
    assert registry.current().version == edited
    assert registry.loaded_at == wall.now - 60  # a refusal does not change what is live

    refused, taken, started = registry.reloads()
    assert started == Reload(at=wall.now - 120, version=first, ok=True, problem_count=0,
                             problems=(), file=str(flows_file))
    assert (taken.version, taken.ok, taken.at) == (edited, True, wall.now - 60)
    assert refused.ok is False
    assert refused.version not in (first, edited)
    assert refused.problem_count == 1
    assert refused.problems == (
        f"{flows_file}:{BROKEN_LINE}: flows.main.nodes.main_menu.options[1].goto: "
        "unknown node 'biling_menu' (did you mean 'billing_menu'?)",)
    # Stored as plain JSON, one item per load, for any other reader.
    stored = json.loads(history_redis.lindex(HISTORY_KEY, 0))
    assert stored["ok"] is False and stored["problem_count"] == 1
    assert stored["file"] == str(flows_file)


def test_several_processes_record_one_save_once(
    flows_file: Path, history_redis: redis.Redis
) -> None:
    wall = WallClock()
    processes = [_registry(flows_file, history_redis, wall) for _ in range(3)]
    assert len(processes[0].reloads()) == 1  # three processes started on one version

    wall.now += 30
    flows_file.write_text(EDITED, encoding="utf-8")
    for registry in processes:
        registry.current()
        wall.now += 1  # each notices the save a moment later than the one before
    assert [r.ok for r in processes[2].reloads()] == [True, True]
    # They agree on when the new version went live: when the first of them loaded it.
    assert {r.loaded_at for r in processes} == {wall.now - 3}

    flows_file.write_text(BROKEN, encoding="utf-8")
    for registry in processes:
        registry.current()
    assert [r.ok for r in processes[1].reloads()] == [False, True, True]


def test_a_quick_revert_is_three_entries_but_a_touch_adds_none(
    flows_file: Path, history_redis: redis.Redis
) -> None:
    wall = WallClock()
    registry = _registry(flows_file, history_redis, wall)
    good = registry.current().version
    flows_file.write_text(BROKEN, encoding="utf-8")
    registry.current()
    wall.now += 5
    flows_file.write_text(GOOD, encoding="utf-8")  # the admin undoes the broken save
    assert registry.current().version == good
    assert registry.last_problems == []
    assert [(r.version == good, r.ok) for r in registry.reloads()] == [
        (True, True), (False, False), (True, True)]
    assert registry.loaded_at == wall.now - 5  # it never stopped serving

    flows_file.write_text(GOOD, encoding="utf-8")  # saved again, unchanged
    flows_file.touch()
    registry.current()
    assert len(registry.reloads()) == 3


def test_history_is_capped(flows_file: Path, history_redis: redis.Redis) -> None:
    wall = WallClock()
    registry = _registry(flows_file, history_redis, wall)
    for i in range(HISTORY_LENGTH + 5):
        wall.now += 1
        # A new size each time: two saves in one clock tick must not look alike.
        flows_file.write_text(GOOD + f"# edit {i}{'.' * i}\n", encoding="utf-8")
        registry.current()
    assert history_redis.llen(HISTORY_KEY) == HISTORY_LENGTH
    reloads = registry.reloads()
    assert len(reloads) == HISTORY_LENGTH
    assert reloads[0].at == wall.now
    assert [r.at for r in reloads] == sorted((r.at for r in reloads), reverse=True)
    assert [r.at for r in registry.reloads(limit=3)] == [wall.now, wall.now - 1, wall.now - 2]


def test_an_entry_keeps_the_first_problems_and_the_full_count(
    flows_file: Path, history_redis: redis.Redis
) -> None:
    registry = _registry(flows_file, history_redis, WallClock())
    many = GOOD.replace("goto: billing_menu}", "goto: biling_menu}")
    many += "".join(f"\nextra_{i}: {i}" for i in range(HISTORY_PROBLEMS + 5))
    flows_file.write_text(many, encoding="utf-8")
    registry.current()
    refused = registry.reloads()[0]
    assert refused.problem_count == len(registry.last_problems) > HISTORY_PROBLEMS
    assert refused.problems == tuple(str(p) for p in registry.last_problems[:HISTORY_PROBLEMS])


def test_unreadable_file_is_recorded_without_a_version(
    flows_file: Path, history_redis: redis.Redis
) -> None:
    registry = _registry(flows_file, history_redis, WallClock())
    flows_file.unlink()
    registry.current()
    gone = registry.reloads()[0]
    assert (gone.version, gone.ok, gone.problem_count) == (None, False, 1)
    assert gone.problems == (f"{flows_file}: cannot read the file: No such file or directory",)


def test_without_redis_the_process_keeps_its_own_history(flows_file: Path) -> None:
    wall = WallClock()
    registry = _registry(flows_file, None, wall)
    flows_file.write_text(EDITED, encoding="utf-8")
    registry.current()
    assert [r.ok for r in registry.reloads()] == [True, True]
    assert registry.reloads()[0].version == registry.version


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_redis_down_never_breaks_a_reload(
    flows_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    down = connect(f"redis://127.0.0.1:{_closed_port()}/0")
    wall = WallClock()
    with caplog.at_level(logging.WARNING, logger="ivr.infra.flows_registry"):
        registry = _registry(flows_file, down, wall)
        wall.now += 10
        flows_file.write_text(EDITED, encoding="utf-8")
        assert registry.current().source == EDITED
        flows_file.write_text(BROKEN, encoding="utf-8")
        assert registry.current().source == EDITED
        reloads = registry.reloads()
    assert registry.loaded_at == wall.now
    assert [r.ok for r in reloads] == [False, True, True]  # this process's own record
    assert any("could not record the flows reload" in m for m in caplog.messages)
    assert any("could not read the flows reloads" in m for m in caplog.messages)
    down.close()


def test_entries_this_code_cannot_read_are_skipped(
    flows_file: Path, history_redis: redis.Redis
) -> None:
    registry = _registry(flows_file, history_redis, WallClock())
    history_redis.lpush(HISTORY_KEY, b"not json", json.dumps({"at": "soon"}))
    assert [r.version for r in registry.reloads()] == [registry.version]


def test_without_redis_a_touch_is_not_a_reload_either(flows_file: Path) -> None:
    registry = _registry(flows_file, None, WallClock())
    flows_file.write_text(BROKEN, encoding="utf-8")
    registry.current()
    flows_file.write_text(GOOD, encoding="utf-8")
    registry.current()
    flows_file.write_text(GOOD, encoding="utf-8")
    flows_file.touch()
    registry.current()
    assert [r.ok for r in registry.reloads()] == [True, False, True]
