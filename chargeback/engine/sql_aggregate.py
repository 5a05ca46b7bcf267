"""polars_engine.aggregate's Aggregates from any SQL engine: the dialect-independent part.

Issue 15: DuckDB, PostgreSQL and Spark run the same SQL, written once here with
SQLGlot, so a rule means the same everywhere; only `Primitives` (sql_compile.py)
differ per dialect. An engine module does three things:

1. makes the checked contacts frame a relation named `contacts` (its columns and
   types as the frame's: strings, `date` a DATE, `hs_us` a BIGINT, `tags` as `|a|b|`);
2. runs `flags_select(ws, schema, prims)` into a table or view named `flags`
   (`CREATE TEMP TABLE flags AS <select>`: one row per contact, each rule's match
   as `r<i>`, evidence `e<i>`, control block `c<i>`, reason family `_family`);
3. calls `aggregate_flags(ws, con, dialect, periods)`, which runs the grouped
   queries on `flags` and returns the Aggregates.

`con` is any `Connection`: `execute(sql) -> list[tuple]` (an adapter over the
driver; it is also where an engine logs the SQL it runs). Values that come back
are normalised here (Decimal sums to int), so every driver gives equal
Aggregates. `refuse_types` is the check every dialect shares; what one dialect
cannot mean exactly is refused by that engine itself (NotImplementedError).
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any, Protocol

import polars as pl
from sqlglot import exp

from chargeback.engine.aggregates import Aggregates, Cell, Group
from chargeback.engine.control_series import (
    MAX_CONTROL_RULES,
    CellCounts,
    assemble_cells,
    cell_rows,
    control_indexes,
    decode_cell,
    grouped,
    main_families,
)
from chargeback.engine.polars_engine import MASK_BITS, decode_masks
from chargeback.engine.sql_compile import Compiler, Node, Primitives, bit_sum, col, lookback, window
from chargeback.workspace.model import Match, Workspace

TEXT_TYPES = (pl.String, pl.Categorical, pl.Enum, pl.Null)
AS_TEXT_TYPES = (  # their text form is the same in every engine
    pl.Boolean, pl.Int8, pl.Int16, pl.Int32, pl.Int64, pl.UInt8, pl.UInt16, pl.UInt32, pl.UInt64,
)  # fmt: skip
FLAG_COLUMNS = ("date", "period", "channel", "hs_us")  # what the flags table keeps
Row = tuple[Any, ...]


class Connection(Protocol):
    """The one thing the shared SQL needs from a driver: run a statement, get its rows."""

    def execute(self, sql: str) -> list[Row]: ...


def match_blocks(ws: Workspace) -> list[Match]:
    """Every match block the SQL evaluates: rules' matches, control evidence and control."""
    blocks = [r.match for r in ws.rules]
    for r in ws.rules:
        if r.control is not None:
            blocks += [b for b in (r.control.evidence, r.control.control) if b is not None]
    return blocks


def needed_columns(ws: Workspace, schema: pl.Schema) -> list[str]:
    """The frame's columns the SQL reads, in the frame's order (what an engine must load)."""
    wanted = {*FLAG_COLUMNS, "reason"}
    for block in match_blocks(ws):
        wanted |= block.columns()
    return [c for c in schema if c in wanted]


def refuse_types(ws: Workspace, schema: pl.Schema, engine: str) -> None:
    """NotImplementedError for a matched column whose text form may differ from polars'."""
    for block in match_blocks(ws):
        for column in block.columns() - {"text", "tags"}:
            dtype = schema.get(column)
            if dtype is not None and not isinstance(dtype, (*TEXT_TYPES, *AS_TEXT_TYPES)):
                raise NotImplementedError(
                    f"matching column {column!r} of type {dtype} on {engine} (its text form "
                    "may differ from polars')"
                )
    if len(control_indexes(ws)) > MAX_CONTROL_RULES:
        raise ValueError(f"at most {MAX_CONTROL_RULES} rules may use a control baseline")


