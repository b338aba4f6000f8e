"""Hot reload: new calls get the new file, calls under way keep theirs, broken edits are refused."""

from __future__ import annotations

import logging
import socket
from pathlib import Path

import pytest
import redis

from ivr.errors import FlowError
from ivr.infra.flows_registry import REDIS_KEY, FlowRegistry, UnknownFlowVersion
from ivr.infra.redis_conn import connect
from tests.conftest import SHOP_FLOWS

SAMPLE = SHOP_FLOWS
GOOD = SAMPLE.read_text(encoding="utf-8")
EDITED = GOOD.replace("Thanks for calling Juniper and Pine.", "Welcome to Juniper and Pine!")
BROKEN = GOOD.replace("goto: billing_menu}", "goto: biling_menu}")


class Clock:
    """A clock the test moves by hand, so reload checks happen exactly when we say."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def flows_file(tmp_path: Path) -> Path:
    path = tmp_path / "flows.yaml"
    path.write_text(GOOD, encoding="utf-8")
    return path


def test_broken_file_at_start_up_raises(tmp_path: Path) -> None:
    path = tmp_path / "flows.yaml"
    path.write_text(BROKEN, encoding="utf-8")
    with pytest.raises(FlowError) as caught:
        FlowRegistry(path)
    assert [p.message for p in caught.value.problems] == [
        "unknown node 'biling_menu' (did you mean 'billing_menu'?)"
    ]


def test_edit_reaches_new_calls_and_old_version_stays_available(
    flows_file: Path, flows_redis: redis.Redis
) -> None:
    clock = Clock()
    registry = FlowRegistry(flows_file, flows_redis, check_interval=5, clock=clock)
    old = registry.current()
    flows_file.write_text(EDITED, encoding="utf-8")

    clock.now += 4  # inside the interval: the file is not looked at yet
    assert registry.current().version == old.version
    clock.now += 1
    new = registry.current()
    assert new.version != old.version
    assert new.source == EDITED
    welcome = new.file.flows["main"].nodes["welcome"]
    assert welcome.prompt.startswith("Welcome to Juniper and Pine!")
    # A call that started before the edit finishes on its version.
    assert registry.get(old.version) is old
    assert registry.last_problems == []


def test_broken_edit_is_refused_logged_and_old_version_kept(
    flows_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    registry = FlowRegistry(flows_file, None, check_interval=0)
    good = registry.current()
    flows_file.write_text(BROKEN, encoding="utf-8")
    with caplog.at_level(logging.ERROR, logger="ivr.infra.flows_registry"):
        assert registry.current() is good
    line = BROKEN.splitlines().index(next(x for x in BROKEN.splitlines() if "biling_menu" in x)) + 1
    expected = (
        f"{flows_file}:{line}: flows.main.nodes.main_menu.options[1].goto: "
        "unknown node 'biling_menu' (did you mean 'billing_menu'?)"
    )
    assert [str(p) for p in registry.last_problems] == [expected]
    assert expected in caplog.messages
    assert any("refused" in m and good.version in m for m in caplog.messages)

    # Logged once per save, not on every check.
    caplog.clear()
    assert registry.current() is good
    assert caplog.messages == []

    flows_file.write_text(EDITED, encoding="utf-8")
    fixed = registry.current()
    assert fixed.source == EDITED
    assert registry.last_problems == []


def test_deleted_file_keeps_last_good_version(flows_file: Path) -> None:
    registry = FlowRegistry(flows_file, None, check_interval=0)
    good = registry.current()
    flows_file.unlink()
    assert registry.current() is good
    assert [p.message for p in registry.last_problems] == [
        "cannot read the file: No such file or directory"
    ]


def test_reverting_to_a_known_version_reuses_it(flows_file: Path) -> None:
    registry = FlowRegistry(flows_file, None, check_interval=3600)
    first = registry.current()
    flows_file.write_text(EDITED, encoding="utf-8")
    assert registry.current() is first  # not checked yet: the interval has not passed
    assert registry.reload().source == EDITED
    flows_file.write_text(GOOD, encoding="utf-8")
    assert registry.reload() is first


def test_another_process_loads_a_version_it_never_saw_from_redis(
    flows_file: Path, tmp_path: Path, flows_redis: redis.Redis
) -> None:
    first = FlowRegistry(flows_file, flows_redis, check_interval=0)
    old = first.current()
    assert flows_redis.ttl(REDIS_KEY.format(version=old.version)) > 24 * 3600

    # A second web process (another host: another copy of the file) starts after the edit.
    other_file = tmp_path / "other" / "flows.yaml"
    other_file.parent.mkdir()
    other_file.write_text(EDITED, encoding="utf-8")
    second = FlowRegistry(other_file, flows_redis, check_interval=0)
    assert second.current().version != old.version

    from_redis = second.get(old.version)
    assert from_redis.version == old.version
    assert from_redis.source == GOOD
    assert from_redis.file == old.file
    with pytest.raises(UnknownFlowVersion):
        second.get("0123456789ab")


def test_old_versions_beyond_the_memory_limit_come_back_from_redis(
    flows_file: Path, flows_redis: redis.Redis
) -> None:
    registry = FlowRegistry(flows_file, flows_redis, check_interval=0, keep=2)
    versions = [registry.current().version]
    for i in range(3):
        flows_file.write_text(GOOD + f"# edit {i}\n", encoding="utf-8")
        versions.append(registry.current().version)
    assert len(set(versions)) == 4
    assert registry.get(versions[0]).source == GOOD


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_redis_down_is_tolerated(flows_file: Path, caplog: pytest.LogCaptureFixture) -> None:
    down = connect(f"redis://127.0.0.1:{_closed_port()}/0")
    with caplog.at_level(logging.WARNING, logger="ivr.infra.flows_registry"):
        registry = FlowRegistry(flows_file, down, check_interval=0)
        flows_file.write_text(EDITED, encoding="utf-8")
        assert registry.current().source == EDITED
    assert any("could not store flows version" in m for m in caplog.messages)
    with pytest.raises(UnknownFlowVersion):
        registry.get("0123456789ab")
    down.close()
