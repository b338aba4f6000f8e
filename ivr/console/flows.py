"""The console's flows page: the version serving, a refused edit's problems, the flow picture,
and the last reloads. The console only shows flows: `flows.yaml` stays the source, edited and
kept in version control, and checked with `ivr flows check`.
"""

from __future__ import annotations

import datetime as dt
import re
import threading
from collections import OrderedDict

from flask import Response, current_app, render_template, request

from ivr.console import auth
from ivr.console.blueprint import bp, problem
from ivr.core.flows.graph import has_graphviz, render_svg, to_dot
from ivr.core.flows.loader import LoadedFlows
from ivr.errors import IvrError
from ivr.infra.flows_registry import FlowRegistry, Reload, UnknownFlowVersion
from ivr.infra.services import services_of

RELOADS_SHOWN = 20
PROBLEMS_PER_RELOAD = 3  # the table shows the first few; the entry keeps up to 20
SVG_TIMEOUT = 15.0  # seconds: a picture is not worth a stuck web worker
SVG_CACHE_SIZE = 16
VERSION = re.compile(r"[0-9a-f]{12}")  # what `version_of` makes
GRAPHVIZ_MISSING = ("The flow picture needs Graphviz, which is not installed on this server "
                    "(apt install graphviz, or brew install graphviz). `ivr flows graph "
                    "--format mermaid` draws it without Graphviz.")

# Rendered pictures by flows version: a version is a hash of the file's text, so its picture
# never changes, and dot takes long enough on a big file to be worth keeping.
_svgs: OrderedDict[str, str] = OrderedDict()
_svgs_lock = threading.Lock()


@bp.get("/flows")
@auth.signed_in("admin")
def flows():
    """The flows page."""
    registry = services_of(current_app).flows
    # Look at the file now, not at the next interval: an admin who just saved wants its verdict.
    current = registry.reload()
    reloads = registry.reloads(RELOADS_SHOWN)
    now = registry.wall_clock()
    return render_template(
        "console/flows.html", user=auth.current_user(), page="flows",
        current=current, summary=_summary(current), path=registry.path,
        loaded_at=_when(registry.loaded_at), loaded_ago=_ago(now - registry.loaded_at),
        problems=[str(p) for p in registry.last_problems],
        refused=_last_refusal(reloads, registry),
        warnings=[str(w) for w in current.warnings],
        reloads=[_row(r, now) for r in reloads],
        has_graphviz=has_graphviz(), graphviz_missing=GRAPHVIZ_MISSING,
        shown=PROBLEMS_PER_RELOAD)


@bp.get("/flows/graph.svg")
@auth.signed_in("admin")
def flows_graph():
    """The flow picture as SVG (what `ivr flows graph` draws): the serving version, or ?version=."""
    registry = services_of(current_app).flows
    asked = request.args.get("version", "")
    if asked and not VERSION.fullmatch(asked):
        return problem(400, "a flows version is 12 hexadecimal digits")
    try:
        loaded = registry.get(asked) if asked else registry.current()
    except UnknownFlowVersion:
        return problem(404, f"flows version {asked} is no longer kept")
    if not has_graphviz():
        return problem(503, GRAPHVIZ_MISSING)
    try:
        svg = _svg_of(loaded)
    except IvrError as exc:
        return problem(500, f"the flow picture could not be drawn: {exc}")
    response = Response(svg, mimetype="image/svg+xml")
    # A version's picture never changes; without one, the URL means "whatever serves now".
    response.headers["Cache-Control"] = "private, max-age=86400" if asked else "no-store"
    return response


def _svg_of(loaded: LoadedFlows) -> str:
    """The picture of one version, drawn once per process."""
    with _svgs_lock:
        svg = _svgs.get(loaded.version)
        if svg is not None:
            _svgs.move_to_end(loaded.version)
            return svg
    svg = render_svg(to_dot(loaded.file), timeout=SVG_TIMEOUT)
    with _svgs_lock:
        _svgs[loaded.version] = svg
        while len(_svgs) > SVG_CACHE_SIZE:
            _svgs.popitem(last=False)
    return svg


def _summary(loaded: LoadedFlows) -> dict[str, int]:
    ff = loaded.file
    return {"flows": len(ff.flows), "nodes": sum(len(f.nodes) for f in ff.flows.values()),
            "numbers": len(ff.numbers), "queues": len(ff.queues)}


def _last_refusal(reloads: list[Reload], registry: FlowRegistry) -> dict | None:
    """When the file's newest save was refused, as the history has it (for its time)."""
    if not registry.last_problems:
        return None
    newest = reloads[0] if reloads else None
    if newest is None or newest.ok:
        return None
    return {"at": _when(newest.at), "ago": _ago(registry.wall_clock() - newest.at)}


def _row(reload: Reload, now: float) -> dict:
    return {"at": _when(reload.at), "ago": _ago(now - reload.at), "version": reload.version,
            "ok": reload.ok, "count": reload.problem_count, "problems": reload.problems,
            "file": reload.file}


def _when(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _ago(seconds: float) -> str:
    """'just now', '5 min ago', '3 h ago', '2 days ago'."""
    seconds = max(0.0, seconds)
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        return f"{int(seconds // 60)} min ago"
    if seconds < 2 * 86400:
        return f"{int(seconds // 3600)} h ago"
    return f"{int(seconds // 86400)} days ago"
