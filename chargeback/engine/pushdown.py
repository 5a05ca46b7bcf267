"""The ledger's aggregates computed inside DuckDB or PostgreSQL: only sums leave (issue 15).

The usual path copies the contacts out of the engine so chargeback's data layer
can type and check them (chargeback.data.tables). This one runs in the engine
and stays exact by construction:

1. a *detector*, one scan that counts the rows the data layer could refuse
   (missing or blank required values, control characters, overlong text,
   handle times and revenue out of bounds, years outside 1900-2199, duplicate
   ids, the money total) or would change in a way the SQL does not copy
   (surrounding White_Space, blanks, empty tags, rounding ties);
2. when it counts none, a *derive* of the canonical columns that equals the data
   layer's for such rows (`values:` mapped, tags as `|a|b|`, the local date and
   month in the workspace zone, `hs_us`), handed to sql_aggregate's shared SQL.

Anything not handled exactly returns None, and the caller reads the contacts as
always, so bad rows get their usual messages or quarantine: a flagged row, a
`timestamp_format`, a text timestamp, a column type outside the families below,
an unknown time zone, zone rules that differ from polars' (pushdown_tz), no rows.

Column type families (`columns` values; family_of_duckdb / family_of_postgres):
'text' (strings), 'integer', 'boolean' (read as their text form, as polars does),
'decimal' (exact numbers), 'float' (8-byte), 'float4', 'timestamptz' (an
instant), 'timestamp' (wall clock), 'date', 'text_list' (a DuckDB VARCHAR[]),
'other' (anything else: never pushed down).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import polars as pl

from chargeback.engine.aggregates import Aggregates
from chargeback.engine.pushdown_sql import (
    NUMBER_FAMILIES,
    TEXT_FAMILIES,
    TIME_FAMILIES,
    UTC_NAMES,
    Column,
    Dialect,
    handle_column,
    literal,
    revenue_column,
    tags_column,
    text_column,
    time_column,
)
from chargeback.engine.pushdown_tz import zone_rules_agree
from chargeback.engine.sql_aggregate import Connection, aggregate_flags, flags_select, match_blocks
from chargeback.engine.sql_compile import MATCH_KEYS, Primitives
from chargeback.workspace.model import CONTACT_COLUMNS, Workspace

MAX_MONEY_TOTAL_NEAR = 0.99e15  # chargeback.data.limits.MAX_MONEY_TOTAL, less a float margin
UNMATCHABLE = ("started_at", "handle_seconds", "revenue", "local", "date", "period", "hs_us",
               "text_lower", "_file", "_row")  # fmt: skip
IDS = ("contact_id", "customer_id")
VIEW, FLAGS = "cb_pushdown_contacts", "cb_pushdown_flags"
DUCKDB_FAMILIES = {
    "VARCHAR": "text", "NULL": "text", "BOOLEAN": "boolean", "DOUBLE": "float", "FLOAT": "float4",
    "TINYINT": "integer", "SMALLINT": "integer", "INTEGER": "integer", "BIGINT": "integer",
    "UTINYINT": "integer", "USMALLINT": "integer", "UINTEGER": "integer", "UBIGINT": "integer",
    "TIMESTAMP WITH TIME ZONE": "timestamptz", "TIMESTAMP": "timestamp",
    "TIMESTAMP_MS": "timestamp", "TIMESTAMP_S": "timestamp", "DATE": "date",
    "VARCHAR[]": "text_list",
}  # fmt: skip
# PostgreSQL arrays are 'other': the export writes them as '{a,b}' text, not a list
POSTGRES_FAMILIES = {
    25: "text", 1043: "text", 1042: "text", 16: "boolean", 21: "integer", 23: "integer",
    20: "integer", 1700: "decimal", 700: "float4", 701: "float", 1184: "timestamptz",
    1114: "timestamp", 1082: "date",
}  # fmt: skip


def family_of_duckdb(type_name: str) -> str:
    """A DuckDB column type (as str(description type)) -> its family."""
    name = type_name.strip().upper()
    if name.startswith("DECIMAL"):
        return "decimal"
    return DUCKDB_FAMILIES.get(name, "other")


def family_of_postgres(oid: int) -> str:
    """A PostgreSQL type OID (cursor.description's type_code) -> its family."""
    return POSTGRES_FAMILIES.get(oid, "other")


@dataclass(frozen=True)
class Pushed:
    """What the run needs from the contacts when none of them leaves the engine."""

    aggregates: Aggregates  # polars_engine.aggregate's, for the periods asked
    periods: list[str]  # every month holding contacts ('YYYY-MM', local), sorted
    contacts: int  # rows in the source (all of them passed the detector)
    channels: dict[str, int]  # contacts per channel, every month


@dataclass(frozen=True)
class Plan:
    """The SQL for one source: a base query, the detector's conditions, the derive."""

    base: str  # SELECT v_*, m_*, x_*, local, date, period, hs_us FROM <relation>
    checks: dict[str, str]  # 'column: check' -> a condition on the base's columns
    derive: str  # SELECT <canonical columns> FROM (base): what sql_aggregate reads
    schema: pl.Schema  # the derive's columns as the polars frame types them
    dialect: Dialect
    zone: bool  # instants converted to a zone other than UTC (pushdown_tz checks it)
    revenue: bool
    # columns with few distinct values: (a query over those values, its checks); a
    # check on a value alone holds on a value or not, so each distinct one is tested once
    by_value: tuple[tuple[str, dict[str, str]], ...] = ()


class _Logged:
    """The caller's connection, every statement appended to the log first."""

    def __init__(self, con: Connection, log: list[str] | None) -> None:
        self.con = con
        self.log = log

    def execute(self, sql: str) -> list[tuple[Any, ...]]:
        if self.log is not None:
            self.log.append(sql)
        return self.con.execute(sql)


def _matched_columns(ws: Workspace) -> set[str]:
    return {c for block in match_blocks(ws) for c in block.columns()}


def _usable(ws: Workspace, columns: dict[str, tuple[str, str]], dialect: str) -> bool:
    """The columns and settings are ones the SQL reproduces exactly."""
    if ws.settings.timestamp_format is not None or dialect not in ("duckdb", "postgres"):
        return False
    if any(name not in columns for name in ("contact_id", "started_at", "channel")):
        return False
    for block in match_blocks(ws):
        for name, _ in block.fields:
            if name in UNMATCHABLE or name not in columns:
                return False  # the usual path names the workspace error
    for vm in ws.settings.values:
        if vm.column not in CONTACT_COLUMNS and vm.column not in columns:
            return False
    for name, (_, family) in columns.items():
        if name == "started_at":
            ok = family in TIME_FAMILIES
        elif name in ("handle_seconds", "revenue"):
            ok = family in NUMBER_FAMILIES
        elif name == "tags":
            ok = family == "text" or (family == "text_list" and dialect == "duckdb")
        elif name in IDS and dialect == "duckdb":
            ok = family == "text"  # the data layer refuses a numeric id column in a file
        else:
            ok = family in TEXT_FAMILIES
        if not ok:
            return False
    return True


def plan(
    ws: Workspace, relation: str, columns: dict[str, tuple[str, str]], dialect: str
) -> Plan | None:
    """The detector's and the derive's SQL for this source, or None when not exact."""
    if not _usable(ws, columns, dialect):
        return None
    d = Dialect(dialect)
    settings = ws.settings
    values = {vm.column: dict(vm.pairs) for vm in settings.values if vm.pairs}
    built: dict[str, Column] = {}
    for name, (source, family) in columns.items():
        if name == "started_at":
            built[name] = time_column(d, source, family, settings.timezone)
        elif name == "handle_seconds":
            built[name] = handle_column(d, source, family)
        elif name == "revenue":
            built[name] = revenue_column(d, source, family)
        elif name == "tags":
            built[name] = tags_column(
                d, source, family, settings.tags_separator, values.get(name, {})
            )
        else:
            required = name in ("contact_id", "channel")
            built[name] = text_column(d, name, source, family, values.get(name, {}), required)
    base = _base(d, relation, list(built.values()))
    few = {n for n in columns if n not in MANY_VALUES and n in _plain_text(columns)}
    checks = {
        f"{name}: {what}": cond
        for name, col in built.items()
        if name not in few
        for what, cond in col.checks.items()
    }
    by_value = tuple(
        (
            _base(
                d, f"(SELECT DISTINCT {d.ident(columns[n][0])} FROM {relation}) AS dv", [built[n]]
            ),
            {f"{n}: {what}": cond for what, cond in built[n].checks.items()},
        )
        for n in sorted(few)
    )
    text_names = ["contact_id", *MATCH_KEYS, "tags", "text"]
    text_names += sorted(_matched_columns(ws) - set(text_names))
    derived: list[str] = []
    for name in dict.fromkeys(text_names):
        value = d.ident(f"m_{name}") if name in columns else d.null_text()
        derived.append(f"{value} AS {d.ident(name)}")
    hs = d.ident("hs_us") if "handle_seconds" in columns else "NULL"
    derived += [f"{d.ident(n)} AS {d.ident(n)}" for n in ("date", "period")] + [
        f"COALESCE({hs}, 0) AS {d.ident('hs_us')}"
    ]
    derive = f"SELECT {', '.join(derived)} FROM ({base}) AS b"
    schema = pl.Schema(
        {n: pl.String for n in dict.fromkeys(text_names)}
        | {"date": pl.Date(), "period": pl.String(), "hs_us": pl.Int64()}
    )
    zone = columns["started_at"][1] == "timestamptz" and settings.timezone not in UTC_NAMES
    return Plan(base, checks, derive, schema, d, zone, "revenue" in columns, by_value)


MANY_VALUES = {"contact_id", "customer_id", "text"}  # about one value per contact


def _plain_text(columns: dict[str, tuple[str, str]]) -> set[str]:
    """Columns read by text_column: their checks depend on the value alone."""
    special = {"started_at", "handle_seconds", "revenue", "tags"}
    return {n for n in columns if n not in special}


def _base(d: Dialect, relation: str, built: list[Column]) -> str:
    """The three steps of the columns' expressions as one query on the relation."""

    def items(step: str) -> list[str]:
        return [f"{e} AS {d.ident(n)}" for col in built for n, e in getattr(col, step).items()]

    query = f"SELECT {', '.join(items('first'))} FROM {relation}"
    for step in ("second", "third"):
        if items(step):  # a step no column has is no query (PostgreSQL refuses `*, FROM`)
            query = f"SELECT *, {', '.join(items(step))} FROM ({query}) AS {step}_step"
    return query


@dataclass(frozen=True)
class Detected:
    """The detector's answer: rows per check, and what the later steps need."""

    rows: int
    flagged: dict[str, int]  # check -> rows (distinct values, for by_value) it holds on
    first: int | None  # the earliest and latest instants, epoch seconds (zone rules)
    last: int | None


def detect(con: Connection, p: Plan) -> Detected:
    """One scan counting each check's rows, the duplicate ids and the money total."""
    d = p.dialect
    names = list(p.checks)
    parts = ["COUNT(*)"] + [f"COUNT(*) FILTER (WHERE {p.checks[n]})" for n in names]
    cid = d.ident("m_contact_id")
    parts.append(f"COUNT({cid}) - COUNT(DISTINCT {cid})")
    if p.revenue:
        parts.append(f"SUM(abs({d.double(d.ident('x_revenue'), 'float8')}))")
    if p.zone:
        ts = d.ident("v_ts")
        parts += [d.epoch(f"MIN({ts})"), d.epoch(f"MAX({ts})")]
    ((rows, *counts),) = con.execute(f"SELECT {', '.join(parts)} FROM ({p.base}) AS b")
    flagged = {n: int(c) for n, c in zip(names, counts, strict=False) if c}
    rest = counts[len(names) :]
    if rest[0]:
        flagged["contact_id: duplicate"] = int(rest[0])
    rest = rest[1:]
    if p.revenue:
        if float(rest[0] or 0) >= MAX_MONEY_TOTAL_NEAR:
            flagged["revenue: total"] = 1
        rest = rest[1:]
    first, last = (rest[0], rest[1]) if p.zone else (None, None)
    for query, checks in p.by_value:
        held = [f"COUNT(*) FILTER (WHERE {cond})" for cond in checks.values()]
        ((*values,),) = con.execute(f"SELECT {', '.join(held)} FROM ({query}) AS v")
        flagged |= {n: int(c) for n, c in zip(checks, values, strict=True) if c}
    return Detected(int(rows), flagged, first, last)


def pushdown_aggregate(
    ws: Workspace,
    relation: str,
    columns: dict[str, tuple[str, str]],
    con: Connection,
    prims: Primitives,
    dialect: str,
    periods: set[str] | None = None,
    sql_log: list[str] | None = None,
) -> Pushed | None:
    """The aggregates computed where the contacts are, or None to read them as always.

    `relation` is a FROM item quoted for the dialect; `columns` maps each canonical
    column the source has to (its column there, its family). Every statement run
    is appended to `sql_log`.
    """
    p = plan(ws, relation, columns, dialect)
    if p is None:
        return None
    if dialect == "duckdb":
        from chargeback.engine.duckdb_engine import refuse_unsupported

        try:  # what DuckDB cannot match as polars does: the usual path says so, by rule
            refuse_unsupported(ws, p.schema)
        except NotImplementedError:
            return None
    logged = _Logged(con, sql_log)
    d = p.dialect
    tz = ws.settings.timezone
    if columns["started_at"][1] == "timestamptz":
        zones = "pg_timezone_names" if d.pg else "pg_timezone_names()"
        ((known,),) = logged.execute(f"SELECT COUNT(*) FROM {zones} WHERE name = {literal(tz)}")
        if not known:
            return None
    found = detect(logged, p)
    if found.flagged or found.rows == 0:
        return None
    if p.zone and not zone_rules_agree(logged, d, tz, found.first, found.last):
        return None
    try:
        logged.execute(f"DROP TABLE IF EXISTS {FLAGS}")
        logged.execute(f"CREATE OR REPLACE TEMP VIEW {VIEW} AS {p.derive}")
        flags = flags_select(ws, p.schema, prims, source=VIEW)
        logged.execute(f"CREATE TEMP TABLE {FLAGS} AS {flags}")
        if d.pg:
            logged.execute(f"ANALYZE {FLAGS}")
        aggregates = aggregate_flags(ws, logged, dialect, periods, flags=FLAGS)
        counts = logged.execute(
            f"SELECT {d.ident('period')}, {d.ident('channel')}, COUNT(*) FROM {FLAGS} GROUP BY 1, 2"
        )
    finally:
        logged.execute(f"DROP TABLE IF EXISTS {FLAGS}")
        logged.execute(f"DROP VIEW IF EXISTS {VIEW}")
    channels: dict[str, int] = {}
    for _, channel, n in counts:
        channels[str(channel)] = channels.get(str(channel), 0) + int(n)
    return Pushed(
        aggregates=aggregates,
        periods=sorted({str(period) for period, _, _ in counts}),
        contacts=found.rows,
        channels=dict(sorted(channels.items())),
    )
