"""engine/pushdown.py: the ledger's aggregates computed inside DuckDB / PostgreSQL.

Two proofs. Parity: for clean typed sources (instants, wall-clock times, dates;
double, decimal, integer and text handle times; list and text tags) the
pushed-down Aggregates equal polars_engine.aggregate on what the data layer
loads from the same data as a Parquet file, on test_differential's scenarios,
DST time zones and a Unicode edge workspace. The detector's completeness is
proven in tests/test_pushdown_detector.py, which uses the helpers here.
"""

from __future__ import annotations

import tempfile
import textwrap
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl
import pytest

pytest.importorskip("duckdb")
pytest.importorskip("sqlglot")

import duckdb
import pg_fixture
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_differential import Scenario, fixed_scenario, scenarios, write_scenario
from test_duckdb_parity import EDGE_RULES, EDGE_TEXTS

from chargeback.engine import polars_engine, pushdown
from chargeback.engine.duckdb_engine import DuckDBPrimitives
from chargeback.inputs import wanted_columns
from chargeback.report import ReportOptions, Steps
from chargeback.run import prepare
from chargeback.workspace.model import Workspace

pg_server, pg = pg_fixture.pg_server, pg_fixture.pg  # the session's server, its URI
PG_TYPES = {
    "text": "text", "float": "double precision", "decimal": "numeric", "integer": "bigint",
    "timestamptz": "timestamptz", "timestamp": "timestamp", "date": "date",
}  # fmt: skip


# ------------------------------------------------------------------ the engines


class Duck:
    """An in-memory DuckDB holding one typed table, as the pushdown sees it."""

    dialect = "duckdb"

    def __init__(self) -> None:
        self.con = duckdb.connect()

    def execute(self, sql: str) -> list[tuple[Any, ...]]:
        return list(self.con.execute(sql).fetchall())

    def load(self, frame: pl.DataFrame, path: Path) -> tuple[str, dict[str, str]]:
        self.con.execute("DROP TABLE IF EXISTS src")
        quoted = str(path).replace("'", "''")
        self.con.execute(f"CREATE TABLE src AS SELECT * FROM read_parquet('{quoted}')")
        described = self.con.execute("SELECT * FROM src LIMIT 0").description
        return "src", {d[0]: pushdown.family_of_duckdb(str(d[1])) for d in described}

    def prims(self, ws: Workspace) -> Any:
        return DuckDBPrimitives()

    def close(self) -> None:
        self.con.close()


class Pg:
    """A session on the test server, the typed table loaded with INSERTs."""

    dialect = "postgres"

    def __init__(self, uri: str) -> None:
        from chargeback.engine import postgres_engine

        self.engine = postgres_engine
        self.con = postgres_engine.connect(uri)
        self.con.con.prepare_threshold = None  # the table is re-made with other types

    def execute(self, sql: str) -> list[tuple[Any, ...]]:
        return self.con.execute(sql)

    def load(self, frame: pl.DataFrame, path: Path) -> tuple[str, dict[str, str]]:
        defs, holes = [], []
        for name, dtype in frame.schema.items():
            kind = PG_TYPES[_family(dtype)]
            defs.append(f'"{name}" {kind}')
            holes.append(f"%s::{kind}")
        self.con.run("DROP TABLE IF EXISTS src")
        self.con.run(f"CREATE TABLE src ({', '.join(defs)})")
        with self.con.con.cursor() as cur:
            cur.executemany(f"INSERT INTO src VALUES ({', '.join(holes)})", frame.rows())
            cur.execute("SELECT * FROM src LIMIT 0")
            described = [(d.name, d.type_code) for d in cur.description or ()]
        return "src", {n: pushdown.family_of_postgres(t) for n, t in described}

    def prims(self, ws: Workspace) -> Any:
        return self.engine.primitives_for(ws, self.con)

    def close(self) -> None:
        self.con.close()


def _family(dtype: pl.DataType) -> str:
    if isinstance(dtype, pl.Datetime):
        return "timestamptz" if dtype.time_zone else "timestamp"
    if dtype == pl.Date:
        return "date"
    if dtype.is_float():
        return "float"
    if isinstance(dtype, pl.Decimal):
        return "decimal"
    if dtype.is_integer():
        return "integer"
    return "text"


