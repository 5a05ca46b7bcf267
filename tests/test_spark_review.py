"""`explain` and `check` in Spark (engine/pushdown_spark_review.py, SPEC 10, issue 15).

On `--engine spark`, `explain ID` sums the aggregates in Spark and reads out only
the rows with that id (filtered by Spark: Parquet files in local mode, or an
`sc://` table, a local session standing in for the cluster), and `check` asks
Spark only for grouped counts. Both must print, text and JSON, byte for byte
what the read-out path prints: polars' for Parquet files, Spark's own read-out
for a Spark table. The SQL sent shows the in-engine path ran (the read-out
path's `prepare` is made to fail). A missing contact and a bad row fall back, with
the read-out path's very messages. One local session and three workspaces: the
JVM's start and each command's Spark jobs are most of the time.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from conftest import needs_spark

pytest.importorskip("sqlglot")

from conftest import write_workspace
from test_pushdown_review import (
    CONTACTS,
    POOL,
    RULES,
    SETTINGS,
    as_parquet,
    check,
    explain,
    same,
    same_check,
)

from chargeback import run
from chargeback.data import spark_session
from chargeback.engine import in_engine, pushdown_review, pushdown_spark, spark_engine
from chargeback.engine.pushdown_spark_review import as_polars_reads

needs_spark("the Spark review's test")

VALUES = "values:\n  contact_id: {x1: renamed}\n  channel: {sms: chat}\noverlap: priority\n"


def in_spark(command: Callable[[], Any]) -> tuple[Any, str]:
    """The SQL of a command run with the read-out path's `prepare` failing: it ran in Spark,
    and no statement read the contacts out."""

    def read_out(*args: object, **kwargs: object) -> None:
        raise AssertionError("the contacts were read out")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(run, "prepare", read_out)
        result = command()
    assert result.exit_code in (0, 1), result.output
    sql = str(result.stderr)
    assert "CACHE LAZY TABLE cb_pushdown_flags" in sql  # summed in Spark
    assert "chargeback_contacts_" not in sql  # no contact sent to Spark as a view
    return result, sql


def same_in_spark(
    ws: Path, ids: list[str] | None, read_out: pytest.MonkeyPatch | None = None
) -> list[str]:
    """test_pushdown_review's `same` (explain each of `ids`) or `same_check` (None), in fewer
    Spark runs: the text output compared with the read-out path's as there, the JSON one
    run by `in_spark` (its stdout compared); returns the SQL of each JSON run."""
    sqls = []
    for contact_id in [None] if ids is None else ids:

        def command(engine: str, fmt: str, *more: str, key: str | None = contact_id) -> Any:
            if key is None:
                return check(ws, "--engine", engine, "--format", fmt, *more)
            return explain(ws, key, "--engine", engine, "--format", fmt, *more)

        def wanted(fmt: str) -> Any:
            if read_out is None:
                return command("polars", fmt)
            with read_out.context() as patch:  # the engine's own read-out: switch it off
                patch.setattr(pushdown_review, "one_contact", lambda *a, **k: None)
                patch.setattr(in_engine, "in_engine", lambda *a, **k: None)
                return command("spark", fmt)

        want, got = wanted("text"), command("spark", "text")
        assert (got.exit_code, got.stdout, got.stderr) == (want.exit_code, want.stdout, want.stderr)
        want = wanted("json")
        got, sql = in_spark(lambda: command("spark", "json", "--show-sql"))
        assert (got.exit_code, got.stdout) == (want.exit_code, want.stdout), contact_id
        sqls.append(sql)
    return sqls


def looked_up(sql: str, contact_id: str) -> None:
    """The contact was read by its id, and no other statement read contacts out."""
    lookups = [line for line in sql.splitlines() if f"= '{contact_id}'" in line]
    assert lookups, sql
    reads = [line for line in sql.splitlines() if "ORDER BY `contact_id`" in line]
    assert all(line in lookups for line in reads), reads


def test_parquet_in_local_spark_is_the_read_out_path(spark: Any, tmp_path: Path) -> None:
    """A typed Parquet file (instants in New York, `values:` on the id and the channel, a
    pool, priority): explain and check as polars has them, run in Spark."""
    ws = write_workspace(tmp_path / "ws", RULES, CONTACTS, costs=POOL)
    as_parquet(ws, SETTINGS + VALUES)
    ids = ["renamed", "x6"]
    for contact_id, sql in zip(ids, same_in_spark(ws, ids), strict=True):
        looked_up(sql, contact_id)
        assert "SELECT * FROM parquet.`" in sql  # Spark filtered the files itself
    got = explain(ws, "x1", "--engine", "spark", "--format", "json")  # renamed away
    want = explain(ws, "x1", "--engine", "polars", "--format", "json")
    assert (got.exit_code, got.output) == (want.exit_code, want.output) != (0, "")
    (sql,) = same_in_spark(ws, None)
    assert "CACHE LAZY TABLE cb_review AS" in sql and "CACHE LAZY TABLE cb_review_flags" in sql
    assert "timestamp_micros(" in sql.split("CACHE LAZY TABLE cb_review AS")[1].splitlines()[0]
    assert "from_utc_timestamp" not in sql  # polars' offsets, never Java's zone rules


def test_a_spark_table_is_the_read_out_path(
    spark: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A `{uri: sc://..., table}` source: the contact's rows come through the data layer's
    Spark export, filtered by the id in Spark."""
    ws = write_workspace(tmp_path / "ws", RULES, CONTACTS)
    as_parquet(ws)
    spark.read.parquet(str(ws / "contacts.parquet")).createOrReplaceTempView("cx_review")
    monkeypatch.setattr(pushdown_spark, "session", lambda remote=None: spark)
    monkeypatch.setattr(spark_session, "session", lambda remote=None: spark)
    monkeypatch.setattr(spark_engine, "session", lambda remote=None: spark)  # the read-out's
    (ws / "chargeback.yaml").write_text(
        f'contacts: {{uri: "sc://127.0.0.1:15002", table: cx_review}}\n{SETTINGS}'
    )
    try:
        ids = ["x1", "x4"]
        for contact_id, sql in zip(ids, same_in_spark(ws, ids, monkeypatch), strict=True):
            looked_up(sql, contact_id)
        (sql,) = same_in_spark(ws, None, monkeypatch)
        assert "cb_review_flags" in sql
    finally:
        spark.catalog.dropTempView("cx_review")


