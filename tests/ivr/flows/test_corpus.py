"""Every broken file in the corpus gives exactly the messages written at its top."""

from __future__ import annotations

from pathlib import Path

import pytest

from ivr.core.flows.loader import check_text, load_flows, parse_flows
from ivr.errors import FlowError
from tests.conftest import SHOP_FLOWS

CORPUS = Path(__file__).parent / "corpus"
SAMPLE = SHOP_FLOWS
FILES = sorted(CORPUS.glob("*.yaml"))


def expected_messages(text: str) -> list[str]:
    prefix = "# expect: "
    return [line.removeprefix(prefix) for line in text.splitlines() if line.startswith(prefix)]


def test_corpus_is_large_enough() -> None:
    assert len(FILES) >= 15


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_broken_file_gives_exact_messages(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    expected = expected_messages(text)
    assert expected, f"{path.name} has no '# expect:' lines"
    _, problems = check_text(text, path.name)
    assert [str(p) for p in problems] == expected


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_errors_refuse_the_file_and_warnings_do_not(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    _, problems = check_text(text, path.name)
    errors = [str(p) for p in problems if p.is_error]
    if errors:
        with pytest.raises(FlowError) as caught:
            parse_flows(text, path.name)
        assert [str(p) for p in caught.value.problems] == errors
    else:
        loaded = parse_flows(text, path.name)
        assert [str(p) for p in loaded.warnings] == [str(p) for p in problems]


def test_shipped_sample_is_clean() -> None:
    loaded, problems = check_text(SAMPLE.read_text(encoding="utf-8"), "flows.yaml")
    assert [str(p) for p in problems] == []
    assert loaded is not None
    assert set(loaded.file.flows) == {"main", "korean"}


def test_load_flows_reads_a_file_and_versions_its_text(tmp_path: Path) -> None:
    copy = tmp_path / "flows.yaml"
    copy.write_text(SAMPLE.read_text(encoding="utf-8"), encoding="utf-8")
    first = load_flows(copy)
    assert first.source == copy.read_text(encoding="utf-8")
    assert len(first.version) == 12
    assert first.filename == str(copy)
    copy.write_text(first.source.replace("Juniper and Pine", "Juniper & Pine"), encoding="utf-8")
    assert load_flows(copy).version != first.version


def test_lines_map_every_path_to_its_line() -> None:
    loaded = parse_flows(SAMPLE.read_text(encoding="utf-8"))
    lines = SAMPLE.read_text(encoding="utf-8").splitlines()
    where = loaded.lines[("flows", "main", "nodes", "main_menu", "options", 1, "goto")]
    assert "billing_menu" in lines[where.line - 1]
    assert lines[where.line - 1][where.column - 1 :].startswith("goto")
    # A path the file does not spell out falls back to its nearest ancestor.
    node_line = loaded.lines.line(("flows", "main", "nodes", "goodbye"))
    assert loaded.lines.line(("flows", "main", "nodes", "goodbye", "no_input")) == node_line


def test_missing_file_is_one_problem(tmp_path: Path) -> None:
    with pytest.raises(FlowError) as caught:
        load_flows(tmp_path / "nope.yaml")
    assert [str(p) for p in caught.value.problems] == [
        f"{tmp_path / 'nope.yaml'}: cannot read the file: No such file or directory"
    ]


def test_non_utf8_file_points_at_the_line(tmp_path: Path) -> None:
    bad = tmp_path / "flows.yaml"
    bad.write_bytes(b"version: 1\nflows:\n  main: \xff\n")
    with pytest.raises(FlowError) as caught:
        load_flows(bad)
    assert [str(p) for p in caught.value.problems] == [
        f"{bad}:3: the file is not UTF-8 text (save it as UTF-8)"
    ]


def test_merge_keys_are_followed_and_explicit_keys_win() -> None:
    text = (
        "version: 1\n"
        "flows:\n"
        "  main:\n"
        "    start: a\n"
        "    nodes:\n"
        "      base: &q {type: queue, queue: support}\n"
        "      a:\n"
        "        <<: *q\n"
        "        queue: nobody\n"
    )
    _, problems = check_text(text)
    assert [str(p) for p in problems] == [
        "flows.yaml:6: flows.main.nodes.base: warning: unreachable node 'base': "
        "nothing leads to it from start 'a'",
        "flows.yaml:9: flows.main.nodes.a.queue: unknown queue 'nobody'",
    ]
