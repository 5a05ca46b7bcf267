"""attributions.parquet computed in local Spark (engine/pushdown_attributions.py, SPEC 10).

Parquet files read by Spark: the rows must be byte for byte the polars engine's,
in its order (each file's index and Spark's `_metadata.row_index`), with the
local day from polars' offsets (spark_derive). Reading the contacts out is made
to fail, so the ledger and the rows both ran in Spark. One local session: the
JVM's start is most of the time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
import pytest
from conftest import needs_spark

pytest.importorskip("sqlglot")

from test_pushdown_attributions import (
    in_engine_report,
    parquet_workspace,
    read_out_report,
    report,
    same,
)
from test_pushdown_review import SETTINGS

from chargeback.data import spark_session
from chargeback.engine import drilldown, pushdown_spark, spark_engine

needs_spark("the Spark attributions' test")


def in_spark(ws: Path, out: Path, *args: str) -> str:
    sql = in_engine_report(ws, out, "spark", *args)
    assert "CACHE LAZY TABLE cb_attr_keys" in sql and "_metadata.row_index" in sql
    return sql


def test_one_parquet_file_in_spark(
    spark: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """New York instants (polars' offsets), a pool, priority; then `--period`, and terms
    past drilldown's (lowered) Int128 bound priced in Python fractions."""
    ws = parquet_workspace(tmp_path, "pool", "overlap: priority\n")
    report(ws, tmp_path / "polars", "--engine", "polars")
    sql = in_spark(ws, tmp_path / "spark")
    assert "JOIN cb_attr_parts" in sql and "timestamp_micros(" in sql
    same(tmp_path / "polars", tmp_path / "spark")
    report(ws, tmp_path / "polars-03", "--engine", "polars", "--period", "2026-03")
    in_spark(ws, tmp_path / "spark-03", "--period", "2026-03")
    same(tmp_path / "polars-03", tmp_path / "spark-03")
    monkeypatch.setattr(drilldown, "INT128_ROOM", 1 << 40)
    in_spark(ws, tmp_path / "spark-room")
    same(tmp_path / "polars", tmp_path / "spark-room")


def test_several_parquet_files_in_spark(spark: Any, tmp_path: Path) -> None:
    """Rows shuffled across three files: the files' order, then each file's rows."""
    ws = parquet_workspace(tmp_path, "rates")
    frame = pl.read_parquet(ws / "contacts.parquet").sample(fraction=1.0, shuffle=True, seed=9)
    (ws / "contacts").mkdir()
    for i, (start, n) in enumerate(((0, 5), (5, 3), (8, 5))):
        frame.slice(start, n).write_parquet(ws / "contacts" / f"part-{i}.parquet")
    (ws / "contacts.parquet").unlink()
    (ws / "chargeback.yaml").write_text("contacts: contacts\n" + SETTINGS)
    report(ws, tmp_path / "polars", "--engine", "polars")
    in_spark(ws, tmp_path / "spark")
    same(tmp_path / "polars", tmp_path / "spark")


def spark_table(ws: Path, session: Any, monkeypatch: pytest.MonkeyPatch, remote: str) -> None:
    """The workspace's contacts as a table `remote` serves (shuffled, so the export's id
    order is not the file's), read through `session` by both paths."""
    frame = pl.read_parquet(ws / "contacts.parquet").sample(fraction=1.0, shuffle=True, seed=4)
    session.createDataFrame(frame.to_arrow()).createOrReplaceTempView("cx_attr")
    monkeypatch.setattr(pushdown_spark, "session", lambda remote=None: session)
    monkeypatch.setattr(spark_session, "session", lambda remote=None: session)
    monkeypatch.setattr(spark_engine, "session", lambda remote=None: session)
    source = f'contacts: {{uri: "{remote}", table: cx_attr}}\n'
    (ws / "chargeback.yaml").write_text(source + SETTINGS)


def test_a_spark_table(spark: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A `{uri: sc://..., table}` source, the local session standing in for the cluster:
    the rows in the read-out export's order (the id), computed in Spark."""
    ws = parquet_workspace(tmp_path, "pool")
    report(ws, tmp_path / "polars", "--engine", "polars")
    spark_table(ws, spark, monkeypatch, "sc://127.0.0.1:15002")
    read_out_report(ws, tmp_path / "read-out", "spark")
    sql = in_engine_report(ws, tmp_path / "spark", "spark")
    assert "JOIN cb_attr_parts" in sql and "ORDER BY `contact_id`" not in sql
    same(tmp_path / "read-out", tmp_path / "spark")
    same(tmp_path / "polars", tmp_path / "spark", ("ledger.csv",))


def test_a_spark_connect_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, spark_remote: str
) -> None:
    """The same through a real Spark Connect server (conftest's spark_remote)."""
    remote = spark_remote
    ws = parquet_workspace(tmp_path, "rates", "overlap: priority\n")
    spark_table(ws, spark_session.session(remote), monkeypatch, remote)
    read_out_report(ws, tmp_path / "read-out", "spark")
    in_engine_report(ws, tmp_path / "spark", "spark")
    same(tmp_path / "read-out", tmp_path / "spark")
