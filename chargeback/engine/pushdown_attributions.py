"""attributions.parquet's rows computed where the contacts are (SPEC 5, SPEC 10, issue 15).

drilldown.contact_attributions reads every contact out to list its weight and
cost per decision. On duckdb (Parquet files, a `duckdb:///` database), postgres
and spark (Parquet files) the run's attribution is only known after the
in-engine ledger, so this
is a second pass on the same source: every contact's windowed rule masks and
control cell are compiled onto the pushdown's derive (as pushdown_check does),
the few distinct (period, channel, masks, cell) come back, drilldown's own
`_parts` turns them into weights and exact integer rounding terms, that small
table goes back into the engine, and the join does the per-contact arithmetic
in exact integers (DuckDB HUGEINT, PostgreSQL NUMERIC, Spark DECIMAL(38, 0) and
`div`; drilldown's bound keeps
every intermediate below 2**126, and parts past it are done in Python fractions
as drilldown does). Only the finished rows leave.

A second pass may read a source that changed since the ledger's (rows appended to
a live table): the keys table's contacts and handle time per group (period,
channel, windowed masks, cell) must be the ledger's own groups' (Attribution.groups)
and its ids distinct, else None, and the run reads the contacts out.

Row order is the read-out frame's: Parquet files in the listed order, then each
file's row order (DuckDB's read_parquet file name and file_row_number, Spark's
file index and `_metadata.row_index`); a database source (PostgreSQL, a DuckDB
file, an `sc://` Spark table or query) in the order the read-out export sorts it
(warehouse._read_query: the id column, on PostgreSQL as its text), computed by the
same engine on the same expression, so its collation too. Those keys are kept as
columns (cb_o<i>) and the final query sorts by them: no global ROW_NUMBER window,
which Spark would run in one task.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from fractions import Fraction
from pathlib import Path
from typing import Any

import polars as pl
from sqlglot import exp

from chargeback.engine.aggregates import Group, GroupTable
from chargeback.engine.attribute import Attribution
from chargeback.engine.control_series import control_indexes
from chargeback.engine.drilldown import (
    COLUMNS,
    COST_DTYPE,
    MICRO,
    _costs_in_python,
    _parts,
)
from chargeback.engine.engines import EngineChoice, driver_error
from chargeback.engine.in_engine import _columns, _connection
from chargeback.engine.polars_engine import MASK_BITS, decode_group
from chargeback.engine.pushdown import Logged, Plan, plan
from chargeback.engine.pushdown_spark_sql import SparkDialect, spark_literal
from chargeback.engine.pushdown_sql import Column, Dialect, added, base_query, literal
from chargeback.engine.sql_aggregate import Connection, match_blocks
from chargeback.engine.sql_compile import Compiler, Node, Primitives, col, flag, window
from chargeback.workspace.model import DbSource, Workspace

KEYS, PARTS = "cb_attr_keys", "cb_attr_parts"
ORDER = "cb_o"  # the read-out order's keys: cb_o0, cb_o1
FILE_NAME = "cb_file"  # read_parquet's file name column, named so it cannot meet a user's
BATCH = 500  # parts per INSERT
ENGINES = ("duckdb", "postgres", "spark")
ROWS = pl.Schema(  # the joined rows as they leave the engine
    {
        **{c: pl.String() for c in COLUMNS[:4]},
        "weight": pl.Float64(),
        "_micro": pl.Int128(),  # the cost in micro-units
        "_part": pl.Int64(),  # drilldown's index of a part priced in Python fractions, else -1
        "hs_us": pl.Int64(),
    }
)


def engine_attributions(
    ws: Workspace,
    choice: EngineChoice,
    spec: str | DbSource,
    root: Path,
    wanted: set[str],
    attribution: Attribution,
    periods: Sequence[str],
) -> pl.DataFrame | None:
    """contact_attributions' frame (schema, values, order) from the engine, or None to
    read the contacts out. Call it only once the in-engine ledger passed every row."""
    if choice.name not in ENGINES or ws.settings.timestamp_format is not None:
        return None
    if len(control_indexes(ws)) >= MASK_BITS:
        return None  # a cell past one BIGINT: polars' own would overflow too
    try:
        with _connection(ws, choice, spec, root) as found:
            if found is None:
                return None
            con, relation, families, prims, dialect, files, _, _ = found
            log = choice.sql_log if dialect == "duckdb" else None  # postgres' con logs
            described = con.describe(relation)
            names = {n for n, _ in described}
            columns = _columns(ws, wanted, {n: families(t) for n, t in described})
            if columns is None:
                return None
            ordered = _order(relation, files, columns, dialect, names)
            if ordered is None:
                return None
            relation, by = ordered
            logged = Logged(con, log)
            if files and dialect == "duckdb" and not _names_known(logged, relation, files):
                return None
            p = plan(ws, relation, columns, dialect)
            if p is None:
                return None
            derive = _derive_in_order(logged, p, relation, by)
            if derive is None:
                return None
            order = [f"{ORDER}{i}" for i in range(len(by))]
            return _attributions(ws, logged, (p, derive, order), prims, attribution, periods)
    except driver_error(choice):
        return None


def _order(
    relation: str,
    files: list[Path],
    columns: dict[str, tuple[str, str]],
    dialect: str,
    names: set[str],
) -> tuple[str, list[str]] | None:
    """(the relation to read, the expressions that sort its rows as the read-out frame)."""
    d = SparkDialect() if dialect == "spark" else Dialect(dialect)
    if files and dialect == "spark":  # each file's index and row index (Spark's _metadata)
        if FILE_NAME in names or "cb_row" in names:
            return None
        reads = [
            f"SELECT *, {i} AS {d.ident(FILE_NAME)}, _metadata.row_index AS {d.ident('cb_row')} "
            f"FROM parquet.`{str(path.resolve()).replace('`', '``')}`"
            for i, path in enumerate(files)
        ]
        by = [d.ident(FILE_NAME), d.ident("cb_row")]
        return f"({' UNION ALL '.join(reads)}) AS cb_files", by
    if files:  # Parquet files on DuckDB: in_engine lists them in the read-out's order
        prefix = "read_parquet(["
        if FILE_NAME in names or "file_row_number" in names:
            return None
        if not relation.startswith(prefix) or not relation.endswith(")"):
            return None
        extra = f", filename = {literal(FILE_NAME)}, file_row_number = true)"
        whens = " ".join(f"WHEN {literal(str(p))} THEN {i}" for i, p in enumerate(files))
        by = [f"CASE {d.ident(FILE_NAME)} {whens} END", d.ident("file_row_number")]
        return relation[:-1] + extra, by
    source, family = columns["contact_id"]
    if dialect == "postgres":  # the export's `"id"::text AS "id" ... ORDER BY "id"`
        if family not in ("text", "integer", "boolean"):
            return None
        return relation, [f"{d.ident(source)}::text"]
    if family != "text":
        return None
    return relation, [d.ident(source)]  # DuckDB's and Spark's exports sort by the id itself


def _names_known(con: Logged, relation: str, files: list[Path]) -> bool:
    """Every row's file name is one the ORDER BY lists (else its CASE would be NULL)."""
    listed = ", ".join(literal(str(p)) for p in files)
    name = Dialect("duckdb").ident(FILE_NAME)
    sql = f"SELECT COUNT(*) FROM {relation} WHERE {name} NOT IN ({listed})"
    ((n,),) = con.execute(sql)
    return int(n) == 0


