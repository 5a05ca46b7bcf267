"""Columns of about one value per row, checked and matched in the grouped scan
(engine/pushdown_rows.py) rather than through a value table.

Real engines, no mocks: texts all distinct, a reason nearly so, on DuckDB and on
a real PostgreSQL, give polars' aggregates exactly, answered in the engine (the
log shows the per-row route, and no fallback); a bad value in such a column is
still flagged, so the contacts are read and the bad row named as always.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from conftest import write_workspace
from test_in_engine_groups import report, wide_contacts, wide_rules
from test_postgres_source import CONTACTS
from test_pushdown import Duck, Pg, columns_for, pg, pg_server, reference  # noqa: F401

from chargeback.engine import polars_engine, pushdown
from chargeback.engine.pushdown_rows import SAMPLE
from chargeback.workspace.load import load_workspace

duckdb = pytest.importorskip("duckdb")


def workspace(tmp: Path, rules: int = 70) -> Path:
    ws = write_workspace(tmp / "ws", wide_rules(rules), CONTACTS)
    (ws / "chargeback.yaml").write_text("timezone: Europe/Berlin\noverlap: split\n")
    return ws


def unique_reasons(frame: pl.DataFrame) -> pl.DataFrame:
    """Seven reasons in eight made unique (a suffix keeps `billing*` and the family)."""
    reasons = [r if r is None or i % 8 == 0 else f"{r}.x{i}" for i, r in enumerate(frame["reason"])]
    return frame.with_columns(pl.Series("reason", reasons, dtype=pl.String))


def pushed(engine: Duck | Pg, ws_root: Path, frame: pl.DataFrame, tmp: Path) -> list[str]:
    """The engine's aggregates equal polars' (all months, and one); the statements run."""
    path = tmp / "contacts.parquet"
    frame.write_parquet(path)
    ws, loaded = reference(ws_root, path)
    relation, families = engine.load(frame, path)
    log: list[str] = []
    for periods in (None, {sorted(set(loaded.frame["period"]))[-1]}):
        got = pushdown.pushdown_aggregate(
            ws,
            relation,
            columns_for(ws, families),
            engine,
            engine.prims(ws),
            engine.dialect,
            periods,
            sql_log=log,
        )
        assert got is not None, "answered by reading the contacts out"
        assert got.aggregates == polars_engine.aggregate(ws, loaded.frame, periods)
        assert got.contacts == loaded.frame.height
    return log


def per_row(log: list[str], column: str) -> bool:
    """The column was read per row in the grouped scan, and made no value table."""
    scan = [s for s in log if s.startswith("CREATE TEMP TABLE cb_pushdown_flags")]
    table = f'"{column}" AS "cb_m"'
    return bool(scan) and f'"m_{column}" AS "cb_row' in scan[0] and not any(table in s for s in log)


def for_postgres(frame: pl.DataFrame) -> pl.DataFrame:
    """PostgreSQL holds tags as text (an array is exported as '{a,b}'); no tag is NULL."""
    tags = pl.col("tags")
    return frame.with_columns(pl.when(tags.list.len() > 0).then(tags.list.join("|")).alias("tags"))


@pytest.mark.parametrize("rules", [13, 70])
def test_distinct_texts_are_matched_per_row_on_duckdb(tmp_path: Path, rules: int) -> None:
    engine = Duck()
    try:
        log = pushed(engine, workspace(tmp_path, rules), wide_contacts(unique=True), tmp_path)
    finally:
        engine.close()
    assert per_row(log, "text")
    assert not per_row(log, "channel") and not per_row(log, "reason")  # these repeat


def test_a_nearly_unique_reason_is_matched_per_row_on_duckdb(tmp_path: Path) -> None:
    engine = Duck()
    try:
        frame = unique_reasons(wide_contacts(unique=True))
        log = pushed(engine, workspace(tmp_path), frame, tmp_path)
    finally:
        engine.close()
    assert per_row(log, "reason") and per_row(log, "text")


def test_distinct_texts_and_reasons_per_row_on_postgres(pg: str, tmp_path: Path) -> None:  # noqa: F811
    engine = Pg(pg)
    try:
        frame = for_postgres(unique_reasons(wide_contacts(unique=True)))
        log = pushed(engine, workspace(tmp_path), frame, tmp_path)
        assert per_row(log, "reason") and per_row(log, "text")
        log = pushed(engine, workspace(tmp_path), for_postgres(wide_contacts()), tmp_path)
        assert not per_row(log, "text")  # six texts: a value table
    finally:
        engine.close()


@pytest.mark.parametrize(
    "bad",
    ["bad\x01 text", " padded", "padded\u3000", "", "x" * 40_000],
    ids=["control", "leading", "trailing", "empty", "long"],
)
def test_a_bad_value_in_a_per_row_column_is_flagged(tmp_path: Path, bad: str) -> None:
    """The per-row checks are the value table's: any of them holding means a read-out."""
    frame = wide_contacts(unique=True)
    frame = frame.with_columns(
        pl.when(pl.col("contact_id") == "c7").then(pl.lit(bad)).otherwise("text").alias("text")
    )
    path = tmp_path / "contacts.parquet"
    frame.write_parquet(path)
    engine = Duck()
    try:
        ws = load_workspace(workspace(tmp_path))
        relation, families = engine.load(frame, path)
        log: list[str] = []
        got = pushdown.pushdown_aggregate(
            ws, relation, columns_for(ws, families), engine, engine.prims(ws), "duckdb", sql_log=log
        )
    finally:
        engine.close()
    assert got is None
    assert per_row(log, "text")  # flagged by the scan's own checks, not a value table's


