"""The CS-value report's contact side in Spark (engine/pushdown_value.py, SPEC 7, 10).

Parquet files in local mode: cs_value.json of a json report on `--engine spark`
must be byte for byte polars' (the read-out path), and Spark's own with the
value's facts switched off; `result.extras.value` shows the facts came from
Spark. The workspace is test_pushdown_value's (DST edges, ties, saves, orders),
with a decimal and a float revenue, and the generated sample. One local
session: the JVM's start is most of the time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
import pytest
from conftest import needs_spark

pytest.importorskip("sqlglot")

from test_pushdown_value import OPTIONAL, same, workspace

needs_spark("the Spark value's test")


@pytest.mark.parametrize("revenue", ["decimal", "float"])
def test_parquet_in_spark_gives_the_read_out_value(
    tmp_path: Path, spark: Any, revenue: str
) -> None:
    root = workspace(tmp_path / "ws", True)
    if revenue == "float":
        frame = pl.read_parquet(root / "contacts.parquet")
        frame.with_columns(pl.col("revenue").cast(pl.Float64)).write_parquet(
            root / "contacts.parquet"
        )
    same(root, "spark", tmp_path)


def test_spark_without_the_optional_columns_or_orders(tmp_path: Path, spark: Any) -> None:
    same(workspace(tmp_path / "ws", False, OPTIONAL), "spark", tmp_path)


def test_the_sample_in_spark_gives_the_read_out_value(tmp_path: Path, spark: Any) -> None:
    from chargeback.sample.generate import generate_sample

    generate_sample(tmp_path / "s", contacts=2000, seed=5)
    same(tmp_path / "s", "spark", tmp_path)
