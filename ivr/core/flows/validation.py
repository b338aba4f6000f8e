"""Turn pydantic's validation errors into located, admin-readable problems.

Pydantic reports a union failure once per member (`prompt.str`, `prompt.list[...]`, ...) and puts
the discriminator tag in the location (`nodes.welcome.message.next`). We walk each error's
location alongside the schema types and the data, drop the tags, keep only the union member that
fits the data's shape, and rewrite the message with a hint.
"""

from __future__ import annotations

import copy
import types
import typing
from dataclasses import dataclass
from typing import Any, Literal, get_args, get_origin

from pydantic import BaseModel, ValidationError

from ivr.core.flows import schema
from ivr.core.flows.problem import Problem, did_you_mean, format_path
from ivr.core.flows.source import Path, SourceMap

_MISSING = object()
# Node fields that name where the caller goes next: without them the node is a dead end.
TARGET_FIELDS = ("next", "otherwise", "open", "closed")
PATTERN_HELP = {
    schema.DIGIT: "is not one key: use 0-9, * or #",
    schema.NODE_NAME: "is not a valid name: start with a letter, then letters, digits, _ or -",
    r"^[a-z_][a-z0-9_]*$": "is not a valid variable name: use lowercase letters, digits and '_'",
}
TYPE_HELP = {
    "dict_type": "expected a mapping",
    "model_type": "expected a mapping",
    "list_type": "expected a list",
    "string_type": "expected text",
    "int_type": "expected a whole number",
    "int_parsing": "expected a whole number",
    "int_from_float": "expected a whole number",
    "bool_type": "expected true or false",
    "bool_parsing": "expected true or false",
}


@dataclass
class _Step:
    """Where a union chose a member along one error's location."""

    path: Path  # data path of the union's value
    data: Any
    members: tuple[Any, ...]
    chosen: Any


@dataclass
class _Walked:
    path: Path
    data: Any
    model: type[BaseModel] | None  # the model that owns the last location element
    unions: list[_Step]


def _unwrap(t: Any) -> Any:
    while get_origin(t) is typing.Annotated:
        t = get_args(t)[0]
    return t


def _union_members(t: Any) -> tuple[Any, ...]:
    if get_origin(t) in (typing.Union, types.UnionType):
        return tuple(_unwrap(m) for m in get_args(t) if m is not type(None))
    return ()


def _is_model(t: Any) -> bool:
    return isinstance(t, type) and issubclass(t, BaseModel)


def _member_tag_matches(member: Any, tag: str) -> bool:
    if _is_model(member):
        field = member.model_fields.get("type")
        if field is not None and get_origin(field.annotation) is Literal:
            return tag in get_args(field.annotation)
        return member.__name__ == tag
    origin = get_origin(member) or member
    return tag.split("[")[0] == getattr(origin, "__name__", "")


def _walk(loc: tuple[Any, ...], data: Any) -> _Walked:
    t: Any = schema.FlowFile
    path: Path = ()
    model: type[BaseModel] | None = None
    unions: list[_Step] = []
    i = 0
    while i < len(loc):
        t = _unwrap(t)
        members = _union_members(t)
        elt = loc[i]
        if len(members) == 1:  # `X | None`: pydantic does not tag it
            t = members[0]
            continue
        if members:
            chosen = next((m for m in members if _member_tag_matches(m, str(elt))), None)
            if chosen is None:  # a union pydantic did not tag (e.g. X | None): keep walking
                t = members[0]
                continue
            unions.append(_Step(path, data, members, chosen))
            t, i = chosen, i + 1
            continue
        if elt == "[key]":  # the error is about a mapping key itself
            i += 1
            continue
        if _is_model(t):
            model = t
            field = t.model_fields.get(str(elt))
            t = field.annotation if field else None
        elif get_origin(t) is dict:
            t = get_args(t)[1]
        elif get_origin(t) is list:
            t = get_args(t)[0]
        else:
            t = None
        path += (elt,)
        if isinstance(data, dict):
            data = data.get(elt, _MISSING)
        elif isinstance(data, list) and isinstance(elt, int) and 0 <= elt < len(data):
            data = data[elt]
        else:
            data = _MISSING
        i += 1
    return _Walked(path, data, model, unions)


def _shape_fits(member: Any, data: Any) -> bool:
    if _is_model(member) or get_origin(member) is dict:
        return isinstance(data, dict)
    if get_origin(member) is list:
        return isinstance(data, list)
    if member is str:
        return isinstance(data, str)
    return True


def _best_member(step: _Step) -> Any | None:
    """The union member the admin most likely meant, or None when no member fits at all."""
    fitting = [m for m in step.members if _shape_fits(m, step.data)]
    if len(fitting) <= 1:
        return fitting[0] if fitting else None
    models = [m for m in fitting if _is_model(m)]
    if models and isinstance(step.data, dict):
        overlap = [(len(set(step.data) & set(m.model_fields)), m) for m in models]
        best = max(overlap, key=lambda pair: pair[0])
        return best[1] if best[0] else None
    return fitting[0]


def _describe_member(member: Any) -> str:
    if _is_model(member):
        return f"a mapping with '{next(iter(member.model_fields))}'"
    origin = get_origin(member)
    if origin is list:
        return "a list"
    if origin is dict:
        return "a mapping"
    return "text" if member is str else getattr(member, "__name__", str(member))


def describe_value(value: Any) -> str:
    """A short description of a YAML value for messages."""
    if value is None or value is _MISSING:
        return "nothing"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return f"'{value}'"
    return str(value)