def _derive_in_order(con: Logged, p: Plan, relation: str, by: list[str]) -> str | None:
    """Plan.derive (on Spark spark_derive's, its local day from polars' offsets) with the
    read-out order's keys as cb_o0, cb_o1."""
    d = p.dialect
    tail = f" FROM ({p.base}) AS b"
    if not p.derive.startswith("SELECT ") or not p.derive.endswith(tail):
        return None
    head = p.derive.removesuffix(tail)  # SELECT <the canonical columns>
    seq = Column()
    seq.first = {f"{ORDER}{i}": e for i, e in enumerate(by)}
    built = {**p.source.built, ORDER: seq}
    derive: str | None = p.derive
    if p.dialect.name == "spark":
        from chargeback.engine.pushdown_spark_review import spark_derive

        derive = spark_derive(con, replace(p, source=replace(p.source, built=built)))
    if derive is None:
        return None
    if derive == p.derive:  # the plan's own base: made again with the keys in it
        rest = f" FROM ({base_query(d, relation, list(built.values()))}) AS b"
    elif derive.startswith(head):  # spark_derive's base, made from `built`: the keys in it
        rest = derive.removeprefix(head)
    else:
        return None
    return f"{head}, {', '.join(d.ident(n) for n in seq.first)}{rest}"


