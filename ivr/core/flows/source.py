"""A YAML loader that remembers where everything came from.

Like Home Assistant's loader, it composes the document into PyYAML nodes (which carry marks),
then builds plain Python data while recording the line and column of every path, so later checks
can point an admin at `flows.yaml:42`. It also refuses duplicate keys, which plain YAML loaders
silently resolve by keeping the last one.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

Path = tuple[str | int, ...]

_Loader: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
MERGE_TAG = "tag:yaml.org,2002:merge"
# Bounds far above any real flows file (the shipped one is 10 KB, about 600 values), so a
# hostile or broken one ("billion laughs": aliases of aliases) is refused before it can take
# the service's memory: the text, the values it expands to, and how deep it nests.
MAX_BYTES = 1 << 20
MAX_VALUES = 100_000
MAX_DEPTH = 40


@dataclass(frozen=True)
class Position:
    """A 1-based line and column in the source text."""

    line: int
    column: int


@dataclass(frozen=True)
class SourceError:
    """Something wrong with the YAML itself, before any schema check."""

    position: Position
    path: Path
    message: str


class SourceMap(Mapping[Path, Position]):
    """Path -> position of the key (for mapping entries) or item (for list entries)."""

    def __init__(self, positions: dict[Path, Position] | None = None) -> None:
        self._positions: dict[Path, Position] = positions or {}

    def __getitem__(self, path: Path) -> Position:
        return self._positions[path]

    def __iter__(self) -> Iterator[Path]:
        return iter(self._positions)

    def __len__(self) -> int:
        return len(self._positions)

    def locate(self, path: Path) -> Position:
        """The position of `path`, or of its nearest recorded ancestor (line 1 at worst)."""
        path = tuple(path)
        while path:
            if path in self._positions:
                return self._positions[path]
            path = path[:-1]
        return self._positions.get((), Position(1, 1))

    def line(self, path: Path) -> int:
        """The line of `path` or of its nearest recorded ancestor."""
        return self.locate(path).line


@dataclass
class Source:
    """Loaded YAML: the data, where each path is, and what went wrong."""

    data: Any
    lines: SourceMap
    errors: list[SourceError] = field(default_factory=list)


def _position(mark: yaml.Mark | None) -> Position:
    if mark is None:
        return Position(1, 1)
    return Position(mark.line + 1, mark.column + 1)


def _yaml_message(exc: yaml.YAMLError) -> tuple[Position, str]:
    """Turn a PyYAML error into (where, one-line message)."""
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        pos = _position(mark)
        problem = exc.problem or exc.context or "malformed YAML"
        message = f"malformed YAML at column {pos.column}: {problem}"
        if exc.context and exc.problem and exc.context_mark is not None:
            message += f" ({exc.context} on line {exc.context_mark.line + 1})"
        return pos, message
    return Position(1, 1), f"malformed YAML: {exc}"


class _Builder:
    """Builds plain data from composed nodes, recording positions and duplicate keys."""

    def __init__(self, loader: Any) -> None:
        self.loader = loader
        self.positions: dict[Path, Position] = {(): Position(1, 1)}
        self.errors: list[SourceError] = []
        self._stack: set[int] = set()
        self.values = 0
        self.too_big = False

    def build(self, node: yaml.Node, path: Path) -> Any:
        self.values += 1
        if self.values > MAX_VALUES or len(path) > MAX_DEPTH:
            if not self.too_big:
                self.too_big = True
                what = (f"more than {MAX_VALUES} values (aliases that repeat aliases?)"
                        if self.values > MAX_VALUES else f"nested more than {MAX_DEPTH} deep")
                self.errors.append(SourceError(_position(node.start_mark), path,
                                               f"the file expands to {what}; refused"))
            return None
        if id(node) in self._stack:
            self.errors.append(
                SourceError(_position(node.start_mark), path, "recursive alias in YAML")
            )
            return None
        self._stack.add(id(node))
        try:
            if isinstance(node, yaml.MappingNode):
                return self._mapping(node, path)
            if isinstance(node, yaml.SequenceNode):
                out = []
                for i, item in enumerate(node.value):
                    self.positions[path + (i,)] = _position(item.start_mark)
                    out.append(self.build(item, path + (i,)))
                return out
            return self._scalar(node, path)
        finally:
            self._stack.discard(id(node))

    def _scalar(self, node: yaml.Node, path: Path) -> Any:
        try:
            return self.loader.construct_object(node, deep=True)
        except yaml.YAMLError as exc:
            pos, message = _yaml_message(exc)
            message = message.replace("malformed YAML", "bad value")
            self.errors.append(SourceError(pos, path, message))
            return None
        except (ValueError, OverflowError) as exc:  # 2026-02-30, a 5000-digit number
            text = str(node.value)
            shown = text if len(text) <= 40 else text[:37] + "..."
            why = (f"{len(text)} digits is too long for a number" if node.tag.endswith(":int")
                   else str(exc)[:120])
            self.errors.append(SourceError(_position(node.start_mark), path,
                                           f"bad value '{shown}': {why}"))
            return None

    def _mapping(self, node: yaml.MappingNode, path: Path) -> dict:
        first_seen: dict[Any, Position] = {}
        for key_node, _ in node.value:
            if key_node.tag == MERGE_TAG:
                continue
            key = self._key(key_node, path)
            if key is None:
                continue
            pos = _position(key_node.start_mark)
            if key in first_seen:
                self.errors.append(
                    SourceError(
                        pos,
                        path + (key,),
                        f"duplicate key '{key}' (first on line {first_seen[key].line})",
                    )
                )
            else:
                first_seen[key] = pos
        try:
            self.loader.flatten_mapping(node)  # resolves `<<: *anchor` merge keys
        except yaml.YAMLError as exc:
            pos, message = _yaml_message(exc)
            self.errors.append(SourceError(pos, path, message))
            return {}
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = self._key(key_node, path, report=False)
            if key is None:
                continue
            child = path + (key,)
            # Explicit keys win over merged ones; a duplicate keeps its first position so
            # messages agree with "first on line N".
            self.positions[child] = first_seen.get(key) or _position(key_node.start_mark)
            out[key] = self.build(value_node, child)
        return out

    def _key(self, key_node: yaml.Node, path: Path, report: bool = True) -> Any:
        if not isinstance(key_node, yaml.ScalarNode):
            if report:
                self.errors.append(
                    SourceError(_position(key_node.start_mark), path, "a key must be plain text")
                )
            return None
        key = self._scalar(key_node, path)
        # Keys like `1:` or `on:` become int/bool in YAML; paths and the schema want text.
        if isinstance(key, bool) or key is None:
            return key_node.value
        return key if isinstance(key, str) else str(key)


def load_yaml(text: str) -> Source:
    """Parse `text` into plain data plus a path -> position map; problems go in `errors`."""
    if len(text) > MAX_BYTES:
        return Source(None, SourceMap(), [SourceError(
            Position(1, 1), (), f"the file is {len(text)} characters long; a flows file may be "
            f"at most {MAX_BYTES}")])
    loader = _Loader(text)
    try:
        try:
            root = loader.get_single_node()
        except yaml.YAMLError as exc:
            pos, message = _yaml_message(exc)
            lines = text.splitlines()
            if pos.line <= len(lines) and "\t" in lines[pos.line - 1][: pos.column]:
                message += "; indent with spaces, not tabs"
            return Source(None, SourceMap(), [SourceError(pos, (), message)])
        if root is None:
            return Source(None, SourceMap(), [SourceError(Position(1, 1), (), "the file is empty")])
        builder = _Builder(loader)
        # Whole-file problems (a missing top-level key) point where the content starts.
        builder.positions[()] = _position(root.start_mark)
        data = builder.build(root, ())
        if builder.too_big:  # what was built is a fragment: the schema would only add noise
            refused = next(e for e in builder.errors if "the file expands to" in e.message)
            return Source(None, SourceMap(), [SourceError(refused.position, (), refused.message)])
        return Source(data, SourceMap(builder.positions), builder.errors)
    finally:
        loader.dispose()
