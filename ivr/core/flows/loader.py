"""Load a flows file: YAML with positions, the schema, then the linter; all problems at once."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field

from pydantic import ValidationError

from ivr.core.flows.lint import lint
from ivr.core.flows.problem import Problem, Severity, format_path, sort_problems
from ivr.core.flows.schema import FlowFile
from ivr.core.flows.source import SourceMap, load_yaml
from ivr.core.flows.validation import prune, validation_problems
from ivr.errors import FlowError

__all__ = [
    "LoadedFlows",
    "Problem",
    "Severity",
    "check_file",
    "check_text",
    "load_flows",
    "parse_flows",
    "version_of",
]


@dataclass(frozen=True)
class LoadedFlows:
    """A validated flows file, the exact text it came from, and where each path is in it."""

    file: FlowFile
    source: str
    version: str
    lines: SourceMap
    filename: str = "flows.yaml"
    warnings: tuple[Problem, ...] = field(default=())


def version_of(text: str) -> str:
    """A short content hash: the same text always gets the same version, on every host."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


def check_text(text: str, filename: str = "flows.yaml") -> tuple[LoadedFlows | None, list[Problem]]:
    """Parse, validate and lint `text`; return the flows (None if any error) and every problem."""
    source = load_yaml(text)
    problems = [
        Problem(filename, e.position.line, format_path(e.path), e.message, column=e.position.column)
        for e in source.errors
    ]
    if source.data is None:
        return None, sort_problems(problems)
    try:
        flowfile = FlowFile.model_validate(source.data)
    except ValidationError as exc:
        # A value the YAML itself refused is reported once, not again as "missing".
        refused = {format_path(e.path) for e in source.errors}
        problems += [p for p in validation_problems(exc, source.data, source.lines, filename)
                     if p.path not in refused]
        problems += _lint_the_rest(exc, source.data, source.lines, filename)
        return None, sort_problems(problems)
    problems = sort_problems(problems + lint(flowfile, source.lines, filename))
    if any(p.is_error for p in problems):
        return None, problems
    loaded = LoadedFlows(
        file=flowfile,
        source=text,
        version=version_of(text),
        lines=source.lines,
        filename=filename,
        warnings=tuple(problems),
    )
    return loaded, problems


def _lint_the_rest(
    exc: ValidationError, data: object, lines: SourceMap, filename: str
) -> list[Problem]:
    """Lint what the schema accepted, so one run shows every problem, not just the first kind."""
    pruned = prune(exc, data)
    if pruned is None:
        return []
    try:
        flowfile = FlowFile.model_validate(pruned[0])
    except ValidationError:
        return []
    return lint(flowfile, lines, filename, removed=pruned[1])


def parse_flows(text: str, filename: str = "flows.yaml") -> LoadedFlows:
    """Load flows from text; raise FlowError with every error (warnings stay on the result)."""
    loaded, problems = check_text(text, filename)
    if loaded is None:
        raise FlowError([p for p in problems if p.is_error])
    return loaded


def read_source(path: str | os.PathLike[str]) -> str:
    """The text of a flows file; FlowError (with the line of a bad byte) if it can't be read."""
    name = os.fspath(path)
    try:
        with open(name, "rb") as fh:
            raw = fh.read()
    except OSError as exc:
        problem = Problem(name, None, "", f"cannot read the file: {exc.strerror}")
        raise FlowError([problem]) from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        problem = Problem(name, line, "", "the file is not UTF-8 text (save it as UTF-8)")
        raise FlowError([problem]) from None


def check_file(path: str | os.PathLike[str]) -> tuple[LoadedFlows | None, list[Problem]]:
    """`check_text` for a file on disk; an unreadable file is one problem."""
    try:
        text = read_source(path)
    except FlowError as exc:
        return None, list(exc.problems)
    return check_text(text, os.fspath(path))


def load_flows(path: str | os.PathLike[str]) -> LoadedFlows:
    """Load and check a flows file; raise FlowError with every error found."""
    return parse_flows(read_source(path), os.fspath(path))
