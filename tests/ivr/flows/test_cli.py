"""`ivr flows check` and `ivr flows graph` as an admin runs them."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from ivr.commands.flows import flows_group
from tests.conftest import SHOP_FLOWS

SAMPLE = SHOP_FLOWS
CORPUS = Path(__file__).parent / "corpus"


def test_check_clean_file_exits_0_with_summary() -> None:
    result = CliRunner().invoke(flows_group, ["check", str(SAMPLE)])
    assert result.exit_code == 0, result.output
    assert re.fullmatch(
        rf"{re.escape(str(SAMPLE))}: OK: 2 flows, 23 nodes, 2 numbers, 2 queues "
        r"\(version [0-9a-f]{12}\)\n",
        result.stdout,
    )


def test_check_broken_file_prints_every_problem_and_exits_1(tmp_path: Path) -> None:
    path = tmp_path / "flows.yaml"
    shutil.copy(CORPUS / "unknown_target.yaml", path)
    result = CliRunner().invoke(flows_group, ["check", str(path)])
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        f"{path}:8: flows.main.start: unknown node 'welcom' (did you mean 'welcome'?)",
        f"{path}:18: flows.main.nodes.menu.options[0].goto: unknown node 'biling' "
        "(did you mean 'billing'?)",
        f"{path}:19: flows.main.nodes.menu.options[1].goto: unknown node 'returns'",
    ]
    assert "3 error(s), 0 warning(s)" in result.stderr


def test_check_warnings_only_still_exits_1() -> None:
    path = CORPUS / "unreachable.yaml"
    result = CliRunner().invoke(flows_group, ["check", str(path)])
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        f"{path}:13: flows.main.nodes.old_menu: warning: unreachable node 'old_menu': "
        "nothing leads to it from start 'welcome'"
    ]
    assert "the service accepts this file" in result.stderr


def test_check_defaults_to_ivr_flows_then_flows_yaml(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    shutil.copy(CORPUS / "empty.yaml", "flows.yaml")
    shutil.copy(SAMPLE, "shop.yaml")
    runner = CliRunner()
    plain = runner.invoke(flows_group, ["check"], env={"IVR_FLOWS": ""})
    assert (plain.exit_code, plain.stdout) == (1, "flows.yaml:1: the file is empty\n")
    from_env = runner.invoke(flows_group, ["check"], env={"IVR_FLOWS": "shop.yaml"})
    assert from_env.exit_code == 0
    assert from_env.stdout.startswith("shop.yaml: OK:")


def test_check_missing_file_exits_1(tmp_path: Path) -> None:
    result = CliRunner().invoke(flows_group, ["check", str(tmp_path / "nope.yaml")])
    assert result.exit_code == 1
    missing = tmp_path / "nope.yaml"
    assert result.stdout == f"{missing}: cannot read the file: No such file or directory\n"


@pytest.mark.parametrize(
    ("fmt", "suffix", "marker"),
    [
        ("svg", ".svg", "<svg"),
        ("dot", ".dot", "digraph flows {"),
        ("mermaid", ".mmd", "flowchart LR"),
    ],
)
def test_graph_writes_each_format(tmp_path: Path, fmt: str, suffix: str, marker: str) -> None:
    out = tmp_path / f"picture{suffix}"
    args = ["graph", str(SAMPLE), "-o", str(out), "--format", fmt]
    result = CliRunner().invoke(flows_group, args)
    assert result.exit_code == 0, result.output
    assert result.stdout == f"wrote {out}\n"
    text = out.read_text(encoding="utf-8")
    assert marker in text
    assert "Person (queue support)" in text


def test_graph_default_output_is_named_after_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    shutil.copy(SAMPLE, "shop.yaml")
    result = CliRunner().invoke(flows_group, ["graph", "shop.yaml", "--format", "dot"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "shop.dot").read_text(encoding="utf-8").startswith("digraph flows {")


def test_graph_without_graphviz_writes_dot_and_mermaid(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))  # a machine without Graphviz
    out = tmp_path / "flows.svg"
    result = CliRunner().invoke(flows_group, ["graph", str(SAMPLE), "-o", str(out)])
    assert result.exit_code == 1, result.output  # what was asked for was not written
    assert not out.exists()
    assert (tmp_path / "flows.dot").read_text(encoding="utf-8").startswith("digraph flows {")
    assert (tmp_path / "flows.mmd").read_text(encoding="utf-8").startswith("flowchart LR")
    assert f"dot -Tsvg {tmp_path / 'flows.dot'} -o {out}" in result.stderr
    assert "https://mermaid.live" in result.stderr


def test_graph_to_an_unwritable_place_exits_1(tmp_path: Path) -> None:
    out = tmp_path / "no-such-dir" / "x.dot"
    result = CliRunner().invoke(flows_group, ["graph", str(SAMPLE), "-o", str(out),
                                              "--format", "dot"])
    assert result.exit_code == 1
    assert f"cannot write {out}: No such file or directory" in result.stderr


def test_graph_refuses_a_broken_file(tmp_path: Path) -> None:
    path = CORPUS / "duplicate_key.yaml"
    out = tmp_path / "x.svg"
    result = CliRunner().invoke(flows_group, ["graph", str(path), "-o", str(out)])
    assert result.exit_code == 1
    assert result.stdout == (
        f"{path}:14: flows.main.nodes.billing: duplicate key 'billing' (first on line 13)\n"
    )
    assert not out.exists()
