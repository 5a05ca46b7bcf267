"""The ledger computed where the contacts are: only aggregates leave the engine (SPEC 10).

A report that writes only the ledger (`--format csv`) needs nothing per
contact: the grouped sums, the baseline and control counts, the months and the
number of contacts. On duckdb (Parquet files, or a `duckdb:///` database),
postgres and spark (Parquet files, or an `sc://` source; engine/pushdown_spark.py),
those are computed by the engine itself (engine/pushdown.py), with a
detector that flags any row the data contract would refuse or change. When the
detector flags one, or the source has a shape the SQL does not handle, this
returns None and the run reads the contacts as always, so bad rows are named
and quarantined exactly as they are for files.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from chargeback.data.scratch import scratch_dir
from chargeback.data.sources import format_of, resolve_files
from chargeback.data.tables import Loaded
from chargeback.data.warehouse import duckdb_connect, duckdb_path, relation_sql
from chargeback.engine.aggregates import Aggregates
from chargeback.engine.engines import EngineChoice, driver_error
from chargeback.errors import display_path
from chargeback.workspace.model import CONTACT_COLUMNS, DbSource, Workspace

Probe = Callable[[str], list[tuple[str, Any]]]
ENGINES = ("duckdb", "postgres", "spark")  # the engines that sum a ledger-only run in place


@dataclass
class InEngine:
    loaded: Loaded  # a summary: the months (one row each) and the contacts' count
    aggregates: Aggregates
    # canonical column -> (the source's column, its family): explain reads one contact by it
    columns: dict[str, tuple[str, str]] | None = None
    extra: Any = None  # what `then` gave (check's counts)


# after the sums, on the same connection: (con, relation, columns, primitives, dialect, log)
Then = Callable[[Any, str, dict[str, tuple[str, str]], Any, str, list[str] | None], Any]


def in_engine(
    ws: Workspace,
    choice: EngineChoice,
    spec: str | DbSource,
    root: Path,
    wanted: set[str],
    then: Then | None = None,
) -> InEngine | None:
    """The aggregates from the engine itself, or None to read the contacts as always.

    `then`, when given, runs on the same connection once the sums are in (every row
    passed the detector); its answer is InEngine.extra, and None from it means None.
    """
    if choice.name not in ENGINES or ws.settings.timestamp_format is not None:
        return None
    from chargeback.engine import pushdown

    try:
        with _connection(ws, choice, spec, root) as found:
            if found is None:
                return None
            con, relation, families, prims, dialect, files, label, warnings = found
            if choice.sql_log is not None and dialect == "duckdb":  # postgres' con logs its own
                choice.sql_log.append(f"SELECT * FROM {relation} LIMIT 0")
            described = con.describe(relation)
            columns = _columns(ws, wanted, {n: families(t) for n, t in described})
            if columns is None:
                return None
            log = choice.sql_log if dialect == "duckdb" else None  # postgres' connection logs
            run = pushdown.pushdown_aggregate
            if dialect == "spark":  # Spark's own checks around the same plan and scans
                from chargeback.engine.pushdown_spark import pushdown_aggregate as run
            pushed = run(ws, relation, columns, con, prims, dialect, sql_log=log)
            extra = None
            if pushed is not None and then is not None:
                extra = then(con, relation, columns, prims, dialect, log)
                if extra is None:
                    return None
    except driver_error(choice):
        # a file DuckDB cannot read, a server that refuses: the usual path says so, at
        # its place and in its words, as it does for every other format
        return None
    if pushed is None:
        return None
    months = pl.DataFrame({"period": pushed.periods}, schema={"period": pl.String})
    loaded = Loaded(frame=months, files=[])
    loaded.rows = pushed.contacts
    loaded.missing = {name: [] for name in wanted if name not in columns}
    loaded.warnings = warnings  # a file without rows, as the usual path warns
    if files:
        loaded.files = files  # the run's fingerprint hashes them, as on the usual path
    else:
        loaded.files = [fingerprint_file(pushed.aggregates)]
        loaded.labels[loaded.files[0]] = label
    return InEngine(loaded, pushed.aggregates, columns, extra)


def _columns(
    ws: Workspace, wanted: set[str], present: dict[str, str]
) -> dict[str, tuple[str, str]] | None:
    """Canonical column -> (the source's column, its type family); None: a shape to refuse."""
    mapping = dict(ws.settings.columns)
    optional = set(ws.settings.optional_columns)
    mapping = {k: v for k, v in mapping.items() if k not in optional or v in present}
    out: dict[str, tuple[str, str]] = {}
    fields = {f for rule in ws.rules for f, _ in rule.match.fields}
    if any(mapping.get(f, f) not in present for f in fields):
        return None  # a `fields` column the contacts lack: the usual path's error names it
    for name in sorted(wanted | set(CONTACT_COLUMNS[:3])):
        source = mapping.get(name, name)
        if source != name and source in present and name in present:
            return None  # two columns would be one: the usual path names them
        if source in present:
            out[name] = (source, present[source])
        elif name in ("contact_id", "started_at", "channel") or name in mapping:
            return None  # a missing column: the usual path says which
    return out


class _Adapter:
    """The engine's connection as `execute(sql) -> rows`, and a column probe."""

    def __init__(
        self,
        run: Callable[[str], list[tuple[Any, ...]]],
        probe: Probe,
        frame: Callable[[str], pl.DataFrame] | None = None,
        raw: Any = None,
    ) -> None:
        self.execute = run
        self.describe = probe
        self.frame = frame  # the rows as a polars frame, column by column (DuckDB's Arrow)
        self.raw = raw  # the driver's connection (PostgreSQL's, in the run's transaction)


@contextmanager
def _connection(
    ws: Workspace, choice: EngineChoice, spec: str | DbSource, root: Path
) -> Iterator[Any]:
    if choice.name == "duckdb":
        with _duckdb(spec, root) as found:
            yield found
    elif choice.name == "spark":
        from chargeback.engine.pushdown_spark import connection

        with connection(ws, choice, spec, root) as found:
            yield found
    elif isinstance(spec, DbSource):
        with _postgres(ws, spec, choice) as found:
            yield found
    else:
        yield None


@contextmanager
def _duckdb(spec: str | DbSource, root: Path) -> Iterator[Any]:

    from chargeback.engine import duckdb_engine, pushdown

    files: list[Path] = []
    warnings: list[str] = []
    if isinstance(spec, DbSource):
        path = duckdb_path(spec, root)
        if not path.is_file():
            yield None
            return
        con = duckdb_connect(path)
        relation = relation_sql(spec, "duckdb")
        label = spec.label()
    else:
        files = resolve_files(spec, root)
        if not files or any(format_of(p) != "parquet" for p in files):
            yield None
            return
        con = duckdb_connect()
        con.execute("SET preserve_insertion_order = false")  # memory follows the groups
        if len(files) > 1 and not _same_schemas(con, files):
            con.close()
            yield None  # stacking differing files is the data layer's to refuse or allow
            return
        listed = ", ".join("'" + str(p).replace("'", "''") + "'" for p in files)
        relation = f"read_parquet([{listed}], union_by_name = true)"
        label = spec
        warnings = _empty_files(con, files, listed)
    try:

        def run(sql: str) -> list[tuple[Any, ...]]:
            return list(con.execute(sql).fetchall())

        def probe(relation: str) -> list[tuple[str, Any]]:
            return [
                (d[0], d[1]) for d in con.execute(f"SELECT * FROM {relation} LIMIT 0").description
            ]

        def frame(sql: str) -> pl.DataFrame:
            # through Arrow's C stream: no pyarrow needed, no Python tuple per row
            return pl.DataFrame(con.sql(sql))

        yield (
            _Adapter(run, probe, frame),
            relation,
            lambda t: pushdown.family_of_duckdb(str(t)),
            duckdb_engine.DuckDBPrimitives(),
            "duckdb",
            files,
            label,
            warnings,
        )
    finally:
        con.close()


def _empty_files(con: Any, files: list[Path], listed: str) -> list[str]:
    """The usual path's warning for each file without rows (from the files' footers);
    none when every file is empty: then no contacts at all is the usual path's error."""
    if len(files) < 2:
        return []
    rows = dict(
        con.execute(f"SELECT file_name, num_rows FROM parquet_file_metadata([{listed}])").fetchall()
    )
    empty = [p for p in files if rows.get(str(p)) == 0]
    if len(empty) == len(files):
        return []
    return [f"{display_path(p)} has no rows: no contacts read from it" for p in empty]


@contextmanager
def _postgres(ws: Workspace, spec: DbSource, choice: EngineChoice) -> Iterator[Any]:
    from chargeback.engine import postgres_engine, pushdown

    con = postgres_engine.connect(spec.uri, choice.sql_log)
    try:
        relation = relation_sql(spec, "postgres")

        def probe(relation: str) -> list[tuple[str, Any]]:
            cur = con.run(f"SELECT * FROM {relation} LIMIT 0")
            return [(d.name, d.type_code) for d in cur.description or ()]

        prims = postgres_engine.primitives_for(ws, con)  # its probes may fail: before BEGIN
        # every pass on one snapshot: rows loaded or changed meanwhile reach none of them,
        # so the checks, the value tables and the sums all describe the same table
        con.run("BEGIN ISOLATION LEVEL REPEATABLE READ")
        yield (
            _Adapter(con.execute, probe, raw=con.con),
            relation,
            pushdown.family_of_postgres,
            prims,
            "postgres",
            [],
            spec.label(),
            [],
        )
        con.run("COMMIT")  # only temporary tables were written
    finally:
        con.close()


def _same_schemas(con: Any, files: list[Path]) -> bool:
    """Every file has the same columns of the same types: union_by_name would convert
    between types (a naive time to an instant, numbers to text) where polars refuses.
    From the files' footers in one query (a query per file cost 0.02 s at 24 files)."""
    listed = ", ".join("'" + str(p).replace("'", "''") + "'" for p in files)
    rows = con.execute(
        "SELECT file_name, list((name, duckdb_type, repetition_type) ORDER BY name, "
        f"duckdb_type, repetition_type) FROM parquet_schema([{listed}]) "
        "WHERE duckdb_type IS NOT NULL GROUP BY file_name"
    ).fetchall()
    return len(rows) == len(files) and len({str(columns) for _, columns in rows}) == 1


def fingerprint_file(aggregates: Aggregates) -> Path:
    """What a database source contributed, for the run's fingerprint: its aggregates."""
    groups = [
        [g.period, g.channel, sorted(g.matched), g.contacts, g.handle_us, sorted(g.cell)]
        for g in aggregates.groups
    ]
    text = json.dumps({"groups": groups, "baseline": aggregates.baseline_counts}, sort_keys=True)
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    path = scratch_dir() / f"aggregates-{digest}.json"
    path.write_text(text, encoding="utf-8")
    return path