def columns_for(ws: Workspace, families: dict[str, str]) -> dict[str, tuple[str, str]]:
    """What the caller builds from the probe: canonical -> (source column, family)."""
    mapping = dict(ws.settings.columns)
    out = {}
    for name in wanted_columns(ws):
        source = mapping.get(name, name)
        if source in families:
            out[name] = (source, families[source])
    return out


def reference(ws_root: Path, path: Path, quarantine: bool = False) -> tuple[Workspace, Any]:
    opts = ReportOptions(
        workspace=ws_root, contacts=str(path), on_bad_rows="quarantine" if quarantine else "stop"
    )
    return prepare(opts, Steps())


def push(
    engine: Duck | Pg,
    ws: Workspace,
    frame: pl.DataFrame,
    path: Path,
    periods: set[str] | None = None,
) -> pushdown.Pushed | None:
    relation, families = engine.load(frame, path)
    columns = columns_for(ws, families)
    log: list[str] = []
    got = pushdown.pushdown_aggregate(
        ws, relation, columns, engine, engine.prims(ws), engine.dialect, periods, sql_log=log
    )
    assert log and all(isinstance(s, str) for s in log)
    return got


# ------------------------------------------------------------------ parity


def typed_contacts(sc: Scenario, stamps: str, hs: str, tags: str) -> pl.DataFrame:
    """The scenario's contacts as a typed source, blanks as nulls, tags cleaned."""
    header = sc.header_map
    data: dict[str, list[Any]] = {}
    for row in sc.contacts:
        for key, value in row.items():
            data.setdefault(header.get(key, key), []).append(_typed(key, value, stamps, hs, tags))
    schema: dict[str, Any] = {k: pl.String for k in data}
    schema[header.get("started_at", "started_at")] = {
        "timestamptz": pl.Datetime("us", "UTC"), "timestamp": pl.Datetime("us"), "date": pl.Date,
    }[stamps]  # fmt: skip
    schema["handle_seconds"] = {
        "float": pl.Float64, "decimal": pl.Decimal(18, 3), "integer": pl.Int64, "text": pl.String,
    }[hs]  # fmt: skip
    schema["revenue"] = pl.Decimal(14, 2)
    if tags == "list":
        schema["tags"] = pl.List(pl.String)
    return pl.DataFrame(data, schema=schema)


def _typed(key: str, value: str, stamps: str, hs: str, tags: str) -> Any:
    if value == "":
        return None
    if key == "started_at":
        when = datetime.fromisoformat(value)
        if stamps == "timestamptz":
            return when.astimezone(UTC) if when.tzinfo else when.replace(tzinfo=UTC)
        return when.replace(tzinfo=None) if stamps == "timestamp" else when.date()
    if key == "handle_seconds":
        return {"float": float, "decimal": Decimal, "integer": lambda s: int(float(s)),
                "text": str}[hs](value)  # fmt: skip
    if key == "revenue":
        return Decimal(value)
    if key == "tags":
        parts = [p.strip() for p in value.split("|") if p.strip()]
        return (parts if tags == "list" else "|".join(parts)) or None
    return value


VARIANTS = {
    "duckdb": [("timestamptz", "float", "list"), ("timestamp", "decimal", "text"),
               ("date", "integer", "text"), ("timestamptz", "text", "text")],
    "postgres": [("timestamptz", "float", "text"), ("timestamp", "decimal", "text")],
}  # fmt: skip


def assert_parity(engine: Duck | Pg, ws_root: Path, frame: pl.DataFrame, tmp: Path) -> None:
    path = tmp / "contacts.parquet"
    frame.write_parquet(path)
    ws, loaded = reference(ws_root, path)
    expected = polars_engine.aggregate(ws, loaded.frame)
    got = push(engine, ws, frame, path)
    assert got is not None, "clean data was flagged"
    assert got.aggregates == expected
    assert got.contacts == loaded.frame.height
    assert got.periods == sorted(set(loaded.frame["period"]))
    assert got.channels == expected.contacts_by_channel()
    month = got.periods[-1]
    again = push(engine, ws, frame, path, {month})
    assert again is not None and again.aggregates == polars_engine.aggregate(
        ws, loaded.frame, {month}
    )