def _refine(path: Path, data: Any, message: str) -> Path:
    """Point at the exact entry a message quotes (e.g. one day of a weekly timetable)."""
    if not isinstance(data, dict):
        return path
    first_word = message.split(" ", 1)[0]
    if first_word in data:  # "min_digits is larger than max_digits"
        return path + (first_word,)
    if "'" not in message:
        return path
    quoted = message.split("'")[1]
    for key, value in data.items():
        if str(key) == quoted or value == quoted or (isinstance(value, list) and quoted in value):
            return path + (key,)
    return path


def _message(err: dict[str, Any], walked: _Walked) -> tuple[Path, str]:
    kind, loc, path = err["type"], err["loc"], walked.path
    key = str(loc[-1]) if loc else ""
    type_field = walked.model.model_fields.get("type") if walked.model else None
    in_node = type_field is not None and get_origin(type_field.annotation) is Literal
    if kind == "missing":
        if in_node and key in TARGET_FIELDS:
            return path, f"dead end: missing '{key}' (the node the caller goes to next)"
        return path, f"missing required key '{key}'"
    if kind == "extra_forbidden":
        fields = walked.model.model_fields if walked.model else {}
        return path, f"unknown key '{key}'{did_you_mean(key, fields)}"
    if kind == "union_tag_invalid":
        tag = err["ctx"]["tag"]
        return path + ("type",), f"unknown node type '{tag}'{did_you_mean(tag, schema.NODE_TYPES)}"
    if kind == "union_tag_not_found":
        typo = did_you_mean("type", walked.data) if isinstance(walked.data, dict) else ""
        if typo:
            wrong = typo.split("'")[1]
            return path + (wrong,), f"unknown key '{wrong}' (did you mean 'type'?)"
        return path, f"missing 'type' (one of: {', '.join(schema.NODE_TYPES)})"
    if kind == "literal_error":
        return path, f"must be {err['ctx']['expected']}, not {describe_value(err['input'])}"
    if kind == "string_pattern_mismatch":
        help_ = PATTERN_HELP.get(err["ctx"]["pattern"], f"does not match {err['ctx']['pattern']}")
        return path, f"'{err['input']}' {help_}"
    if kind == "too_short" and path and path[-1] == "options":
        return path, "dead end: a menu needs at least one option"
    if kind == "value_error":
        message = str(err["ctx"]["error"])
        return _refine(path, walked.data, message), message
    if kind in TYPE_HELP:
        return path, f"{TYPE_HELP[kind]}, not {describe_value(err['input'])}"
    text = err["msg"]
    return path, f"{text[0].lower()}{text[1:]} (got {describe_value(err['input'])})"


def validation_problems(
    exc: ValidationError, data: Any, lines: SourceMap, filename: str
) -> list[Problem]:
    """Every located problem in `exc`, one per mistake, for the YAML `data` it came from."""
    errors = exc.errors()
    walks = [_walk(tuple(e["loc"]), data) for e in errors]
    chosen: dict[Path, Any] = {}
    collapsed: dict[Path, _Step] = {}
    for walked in walks:
        for step in walked.unions:
            if step.path not in chosen:
                chosen[step.path] = _best_member(step)
                if chosen[step.path] is None:
                    collapsed[step.path] = step
    out: list[Problem] = []
    seen: set[tuple[Path, str]] = set()

    def add(path: Path, message: str) -> None:
        if (path, message) not in seen:
            seen.add((path, message))
            out.append(Problem(filename, lines.line(path), format_path(path), message))

    for err, walked in zip(errors, walks, strict=True):
        steps = walked.unions
        dead = next((s for s in steps if s.path in collapsed), None)
        if dead is not None:
            if all(chosen.get(s.path) is s.chosen for s in steps[: steps.index(dead)]):
                add(dead.path, _collapsed_message(dead))
            continue
        if any(chosen.get(s.path) is not s.chosen for s in steps):
            continue  # an error from a union member the data was not meant for
        add(*_message(err, walked))
    return out


def _collapsed_message(step: _Step) -> str:
    mappings = [m for m in step.members if _shape_fits(m, {})]
    if isinstance(step.data, dict) and mappings and all(_is_model(m) for m in mappings):
        fields = [f for m in step.members if _is_model(m) for f in m.model_fields]
        unknown = ", ".join(f"'{k}'" for k in step.data)
        hint = did_you_mean(next(iter(step.data), ""), fields) if len(step.data) == 1 else ""
        return f"unknown key {unknown}{hint}"
    kinds = [_describe_member(m) for m in step.members]
    expected = ", ".join(kinds[:-1]) + f" or {kinds[-1]}"
    return f"expected {expected}, not {describe_value(step.data)}"


def _prunable(path: Path) -> Path | None:
    """The whole entry to cut out so the rest of the file can still be linted, if any."""
    if len(path) >= 4 and path[0] == "flows" and path[2] == "nodes":
        return path[:4]
    if len(path) >= 2 and path[0] in ("flows", "hours", "queues", "numbers"):
        return path[:2]
    return None


def prune(exc: ValidationError, data: Any) -> tuple[Any, frozenset[Path]] | None:
    """`data` without the entries the schema rejected, and their paths; None if not possible."""
    cuts: set[Path] = set()
    for err in exc.errors():
        cut = _prunable(_walk(tuple(err["loc"]), data).path)
        if cut is None:
            return None
        cuts.add(cut)
    pruned = copy.deepcopy(data)
    for cut in cuts:
        parent = pruned
        for key in cut[:-1]:
            parent = parent.get(key) if isinstance(parent, dict) else None
        if isinstance(parent, dict):
            parent.pop(cut[-1], None)
    return pruned, frozenset(cuts)
