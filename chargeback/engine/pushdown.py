"""The ledger's aggregates computed inside DuckDB or PostgreSQL: only sums leave (issue 15).

The usual path copies the contacts out of the engine so chargeback's data layer
can type and check them (chargeback.data.tables). This one runs in the engine
and stays exact by construction:

1. a *detector*: checks that flag the rows the data layer could refuse
   (missing or blank required values, control characters, overlong text,
   handle times and revenue out of bounds, years outside 1900-2199, duplicate
   ids, the money total) or would change in a way the SQL does not copy
   (surrounding White_Space, blanks, empty tags, rounding ties);
2. a *derive* of the canonical columns that equals the data layer's for rows no
   check flags (`values:` mapped, tags as `|a|b|`, the local date and month in
   the workspace zone, `hs_us`).

`plan` builds both per column; engine/pushdown_groups.py runs them in few scans
(checks on ids per row, on other columns per distinct value, the rest riding
along in the one grouped scan) and discards everything if any check held. A
column with about one value per row (free text) is checked and matched per row
in the scans instead (pushdown_rows.route, judged on a sample).
`Plan.derive` is the derive as one query, for review and tests.

Anything not handled exactly returns None, and the caller reads the contacts as
always, so bad rows get their usual messages or quarantine: a flagged row, a
`timestamp_format`, a text timestamp, a column type outside the families below,
an unknown time zone, zone rules that differ from polars' (pushdown_tz), no rows.

Column type families (`columns` values; family_of_duckdb / family_of_postgres):
'text' (strings), 'integer', 'boolean' (read as their text form, as polars does),
'decimal' (exact numbers), 'float' (8-byte), 'float4', 'timestamptz' (an
instant), 'timestamp' (wall clock), 'date', 'text_list' (a DuckDB VARCHAR[] or a
Spark array<string>), 'other' (anything else: never pushed down).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import polars as pl

from chargeback.engine.aggregates import Aggregates
from chargeback.engine.control_series import control_indexes
from chargeback.engine.pushdown_bits import Bits, bits_for
from chargeback.engine.pushdown_groups import drop_all, first_scan, summed
from chargeback.engine.pushdown_rows import route
from chargeback.engine.pushdown_spark_sql import SparkDialect, spark_tags_column
from chargeback.engine.pushdown_sql import (
    NUMBER_FAMILIES,
    SAFE,
    TEXT_FAMILIES,
    TIME_FAMILIES,
    UTC_NAMES,
    Column,
    Dialect,
    base_query,
    handle_column,
    literal,
    revenue_column,
    tags_column,
    text_column,
    time_column,
)
from chargeback.engine.pushdown_tables import Source
from chargeback.engine.pushdown_tz import zone_rules_agree
from chargeback.engine.sql_aggregate import Connection, match_blocks
from chargeback.engine.sql_compile import MATCH_KEYS, Primitives
from chargeback.workspace.model import CONTACT_COLUMNS, Workspace

UNMATCHABLE = ("started_at", "handle_seconds", "revenue", "local", "date", "period", "hs_us",
               "text_lower", "_file", "_row")  # fmt: skip
IDS = ("contact_id", "customer_id")
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
    """The SQL for one source: a base query, the checks, the derive, and the columns' SQL."""

    base: str  # SELECT v_*, m_*, x_*, local, date, period, hs_us FROM <relation>
    checks: dict[str, str]  # 'column: check' -> a condition on the base's columns
    derive: str  # SELECT <canonical columns> FROM (base): what the data layer would give
    schema: pl.Schema  # the derive's columns as the polars frame types them
    dialect: Dialect
    zone: bool  # instants converted to a zone other than UTC (pushdown_tz checks it)
    revenue: bool
    source: Source  # what pushdown_groups runs


class Logged:
    """The caller's connection, every statement appended to the log first."""

    def __init__(self, con: Connection, log: list[str] | None) -> None:
        self.con = con
        self.log = log

    def execute(self, sql: str) -> list[tuple[Any, ...]]:
        if self.log is not None:
            self.log.append(sql)
        return self.con.execute(sql)

    def frame(self, sql: str) -> pl.DataFrame | None:
        """The rows as a polars frame where the driver gives one (DuckDB), else None."""
        fetch = getattr(self.con, "frame", None)
        if fetch is None:
            return None
        if self.log is not None:
            self.log.append(sql)
        frame: pl.DataFrame = fetch(sql)
        return frame

    def typed(self, sql: str, schema: Mapping[str, Any]) -> pl.DataFrame:
        """The rows as a frame with `schema`'s names and types, by position: as Arrow where
        the driver gives it (no Python tuple per row), else tuple by tuple, an integer
        column's exact decimals (PostgreSQL's NUMERIC, Spark's DECIMAL) taken as ints."""
        got = self.frame(sql)
        if got is not None:
            named = got.rename(dict(zip(got.columns, schema, strict=True)))
            return named.select([pl.col(n).cast(t) for n, t in schema.items()])
        whole = [t.is_integer() for t in schema.values()]
        rows = [
            tuple(int(v) if w and v is not None else v for v, w in zip(r, whole, strict=True))
            for r in self.execute(sql)
        ]
        return pl.DataFrame(rows, schema=dict(schema), orient="row")


