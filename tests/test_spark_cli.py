"""`engine: spark` through the command line: Spark in local mode sums what polars sums.

The parity of the aggregates is test_spark_parity's; this is the whole command,
on a workspace whose contacts are a CSV file, writing the same ledger.csv.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from conftest import (
    needs_spark,
    write_workspace,
)
from test_engine_choice import CONTACTS, RULES
from typer.testing import CliRunner

from cli import app

needs_spark("the Spark engine's test")


def test_spark_writes_the_polars_ledger(spark: Any, tmp_path: Path) -> None:
    ws = write_workspace(tmp_path / "ws", RULES, CONTACTS)
    runs = {}
    for engine in ("polars", "spark"):
        out = tmp_path / engine
        args = ["report", "--workspace", str(ws), "--format", "csv", "--out", str(out)]
        result = CliRunner().invoke(app, [*args, "--engine", engine, "--show-sql"])
        assert result.exit_code == 0, result.output
        runs[engine] = (out / "ledger.csv").read_text(encoding="utf-8"), result.output
    assert runs["spark"][0] == runs["polars"][0]
    assert "CACHE TABLE" in runs["spark"][1]


def test_a_spark_connect_source_is_read_by_its_needed_columns(spark: Any) -> None:
    """What a `{uri: sc://..., table}` source reads, on a local session standing in
    for the cluster: the needed columns only, in id order, typed as Spark has them."""
    import polars as pl

    from chargeback.data.spark_session import session
    from chargeback.data.warehouse import _export_spark
    from chargeback.workspace.model import DbSource

    spark = session(None)
    rows = [("c2", "chat", 1.5, "x"), ("c1", "phone", None, "y")]
    schema = "contact_id string, channel string, hs double, other string"
    frame = spark.createDataFrame(rows, schema)
    frame.createOrReplaceTempView("cx_contacts")
    log: list[str] = []
    source = DbSource(uri="sc://127.0.0.1:15002", table="cx_contacts")
    path = _export_spark(source, {"contact_id", "channel", "hs"}, "contact_id", log, spark=spark)
    got = pl.read_parquet(path)
    assert got.columns == ["contact_id", "channel", "hs"]
    assert got.get_column("contact_id").to_list() == ["c1", "c2"]
    assert log == ["SELECT `contact_id`, `channel`, `hs` FROM `cx_contacts` ORDER BY `contact_id`"]
