"""The parts a full report asks of the engine fail one by one (engine/pushdown_extras.py).

A driver's error while the engine computes the evidence (say DuckDB out of memory)
must not throw the in-engine ledger away: that part is read out, the documents are
the same, and the value report is then taken from the contacts already read.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
import pytest
from conftest import write_workspace
from test_pushdown_evidence import RULES, as_parquet, contacts_csv, statements
from typer.testing import CliRunner

from chargeback.engine import pushdown_evidence, pushdown_value
from cli import app

duckdb = pytest.importorskip("duckdb")


def test_an_engine_error_in_the_evidence_reads_out_that_part_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = write_workspace(tmp_path / "ws", RULES, contacts_csv())
    as_parquet(ws)
    want = statements(ws, tmp_path / "want", "polars")
    asked: list[str] = []

    def out_of_memory(*args: Any) -> None:
        asked.append("evidence")
        raise duckdb.OutOfMemoryException("Out of Memory Error: could not allocate block")

    def value(*args: Any) -> None:
        asked.append("value")
        raise AssertionError("asked for the value after the contacts were read out")

    monkeypatch.setattr(pushdown_evidence, "engine_evidence", out_of_memory)
    monkeypatch.setattr(pushdown_value, "engine_value", value)
    got = statements(ws, tmp_path / "got", "duckdb")
    result = statements.last  # type: ignore[attr-defined]
    assert asked == ["evidence"]
    assert result.extras is not None and result.extras.evidence is None  # the ledger stood
    assert result.contacts is not None  # read out for the evidence and the value
    assert got == want


def test_contacts_that_change_before_the_read_out_stop_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A row loaded into the source after the engine summed it would be in the statements'
    evidence but not in the ledger: the run stops, naming why, and writes nothing."""
    ws = write_workspace(tmp_path / "ws", RULES, contacts_csv())
    as_parquet(ws)
    source = ws / "contacts.parquet"

    def loaded_meanwhile(*args: Any) -> None:
        frame = pl.read_parquet(source)
        extra = frame.head(1).with_columns(pl.lit("late-1").alias("contact_id"))
        pl.concat([frame, extra]).write_parquet(source)
        return None  # the evidence is read out, from the source as it is now

    monkeypatch.setattr(pushdown_evidence, "engine_evidence", loaded_meanwhile)
    out = tmp_path / "out"
    args = ["report", "--workspace", str(ws), "--engine", "duckdb", "--out", str(out)]
    result = CliRunner().invoke(app, [*args, "--format", "html"])
    assert result.exit_code == 1, result.output
    assert "the contacts changed while this run read them" in result.output
    assert "Traceback" not in result.output
    assert not out.exists()
