"""The parts a full report asks of the engine fail one by one (engine/pushdown_extras.py).

A driver's error while the engine computes the evidence (say DuckDB out of memory)
must not throw the in-engine ledger away: that part is read out, the documents are
the same, and the value report is then taken from the contacts already read.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from conftest import write_workspace
from test_pushdown_evidence import RULES, as_parquet, contacts_csv, statements

from chargeback.engine import pushdown_evidence, pushdown_value

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
