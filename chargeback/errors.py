"""One error root that carries the place a user must look at."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol


@dataclass(frozen=True)
class Problem:
    """A single finding: where it is and what is wrong.

    `line` is a 1-based line in a YAML or CSV file; `row` a 1-based data row
    (the header not counted); `column` names a data column.
    """

    message: str
    path: Path | str | None = None
    line: int | None = None
    row: int | None = None
    column: str | None = None
    severity: str = "error"  # or "hint": advice that goes with the errors

    def place(self) -> str:
        parts: list[str] = []
        if self.path is not None:
            where = display_path(self.path)
            if self.line is not None:
                where += f":{self.line}"
            parts.append(where)
        if self.row is not None:
            parts.append(f"row {self.row}")
        if self.column is not None:
            parts.append(f"column '{self.column}'")
        return ", ".join(parts)

    def __str__(self) -> str:
        place = self.place()
        return f"{place}: {self.message}" if place else self.message


class Located(Protocol):
    """Where something was declared (workspace.model.Place)."""

    @property
    def path(self) -> Path: ...

    @property
    def line(self) -> int: ...


def problem_at(message: str, place: Located | None) -> Problem:
    """A problem at a declaration's file and line, or at no place when it has none."""
    if place is None:
        return Problem(message)
    return Problem(message, place.path, place.line)


def display_path(path: Path | str) -> str:
    """Paths relative to the working folder when possible: shorter, and what users typed.
    A database source's name (`postgresql://...`) is shown as it is."""
    if isinstance(path, str) and "://" in path:
        return path
    p = Path(path)
    try:
        return str(p.resolve().relative_to(Path.cwd().resolve()))
    except (ValueError, OSError):
        return str(p)


class ChargebackError(Exception):
    """A user error (bad rules, bad data, bad settings): exit code 1, no traceback."""

    def __init__(self, problems: list[Problem] | Problem | str) -> None:
        if isinstance(problems, str):
            problems = [Problem(problems)]
        elif isinstance(problems, Problem):
            problems = [problems]
        self.problems: list[Problem] = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class WorkspaceError(ChargebackError):
    """The workspace's YAML or settings are wrong."""


class DataError(ChargebackError):
    """Contact (or order) rows break the data contract."""


class UsageError(ChargebackError):
    """Options that do not fit together (exit code 2)."""


def driver(module: str, engine: str) -> Any:
    """An engine's driver module, imported when first needed; missing, the refusal names
    the engine's extra (engines.module checks it up front, before anything is read)."""
    try:
        return importlib.import_module(module)
    except ImportError:  # pragma: no cover - the extra is missing
        raise NotImplementedError(
            f"the {engine} engine needs its extra: pip install 'chargeback[{engine}]'"
        ) from None
