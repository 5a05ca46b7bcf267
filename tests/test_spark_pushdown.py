"""engine/pushdown_spark.py: a ledger-only report summed inside Spark equals polars'.

The plan, detector and scans are pushdown's (tests/test_pushdown.py and
test_pushdown_detector.py prove them on DuckDB and PostgreSQL); here they run in
Spark's words on one local session shared by the module (the JVM's start and
warm-up are most of the time, so the cases are few and chosen for what Spark
spells its own way). Parity: typed Parquet (instants in DST zones, wall-clock
times; double, decimal and text handle times; `values:` on tags; mapped
headers) and control baselines. Detector: each hostile value is flagged (None);
near misses get through, with the data layer's frame equal to the derive.
The command: `report --format csv --engine spark` on Parquet files and on a Spark
table (a local session standing in for Spark Connect) writes polars' ledger.csv
in the engine; a bad row reads the contacts out, with the usual message.
"""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from conftest import needs_spark

pytest.importorskip("sqlglot")

from conftest import write_workspace
from engine_parity import write_shared_control_world
from test_control_ledger import SHARED
from test_differential import fixed_scenario, write_scenario
from test_engine_choice import RULES
from test_in_engine import as_parquet, report
from test_postgres_source import CONTACTS
from test_pushdown import columns_for, dst_frame, edge_workspace, reference, typed_contacts
from test_pushdown_detector import (
    COMPARED,
    NEAR_MISSES,
    accepted,
    hostile_frame,
    hostile_workspace,
)

from chargeback.data import spark_session
from chargeback.engine import polars_engine, pushdown, pushdown_spark
from chargeback.engine.pushdown_spark import SparkSql, files_relation, spark_statements
from chargeback.engine.spark_engine import SparkPrimitives, lower_conformance
from chargeback.workspace.load import load_workspace
from chargeback.workspace.model import Workspace

needs_spark("the Spark pushdown's test")


class SparkFiles:
    """A Parquet file as the Spark pushdown sees it: read by Spark SQL, types cross-checked."""

    dialect = "spark"

    def __init__(self, spark: Any) -> None:
        self.log: list[str] = []
        self.con = SparkSql(spark, self.log)
        self.prims = SparkPrimitives(lower_conformance(spark))

    def execute(self, sql: str) -> list[tuple[Any, ...]]:
        return self.con.execute(sql)

    def load(self, path: Path) -> tuple[str, dict[str, str]]:
        relation = files_relation([path])
        polars_types = {
            n: pushdown_spark.polars_family(t) for n, t in pl.read_parquet_schema(path).items()
        }
        described = pushdown_spark._Described(self.con, polars_types).describe(relation)
        return relation, dict(described)

    def push(
        self, ws: Workspace, path: Path, periods: set[str] | None = None
    ) -> pushdown.Pushed | None:
        relation, families = self.load(path)
        columns = columns_for(ws, families)
        return pushdown_spark.pushdown_aggregate(
            ws, relation, columns, self.con, self.prims, "spark", periods
        )


def assert_parity(spark: Any, ws_root: Path, frame: pl.DataFrame, tmp: Path) -> None:
    """pushdown on Spark == polars on what the data layer loads from the same Parquet."""
    path = tmp / "contacts.parquet"
    frame.write_parquet(path)
    ws, loaded = reference(ws_root, path)
    engine = SparkFiles(spark)
    got = engine.push(ws, path)
    assert got is not None, "clean data was flagged"
    expected = polars_engine.aggregate(ws, loaded.frame)
    assert got.aggregates == expected
    assert got.contacts == loaded.frame.height
    assert got.periods == sorted(set(loaded.frame["period"]))
    assert got.channels == expected.contacts_by_channel()
    assert any(s.startswith("CACHE LAZY TABLE cb_pushdown_flags") for s in engine.log)


def test_a_typed_parquet_scenario(spark: Any, tmp_path: Path) -> None:
    """test_differential's scenario with mapped headers, wall-clock times and decimal handle
    times (instants and doubles: the DST test and the command's)."""
    header = {"contact_id": "Ticket ID", "started_at": "Created at"}
    sc = fixed_scenario(3, "split", "rates", header)
    ws_root, _ = write_scenario(sc, tmp_path)
    frame = typed_contacts(sc, "timestamp", "decimal", "text")
    assert_parity(spark, ws_root, frame, tmp_path)


