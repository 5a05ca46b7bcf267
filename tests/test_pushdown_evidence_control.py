"""The statements' evidence with control baselines, counted where the contacts are.

A control baseline weighs each contact by its control cell (the control rules its
match picks up, windows ignored), so the engine's splits carry that cell as one more
key (pushdown_evidence._groups). The HTML statements must be the read-out path's,
byte for byte, on DuckDB (Parquet files), a real PostgreSQL and local Spark; the sample
workspace, which has a control baseline, no longer reads its contacts out.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import write_workspace
from pg_fixture import pg, pg_server  # noqa: F401  (fixtures)
from test_pushdown_evidence import (
    CONTACTS,
    ROWS,
    RULES,
    SETTINGS,
    as_parquet,
    few_rows,
    same_statements,
    spark,  # noqa: F401  (fixture: the run's one local Spark session)
)

from chargeback.report import ReportOptions
from chargeback.resources import sample_workspace
from chargeback.run import run_report

pytest.importorskip("duckdb")

CONTROL = RULES.replace(
    "match: {reason: [ship.*]}", "match: {reason: [ship.*]}\n    baseline: {method: control}"
)


def test_control_baselines_on_duckdb_give_the_read_out_statements(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = write_workspace(tmp_path / "ws", CONTROL, CONTACTS)
    as_parquet(ws)
    sent = same_statements(ws, tmp_path, "polars-files", monkeypatch)
    few_rows(sent, ROWS)
    assert any("cb_evidence_flags" in sql for sql, _ in sent)


def test_control_baselines_on_postgres_give_the_read_out_statements(
    tmp_path: Path,
    pg: str,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from test_postgres_source import load_table

    ws = write_workspace(tmp_path / "ws", CONTROL, CONTACTS)
    load_table(pg, ws, "support.control_evidence")
    (ws / "chargeback.yaml").write_text(
        f'contacts: {{uri: "{pg}", table: support.control_evidence}}\n{SETTINGS}'
    )
    few_rows(same_statements(ws, tmp_path, "postgres", monkeypatch), ROWS)


def test_control_baselines_in_local_spark_give_the_read_out_statements(
    spark: object,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ws = write_workspace(tmp_path / "ws", CONTROL, CONTACTS)
    as_parquet(ws)
    few_rows(same_statements(ws, tmp_path, "polars-files", monkeypatch, engine="spark"), ROWS)


def test_the_sample_report_reads_no_contact_out_on_duckdb(tmp_path: Path) -> None:
    """The built-in sample (a control baseline among its rules): statements, evidence and
    CS value all from the engine."""
    result = run_report(
        ReportOptions(
            workspace=sample_workspace(), out=tmp_path / "out", formats=("html",), engine="duckdb"
        )
    )
    assert result.extras is not None and result.extras.evidence is not None
    assert result.contacts is None  # nothing read out
