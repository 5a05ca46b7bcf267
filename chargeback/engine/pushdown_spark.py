"""The in-engine ledger (engine/pushdown.py) on Spark: Parquet files or a Spark Connect source.

Why a module of its own: the plan, the detector, the value and day tables and
the grouped scan are pushdown's, unchanged, spelled by SparkDialect
(pushdown_spark_sql.py); what is Spark's is how the source is opened (the
Parquet files read by Spark SQL in local mode, or the `sc://` table or query),
how a statement runs (a `CREATE TEMP TABLE` is a lazily cached view holding the
query's plan, a dropped table a dropped view), and what is checked rather than
trusted:

- the session's time zone is UTC (data/spark_session sets it; wall-clock times
  are held as UTC timestamps);

- lower() and string literals against polars, once per session
  (spark_engine.lower_conformance); a text phrase with a Greek sigma reads out;
- each Parquet column's type as Spark reads it against polars' reading of the
  same file (a naive timestamp must stay wall-clock time);
- local time is always instant + polars' own offset (pushdown_tz.exact_offsets),
  never Java's zone rules: without those offsets the contacts are read out;
- a `values:` pair or tags separator with a backslash reads out (pushdown_sql's
  literals are standard SQL, Spark's take escapes).

Anything else not exact returns None, exactly as on DuckDB and PostgreSQL.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import polars as pl

from chargeback.data.sources import format_of, resolve_files
from chargeback.data.spark_session import session
from chargeback.data.warehouse import relation_sql
from chargeback.engine.engines import EngineChoice
from chargeback.engine.pushdown import Pushed, plan, scanned
from chargeback.engine.pushdown_spark_sql import family_of_spark
from chargeback.engine.pushdown_tz import exact_offsets
from chargeback.engine.spark_engine import SparkPrimitives, lower_conformance, refuse_unsupported
from chargeback.engine.sql_aggregate import Connection
from chargeback.engine.sql_compile import Primitives
from chargeback.workspace.model import DbSource, Workspace

Row = tuple[Any, ...]
GLOB = re.compile(r"[*?\[\]{}\\:]")  # what Hadoop's paths read as a pattern or a scheme
SIMPLE_FAMILIES = [
    (pl.String, "text"), (pl.Boolean, "boolean"), (pl.Date, "date"), (pl.Float64, "float"),
    (pl.Float32, "float4"),
]  # fmt: skip
CREATE = re.compile(r"CREATE TEMP TABLE (\w+) AS (.*)", re.S)
REWRITES = [  # pushdown's statements -> Spark's (temporary tables are cached views)
    (CREATE, ["CACHE LAZY TABLE {0} AS {1}"]),
    # uncached first: a view dropped while another cached one reads it (fold_regexes'
    # remade table) left one cached plan behind per run, in the shared cache manager
    # every session of a cluster uses
    (
        re.compile(r"DROP TABLE IF EXISTS (\w+)"),
        ["UNCACHE TABLE IF EXISTS {0}", "DROP VIEW IF EXISTS {0}"],
    ),
    (re.compile(r"DROP TABLE (\w+)"), ["UNCACHE TABLE IF EXISTS {0}", "DROP VIEW {0}"]),
    (re.compile(r"ALTER TABLE (\w+) RENAME TO (\w+)"), ["ALTER VIEW {0} RENAME TO {1}"]),
]


def spark_statements(sql: str) -> list[str]:
    """The Spark statements that do what `sql` (pushdown's DuckDB-shaped DDL) does."""
    for pattern, templates in REWRITES:
        found = pattern.fullmatch(sql)
        if found:
            return [t.format(*found.groups()) for t in templates]
    return [sql]


class SparkSql:
    """pushdown's Connection on a SparkSession; every statement sent goes to `log`."""

    def __init__(self, spark: Any, log: list[str] | None) -> None:
        self.spark = spark
        self.log = log

    def execute(self, sql: str) -> list[Row]:
        rows: list[Row] = []
        for statement in spark_statements(sql):
            if self.log is not None:
                self.log.append(statement)
            created = CREATE.fullmatch(sql)
            if created:
                self._cache(*created.groups())
            else:
                rows = [tuple(r) for r in self.spark.sql(statement).collect()]
        return rows

    def _cache(self, name: str, select: str) -> None:
        """`CACHE TABLE name AS select`, with the view holding the query's plan rather than
        its text (as SQL's would): a table remade under its own name (pushdown_tables.
        fold_regexes) must not then read itself."""
        self.spark.sql(select).createOrReplaceTempView(name)
        self.spark.sql(f"CACHE LAZY TABLE {name}")

    def describe(self, relation: str) -> list[tuple[str, str]]:
        """(column, type family) as Spark reads the source."""
        query = f"SELECT * FROM {relation} LIMIT 0"
        if self.log is not None:
            self.log.append(query)
        fields = self.spark.sql(query).schema.fields
        return [(f.name, family_of_spark(f.dataType.simpleString())) for f in fields]


def polars_family(dtype: pl.DataType) -> str:
    """The family of a column as polars reads it from Parquet (what the data layer sees)."""
    if isinstance(dtype, pl.Datetime):
        return "timestamptz" if dtype.time_zone else "timestamp"
    if isinstance(dtype, pl.Decimal):
        return "decimal"
    for kind, family in SIMPLE_FAMILIES:
        if dtype == kind:
            return family
    if dtype == pl.List(pl.String):
        return "text_list"
    return "integer" if dtype.is_integer() and not dtype.is_unsigned_integer() else "other"


@contextmanager
def connection(
    ws: Workspace, choice: EngineChoice, spec: str | DbSource, root: Path
) -> Iterator[Any]:
    """in_engine's connection tuple for Spark, or None for a source read out as always."""
    files: list[Path] = []
    polars_types: dict[str, str] | None = None
    if isinstance(spec, DbSource):
        if spec.engine != "spark":
            yield None
            return
        spark = session(spec.uri)
        relation, label = relation_sql(spec, "spark"), spec.label()
    else:
        files = resolve_files(spec, root)
        if not files or any(format_of(p) != "parquet" for p in files):
            yield None
            return
        try:
            schemas = [pl.read_parquet_schema(p) for p in files]
            empty = any(_rows(p) == 0 for p in files)
        except (pl.exceptions.PolarsError, OSError):
            yield None  # a file polars cannot read: the usual path says so, at its place
            return
        if empty or any(s != schemas[0] for s in schemas):
            yield None  # stacking or warning about files is the data layer's
            return
        if any(GLOB.search(str(p.resolve())) for p in files):
            yield None  # Spark would read the name as a pattern
            return
        polars_types = {n: polars_family(t) for n, t in schemas[0].items()}
        spark = session(None)
        relation, label = files_relation(files), spec
    try:
        prims = SparkPrimitives(lower_conformance(spark))
    except NotImplementedError:
        prims = None  # the usual path refuses it, at the rule's place
    if prims is None or spark.conf.get("spark.sql.session.timeZone") != "UTC":
        yield None
        return

    def families(family: str) -> str:
        return family

    adapter = _Described(SparkSql(spark, choice.sql_log), polars_types)
    yield (adapter, relation, families, prims, "spark", files, label, [])


def files_relation(files: list[Path]) -> str:
    """The Parquet files as one FROM item Spark SQL reads directly (shown by --show-sql);
    their schemas are equal (checked), so UNION ALL stacks them column by column."""
    reads = [f"SELECT * FROM parquet.`{str(p.resolve()).replace('`', '``')}`" for p in files]
    if len(reads) == 1:
        return reads[0].removeprefix("SELECT * FROM ")
    return f"({' UNION ALL '.join(reads)}) AS cb_files"


def _rows(path: Path) -> int:
    """A Parquet file's row count, from its footer."""
    return int(pl.scan_parquet(path).select(pl.len()).collect().item())


class _Described:
    """The connection with describe() checked against polars' reading of the files."""

    def __init__(self, con: SparkSql, polars_types: dict[str, str] | None) -> None:
        self.con = con
        self.execute = con.execute
        self.polars_types = polars_types

    def describe(self, relation: str) -> list[tuple[str, str]]:
        found = self.con.describe(relation)
        if self.polars_types is None:
            return found
        return [(n, f if self.polars_types.get(n) == f else "other") for n, f in found]


def pushdown_aggregate(
    ws: Workspace,
    relation: str,
    columns: dict[str, tuple[str, str]],
    con: Connection,
    prims: Primitives,
    dialect: str = "spark",
    periods: set[str] | None = None,
    sql_log: list[str] | None = None,
) -> Pushed | None:
    """pushdown.pushdown_aggregate's contract on Spark (`con` logs its own statements)."""
    settings = ws.settings
    pairs = [t for vm in settings.values for pair in vm.pairs for t in pair]
    if any("\\" in t for t in [*pairs, settings.tags_separator]):
        return None
    p = plan(ws, relation, columns, "spark")
    if p is None:
        return None
    try:
        if refuse_unsupported(ws, p.schema):
            return None  # a sigma in a text phrase: spark_engine checks the texts one by one
    except (NotImplementedError, ValueError):
        return None
    tz = settings.timezone
    # no exact offsets: Java's zone rules are never trusted
    return scanned(con, p, prims, periods, lambda a, b: exact_offsets(tz, a, b) is not None)