def _matched_columns(ws: Workspace) -> set[str]:
    return {c for block in match_blocks(ws) for c in block.columns()}


def _usable(ws: Workspace, columns: dict[str, tuple[str, str]], dialect: str) -> bool:
    """The columns and settings are ones the SQL reproduces exactly."""
    if ws.settings.timestamp_format is not None or dialect not in ("duckdb", "postgres", "spark"):
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
            ok = family == "text" or (family == "text_list" and dialect in ("duckdb", "spark"))
        elif name in IDS and dialect in ("duckdb", "spark"):
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
    d = SparkDialect() if dialect == "spark" else Dialect(dialect)
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
            built[name] = (spark_tags_column if dialect == "spark" else tags_column)(
                d, source, family, settings.tags_separator, values.get(name, {})
            )
        else:
            required = name in ("contact_id", "channel")
            built[name] = text_column(d, name, source, family, values.get(name, {}), required)
    base = base_query(d, relation, list(built.values()))
    checks = {f"{n}: {what}": cond for n, col in built.items() for what, cond in col.checks.items()}
    matched = _matched_columns(ws)
    # columns checked (and matched) once per distinct value: all but the per-contact ones
    per_contact = {"contact_id", "started_at", "handle_seconds", "revenue"}
    per_contact |= {"customer_id"} - matched
    tables = [n for n in sorted(built) if n not in per_contact]
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
    pushed = Source(
        ws=ws,
        relation=relation,
        built=built,
        families={n: f for n, (_, f) in columns.items()},
        tables=tables,
        d=d,
        zone=zone,
        revenue="revenue" in columns,
    )
    return Plan(base, checks, derive, schema, d, zone, "revenue" in columns, pushed)


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
    logged = Logged(con, sql_log)
    d = p.dialect
    tz = ws.settings.timezone
    if columns["started_at"][1] == "timestamptz":
        zones = "pg_timezone_names" if d.pg else "pg_timezone_names()"
        ((known,),) = logged.execute(f"SELECT COUNT(*) FROM {zones} WHERE name = {literal(tz)}")
        if not known:
            return None
    controls = bool(control_indexes(ws))
    # the rules' conditions are compiled (SQLGlot, loading its dialect first: 0.1-0.2 s of
    # Python) while the engine runs the first scans, which leave the interpreter free
    with ThreadPoolExecutor(max_workers=1) as pool:
        bits = pool.submit(bits_for, ws, prims, set(p.source.families), controls)
        return scanned(
            logged,
            p,
            prims,
            periods,
            lambda first, last: zone_rules_agree(logged, d, tz, first, last),
            bits.result,
        )


def scanned(
    con: Connection,
    p: Plan,
    prims: Primitives,
    periods: set[str] | None,
    zone_ok: Callable[[int, int], bool],
    bits: Callable[[], Bits] | None = None,
) -> Pushed | None:
    """The scans every engine runs once its plan is made: the route, the first scan, the
    zone checks (`zone_ok` on the first and last instant), the grouped sums; the
    temporary tables dropped whatever happens. None: read the contacts as always."""
    ws = p.source.ws
    controls = bool(control_indexes(ws))
    source = p.source
    try:
        # columns of about one value per row: checked and matched in the scans instead
        needed = _matched_columns(ws) | {"channel"} | ({"reason"} if controls else set())
        source = route(con, source, needed)
        span, flagged = first_scan(con, source)
        if flagged or span is None:
            return None
        if p.zone and not SAFE[0] <= span.first <= span.last < SAFE[1]:
            return None  # a stamp outside 1970-2037: the scan's zone-rules check holds
        if p.zone and not zone_ok(span.first, span.last):
            return None
        done, _ = summed(con, source, prims, span, periods, bits() if bits else None)
    finally:
        drop_all(con, source)
    if done is None:
        return None
    return Pushed(
        aggregates=done.aggregates,
        periods=done.periods,
        contacts=done.contacts,
        channels=done.channels,
    )
