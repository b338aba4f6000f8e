"""Draw the flows as Graphviz DOT or Mermaid, and render SVG with Graphviz when it is installed.

The operator escape is drawn as its own "Person (queue ...)" node, with a dashed edge from every
node that waits for the caller, so an admin can see at a glance that nobody is trapped.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass

from ivr.core.flows.schema import (
    BranchNode,
    Condition,
    FlowFile,
    GotoFlowNode,
    MenuNode,
    Node,
    phrases_for,
    targets,
)
from ivr.core.flows.walk import WAITS_FOR_INPUT
from ivr.errors import IvrError

EXTRA_DOT = {
    "entry": 'shape=cds, fillcolor="#e8f0fe"',
    "operator": 'shape=house, fillcolor="#c8f7c5", penwidth=2',
    "closed": 'shape=component, fillcolor="#fff4c2"',
    "missing": 'shape=octagon, fillcolor="#ffb3b3", penwidth=2',
}
SHAPES_DOT = {
    "message": "note",
    "menu": "box",
    "collect": "parallelogram",
    "hours": "diamond",
    "branch": "diamond",
    "queue": "box3d",
    "dial": "cds",
    "callback": "component",
    "voicemail": "tab",
    "goto_flow": "cds",
    "hangup": "octagon",
}
SHAPES_MERMAID = {
    "message": ('(["', '"])'),
    "collect": ('[/"', '"/]'),
    "hours": ('{"', '"}'),
    "branch": ('{"', '"}'),
    "queue": ('[["', '"]]'),
    "hangup": ('(("', '"))'),
}


class GraphvizMissing(IvrError):
    """The Graphviz `dot` program is not installed, so SVG cannot be rendered here."""


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    label: str = ""
    dashed: bool = False


@dataclass(frozen=True)
class Box:
    id: str
    label: str
    kind: str  # node type, or 'entry' / 'operator' / 'closed'
    flow: str | None = None


def _id(*parts: str) -> str:
    return "n_" + "__".join(re.sub(r"\W", "_", p) for p in parts)


def _condition(when: Condition) -> str:
    if when.var is not None:
        for test in ("equals", "one_of", "matches", "present"):
            value = getattr(when, test)
            if value is not None:
                return f"{when.var} {test} {value}"
    if when.returning_caller is not None:
        return "returning caller" if when.returning_caller else "new caller"
    if when.caller_id is not None:
        return "caller is " + ", ".join(when.caller_id)
    return f"caller starts {when.caller_prefix}"


def _edge_label(node: Node, field: str, language: str) -> str:
    match node:
        case MenuNode():
            option = node.options[int(field.split("[")[1].split("]")[0])] if "[" in field else None
            if option is None:
                return field.replace("_", " ")
            words = phrases_for(option.say, language)
            return f"{option.digit} / {words[0]}" if words else option.digit
        case BranchNode() if field.startswith("rules["):
            return _condition(node.rules[int(field[6:].split("]")[0])].when)
    return "" if field == "next" else field.replace("_", " ")


def _detail(node: Node) -> str:
    for attr in ("queue", "hours", "number", "var", "flow"):
        value = getattr(node, attr, None)
        if isinstance(value, str):
            return f"{attr}: {value}"
    return ""


def build(flowfile: FlowFile) -> tuple[list[Box], list[Edge]]:
    """The boxes and edges of the picture, shared by the DOT and Mermaid writers."""
    boxes: list[Box] = []
    edges: list[Edge] = []
    op = flowfile.defaults.operator
    escape = op is not None and op.enabled
    for fname, flow in flowfile.flows.items():
        language = flow.language or flowfile.defaults.language
        for nname, node in flow.nodes.items():
            detail = _detail(node)
            label = f"{nname}\n{node.type}" + (f"\n{detail}" if detail else "")
            boxes.append(Box(_id(fname, nname), label, node.type, fname))
            for field, target in targets(node):
                if target in flow.nodes:
                    label = _edge_label(node, field, language)
                    edges.append(Edge(_id(fname, nname), _id(fname, target), label))
            if isinstance(node, GotoFlowNode) and node.flow in flowfile.flows:
                start = flowfile.flows[node.flow].start
                edges.append(Edge(_id(fname, nname), _id(node.flow, start), "goto_flow", True))
            if escape and node.type in WAITS_FOR_INPUT:
                assert op is not None
                key = op.collect_digit if node.type == "collect" else op.digit
                words = phrases_for(op.phrases, language)
                label = f"{key} / {words[0]}" if words else key
                edges.append(Edge(_id(fname, nname), operator_id(fname), label, True))
    entries: dict[str, list[str]] = {}
    for number, fname in flowfile.numbers.items():
        entries.setdefault(fname, []).append(number)
    if flowfile.default_flow:
        entries.setdefault(flowfile.default_flow, []).append("other numbers")
    for fname, callers in entries.items():
        if fname in flowfile.flows:
            entry = _id("entry", fname)
            boxes.append(Box(entry, "\n".join(callers), "entry"))
            edges.append(Edge(entry, _id(fname, flowfile.flows[fname].start)))
    for fname in flowfile.flows:
        # One escape box per flow keeps the dashed edges short and inside the flow's cluster.
        if escape:
            assert op is not None
            person = f"Person (queue {op.queue})\noperator escape"
            boxes.append(Box(operator_id(fname), person, "operator", fname))
            boxes.append(Box(_id("closed", fname), "Callback offer", "closed", fname))
            edges.append(Edge(operator_id(fname), _id("closed", fname), "closed / no agents", True))
        else:
            warning = "NO OPERATOR ESCAPE\ncallers cannot reach a person"
            boxes.append(Box(operator_id(fname), warning, "missing", fname))
    return boxes, edges


def operator_id(flow: str) -> str:
    """The id of the operator-escape box drawn in `flow`."""
    return _id("operator", flow)


def _dot_text(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def to_dot(flowfile: FlowFile) -> str:
    """The flows as a Graphviz DOT digraph: one cluster per flow, the operator escape dashed."""
    boxes, edges = build(flowfile)
    out = [
        "digraph flows {",
        "  rankdir=LR;",
        '  node [fontname="Helvetica", fontsize=11, style=filled, fillcolor="#ffffff"];',
        '  edge [fontname="Helvetica", fontsize=9];',
    ]
    for fname, flow in flowfile.flows.items():
        title = fname + (f": {flow.description}" if flow.description else "")
        out.append(f"  subgraph {_dot_text('cluster_' + fname)} {{")
        out.append(f'    label={_dot_text(title)}; style=rounded; color="#888888";')
        for box in boxes:
            if box.flow == fname:
                look = EXTRA_DOT.get(box.kind) or f"shape={SHAPES_DOT[box.kind]}"
                out.append(f"    {box.id} [label={_dot_text(box.label)}, {look}];")
        out.append("  }")
    for box in boxes:
        if box.flow is None:
            out.append(f"  {box.id} [label={_dot_text(box.label)}, {EXTRA_DOT[box.kind]}];")
    for edge in edges:
        attrs = [f"label={_dot_text(edge.label)}"] if edge.label else []
        if edge.dashed:
            attrs += ["style=dashed", 'color="#2e7d32"', 'fontcolor="#2e7d32"']
        suffix = f" [{', '.join(attrs)}]" if attrs else ""
        out.append(f"  {edge.source} -> {edge.target}{suffix};")
    out.append("}")
    return "\n".join(out) + "\n"


def _mermaid_text(text: str) -> str:
    return text.replace('"', "#quot;").replace("\n", "<br/>")


def to_mermaid(flowfile: FlowFile) -> str:
    """The flows as a Mermaid flowchart (paste into https://mermaid.live or a Markdown file)."""
    boxes, edges = build(flowfile)
    out = ["flowchart LR"]

    def box_line(box: Box) -> str:
        left, right = SHAPES_MERMAID.get(box.kind, ('["', '"]'))
        return f"{box.id}{left}{_mermaid_text(box.label)}{right}"

    for fname in flowfile.flows:
        group = "flow_" + re.sub(r"\W", "_", fname)
        out.append(f'  subgraph {group}["{_mermaid_text(fname)}"]')
        out += [f"    {box_line(b)}" for b in boxes if b.flow == fname]
        out.append("  end")
    out += [f"  {box_line(b)}" for b in boxes if b.flow is None]
    for edge in edges:
        arrow = "-.->" if edge.dashed else "-->"
        label = f'|"{_mermaid_text(edge.label)}"|' if edge.label else ""
        out.append(f"  {edge.source} {arrow}{label} {edge.target}")
    for box in boxes:
        if box.kind == "operator":
            out.append(f"  style {box.id} fill:#c8f7c5,stroke:#2e7d32,stroke-width:2px")
    return "\n".join(out) + "\n"


def has_graphviz() -> bool:
    """Is the Graphviz `dot` program on PATH?"""
    return shutil.which("dot") is not None


def render_svg(dot_source: str, timeout: float = 60.0) -> str:
    """Render DOT to SVG with Graphviz; raise GraphvizMissing when `dot` is not installed."""
    dot = shutil.which("dot")
    if dot is None:
        raise GraphvizMissing("Graphviz 'dot' is not installed")
    done = subprocess.run(
        [dot, "-Tsvg"], input=dot_source.encode(), capture_output=True, timeout=timeout, check=False
    )
    if done.returncode != 0:
        raise IvrError(f"dot failed: {done.stderr.decode(errors='replace').strip()}")
    return done.stdout.decode("utf-8")