def test_dst_and_unicode_edges(spark: Any, tmp_path: Path) -> None:
    tz = "Australia/Sydney"
    frame = dst_frame(tz)  # tags as a list of strings
    assert_parity(spark, edge_workspace(tmp_path, tz), frame, tmp_path)


def test_control_baselines(spark: Any, tmp_path: Path) -> None:
    """A control shared by two decisions, text phrases: the per-contact table and
    sql_aggregate's shared SQL in Spark's dialect."""
    write_shared_control_world(tmp_path / "ws", SHARED, 3000)
    frame = pl.read_csv(tmp_path / "ws" / "contacts.csv", infer_schema=False)
    frame = frame.with_columns(pl.col("started_at").str.to_datetime(time_unit="us"))
    assert_parity(spark, tmp_path / "ws", frame, tmp_path)


# ------------------------------------------------------------------ the detector

HOSTILE: list[tuple[str, Any, str]] = [  # each check Spark spells its own way
    ("channel", "phone\u3000", "text"),  # ascii() of the last character
    ("reason", "a\x00b", "text"),  # a NUL in a Java regex class
    ("handle_seconds", 5e-7, "float"),  # a rounding tie: polars 0 microseconds, Spark's round 1
    ("handle_seconds", "12.5\n", "text"),  # Java's $ before a final newline
    ("revenue", float("inf"), "float"),  # isnan or infinite
    ("started_at", datetime(2038, 1, 19, tzinfo=UTC), "timestamptz"),  # zone rules' end
]  # fmt: skip


def check_frame(engine: SparkFiles, tz: str, frame: pl.DataFrame) -> bool:
    """True when the detector let the rows through (and then everything agreed)."""
    ws_root = hostile_workspace(tz, "|")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "contacts.parquet"
        frame.write_parquet(path)
        ws = load_workspace(ws_root)
        got = engine.push(ws, path)
        if got is None:
            return False
        ws, loaded = accepted(ws_root, path)
        relation, families = engine.load(path)
        plan = pushdown.plan(ws, relation, columns_for(ws, families), "spark")
        assert plan is not None
        names = [c for c in COMPARED if c in plan.schema]
        picked = ", ".join(f"`{n}`" for n in names)
        derived = engine.execute(f"SELECT {picked} FROM ({plan.derive}) AS x")
        polars_rows = loaded.frame.select(names).sort("contact_id").rows()
        assert sorted(derived, key=lambda r: r[0]) == polars_rows
        assert got.aggregates == polars_engine.aggregate(ws, loaded.frame)
        return True


def test_hostile_values_are_flagged(spark: Any) -> None:
    engine = SparkFiles(spark)
    through = [
        case
        for case in HOSTILE
        if check_frame(engine, "America/New_York", hostile_frame(*case, "|"))
    ]
    assert not through


def test_near_misses_are_pushed_down(spark: Any) -> None:
    """Unusual values the data layer keeps unchanged, in one table per column typing:
    none is flagged, and the derive equals the data layer's frame row by row."""
    tables: dict[str, list[pl.DataFrame]] = {}
    kept = ("text", "float", "timestamptz", "list")  # Spark's own spellings of the checks
    for i, case in enumerate(c for c in NEAR_MISSES if c[2] in kept and c[0] != "revenue"):
        frame = hostile_frame(*case, "|", lists=case[2] == "list")
        frame = frame.with_columns(pl.col("contact_id") + f"_{i}")
        tables.setdefault(str(frame.schema), []).append(frame)
    engine = SparkFiles(spark)
    for frames in tables.values():
        assert check_frame(engine, "America/New_York", pl.concat(frames)), frames


def test_what_spark_does_not_reproduce_reads_out(spark: Any, tmp_path: Path) -> None:
    engine = SparkFiles(spark)
    ws = load_workspace(hostile_workspace("UTC", "|"))
    path = tmp_path / "c.parquet"
    frame = hostile_frame("text", "ok", "text", "|", lists=True)
    frame.with_columns(pl.col("text").cast(pl.Binary)).write_parquet(path)
    assert engine.push(ws, path) is None  # a binary column: not a type the SQL reads
    naive = tmp_path / "naive.parquet"
    frame = hostile_frame("text", "ok", "text", "|", lists=False)
    frame.with_columns(pl.col("started_at").dt.replace_time_zone(None)).write_parquet(naive)
    assert engine.load(naive)[1]["started_at"] == "timestamp"  # wall clock, as polars reads it
    slashed = tmp_path / "slashed"
    (slashed / "rules").mkdir(parents=True)
    (slashed / "rules" / "main.yaml").write_text(
        (hostile_workspace("UTC", "|") / "rules" / "main.yaml").read_text()
    )
    (slashed / "chargeback.yaml").write_text("values:\n  channel: {'a\\b': phone}\n")
    assert load_workspace(slashed).settings.values[0].pairs[0][0] == "a\\b"
    assert engine.push(load_workspace(slashed), naive) is None  # a backslash in a literal