def test_controls_with_distinct_texts_and_reasons_sum_to_polars_ledger(tmp_path: Path) -> None:
    """The generated sample (control baselines: rows kept, reason families) with its texts
    made distinct and most reasons too: the same ledger.csv, summed in DuckDB."""
    from chargeback.sample.generate import generate_sample

    generate_sample(tmp_path / "s", contacts=4000, seed=3)
    ws = tmp_path / "s"
    path = ws / "sample_data" / "contacts.parquet"
    frame = pl.read_parquet(path)
    frame = unique_reasons(frame).with_columns(
        pl.concat_str(pl.col("text"), pl.lit(" #"), pl.col("contact_id")).alias("text")
    )
    frame.write_parquet(path)
    first = report(ws, tmp_path / "polars")
    assert first.exit_code == 0, first.output
    result = report(ws, tmp_path / "duckdb", "--engine", "duckdb", "--show-sql")
    assert result.exit_code == 0, result.output
    assert "CREATE TEMP TABLE cb_pd_rows" in result.output  # summed in DuckDB, not read out
    assert '"m_text" AS "cb_row' in result.output and '"m_reason" AS "cb_row' in result.output
    expected = (tmp_path / "polars" / "ledger.csv").read_text()
    assert (tmp_path / "duckdb" / "ledger.csv").read_text() == expected


def test_a_large_source_is_judged_on_a_sample(tmp_path: Path) -> None:
    """More rows than the sample: the first SAMPLE rows decide, and the answer holds."""
    n = SAMPLE + 500
    frame = wide_contacts(n, unique=True).with_columns(  # a minute apart: three months
        pl.datetime_range(
            datetime(2026, 1, 1, tzinfo=UTC),
            datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=n - 1),
            "1m",
            time_unit="us",
            time_zone="UTC",
            eager=True,
        ).alias("started_at")
    )
    engine = Duck()
    try:
        log = pushed(engine, workspace(tmp_path, 13), frame, tmp_path)
    finally:
        engine.close()
    assert per_row(log, "text")
    assert any(f"LIMIT {SAMPLE}" in s for s in log)