def test_a_bad_row_falls_back_to_the_read_out_message(spark: Any, tmp_path: Path) -> None:
    ws = write_workspace(tmp_path / "ws", RULES, CONTACTS)
    as_parquet(ws)
    frame = pl.read_parquet(ws / "contacts.parquet")
    bad = pl.when(pl.col("contact_id") == "x3").then(-4.0).otherwise(pl.col("handle_seconds"))
    frame.with_columns(bad.alias("handle_seconds")).write_parquet(ws / "contacts.parquet")
    same(ws, "spark", ["x1"])
    result = explain(ws, "x1", "--engine", "spark", "--show-sql")
    assert result.exit_code == 1
    assert "row 10, column 'handle_seconds': must not be negative" in result.output
    assert "= 'x1'" not in result.stderr  # flagged: no contact was looked up in Spark
    same_check(ws, "spark")
    result = check(ws, "--engine", "spark", "--show-sql")
    assert "cb_review" not in result.stderr and "must not be negative" in result.output


def test_spark_rows_are_typed_as_polars_reads_the_files() -> None:
    """An instant comes back from Spark in UTC: converted to the file's zone (the same
    instants); a wall clock for an instant, or another unit, is refused (None)."""
    utc = pl.Datetime("us", "UTC")
    spark_rows = pl.DataFrame({"id": ["a"], "t": pl.Series([0], dtype=pl.Int64).cast(utc)})
    files = pl.Schema({"id": pl.String(), "t": pl.Datetime("us", "America/New_York")})
    typed = as_polars_reads(spark_rows, files)
    assert typed is not None and typed.schema == files
    assert typed["t"].dt.epoch("us").to_list() == [0]
    for other in (pl.Datetime("ms", "UTC"), pl.Datetime("us")):
        assert as_polars_reads(spark_rows, pl.Schema({"id": pl.String(), "t": other})) is None
    assert as_polars_reads(spark_rows, pl.Schema({"t": utc, "id": pl.String()})) is None