def test_statements_in_spark_words() -> None:
    assert spark_statements("CREATE TEMP TABLE cb_pd_days AS SELECT 1") == [
        "CACHE LAZY TABLE cb_pd_days AS SELECT 1"
    ]
    assert spark_statements("DROP TABLE IF EXISTS cb_pd_v_0") == [
        "UNCACHE TABLE IF EXISTS cb_pd_v_0",
        "DROP VIEW IF EXISTS cb_pd_v_0",
    ]
    assert spark_statements("ALTER TABLE a_rx RENAME TO a") == ["ALTER VIEW a_rx RENAME TO a"]
    assert spark_statements("SELECT 1") == ["SELECT 1"]


# ------------------------------------------------------------------ the command


def test_report_on_parquet_is_summed_in_spark(spark: Any, tmp_path: Path) -> None:
    """Two Parquet files (a folder), stacked in Spark SQL as the data layer stacks them;
    nothing is left cached afterwards (each text four times, so the texts get a value
    table, remade under its own name with the regexes folded in: a cached plan used to
    outlive it in the cache every session of a cluster shares)."""
    ws = write_workspace(tmp_path / "ws", RULES, CONTACTS)
    as_parquet(ws)
    once = pl.read_parquet(ws / "contacts.parquet")
    frame = pl.concat([once.with_columns(pl.col("contact_id") + f"-{copy}") for copy in "abcd"])
    (ws / "contacts.parquet").unlink()
    (ws / "contacts").mkdir()
    frame.head(3).write_parquet(ws / "contacts" / "a.parquet")
    frame.tail(-3).write_parquet(ws / "contacts" / "b.parquet")
    config = (ws / "chargeback.yaml").read_text().replace("contacts.parquet", "contacts/")
    (ws / "chargeback.yaml").write_text(config)
    first = report(ws, tmp_path / "polars")
    assert first.exit_code == 0, first.output
    cached = spark.sparkContext._jsc.sc().getPersistentRDDs().size()
    result = report(ws, tmp_path / "spark", "--engine", "spark", "--show-sql")
    assert result.exit_code == 0, result.output
    assert "CACHE LAZY TABLE cb_pushdown_flags" in result.output  # summed in Spark
    assert "ALTER VIEW" in result.output  # a value table remade (its regexes folded in)
    assert spark.sparkContext._jsc.sc().getPersistentRDDs().size() == cached
    assert "UNION ALL SELECT * FROM parquet.`" in result.output
    assert "chargeback_contacts_" not in result.output  # nothing read out into a view
    expected = (tmp_path / "polars" / "ledger.csv").read_text()
    assert (tmp_path / "spark" / "ledger.csv").read_text() == expected


def replaced(frame: pl.DataFrame, column: str, value: Any) -> pl.DataFrame:
    """contact c3's `column` set to `value`."""
    new = pl.when(pl.col("contact_id") == "c3").then(pl.lit(value)).otherwise(pl.col(column))
    return frame.with_columns(new.alias(column))


def test_a_bad_row_reads_the_contacts_out(spark: Any, tmp_path: Path) -> None:
    ws = write_workspace(tmp_path / "ws", RULES, CONTACTS)
    as_parquet(ws)
    frame = pl.read_parquet(ws / "contacts.parquet")
    replaced(frame, "channel", " chat").write_parquet(ws / "contacts.parquet")  # polars trims
    polars_run = report(ws, tmp_path / "p")
    spark_run = report(ws, tmp_path / "s", "--engine", "spark", "--show-sql")
    assert spark_run.exit_code == polars_run.exit_code == 0, spark_run.output
    assert "CACHE LAZY TABLE cb_pushdown_flags" not in spark_run.output  # flagged before
    assert "chargeback_contacts_" in spark_run.output  # read out, summed as always
    expected = (tmp_path / "p" / "ledger.csv").read_text()
    assert (tmp_path / "s" / "ledger.csv").read_text() == expected
    replaced(frame, "contact_id", "c2").write_parquet(ws / "contacts.parquet")
    result = report(ws, tmp_path / "s2", "--engine", "spark")
    assert result.exit_code == 1
    message = "contacts.parquet, row 3, column 'contact_id': duplicate contact_id 'c2'"
    assert message in result.output