def flags_select(
    ws: Workspace, schema: pl.Schema, prims: Primitives, source: str = "contacts"
) -> str:
    """SELECT: `source` -> one row per contact with every rule's match (window ignored) as r<i>."""
    text_cols = {n for n, t in schema.items() if isinstance(t, TEXT_TYPES)}
    comp = Compiler(prims, text_cols)
    base: exp.Select = exp.select("*").from_(exp.to_table(source))
    if any(b.text is not None for b in match_blocks(ws)):
        base = exp.select(
            exp.Star(), prims.lower(col("text")).as_("text_lower", quoted=True)
        ).from_(exp.to_table(source))
    family: Node = (
        prims.first_part(col("reason"), ".")
        if "reason" in schema
        else exp.cast(exp.null(), "VARCHAR")
    )
    cols: list[Node] = [col(c) for c in FLAG_COLUMNS if c in schema]
    cols.append(family.as_("_family", quoted=True))
    cols += [comp.match(r.match).as_(f"r{i}", quoted=True) for i, r in enumerate(ws.rules)]
    for i, r in enumerate(ws.rules):
        if r.control is not None and r.control.evidence is not None:
            cols.append(comp.match(r.control.evidence).as_(f"e{i}", quoted=True))
        if r.control is not None and r.control.control is not None:
            cols.append(comp.match(r.control.control).as_(f"c{i}", quoted=True))
    return exp.select(*cols).from_(base.subquery("src")).sql(prims.dialect)


def _int(value: Any) -> Any:
    """Drivers give sums as Decimal (PostgreSQL NUMERIC) or int: always int."""
    return int(value) if isinstance(value, Decimal) else value


def _rows(con: Connection, query: Node, dialect: str) -> list[Row]:
    return [tuple(_int(v) for v in row) for row in con.execute(query.sql(dialect))]


def _count(condition: Node, name: str, weight: str | None = None) -> Node:
    """How many rows the condition holds on, as BIGINT in every dialect; with `weight`,
    how many contacts (each row then stands for `weight` contacts)."""
    held: Node = bit_sum([condition])
    if weight is not None:
        held = exp.Mul(this=exp.paren(held), expression=col(weight))
    return exp.cast(exp.Sum(this=held), "BIGINT").as_(name, quoted=True)


def _contacts(weight: str | None) -> Node:
    """COUNT(*), or the rows' weights summed: the contacts a group holds."""
    if weight is None:
        return exp.cast(exp.Count(this=exp.Star()), "BIGINT")
    total = exp.Coalesce(this=exp.Sum(this=col(weight)), expressions=[exp.Literal.number(0)])
    return exp.cast(total, "BIGINT")


def mask_columns(ws: Workspace) -> list[Node]:
    """`_m<k>`: the windowed matches of 62 rules each, as polars_engine's masks."""
    rules = ws.rules
    masks: list[Node] = []
    for start in range(0, len(rules), MASK_BITS):
        conds: list[Node] = [
            exp.and_(col(f"r{start + k}"), window(r, ws.decision(r.decision)))
            for k, r in enumerate(rules[start : start + MASK_BITS])
        ]
        masks.append(bit_sum(conds).as_(f"_m{start // MASK_BITS}", quoted=True))
    return masks


def aggregate_flags(
    ws: Workspace,
    con: Connection,
    dialect: str,
    periods: set[str] | None = None,
    flags: str = "flags",
    weight: str | None = None,
) -> Aggregates:
    """polars_engine.aggregate's contract from the `flags` relation: same groups, same order.
    `weight`: a column saying how many contacts each row of `flags` stands for (rows
    grouped already, `hs_us` then their handle time summed); else one row per contact."""
    masks = mask_columns(ws)
    indexes = control_indexes(ws)
    keys: list[Node] = [col("period"), col("channel"), *masks]
    if indexes:
        keys.append(bit_sum([col(f"r{i}") for i in indexes]).as_("_cell", quoted=True))
    hs = exp.Sum(this=exp.cast(col("hs_us"), "DECIMAL(38, 0)"))
    query = exp.select(
        *keys,
        _contacts(weight).as_("n"),
        exp.Coalesce(this=hs, expressions=[exp.Literal.number(0)]).as_("hs"),
    ).from_(exp.to_table(flags))
    if periods is not None:
        query = query.where(
            col("period").isin(*[exp.Literal.string(p) for p in sorted(periods)])
            if periods
            else exp.false()
        )
    query = query.group_by(*[exp.Literal.number(k + 1) for k in range(len(keys))])
    rows = _rows(con, query, dialect)
    rows.sort(key=lambda row: tuple(row[:-2]))  # polars' order: Python's str order = code points
    n_masks = len(masks)
    groups = tuple(
        Group(
            period,
            channel,
            decode_masks(values[:n_masks]),
            int(n),
            int(hs),
            decode_cell(ws, int(values[n_masks])) if indexes else frozenset(),
        )
        for period, channel, *values, n, hs in rows
    )
    cells, sharing = control_counts(ws, con, dialect, flags, weight) if indexes else ({}, {})
    return Aggregates(
        groups=groups,
        baseline_counts=baseline_counts(ws, con, dialect, flags, weight),
        cells=cells,
        sharing=sharing,
    )


