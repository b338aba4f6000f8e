"""The picture shows every node, every route and the operator escape."""

from __future__ import annotations

import re

import pytest
import yaml

from ivr.core.flows.graph import build, operator_id, render_svg, to_dot, to_mermaid
from ivr.core.flows.loader import check_text, parse_flows
from ivr.core.flows.schema import FlowFile, targets
from ivr.core.flows.walk import WAITS_FOR_INPUT
from tests.conftest import SHOP_FLOWS

SAMPLE = parse_flows(SHOP_FLOWS.read_text(encoding="utf-8"))
FLOWFILE = SAMPLE.file


def _node_id(flow: str, node: str) -> str:
    return f"n_{flow}__{node}"


def test_every_node_and_route_is_drawn() -> None:
    dot = to_dot(FLOWFILE)
    for fname, flow in FLOWFILE.flows.items():
        for nname, node in flow.nodes.items():
            assert re.search(rf"^\s+{_node_id(fname, nname)} \[label=\"{nname}\\n", dot, re.M)
            for _, target in targets(node):
                assert f"{_node_id(fname, nname)} -> {_node_id(fname, target)}" in dot


def test_every_waiting_node_has_a_dashed_escape_to_a_person() -> None:
    boxes, edges = build(FLOWFILE)
    escapes = {(e.source, e.label) for e in edges if e.dashed and e.target.startswith("n_operator")}
    expected = set()
    for fname, flow in FLOWFILE.flows.items():
        word = "상담원" if fname == "korean" else "agent"
        for nname, node in flow.nodes.items():
            if node.type in WAITS_FOR_INPUT:
                key = "*" if node.type == "collect" else "0"
                expected.add((_node_id(fname, nname), f"{key} / {word}"))
    assert escapes == expected
    persons = [b for b in boxes if b.kind == "operator"]
    assert [b.id for b in persons] == [operator_id(f) for f in FLOWFILE.flows]
    assert all(b.label == "Person (queue support)\noperator escape" for b in persons)


def test_dot_and_mermaid_carry_the_escape_and_entries() -> None:
    dot, mermaid = to_dot(FLOWFILE), to_mermaid(FLOWFILE)
    assert 'n_main__welcome -> n_operator__main [label="0 / agent", style=dashed' in dot
    assert 'n_main__order_number -.->|"* / agent"| n_operator__main' in mermaid
    assert "n_entry__main -> n_main__welcome" in dot
    assert '"+18005550100\\nother numbers"' in dot
    assert 'n_main__to_korean -.->|"goto_flow"| n_korean__ko_menu' in mermaid


def test_svg_renders_with_graphviz() -> None:
    svg = render_svg(to_dot(FLOWFILE))
    assert svg.lstrip().startswith("<?xml") and "</svg>" in svg
    assert "Person (queue support)" in svg
    for flow in FLOWFILE.flows.values():
        for name in flow.nodes:
            assert f">{name}</text>" in svg


@pytest.mark.parametrize("operator", ["null", "{enabled: false}"])
def test_missing_escape_is_drawn_as_a_warning(operator: str) -> None:
    text = (
        f"defaults: {{operator: {operator}}}\n"
        "flows:\n  main:\n    start: q\n    nodes:\n      q: {type: queue, queue: support}\n"
    )
    _, problems = check_text(text)
    assert [p.path for p in problems if p.is_error][0].startswith("defaults.operator")
    dot = to_dot(FlowFile.model_validate(yaml.safe_load(text)))
    assert 'n_operator__main [label="NO OPERATOR ESCAPE' in dot
    assert "Person (queue" not in dot
