"""A located problem in a flows file: what `ivr flows check` prints, one per line."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from ivr.core.flows.source import Path


class Severity(StrEnum):
    """Errors make a file unusable (a reload is refused); warnings only fail `flows check`."""

    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True)
class Problem:
    """One message about one place in a flows file."""

    file: str
    line: int | None
    path: str
    message: str
    severity: Severity = Severity.ERROR
    column: int | None = None

    @property
    def is_error(self) -> bool:
        return self.severity is Severity.ERROR

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        message = self.message if self.is_error else f"warning: {self.message}"
        return f"{where}: {self.path}: {message}" if self.path else f"{where}: {message}"


def format_path(path: Path) -> str:
    """('flows', 'main', 'nodes', 'm', 'options', 2) -> 'flows.main.nodes.m.options[2]'."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif "." in part or " " in part or not part:
            out += f'["{part}"]'
        else:
            out += f".{part}" if out else part
    return out


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """' (did you mean 'billing'?)' when a choice is close to `word`, else ''."""
    close = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def sort_problems(problems: Iterable[Problem]) -> list[Problem]:
    """File order: by line, errors before warnings on the same line, otherwise as found."""
    return sorted(problems, key=lambda p: (p.line or 0, not p.is_error))