def _keys_sql(
    ws: Workspace, p: Plan, derive: str, prims: Primitives, periods: list[str], order: list[str]
) -> str:
    """Each contact of `periods`: id, period, channel, hs_us, the order's keys, windowed masks
    (cb_m<k>, as MatchBits' _m<k>) and control cell (cb_cell, as MatchBits.cell)."""
    d, dialect = p.dialect, prims.dialect
    comp = Compiler(prims, {n for n, t in p.schema.items() if t == pl.String})
    source = f"SELECT * FROM ({derive}) AS cb_d"
    if any(b.text is not None for b in match_blocks(ws)):
        lowered = prims.lower(col("text")).as_("text_lower", quoted=True).sql(dialect)
        source = f"SELECT *, {lowered} FROM ({derive}) AS cb_d"
    rules = ["*"] + [
        f"{comp.match(r.match).sql(dialect)} AS {d.ident(f'cb_r{i}')}"
        for i, r in enumerate(ws.rules)
    ]
    matched = f"SELECT {', '.join(rules)} FROM ({source}) AS cb_src"
    items = [d.ident(n) for n in ("contact_id", "period", "channel", "hs_us", *order)]
    for k, name in enumerate(_mask_names(ws)):
        chunk = range(k * MASK_BITS, min(len(ws.rules), (k + 1) * MASK_BITS))
        bits = [_windowed(ws, i, i - k * MASK_BITS).sql(dialect) for i in chunk]
        items.append(f"({added(bits)}) AS {d.ident(name)}")
    indexes = control_indexes(ws)
    if indexes:
        cell = [flag(col(f"cb_r{i}"), 1 << k).sql(dialect) for k, i in enumerate(indexes)]
        items.append(f"({added(cell)}) AS {d.ident('cb_cell')}")
    wanted = ", ".join(literal(x) for x in periods) if periods else None
    where = f"{d.ident('period')} IN ({wanted})" if wanted else "FALSE"
    return f"SELECT {', '.join(items)} FROM ({matched}) AS cb_rules WHERE {where}"


def _windowed(ws: Workspace, i: int, bit: int) -> Node:
    rule = ws.rules[i]
    condition = exp.and_(col(f"cb_r{i}"), window(rule, ws.decision(rule.decision)))
    return flag(condition, 1 << bit)


