"""Control baselines' daily counts (SPEC 4b) from DuckDB's flags table.

The SQL side of control_series.control_inputs: the same counts (daily series,
evidence counts, reason families, sharing), computed as grouped counts over
`flags` (one row per contact, rule i's match as `r<i>`, evidence
`e<i>`, control block `c<i>`, reason family `_family`). Only counts come back,
and control_series.assemble_cells turns them into cells, as it does for polars.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlglot import exp

from chargeback.engine.aggregates import Cell
from chargeback.engine.control_series import (
    CellCounts,
    assemble_cells,
    cell_rows,
    control_indexes,
    grouped,
    main_families,
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
    family_rows = run(
        exp.select(col("_family"), col("date"), exp.Count(this=exp.Star()))
        .from_(flags)
        .where(exp.and_(untouched.copy(), exp.not_(col("_family").is_(exp.null()))))
        .group_by(col("_family"), col("date"))
    )
    cell_families = run(
        exp.select(cell.as_("_cell"), col("_family"), exp.Count(this=exp.Star()))
        .from_(flags)
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
        pairs=run(exp.select(*[col(f"r{i}") for i in rules]).distinct().from_(flags)),
    )
    return assemble_cells(ws, controls, evidence, counts)
