"""`ivr flows ...`: check a flows file, and draw it."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from ivr.core.flows.graph import has_graphviz, render_svg, to_dot, to_mermaid
from ivr.core.flows.loader import LoadedFlows, check_file
from ivr.errors import IvrError

EXTENSIONS = {"svg": ".svg", "mermaid": ".mmd", "dot": ".dot"}


def default_flows_file() -> str:
    """The flows file the service uses: $IVR_FLOWS, else flows.yaml."""
    return os.environ.get("IVR_FLOWS") or "flows.yaml"


def _summary(loaded: LoadedFlows) -> str:
    ff = loaded.file
    nodes = sum(len(flow.nodes) for flow in ff.flows.values())
    return (
        f"{loaded.filename}: OK: {len(ff.flows)} flows, {nodes} nodes, {len(ff.numbers)} numbers, "
        f"{len(ff.queues)} queues (version {loaded.version})"
    )


@click.group("flows")
def flows_group() -> None:
    """Check and draw the call flows (flows.yaml)."""


@flows_group.command("check")
@click.argument("file", required=False)
def check(file: str | None) -> None:
    """Print every problem in FILE as file:line: path: message; exit 1 unless it is clean."""
    path = file or default_flows_file()
    loaded, problems = check_file(path)
    for problem in problems:
        click.echo(str(problem))
    if problems:
        errors = sum(p.is_error for p in problems)
        warnings = len(problems) - errors
        verdict = (
            "the service refuses this file and keeps serving the last good version"
            if errors
            else "the service accepts this file, but please fix the warnings"
        )
        click.echo(f"{errors} error(s), {warnings} warning(s): {verdict}", err=True)
        sys.exit(1)
    assert loaded is not None
    click.echo(_summary(loaded))


@flows_group.command("graph")
@click.argument("file", required=False)
@click.option("-o", "--output", help="Where to write ('-' for stdout); default FILE's name.")
@click.option(
    "--format", "fmt", type=click.Choice(list(EXTENSIONS)), default="svg", show_default=True
)
def graph(file: str | None, output: str | None, fmt: str) -> None:
    """Draw FILE's flows with the operator escape: SVG (needs Graphviz), Mermaid or DOT."""
    path = file or default_flows_file()
    loaded, problems = check_file(path)
    if loaded is None:
        for problem in problems:
            click.echo(str(problem))
        click.echo("cannot draw a file with errors: fix them first", err=True)
        sys.exit(1)
    out = output or Path(path).with_suffix(EXTENSIONS[fmt]).name
    if fmt == "svg" and not has_graphviz():
        # What was asked for cannot be made here: say so, exit 1, and leave the two
        # formats that need no Graphviz next to where the SVG would have been.
        base = Path(out).with_suffix("") if out != "-" else Path(Path(path).stem)
        dot_file, mmd_file = base.with_suffix(".dot"), base.with_suffix(".mmd")
        dot_file.write_text(to_dot(loaded.file), encoding="utf-8")
        mmd_file.write_text(to_mermaid(loaded.file), encoding="utf-8")
        click.echo(
            f"Graphviz is not installed, so no SVG: wrote {dot_file} and {mmd_file} instead.\n"
            f"Render with `dot -Tsvg {dot_file} -o {base.with_suffix('.svg')}` after installing "
            "Graphviz (apt install graphviz / brew install graphviz), or paste "
            f"{mmd_file} into https://mermaid.live.",
            err=True,
        )
        sys.exit(1)
    if fmt == "mermaid":
        text = to_mermaid(loaded.file)
    else:
        text = to_dot(loaded.file)
        if fmt == "svg":
            try:
                text = render_svg(text)
            except IvrError as exc:
                raise click.ClickException(f"no SVG written: {exc}") from None
    if out == "-":
        click.echo(text, nl=False)
        return
    try:
        Path(out).write_text(text, encoding="utf-8")
    except OSError as exc:
        raise click.ClickException(f"cannot write {out}: {exc.strerror or exc}") from None
    click.echo(f"wrote {out}")