def _mask_names(ws: Workspace) -> list[str]:
    return [f"cb_m{k}" for k in range(-(-len(ws.rules) // MASK_BITS))]


def _attributions(
    ws: Workspace,
    con: Logged,
    source: tuple[Plan, str, list[str]],
    prims: Primitives,
    attribution: Attribution,
    periods: Sequence[str],
) -> pl.DataFrame | None:
    """The keys table, its distinct groups out (None unless they are the ledger's), the
    parts table in, the joined rows out. `source`: the plan, its derive, the order's keys."""
    p, derive, order = source
    d = p.dialect
    engine_keys = ["period", "channel", *_mask_names(ws)]
    engine_keys += ["cb_cell"] if control_indexes(ws) else []
    # drilldown's names for the same keys (MatchBits' _m<k> and _cell)
    keys = [k.removeprefix("cb") if k.startswith("cb_") else k for k in engine_keys]
    try:
        keys_sql = _keys_sql(ws, p, derive, prims, list(periods), order)
        con.execute(f"CREATE TEMP TABLE {KEYS} AS {keys_sql}")
        ident = d.ident("contact_id")
        ((n, distinct),) = con.execute(f"SELECT COUNT(*), COUNT(DISTINCT {ident}) FROM {KEYS}")
        if int(n) != int(distinct):
            return None  # a duplicate id (or none): not the rows the ledger passed
        listed = ", ".join(d.ident(k) for k in engine_keys)
        hs = d.ident("hs_us")
        summed = f"CAST({hs} AS DECIMAL(38, 0))" if d.name == "spark" else hs  # no wrap
        groups = con.execute(
            f"SELECT {listed}, COUNT(*), SUM({summed}), MAX({hs}) FROM {KEYS} GROUP BY {listed}"
        )
        if not _as_ledger(ws, attribution.groups, set(periods), groups):
            return None
        schema: dict[str, Any] = {k: pl.String for k in keys[:2]}
        schema |= {k: pl.Int64 for k in keys[2:]} | {"hs_us": pl.Int64}
        found = [(*g[:-3], int(g[-1])) for g in groups]
        frame = pl.DataFrame(found, schema=schema, orient="row")
        table, in_python = _parts(ws, attribution, frame, keys)
        rows = pl.DataFrame(schema=ROWS)  # no contact in the months asked
        if table.height:
            _upload(con, d, table, keys, engine_keys)
            rows = con.typed(_rows_sql(d, engine_keys, order), ROWS)
    finally:
        for name in (PARTS, KEYS):
            con.execute(f"DROP TABLE IF EXISTS {name}")
    return _finished(rows, in_python)


def _as_ledger(
    ws: Workspace, ledger: Sequence[Group], periods: set[str], found: list[tuple[Any, ...]]
) -> bool:
    """The keys table's (contacts, handle time) per (period, channel, matched, cell) are
    the ledger's groups' in `periods`: the source did not change between the passes."""
    want: dict[tuple[Any, ...], list[int]] = {}
    for key, n, hs in _ledger_groups(ledger):
        if key[0] in periods and n:
            total = want.setdefault(key, [0, 0])
            total[0] += n
            total[1] += hs
    got: dict[tuple[Any, ...], list[int]] = {}
    for period, channel, *values, n, hs, _ in found:
        key = (period, channel, *decode_group(ws, values))
        total = got.setdefault(key, [0, 0])
        total[0] += int(n)
        total[1] += int(hs)
    return got == want


def _ledger_groups(
    groups: Sequence[Group],
) -> list[tuple[tuple[str, str, frozenset[int], frozenset[int]], int, int]]:
    """(period, channel, matched, cell), contacts, handle_us of each group: from a
    GroupTable's columns (no Group object made), else from the groups."""
    if not isinstance(groups, GroupTable):
        return [((g.period, g.channel, g.matched, g.cell), g.contacts, g.handle_us) for g in groups]
    sets, t = groups.sets.frozensets(), groups
    columns = (t.period, t.channel, t.matched, t.cell, t.contacts, t.handle_us)
    return [
        ((t.periods[p], t.channels[c], sets[m], t.cells[k]), int(n), int(hs))
        for p, c, m, k, n, hs in zip(*(a.tolist() for a in columns), strict=True)
    ]


def _upload(
    con: Connection, d: Dialect, table: pl.DataFrame, keys: list[str], names: list[str]
) -> None:
    """The parts as a temporary table: integers exact (HUGEINT, NUMERIC), weights from
    their shortest text (both engines parse a double exactly from it)."""
    spark = d.name == "spark"
    big = "NUMERIC" if d.pg else "DECIMAL(38, 0)" if spark else "HUGEINT"
    double = "DOUBLE PRECISION" if d.pg else "DOUBLE"
    text = "TEXT" if d.pg else "STRING" if spark else "VARCHAR"
    types = [text, text, *["BIGINT"] * (len(keys) - 2)]
    types += [text, text, double, "INTEGER", "INTEGER", "BIGINT", *[big] * 5]
    cols = [*names, "department_id", "decision_id", "weight", "cb_period", "cb_line", "cb_part"]
    cols += ["cb_a0", "cb_a1", "cb_b0", "cb_b1", "cb_e"]
    order = [*keys, "department_id", "decision_id", "weight", "_period", "_line", "_part"]
    order += ["_a0", "_a1", "_b0", "_b1", "_e"]
    values = []
    for row in table.select(order).iter_rows():
        texts = [_lit(d, v) for v in row[:2]] + [str(int(v)) for v in row[2 : len(keys)]]
        department, decision, weight, *ints = row[len(keys) :]
        texts += [
            _lit(d, department),
            _lit(d, decision),
            f"CAST({_lit(d, repr(weight))} AS {double})",
        ]
        texts += [str(int(v)) for v in ints]
        values.append(f"({', '.join(texts)})")
    if spark:  # no INSERT into a cached view: one SELECT from the values, typed
        typed = ", ".join(
            f"CAST(cb_v{i} AS {t}) AS {d.ident(c)}"
            for i, (c, t) in enumerate(zip(cols, types, strict=True))
        )
        named = ", ".join(f"cb_v{i}" for i in range(len(cols)))
        listed = ", ".join(values)
        con.execute(
            f"CREATE TEMP TABLE {PARTS} AS SELECT {typed} FROM VALUES {listed} AS cb_v({named})"
        )
        return
    defs = ", ".join(f"{d.ident(c)} {t}" for c, t in zip(cols, types, strict=True))
    con.execute(f"CREATE TEMP TABLE {PARTS} ({defs})")
    for start in range(0, len(values), BATCH):
        con.execute(f"INSERT INTO {PARTS} VALUES {', '.join(values[start : start + BATCH])}")


def _rows_sql(d: Dialect, keys: list[str], order: list[str]) -> str:
    """Each contact joined to its parts, cost = a0 + a1 hs + (b0 + b1 hs) div e in micro-units,
    in drilldown's order (period, the contact's place in the data by `order`, the line)."""

    def both(name: str) -> str:
        return f"k.{d.ident(name)} = p.{d.ident(name)}"

    hs = f"k.{d.ident('hs_us')}"
    a0, a1, b0, b1, e = (f"p.{d.ident(f'cb_{n}')}" for n in ("a0", "a1", "b0", "b1", "e"))
    rest = f"({b0} + {b1} * {hs}) // {e}"  # DuckDB's integer division
    if d.pg:
        rest = f"div({b0} + {b1} * {hs}, {e})"
    elif d.name == "spark":
        rest = f"(({b0} + {b1} * {hs}) div {e})"  # a BIGINT: below hs_us + 2
    items = [f"k.{d.ident(n)}" for n in ("contact_id", "period")]
    items += [f"p.{d.ident(n)}" for n in ("department_id", "decision_id", "weight")]
    items += [f"{a0} + {a1} * {hs} + {rest}", f"p.{d.ident('cb_part')}", hs]
    on = " AND ".join(both(k) for k in keys)
    by = ", ".join(
        (
            f"p.{d.ident('cb_period')}",
            *(f"k.{d.ident(n)}" for n in order),
            f"p.{d.ident('cb_line')}",
        )
    )
    return f"SELECT {', '.join(items)} FROM {KEYS} AS k JOIN {PARTS} AS p ON {on} ORDER BY {by}"


def _lit(d: Dialect, text: str) -> str:
    """A string literal in the dialect's words (Spark's take backslash escapes)."""
    return spark_literal(text) if d.name == "spark" else literal(text)


def _finished(
    rows: pl.DataFrame, in_python: list[tuple[Fraction, Fraction, Fraction]]
) -> pl.DataFrame:
    """The engine's rows as drilldown's frame: the micro-units as Decimal(38, 6)."""
    frame = rows.lazy()
    if in_python:  # its join keeps no order: the engine's is put back
        frame = _costs_in_python(frame.with_row_index("_at"), in_python).sort("_at")
    cost = (pl.col("_micro").cast(COST_DTYPE) * MICRO).cast(COST_DTYPE).alias("cost")
    return frame.select(*COLUMNS[:-1], cost).collect()
