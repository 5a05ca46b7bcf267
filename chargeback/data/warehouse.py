"""SPEC 10's database sources: `{uri, table}` or `{uri, query}`, read into the data contract.

The columns the run needs (and only those) are read through the engine's own
driver, in a stable order (the id column first), into a file in a private
temporary folder, and from there through exactly the checks a CSV or Parquet
export gets: the same types, limits, duplicate test and bad-row messages. A bad
row is named by the source, its row in that order and its column. The
temporary file stays until the process ends, because the run's fingerprint
hashes what was read.

Credentials: the address holds none (refused at load); libpq and the other
drivers read theirs from the environment (PGPASSWORD, ...). Nothing here reads,
keeps or prints a password; a driver's error is shown with any password that
the environment holds blanked out, in case a driver ever echoes one.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import polars as pl

from chargeback.data.checks import TableSpec
from chargeback.data.limits import shown
from chargeback.data.scratch import scratch_dir
from chargeback.data.tables import Loaded, load_table
from chargeback.errors import ChargebackError, DataError, Problem
from chargeback.workspace.model import DbSource, ValueMap

DRIVERS = {
    "duckdb": ("duckdb", "duckdb"),
    "postgres": ("psycopg", "postgres"),
    "spark": ("pyspark", "spark"),
}
PG_TIME_TYPES = {  # type OID -> how the value is written for the ISO reader
    1184: "to_char({c} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')",  # timestamptz
    1114: "to_char({c}, 'YYYY-MM-DD\"T\"HH24:MI:SS.US')",  # timestamp (local wall clock)
    1082: "to_char({c}, 'YYYY-MM-DD')",  # date
}


def driver(engine: str) -> Any:
    """The engine's driver module, or a clear error naming the extra that installs it."""
    module, extra = DRIVERS.get(engine, (engine, engine))
    try:
        return __import__(module)
    except ImportError:
        raise ChargebackError(
            f"the {engine} engine needs its driver: pip install 'chargeback[{extra}]'"
        ) from None


def scrub(text: str) -> str:
    """A driver's message with any password from the environment blanked out, also where
    a server's excerpt of a query (libpq shows 60 columns around an error) cut it."""
    for name in ("PGPASSWORD",):
        secret = os.environ.get(name)
        if secret:
            text = _blank(text, secret)
    return text


SECRET_FRAGMENT = 4  # a run of this many of a secret's characters is blanked


def _blank(text: str, secret: str) -> str:
    """Each run of `text` found in `secret`, of SECRET_FRAGMENT characters or more (the
    whole secret when shorter), as ***: at most a few characters of it can show."""
    least = min(len(secret), SECRET_FRAGMENT)
    out: list[str] = []
    i = 0
    while i < len(text):
        n = 0
        while i + n < len(text) and text[i : i + n + 1] in secret:
            n += 1
        if n >= least:
            out.append("***")
            i += n
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def duckdb_connect(path: Path | None = None) -> Any:
    """A DuckDB connection (read-only on a database file) that spills into the private
    scratch folder: by default it would write `.tmp` into the current folder, or next to
    the database, and leave it there when killed."""
    import duckdb

    con = duckdb.connect(str(path), read_only=True) if path is not None else duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    # a run reads the same Parquet files in ten statements or so: their footers parsed
    # once (DuckDB checks each file's modification time before reusing them): 0.03 s of
    # a 3M-contact run
    con.execute("SET parquet_metadata_cache = true")
    spill = str(scratch_dir() / "duckdb-spill").replace("'", "''")
    con.execute(f"SET temp_directory = '{spill}'")
    return con


def quote_name(name: str, dialect: str) -> str:
    from sqlglot import exp

    return exp.to_identifier(name, quoted=True).sql(dialect)


def relation_sql(source: DbSource, dialect: str) -> str:
    """The source as a FROM item: its table, quoted part by part, or its query."""
    if source.table is not None:
        return ".".join(quote_name(part.strip(), dialect) for part in source.table.split("."))
    return f"({source.query}) AS src"


def duckdb_path(source: DbSource, root: Path) -> Path:
    """`duckdb:///file.db` is relative to the workspace, `duckdb:////abs/file.db` absolute."""
    rest = source.uri.split("://", 1)[1]
    rest = rest[1:] if rest.startswith("/") else rest
    path = Path(rest).expanduser()
    return path if path.is_absolute() else root / path