def scenario_parity(engine: Duck | Pg, sc: Scenario, tmp: Path, variant: int) -> None:
    ws_root, _ = write_scenario(sc, tmp)
    options = VARIANTS[engine.dialect]
    stamps, hs, tags = options[variant % len(options)]
    assert_parity(engine, ws_root, typed_contacts(sc, stamps, hs, tags), tmp)


@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
@given(sc=scenarios(), variant=st.integers(0, 3))
def test_duckdb_random_scenarios(sc: Scenario, variant: int) -> None:
    engine = Duck()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            scenario_parity(engine, sc, Path(tmp), variant)
    finally:
        engine.close()


@pytest.mark.parametrize("variant", [0, 1, 2, 3])
@pytest.mark.parametrize("seed", [1, 3])
def test_duckdb_fixed_scenarios(tmp_path: Path, seed: int, variant: int) -> None:
    header = {"contact_id": "Ticket ID", "started_at": "Created at"} if seed == 3 else {}
    engine = Duck()
    try:
        scenario_parity(engine, fixed_scenario(seed, "split", "rates", header), tmp_path, variant)
    finally:
        engine.close()


@pytest.mark.parametrize("variant", [0, 1])
def test_postgres_scenarios(pg: str, tmp_path: Path, variant: int) -> None:
    engine = Pg(pg)
    try:
        for seed in (1, 3):
            header = {"contact_id": "Ticket ID", "started_at": "Created at"} if seed == 3 else {}
            sc = fixed_scenario(seed, "priority", "pool", header)
            scenario_parity(engine, sc, tmp_path / f"s{seed}", variant)
    finally:
        engine.close()


def edge_workspace(root: Path, tz: str) -> Path:
    ws = root / "ws"
    (ws / "rules").mkdir(parents=True, exist_ok=True)
    (ws / "rules" / "main.yaml").write_text(textwrap.dedent(EDGE_RULES), encoding="utf-8")
    (ws / "chargeback.yaml").write_text(f"timezone: {tz}\n", encoding="utf-8")
    return ws


def dst_frame(tz: str, n: int = 400) -> pl.DataFrame:
    """Instants around the zone's DST changes and month ends, Unicode texts."""
    changes = {  # local midnight +- a few hours around the 2026 changes, in UTC
        "America/New_York": ["2026-03-08T07:00:00", "2026-11-01T06:00:00", "2026-10-31T23:30:00"],
        "Australia/Sydney": ["2026-04-04T15:00:00", "2026-10-03T16:00:00", "2026-03-31T13:30:00"],
    }[tz]
    stamps = []
    for i in range(n):
        base = datetime.fromisoformat(changes[i % 3]).replace(tzinfo=UTC)
        stamps.append(base + timedelta(minutes=37 * (i % 11) - 180))
    return pl.DataFrame(
        {
            "contact_id": [f"c{i}" for i in range(n)],
            "started_at": stamps,
            "channel": ["phone" if i % 3 else "chat" for i in range(n)],
            "text": [EDGE_TEXTS[i % len(EDGE_TEXTS)].strip() for i in range(n)],
            "tags": [[f"x{i % 4}", "x"] if i % 5 else None for i in range(n)],
            "handle_seconds": [i * 7.3 for i in range(n)],
        },
        schema_overrides={"started_at": pl.Datetime("us", "UTC")},
    )


@pytest.mark.parametrize("tz", ["America/New_York", "Australia/Sydney"])
def test_dst_and_unicode_edges_duckdb(tmp_path: Path, tz: str) -> None:
    engine = Duck()
    try:
        assert_parity(engine, edge_workspace(tmp_path, tz), dst_frame(tz), tmp_path)
    finally:
        engine.close()


@pytest.mark.parametrize("tz", ["America/New_York", "Australia/Sydney"])
def test_dst_and_unicode_edges_postgres(pg: str, tmp_path: Path, tz: str) -> None:
    engine = Pg(pg)
    frame = dst_frame(tz).with_columns(pl.col("tags").list.join("|"))
    try:
        assert_parity(engine, edge_workspace(tmp_path, tz), frame, tmp_path)
    finally:
        engine.close()
