"""A ledger-only report summed where the contacts are (engine/in_engine.py, SPEC 10).

`report --format csv` on duckdb (Parquet files, a DuckDB database) and on a real
PostgreSQL must write the very ledger.csv the polars engine writes, without
reading the contacts out (the SQL sent shows no per-contact SELECT); when a row
breaks the data contract, the run falls back to reading the contacts and names
the bad row exactly as for files.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
import pytest
from conftest import write_workspace
from pg_fixture import pg, pg_server  # noqa: F401  (fixtures)
from test_engine_choice import RULES
from test_postgres_source import CONTACTS, load_table
from typer.testing import CliRunner

from cli import app

duckdb = pytest.importorskip("duckdb")


def report(root: Path, out: Path, *args: str) -> Any:
    return CliRunner().invoke(
        app, ["report", "--workspace", str(root), "--format", "csv", "--out", str(out), *args]
    )


def as_parquet(ws: Path) -> None:
    """contacts.csv as a typed Parquet file (an instant, a float handle time)."""
    frame = pl.read_csv(ws / "contacts.csv", infer_schema=False).with_columns(
        pl.col("started_at").str.to_datetime(time_zone="UTC", time_unit="us"),
        pl.col("handle_seconds").cast(pl.Float64),
    )
    frame.write_parquet(ws / "contacts.parquet")
    (ws / "chargeback.yaml").write_text("contacts: contacts.parquet\ntimezone: America/New_York\n")


def test_parquet_on_duckdb_is_summed_in_duckdb(tmp_path: Path) -> None:
    ws = write_workspace(tmp_path / "ws", RULES, CONTACTS)
    as_parquet(ws)
    first = report(ws, tmp_path / "polars")
    assert first.exit_code == 0, first.output
    result = report(ws, tmp_path / "duckdb", "--engine", "duckdb", "--show-sql")
    assert result.exit_code == 0, result.output
    assert "read_parquet" in result.output and "GROUP BY" in result.output
    expected = (tmp_path / "polars" / "ledger.csv").read_text()
    assert (tmp_path / "duckdb" / "ledger.csv").read_text() == expected


def test_a_bad_row_falls_back_to_the_exact_message(tmp_path: Path) -> None:
    ws = write_workspace(tmp_path / "ws", RULES, CONTACTS)
    as_parquet(ws)
    frame = pl.read_parquet(ws / "contacts.parquet")
    frame.with_columns(
        pl.when(pl.col("contact_id") == "c3")
        .then(pl.lit(" chat"))
        .otherwise(pl.col("channel"))
        .alias("channel")
    ).write_parquet(ws / "contacts.parquet")
    polars_run = report(ws, tmp_path / "p")
    duckdb_run = report(ws, tmp_path / "d", "--engine", "duckdb")
    assert duckdb_run.exit_code == polars_run.exit_code
    expected = (tmp_path / "p" / "ledger.csv").read_text()
    assert (tmp_path / "d" / "ledger.csv").read_text() == expected
    frame.with_columns(
        pl.when(pl.col("contact_id") == "c3")
        .then(pl.lit(-4.0))
        .otherwise(pl.col("handle_seconds"))
        .alias("handle_seconds")
    ).write_parquet(ws / "contacts.parquet")
    result = report(ws, tmp_path / "d2", "--engine", "duckdb")
    assert result.exit_code == 1
    assert "contacts.parquet, row 3, column 'handle_seconds': must not be negative" in result.output


def test_a_postgres_table_is_summed_on_the_server(tmp_path: Path, pg: str) -> None:  # noqa: F811
    ws = write_workspace(tmp_path / "ws", RULES, CONTACTS)
    first = report(ws, tmp_path / "csv")
    assert first.exit_code == 0, first.output
    load_table(pg, ws, "support.summed")
    (ws / "chargeback.yaml").write_text(f'contacts: {{uri: "{pg}", table: support.summed}}\n')
    result = report(ws, tmp_path / "pg", "--show-sql")
    assert result.exit_code == 0, result.output
    assert "COPY (" not in result.output  # nothing per contact was read out
    expected = (tmp_path / "csv" / "ledger.csv").read_text()
    assert (tmp_path / "pg" / "ledger.csv").read_text() == expected


def test_the_generated_sample_is_summed_in_duckdb(tmp_path: Path) -> None:
    """Typed Parquet as a platform writes it: list tags (many empty), integer handle
    times, float revenue, 40 rules with control baselines, New York time."""
    from chargeback.sample.generate import generate_sample

    generate_sample(tmp_path / "s", contacts=4000, seed=3)
    ws = tmp_path / "s"
    first = report(ws, tmp_path / "polars")
    assert first.exit_code == 0, first.output
    result = report(ws, tmp_path / "duckdb", "--engine", "duckdb", "--show-sql")
    assert result.exit_code == 0, result.output
    assert "CREATE TEMP TABLE cb_pushdown_flags" in result.output  # summed in DuckDB, not read out
    expected = (tmp_path / "polars" / "ledger.csv").read_text()
    assert (tmp_path / "duckdb" / "ledger.csv").read_text() == expected


def test_files_of_differing_types_are_read_as_polars_reads_them(tmp_path: Path) -> None:
    """Split files are summed in DuckDB only when every footer has the same columns and
    types (one parquet_schema query): a handle time that is an integer in one file
    and a float in the other goes the usual way, with the usual answer."""
    ws = write_workspace(tmp_path / "ws", RULES, CONTACTS)
    as_parquet(ws)
    frame = pl.read_parquet(ws / "contacts.parquet")
    (ws / "parts").mkdir()
    half = frame.height // 2
    frame.head(half).write_parquet(ws / "parts" / "a.parquet")
    frame.tail(frame.height - half).write_parquet(ws / "parts" / "b.parquet")
    (ws / "chargeback.yaml").write_text("contacts: parts/*.parquet\ntimezone: America/New_York\n")
    expected = report(ws, tmp_path / "p")
    assert expected.exit_code == 0, expected.output
    same = report(ws, tmp_path / "same", "--engine", "duckdb", "--show-sql")
    assert same.exit_code == 0, same.output
    assert "cb_pushdown_flags" in same.output  # summed in DuckDB
    ledger = (tmp_path / "p" / "ledger.csv").read_text()
    assert (tmp_path / "same" / "ledger.csv").read_text() == ledger
    tail = frame.tail(frame.height - half)
    tail.with_columns(pl.col("handle_seconds").round().cast(pl.Int64)).write_parquet(
        ws / "parts" / "b.parquet"
    )
    polars_run = report(ws, tmp_path / "p2")
    mixed = report(ws, tmp_path / "mixed", "--engine", "duckdb", "--show-sql")
    assert mixed.exit_code == polars_run.exit_code
    assert "cb_pushdown_flags" not in mixed.output  # not summed in DuckDB
    if polars_run.exit_code == 0:
        expected_mixed = (tmp_path / "p2" / "ledger.csv").read_text()
        assert (tmp_path / "mixed" / "ledger.csv").read_text() == expected_mixed


@pytest.mark.parametrize("packed_rows", [0, 5_000_000])
def test_duplicate_and_padded_ids_go_the_usual_way_on_either_first_scan(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, packed_rows: int
) -> None:
    """DuckDB's ids are checked and their duplicates found in one sort up to PACKED_ROWS
    contacts, in two scans past it: either way a duplicate or a padded id sends the run
    the usual way, which names the row, and a clean file is summed in DuckDB."""
    from chargeback.engine import pushdown_groups

    monkeypatch.setattr(pushdown_groups, "PACKED_ROWS", packed_rows)
    ws = write_workspace(tmp_path / "ws", RULES, CONTACTS)
    as_parquet(ws)
    clean = report(ws, tmp_path / "clean", "--engine", "duckdb", "--show-sql")
    assert clean.exit_code == 0 and "TABLE cb_pushdown_flags AS" in clean.output
    assert ("LAG(k) OVER" in clean.output) and (("c & 1" in clean.output) == bool(packed_rows))
    frame = pl.read_parquet(ws / "contacts.parquet")
    for bad_id, words in (("c1", "duplicate"), (" c3", "")):
        frame.with_columns(
            pl.when(pl.col("contact_id") == "c3")
            .then(pl.lit(bad_id))
            .otherwise(pl.col("contact_id"))
            .alias("contact_id")
        ).write_parquet(ws / "contacts.parquet")
        polars_run = report(ws, tmp_path / f"p{bad_id}")
        duckdb_run = report(ws, tmp_path / f"d{bad_id}", "--engine", "duckdb", "--show-sql")
        assert duckdb_run.exit_code == polars_run.exit_code
        assert "TABLE cb_pushdown_flags AS" not in duckdb_run.output  # read out, not summed
        if words:
            assert words in duckdb_run.output
        if polars_run.exit_code == 0:
            want = (tmp_path / f"p{bad_id}" / "ledger.csv").read_text()
            assert (tmp_path / f"d{bad_id}" / "ledger.csv").read_text() == want


def test_rows_loaded_during_a_postgres_run_reach_none_of_its_passes(
    tmp_path: Path,
    pg: str,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every pass on the server runs in one REPEATABLE READ transaction: a contact
    inserted by another session after the first scans (as a nightly load would) is in
    none of them, so the run is still summed on the server and its ledger is the table's
    as it was when the run began. In autocommit the later passes saw it, the grouped
    scan's count disagreed with the first scan's, and the run read the contacts out."""
    import psycopg

    from chargeback.engine import postgres_engine

    ws = write_workspace(tmp_path / "ws", RULES, CONTACTS)
    first = report(ws, tmp_path / "csv")
    assert first.exit_code == 0, first.output
    load_table(pg, ws, "support.loading")
    (ws / "chargeback.yaml").write_text(f'contacts: {{uri: "{pg}", table: support.loading}}\n')
    run = postgres_engine._Con.run
    inserted: list[str] = []

    def meanwhile(self: Any, sql: str, params: Any = None) -> Any:
        if sql.startswith("CREATE TEMP TABLE") and not inserted:  # after the first scans
            with psycopg.connect(pg, autocommit=True) as other:
                other.execute(
                    "INSERT INTO support.loading SELECT 'late-1', started_at, channel, reason, "
                    "text, handle_seconds FROM support.loading WHERE contact_id = 'c1'"
                )
            inserted.append(sql)
        return run(self, sql, params)

    monkeypatch.setattr(postgres_engine._Con, "run", meanwhile)
    result = report(ws, tmp_path / "pg", "--show-sql")
    assert result.exit_code == 0, result.output
    assert inserted, "no pass made a temporary table"
    assert "BEGIN ISOLATION LEVEL REPEATABLE READ" in result.output
    assert "COPY (" not in result.output  # still summed on the server
    expected = (tmp_path / "csv" / "ledger.csv").read_text()
    assert (tmp_path / "pg" / "ledger.csv").read_text() == expected
    monkeypatch.setattr(postgres_engine._Con, "run", run)
    later = report(ws, tmp_path / "pg2")  # the next run sees the late contact
    assert later.exit_code == 0, later.output
    assert (tmp_path / "pg2" / "ledger.csv").read_text() != expected