def export(
    source: DbSource,
    root: Path,
    wanted_headers: Collection[str],
    id_header: str | None,
    sql_log: list[str] | None = None,
    con: Any = None,
) -> tuple[Path, set[str]]:
    """The source's wanted columns in a local file; returns it and the native time columns.
    `con`: an open PostgreSQL connection to read through (its transaction's snapshot)."""
    engine = source.engine
    if engine == "duckdb":
        return _export_duckdb(source, root, wanted_headers, id_header, sql_log), set()
    if engine == "postgres":
        return _export_postgres(source, wanted_headers, id_header, sql_log, con)
    if engine == "spark":
        return _export_spark(source, wanted_headers, id_header, sql_log), set()
    raise ChargebackError(
        Problem(
            f"reading contacts from {source.uri.split('://', 1)[0]}:// is not supported yet: "
            "export them to Parquet files and name those",
            *_at(source),
        )
    )


def _at(source: DbSource) -> tuple[Path | None, int | None]:
    return (source.place.path, source.place.line) if source.place else (None, None)


def _read_query(
    relation: str,
    columns: list[str],
    id_header: str | None,
    dialect: str,
    pg_types: list[int] | None = None,
) -> str:
    """The read-out SELECT: the columns (PostgreSQL's as text the data layer reads, by
    type code), in a stable order rows are numbered in: the id, or else every column."""

    def quote(name: str) -> str:
        return quote_name(name, dialect)

    items = [quote(c) for c in columns]
    if pg_types is not None:
        items = [f"{_pg_text(q, t)} AS {q}" for q, t in zip(items, pg_types, strict=True)]
    order = ", ".join(quote(c) for c in ([id_header] if id_header in columns else columns))
    query = f"SELECT {', '.join(items) or 'NULL AS _none'} FROM {relation}"
    return query + (f" ORDER BY {order}" if order else "")


def _export_duckdb(
    source: DbSource,
    root: Path,
    wanted: Collection[str],
    id_header: str | None,
    sql_log: list[str] | None,
) -> Path:
    duckdb = driver("duckdb")
    path = duckdb_path(source, root)
    if not path.is_file():
        raise DataError(Problem(f"no DuckDB database at {path}", *_at(source)))
    out = scratch_dir() / f"source-{len(list(scratch_dir().iterdir()))}.parquet"
    try:
        con = duckdb_connect(path)
    except duckdb.Error as exc:
        raise DataError(Problem(f"cannot open {path}: {scrub(str(exc))}", *_at(source))) from None
    try:
        relation = relation_sql(source, "duckdb")
        probe = f"SELECT * FROM {relation} LIMIT 0"
        names = [d[0] for d in con.execute(probe).description]
        columns = [n for n in names if n in wanted]

        query = _read_query(relation, columns, id_header, "duckdb")
        target = str(out).replace("'", "''")
        statement = f"COPY ({query}) TO '{target}' (FORMAT parquet)"
        if sql_log is not None:
            sql_log.append(query)
        con.execute(statement)
    except duckdb.Error as exc:
        raise DataError(
            Problem(f"cannot read {source.label()}: {shown(scrub(str(exc)), 300)}", *_at(source))
        ) from None
    finally:
        con.close()
    return out


def _export_postgres(
    source: DbSource,
    wanted: Collection[str],
    id_header: str | None,
    sql_log: list[str] | None,
    opened: Any = None,
) -> tuple[Path, set[str]]:
    """The rows through `opened` (left open, in its transaction) or a connection of its own."""
    psycopg = driver("postgres")
    out = scratch_dir() / f"source-{len(list(scratch_dir().iterdir()))}.csv"
    try:
        con = opened or psycopg.connect(source.uri, connect_timeout=15, autocommit=True)
    except psycopg.Error as exc:
        raise DataError(
            Problem(f"cannot connect: {shown(scrub(str(exc)), 300)}", *_at(source))
        ) from None
    try:
        with con.cursor() as cur:
            cur.execute("SET client_encoding TO 'UTF8'")
            relation = relation_sql(source, "postgres")
            cur.execute(f"SELECT * FROM {relation} LIMIT 0")
            described = [(d.name, d.type_code) for d in cur.description or ()]

            columns = [(n, t) for n, t in described if n in wanted]
            times = {n for n, t in columns if t in PG_TIME_TYPES}
            query = _read_query(
                relation, [n for n, _ in columns], id_header, "postgres", [t for _, t in columns]
            )
            if sql_log is not None:
                sql_log.append(query)
            with (
                out.open("wb") as handle,
                cur.copy(f"COPY ({query}) TO STDOUT (FORMAT csv, HEADER true)") as copy,
            ):
                for block in copy:
                    handle.write(block)
    except psycopg.Error as exc:
        raise DataError(
            Problem(f"cannot read {source.label()}: {shown(scrub(str(exc)), 300)}", *_at(source))
        ) from None
    finally:
        if opened is None:
            con.close()
    return out, times


