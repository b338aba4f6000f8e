"""Loops that run through `goto_flow` between flows without ever waiting for the caller.

Within one flow the linter finds such loops itself; across flows they need the whole file:
`main` hands the call to `other`, whose start decides at once (a branch, the hours) to hand it
back to `main`'s node that hands it on again. The engine would give up after its hop limit and
send the caller to a person, every time; the check says so before the file goes live.
"""

from __future__ import annotations

from ivr.core.flows.problem import Problem, Severity, format_path
from ivr.core.flows.schema import FlowFile, GotoFlowNode
from ivr.core.flows.source import SourceMap
from ivr.core.flows.walk import INSTANT, edges, is_cycle, strongly_connected

Where = tuple[str, str]  # (flow, node)


def problems(flowfile: FlowFile, lines: SourceMap, filename: str) -> list[Problem]:
    """An error for each loop through goto_flow with no way out (between flows, or a flow
    handed to itself), a warning where a rule might lead out."""
    outs = _instant_graph(flowfile)
    instant = {n: [t for t in targets if t in outs] for n, targets in outs.items()}
    found: list[Problem] = []
    for component in strongly_connected(instant):
        members = set(component)
        hands_over = any(isinstance(flowfile.flows[f].nodes[n], GotoFlowNode)
                         for f, n in component)
        if not is_cycle(instant, component) or not hands_over:
            continue  # a loop inside one flow without goto_flow is the linter's own
        first = next((n for n in component
                      if isinstance(flowfile.flows[n[0]].nodes[n[1]], GotoFlowNode)), component[0])
        path = ("flows", first[0], "nodes", first[1])
        loop = " → ".join(f"{f}.{n}" for f, n in [*component, component[0]])
        leaves = any(t not in members for n in component for t in outs[n])
        if leaves:
            found.append(Problem(filename, lines.line(path), format_path(path),
                                 f"possible endless loop between flows: {loop} without waiting "
                                 "for the caller; make sure a rule always leads out",
                                 Severity.WARNING))
        else:
            found.append(Problem(filename, lines.line(path), format_path(path),
                                 f"endless loop between flows: {loop} without waiting for the "
                                 "caller (goto_flow hands the call round in a circle)"))
    return found


def _instant_graph(flowfile: FlowFile) -> dict[Where, list[Where]]:
    """Every node that decides at once (hours, branch, goto_flow) -> everything it leads to."""
    graph: dict[Where, list[Where]] = {}
    for fname, flow in flowfile.flows.items():
        inside = edges(flow)
        for name, node in flow.nodes.items():
            if isinstance(node, GotoFlowNode):
                target = flowfile.flows.get(node.flow)
                graph[(fname, name)] = ([(node.flow, target.start)]
                                        if target and target.start in target.nodes else [])
            elif node.type in INSTANT:
                graph[(fname, name)] = [(fname, t) for t in inside[name]]
    return graph
