"""A file's header against what the table needs: names, duplicates, mapping, types.

Before a row is read, each file's columns are held to its TableSpec: every
required column present (under its own name or the one `columns:` maps to it),
no name twice (two columns polars would silently tell apart as `x` and
`x_duplicated_0`), no column that the mapping and the file's own header would
both make the same canonical column, no control characters in a name, and a type
chargeback can read each column as (a Parquet list or struct where text is
expected is refused here, by column, instead of failing somewhere in a cast).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from chargeback.data.checks import MONEY, TableSpec, normalise
from chargeback.data.diagnose import kind_problem, raw_header
from chargeback.data.limits import shown, shown_names
from chargeback.data.sources import is_text_table
from chargeback.errors import Problem
from chargeback.workspace.fields import suggest

DUPLICATED = re.compile(r"(.*)_duplicated_\d+")
NAME_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
IDS = ("contact_id", "customer_id")


@dataclass
class Plan:
    """What to select from one file, what it lacks, and what is wrong with it."""

    select: list[pl.Expr] = field(default_factory=list)
    absent: list[str] = field(default_factory=list)  # optional columns the file lacks
    problems: list[Problem] = field(default_factory=list)


def plan_columns(
    spec: TableSpec, path: Path, header: pl.Schema, mapping: dict[str, str], wanted: set[str]
) -> Plan:
    plan = Plan()
    line = 1 if is_text_table(path) else None
    names = header.names()

    def problem(message: str, column: str | None = None) -> None:
        plan.problems.append(Problem(message, path, line, column=column))

    for name in names:
        if NAME_CONTROL.search(name):
            binary = kind_problem(path) if not path.name.lower().endswith(".gz") else None
            problem(binary.message if binary else _control_in_header(name))
            return plan
    if is_text_table(path):
        for message in _duplicates(path, names):
            problem(message)
    for name, source in sorted(mapping.items()):
        if source != name and source in header and name in header:
            problem(
                f"two columns would be {spec.kind}' {name}: '{source}' (mapped to {name} by "
                f"columns: in chargeback.yaml) and the file's own '{name}'; remove or rename "
                f"one of them, or the mapping"
            )
    if plan.problems:
        return plan
    for name in sorted(wanted):
        source = mapping.get(name, name)
        if source in header:
            dtype = header[source]
            wrong = dtype_problem(spec, name, dtype)
            if wrong:
                plan.problems.append(
                    Problem(f"holds {wrong}; {expected(spec, name)}", path, column=source)
                )
            else:
                plan.select.append(normalise(pl.col(source), dtype, name))
        elif name in spec.required or name in mapping:
            how = (
                f"mapped to {name} by columns: in chargeback.yaml"
                if name in mapping
                else "required"
            )
            close = suggest(source, [n for n in names if len(n) <= 200])
            problem(
                f"missing column '{shown(source)}' ({how}){close}; "
                f"the file has: {shown_names(names)}"
            )
        else:
            plan.absent.append(name)
    return plan


def _control_in_header(name: str) -> str:
    if "\x00" in name:
        why = "NUL bytes: the file looks like UTF-16 text; save or export it as UTF-8"
    elif "\r" in name:
        why = (
            "a carriage return: the file's lines end in CR only (old Mac style); "
            "save it with LF or CRLF line ends"
        )
    else:
        why = "control characters"
    return f"the header holds {why} ('{shown(name)}')"


def _duplicates(path: Path, names: list[str]) -> list[str]:
    """Two columns with one name, as the header line has them."""
    renamed = [m.group(1) for n in names if (m := DUPLICATED.fullmatch(n)) and m.group(1) in names]
    if not any(renamed):  # no duplicates, or only columns without a name
        return []
    raw = raw_header(path) or names
    counts = Counter(n.strip() for n in raw)
    out: list[str] = []
    for name, count in counts.items():
        if count > 1 and name:
            places = [str(i) for i, n in enumerate(raw, start=1) if n.strip() == name]
            out.append(
                f"columns {', '.join(places[:-1])} and {places[-1]} are all named '{shown(name)}'"
                if count > 2
                else f"columns {places[0]} and {places[1]} are both named '{shown(name)}'"
            )
    return [f"{m}: rename one, chargeback cannot tell which to read" for m in out]


def _text_like(dtype: pl.DataType) -> bool:
    base = dtype.base_type()
    return base in (pl.String, pl.Categorical, pl.Enum, pl.Null, pl.Boolean) or dtype.is_integer()


def dtype_problem(spec: TableSpec, name: str, dtype: pl.DataType) -> str | None:
    """What is wrong with a column's type for this canonical column (None: readable)."""
    base = dtype.base_type()
    if name == spec.timestamp:
        ok = base in (pl.String, pl.Categorical, pl.Null, pl.Datetime, pl.Date)
    elif name == "tags":
        inner = dtype.inner if isinstance(dtype, pl.List) else None
        ok = _text_like(dtype) or (isinstance(inner, pl.DataType) and _text_like(inner))
    elif name in MONEY or name == "handle_seconds":
        ok = dtype.is_numeric() or base in (pl.String, pl.Null)
    elif name in IDS:
        # an id kept as a number has lost its leading zeros (and, past 2**53 in
        # JSON, digits): it is refused rather than matched wrongly
        ok = base in (pl.String, pl.Categorical, pl.Enum, pl.Null)
    else:
        ok = _text_like(dtype)
    return None if ok else describe(dtype)


def describe(dtype: pl.DataType) -> str:
    base = dtype.base_type()
    if base == pl.Struct:
        kind = "objects (structs)"
    elif base in (pl.List, pl.Array):
        kind = "lists"
    elif base == pl.Binary:
        kind = "binary data"
    elif dtype.is_float() or base == pl.Decimal:
        kind = "numbers with decimals"
    elif dtype.is_temporal():
        kind = "dates or times"
    elif base == pl.Boolean:
        kind = "true/false values"
    elif dtype.is_integer():
        kind = "whole numbers"
    else:
        kind = "values"
    return f"{kind} ({dtype})"


def expected(spec: TableSpec, name: str) -> str:
    if name == spec.timestamp:
        return "expected timestamps (a datetime or date column, or ISO 8601 text)"
    if name == "tags":
        return "expected text or a list of text"
    if name in MONEY or name == "handle_seconds":
        return "expected numbers"
    if name in IDS:
        return (
            "expected text: an id stored as a number loses leading zeros (and long ones "
            "digits), so write this column as text (a string column, or quoted in JSON)"
        )
    return "expected text (or whole numbers, true/false)"