def test_a_spark_table_is_summed_in_spark(
    spark: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A `{uri: sc://..., table}` source, the local session standing in for the cluster."""
    ws = write_workspace(tmp_path / "ws", RULES, CONTACTS)
    as_parquet(ws)
    first = report(ws, tmp_path / "polars")
    assert first.exit_code == 0, first.output
    spark.read.parquet(str(ws / "contacts.parquet")).createOrReplaceTempView("cx_summed")
    monkeypatch.setattr(pushdown_spark, "session", lambda remote=None: spark)
    (ws / "chargeback.yaml").write_text(
        'contacts: {uri: "sc://127.0.0.1:15002", table: cx_summed}\ntimezone: America/New_York\n'
    )
    try:
        result = report(ws, tmp_path / "spark", "--show-sql")
    finally:
        spark.catalog.dropTempView("cx_summed")
    assert result.exit_code == 0, result.output
    assert "CACHE LAZY TABLE cb_pushdown_flags" in result.output
    assert "ORDER BY `contact_id`" not in result.output  # nothing per contact was read out
    expected = (tmp_path / "polars" / "ledger.csv").read_text()
    assert (tmp_path / "spark" / "ledger.csv").read_text() == expected


def test_a_file_polars_cannot_read_is_named_as_always(spark: Any, tmp_path: Path) -> None:
    ws = write_workspace(tmp_path / "ws", RULES, CONTACTS)
    as_parquet(ws)
    (ws / "contacts.parquet").write_bytes(b"not parquet at all")
    polars_run = report(ws, tmp_path / "p")
    spark_run = report(ws, tmp_path / "s", "--engine", "spark")
    assert spark_run.exit_code == polars_run.exit_code != 0
    assert spark_run.output == polars_run.output


def test_spark_connect(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, spark_remote: str) -> None:
    """A table on a Spark Connect server (conftest's spark_remote; a temp view made through
    the client) summed on the server, the same ledger."""
    remote = spark_remote
    connect = spark_session.session(remote)
    ws = write_workspace(tmp_path / "ws", RULES, CONTACTS)
    as_parquet(ws)
    first = report(ws, tmp_path / "polars")
    assert first.exit_code == 0, first.output
    arrow = pl.read_parquet(ws / "contacts.parquet").to_arrow()
    connect.createDataFrame(arrow).createOrReplaceTempView("cx_connect")
    monkeypatch.setattr(pushdown_spark, "session", lambda remote=None: connect)
    (ws / "chargeback.yaml").write_text(
        f'contacts: {{uri: "{remote}", table: cx_connect}}\ntimezone: America/New_York\n'
    )
    result = report(ws, tmp_path / "spark", "--show-sql")
    assert result.exit_code == 0, result.output
    assert "CACHE LAZY TABLE cb_pushdown_flags" in result.output
    expected = (tmp_path / "polars" / "ledger.csv").read_text()
    assert (tmp_path / "spark" / "ledger.csv").read_text() == expected


def test_text_that_is_not_utf8_is_named_as_always(spark: Any, tmp_path: Path) -> None:
    """polars refuses such a file; Spark would read it: the run falls back to polars' error."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    ws = write_workspace(tmp_path / "ws", RULES, CONTACTS)
    as_parquet(ws)
    table = pq.read_table(ws / "contacts.parquet")
    raw = pa.array([b"a\xffb"] + [b"billing.fee"] * (table.num_rows - 1), type=pa.binary())
    reason = pa.Array.from_buffers(pa.string(), len(raw), raw.buffers())
    at = table.schema.get_field_index("reason")
    pq.write_table(table.set_column(at, "reason", reason), ws / "contacts.parquet")
    polars_run = report(ws, tmp_path / "p")
    spark_run = report(ws, tmp_path / "s", "--engine", "spark")
    assert polars_run.exit_code == spark_run.exit_code == 1
    assert spark_run.output == polars_run.output
