"""The node graph of a flow: edges, reachability and strongly connected sets."""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterable

from ivr.core.flows.schema import Flow, FlowFile, GotoFlowNode, MenuNode, targets
from ivr.core.flows.source import Path

# (flow, node) -> {language: the path where that language was chosen}, for every language
# whose callers can reach the node.
Reach = dict[tuple[str, str], dict[str, Path]]

# Nodes that play a prompt and wait for a key or a word: the operator escape works there.
WAITS_FOR_INPUT = frozenset({"message", "menu", "collect"})
# Nodes that decide at once without the caller: a loop of only these never stops.
INSTANT = frozenset({"hours", "branch"})
# Nodes that hand the call to something that ends this flow's part (a person, a recording, a
# callback request, another flow, a dial) even when they also name a `next`/`on_fail` node.
HANDS_OFF = frozenset({"queue", "dial", "callback", "voicemail", "goto_flow", "hangup"})


def field_path(text: str) -> Path:
    """'options[2].goto' -> ('options', 2, 'goto')."""
    out: list[str | int] = []
    for name, index in re.findall(r"([^.\[\]]+)|\[(\d+)\]", text):
        out.append(int(index) if index else name)
    return tuple(out)


def edges(flow: Flow) -> dict[str, list[str]]:
    """Node -> the existing nodes it can lead to (unknown targets are left out)."""
    return {
        name: [t for _, t in targets(node) if t in flow.nodes] for name, node in flow.nodes.items()
    }


def reachable(graph: dict[str, list[str]], start: str) -> set[str]:
    """Every node reachable from `start` (itself included)."""
    seen = {start} if start in graph else set()
    stack = list(seen)
    while stack:
        for nxt in graph[stack.pop()]:
            if nxt not in seen:
                seen.add(nxt)
                stack.append(nxt)
    return seen


def strongly_connected(graph: dict[str, list[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components, each in the graph's key order."""
    order = {name: i for i, name in enumerate(graph)}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    out: list[list[str]] = []

    def visit(root: str) -> None:
        # Iterative DFS so a long chain of nodes cannot hit the recursion limit.
        work = [(root, iter(graph[root]))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(graph[child])))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                out.append(sorted(component, key=order.__getitem__))

    for name in graph:
        if name not in index:
            visit(name)
    return sorted(out, key=lambda c: order[c[0]])


def is_cycle(graph: dict[str, list[str]], component: Iterable[str]) -> bool:
    """True when the component loops: several nodes, or one node that leads to itself."""
    members = list(component)
    return len(members) > 1 or members[0] in graph[members[0]]


def entry_flows(flowfile: FlowFile) -> list[str]:
    """Flows a call can start in: those a number or default_flow routes to, the only flow,
    and flows no goto_flow hands calls to (checked as if dialled, or nothing would be)."""
    handed = {n.flow for f in flowfile.flows.values() for n in f.nodes.values()
              if isinstance(n, GotoFlowNode)}
    routed = set(flowfile.numbers.values()) | {flowfile.default_flow}
    single = len(flowfile.flows) == 1
    return [name for name in flowfile.flows if single or name in routed or name not in handed]


def language_reach(flowfile: FlowFile) -> Reach:
    """Which languages' callers reach each node, and where each language was chosen.

    A call starts in its flow's language (else defaults.language), switches at a menu option
    that sets `language`, and at a goto_flow into a flow with a language of its own; a flow
    without one keeps the caller's. The first (shortest) way a language arrives is kept.
    """
    reach: Reach = {}
    todo: deque[tuple[str, str, str]] = deque()

    def enter(flow: str, node: str, language: str, origin: Path) -> None:
        if node not in flowfile.flows[flow].nodes:
            return
        seen = reach.setdefault((flow, node), {})
        if language not in seen:
            seen[language] = origin
            todo.append((flow, node, language))

    def start(flow: str, language: str, origin: Path) -> None:
        target = flowfile.flows[flow]
        if target.language is not None:
            language, origin = target.language, ("flows", flow, "language")
        enter(flow, target.start, language, origin)

    for name in entry_flows(flowfile):
        start(name, flowfile.defaults.language, ("defaults", "language"))
    while todo:
        fname, nname, language = todo.popleft()
        origin = reach[(fname, nname)][language]
        node = flowfile.flows[fname].nodes[nname]
        if isinstance(node, GotoFlowNode) and node.flow in flowfile.flows:
            start(node.flow, language, origin)
        if isinstance(node, MenuNode):
            for i, option in enumerate(node.options):
                chosen = option.set.get("language")
                if chosen is not None:
                    where = ("flows", fname, "nodes", nname, "options", i, "set", "language")
                    enter(fname, option.goto, chosen, where)
                else:
                    enter(fname, option.goto, language, origin)
        for field, target in targets(node):
            if not field.startswith("options["):
                enter(fname, target, language, origin)
    return reach