def _export_spark(
    source: DbSource,
    wanted: Collection[str],
    id_header: str | None,
    sql_log: list[str] | None,
    spark: Any = None,
) -> Path:
    """A Spark Connect table or query's wanted columns, in id order, as Parquet."""
    driver("spark")
    from chargeback.data.spark_session import session

    out = scratch_dir() / f"source-{len(list(scratch_dir().iterdir()))}.parquet"
    try:
        spark = spark or session(source.uri)
        relation = relation_sql(source, "spark")
        names = spark.sql(f"SELECT * FROM {relation} LIMIT 0").columns
        columns = [n for n in names if n in wanted]

        query = _read_query(relation, columns, id_header, "spark")
        if sql_log is not None:
            sql_log.append(query)
        pl.from_arrow(spark.sql(query).toArrow()).write_parquet(out)  # type: ignore[union-attr]
    except Exception as exc:  # pyspark's errors have no one root across local and Connect
        if isinstance(exc, ChargebackError):
            raise
        raise DataError(
            Problem(f"cannot read {source.label()}: {shown(scrub(str(exc)), 300)}", *_at(source))
        ) from None
    return out


def _pg_text(column: str, type_code: int) -> str:
    """A column as text the data layer reads: ISO 8601 for times, Postgres' own text else."""
    if type_code in PG_TIME_TYPES:
        return PG_TIME_TYPES[type_code].format(c=column)
    return f"{column}::text"


def load_db_table(
    spec: TableSpec,
    source: DbSource,
    root: Path,
    columns_mapping: dict[str, str],
    wanted: set[str],
    timezone: str,
    timestamp_format: str | None,
    on_bad_rows: str,
    tags_separator: str = "|",
    *,
    values: Sequence[ValueMap] = (),
    optional_columns: Collection[str] = (),
    sql_log: list[str] | None = None,
    con: Any = None,
) -> Loaded:
    """load_table's contract for a database source; problems name the source and row.
    `con`: export's open connection, where the rows must come from its snapshot."""
    extra = {vm.column for vm in values}
    canon = set(wanted) | set(spec.required) | extra | set(optional_columns)
    headers = {columns_mapping.get(c, c) for c in canon}
    id_header = columns_mapping.get(spec.id_column, spec.id_column) if spec.id_column else None
    path, native_times = export(source, root, headers, id_header, sql_log, con)
    stamp = columns_mapping.get(spec.timestamp, spec.timestamp)
    if stamp in native_times:
        timestamp_format = None  # written as ISO 8601 by the export, whatever the setting
    try:
        loaded = load_table(
            spec,
            [path],
            columns_mapping,
            wanted,
            timezone,
            timestamp_format,
            on_bad_rows,
            tags_separator,
            values=values,
            optional_columns=optional_columns,
        )
    except ChargebackError as exc:
        exc.problems = [_relabel(p, path, source, id_header) for p in exc.problems]
        raise type(exc)(exc.problems) from None
    loaded.warnings = [w.replace(str(path), source.label()) for w in loaded.warnings]
    if loaded.rejected is not None and "source_file" in loaded.rejected.columns:
        order = f" (ordered by {id_header})" if id_header else ""
        named = pl.lit(source.label() + order, dtype=pl.String).alias("source_file")
        loaded.rejected = loaded.rejected.with_columns(named)  # not the private export
    loaded.labels[path] = source.label()
    return loaded


def _relabel(problem: Problem, path: Path, source: DbSource, id_header: str | None) -> Problem:
    """A problem in the exported file -> the same problem at the source's row."""
    message = problem.message.replace(str(path), source.label())
    if problem.path is None or Path(problem.path) != path:
        return replace(problem, message=message)
    order = f" (ordered by {id_header})" if id_header else ""
    return replace(problem, message=message, path=source.label() + order, line=None)