def baseline_counts(
    ws: Workspace, con: Connection, dialect: str, flags: str = "flags", weight: str | None = None
) -> dict[str, int]:
    """SPEC 4's B per flat-baseline rule: its matches in the lookback before `effective`."""
    baseline = [(i, r) for i, r in enumerate(ws.rules) if r.baseline_lookback_days is not None]
    if not baseline:
        return {}
    sums = [
        _count(exp.and_(col(f"r{i}"), lookback(r, ws.decision(r.decision))), f"_b{i}", weight)
        for i, r in baseline
    ]
    (row,) = _rows(con, exp.select(*sums).from_(exp.to_table(flags)), dialect)
    return {r.id: int(c or 0) for (_, r), c in zip(baseline, row, strict=True)}


def control_counts(
    ws: Workspace, con: Connection, dialect: str, flags: str = "flags", weight: str | None = None
) -> tuple[dict[frozenset[int], Cell], dict[str, frozenset[str]]]:
    """SPEC 4b's cells (daily series) and sharing, as control_series.control_inputs gives."""
    indexes = control_indexes(ws)
    table = exp.to_table(flags)
    span = exp.select(
        exp.Min(this=col("date")),
        exp.Max(this=col("date")),
        _contacts(weight),
    ).from_(table)
    ((first, last, total),) = _rows(con, span, dialect)
    if not indexes or total == 0:
        return {}, {}
    assert isinstance(first, date) and isinstance(last, date)
    rules = range(len(ws.rules))
    evidence = [i for i in indexes if (b := ws.rules[i].control) and b.evidence is not None]
    controls = [i for i in indexes if (b := ws.rules[i].control) and b.control is not None]
    touched = [col(f"r{i}") for i in rules] + [col(f"e{i}") for i in evidence]
    untouched = exp.not_(exp.paren(exp.or_(*touched))) if touched else exp.true()
    cell = bit_sum([col(f"r{i}") for i in indexes])
    n_rows = _contacts(weight)

    def run(query: exp.Select) -> list[Row]:
        return _rows(con, query, dialect)

    per_day = run(
        exp.select(
            col("date"),
            *[_count(col(f"c{i}"), f"c{i}", weight) for i in controls],
            _count(untouched, "_untouched", weight),
        )
        .from_(table)
        .group_by(col("date"))
    )
    per_cell = run(
        exp.select(
            cell.as_("_cell"),
            col("date"),
            n_rows,
            *[_count(col(f"e{i}"), f"e{i}", weight) for i in evidence],
        )
        .from_(table)
        .where(exp.NEQ(this=cell.copy(), expression=exp.Literal.number(0)))
        .group_by(exp.Literal.number(1), exp.Literal.number(2))
    )
    family_rows = run(
        exp.select(col("_family"), col("date"), n_rows.copy())
        .from_(table)
        .where(exp.and_(untouched.copy(), exp.not_(col("_family").is_(exp.null()))))
        .group_by(col("_family"), col("date"))
    )
    cell_families = run(
        exp.select(cell.as_("_cell"), col("_family"), n_rows.copy())
        .from_(table)
        .group_by(exp.Literal.number(1), exp.Literal.number(2))
    )
    counts = CellCounts(
        first=first,
        last=last,
        untouched=[(row[0], row[-1]) for row in per_day],
        controls={i: [(row[0], row[1 + k]) for row in per_day] for k, i in enumerate(controls)},
        families=grouped(family_rows),
        cells=cell_rows(per_cell),
        mains=main_families(cell_families),
        pairs=run(exp.select(*[col(f"r{i}") for i in rules]).distinct().from_(table)),
    )
    return assemble_cells(ws, controls, evidence, counts)
