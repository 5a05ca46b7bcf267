"""Control baselines' daily counts (SPEC 4b) from DuckDB's flags table.

The SQL mirror of control_series.control_inputs: the same cells, daily series,
evidence counts, reason-family controls and sharing, computed as grouped
counts over `flags` (one row per contact, rule i's match as `r<i>`, evidence
`e<i>`, control block `c<i>`, reason family `_family`). Only counts come back.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from sqlglot import exp

from chargeback.engine.aggregates import Cell
from chargeback.engine.control import DailySeries
from chargeback.engine.control_series import (
    FAMILY_DAILY,
    FAMILY_SHARE,
    control_indexes,
    decode_cell,
)
from chargeback.engine.sql_compile import Node, bit_sum, col
from chargeback.workspace.model import Workspace


def _count(condition: Node, name: str) -> Node:
    return exp.Sum(this=bit_sum([condition])).as_(name, quoted=True)


def control_inputs_sql(
    ws: Workspace, con: Any
) -> tuple[dict[frozenset[int], Cell], dict[str, frozenset[str]]]:
    """Every non-empty cell's daily series, and the rules sharing contacts with control rules."""
    indexes = control_indexes(ws)
    span = exp.select(
        exp.Min(this=col("date")), exp.Max(this=col("date")), exp.Count(this=exp.Star())
    )
    first, last, total = con.execute(span.from_("flags").sql("duckdb")).fetchone()
    if not indexes or total == 0:
        return {}, {}
    assert isinstance(first, date) and isinstance(last, date)
    rules = range(len(ws.rules))
    evidence = [i for i in indexes if (b := ws.rules[i].control) and b.evidence is not None]
    controls = [i for i in indexes if (b := ws.rules[i].control) and b.control is not None]
    touched = [col(f"r{i}") for i in rules] + [col(f"e{i}") for i in evidence]
    untouched = exp.not_(exp.paren(exp.or_(*touched))) if touched else exp.true()
    cell = bit_sum([col(f"r{i}") for i in indexes])
    flags = exp.to_table("flags")

    def run(query: exp.Select) -> list[tuple[Any, ...]]:
        return list(con.execute(query.sql("duckdb")).fetchall())

    per_day = run(
        exp.select(
            col("date"),
            *[_count(col(f"c{i}"), f"c{i}") for i in controls],
            _count(untouched, "_untouched"),
        )
        .from_(flags)
        .group_by(col("date"))
    )
    per_cell = run(
        exp.select(
            cell.as_("_cell"),
            col("date"),
            exp.Count(this=exp.Star()),
            *[_count(col(f"e{i}"), f"e{i}") for i in evidence],
        )
        .from_(flags)
        .where(exp.NEQ(this=cell.copy(), expression=exp.Literal.number(0)))
        .group_by(exp.Literal.number(1), exp.Literal.number(2))
    )
    days = tuple(first + timedelta(days=k) for k in range((last - first).days + 1))
    position = {d: k for k, d in enumerate(days)}

    def daily(rows: list[tuple[date, int]]) -> tuple[int, ...]:
        counts = [0] * len(days)
        for d, n in rows:
            counts[position[d]] = int(n or 0)
        return tuple(counts)

    names = ["_untouched", *(f"c{i}" for i in controls)]
    control_cols = {
        name: daily([(row[0], row[1 + k]) for row in per_day])
        for k, name in enumerate([*(f"c{i}" for i in controls), "_untouched"])
    }
    assert set(control_cols) == set(names)
    family_rows = run(
        exp.select(col("_family"), col("date"), exp.Count(this=exp.Star()))
        .from_(flags)
        .where(exp.and_(untouched.copy(), exp.not_(col("_family").is_(exp.null()))))
        .group_by(col("_family"), col("date"))
    )
    by_family: dict[str, list[tuple[date, int]]] = {}
    for fam, d, n in family_rows:
        by_family.setdefault(str(fam), []).append((d, int(n)))
    families = {
        name: daily(rows)
        for name, rows in by_family.items()
        if sum(n for _, n in rows) >= FAMILY_DAILY * len(days)
    }
    mains = _main_families(con, cell)
    cells: dict[frozenset[int], Cell] = {}
    for value in sorted({int(row[0]) for row in per_cell}):
        rows = [row for row in per_cell if int(row[0]) == value]
        members = decode_cell(ws, value)
        own = [i for i in sorted(members) if i in controls]
        control = control_cols[f"c{own[0]}" if own else "_untouched"]
        reason_family = None
        if not own:
            main = mains.get(value)
            reason_family = main if main is not None and main in families else None
            control = families[reason_family] if reason_family is not None else control
        cells[members] = Cell(
            rules=members,
            series=DailySeries(
                days=days, matched=daily([(r[1], r[2]) for r in rows]), control=control
            ),
            evidence={
                i: daily([(r[1], r[3 + k]) for r in rows])
                for k, i in enumerate(evidence)
                if i in members
            },
            family=reason_family,
        )
    pairs = run(exp.select(*[col(f"r{i}") for i in rules]).distinct().from_(flags))
    sharing: dict[str, set[str]] = {ws.rules[i].id: set() for i in indexes}
    for row in pairs:
        hit = [ws.rules[i].id for i, v in enumerate(row) if v]
        for rid in hit:
            if rid in sharing:
                sharing[rid].update(h for h in hit if h != rid)
    return cells, {k: frozenset(v) for k, v in sharing.items()}


def _main_families(con: Any, cell: Node) -> dict[int, str | None]:
    """Per cell, the reason family of 80% or more of its contacts (control_series._main_family)."""
    rows = con.execute(
        exp.select(cell.as_("_cell"), col("_family"), exp.Count(this=exp.Star()))
        .from_(exp.to_table("flags"))
        .group_by(exp.Literal.number(1), exp.Literal.number(2))
        .sql("duckdb")
    ).fetchall()
    totals: dict[int, int] = {}
    top: dict[int, tuple[int, str | None]] = {}
    for value, fam, n in rows:
        value, n = int(value), int(n)
        totals[value] = totals.get(value, 0) + n
        if value not in top or n > top[value][0]:
            top[value] = (n, fam)
    return {
        v: (str(fam) if fam is not None and n >= FAMILY_SHARE * totals[v] else None)
        for v, (n, fam) in top.items()
    }
