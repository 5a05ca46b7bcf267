"""What the review of the engines change found (issue 15), held fixed.

Each case runs the command as a user would, on polars and on duckdb, and asks
for the same exit code, the same messages and the same files: a contact outside
1900-2199 in a UTC workspace, Parquet files whose column types differ, a file
DuckDB cannot read, a database source's rejected.csv and fingerprint, and the
SQL `--show-sql` prints for the DuckDB aggregation.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from typer.testing import CliRunner

from cli import app

duckdb = pytest.importorskip("duckdb")

RULES = """
decisions:
  - {id: d1, title: D1, kind: fee, department: billing, effective: 2026-01-01}
rules:
  - {id: r1, decision: d1, match: {reason: [billing]}}
"""
ORG = """
departments:
  - {id: billing, name: Billing, cost_center: CC-100}
costs:
  currency: USD
  method: rates
  channels: {phone: {per_contact: 2.00}}
"""


def workspace(root: Path, settings: str) -> Path:
    (root / "rules").mkdir(parents=True)
    (root / "rules" / "org.yaml").write_text(ORG)
    (root / "rules" / "main.yaml").write_text(RULES)
    (root / "chargeback.yaml").write_text(settings)
    return root


def contacts(stamps: list[Any], ids: list[Any] | None = None) -> pl.DataFrame:
    n = len(stamps)
    return pl.DataFrame(
        {
            "contact_id": ids or [f"c{i}" for i in range(n)],
            "started_at": stamps,
            "channel": ["phone"] * n,
            "reason": ["billing"] * n,
            "handle_seconds": [60.0] * n,
        }
    )


def run(root: Path, out: str, *args: str) -> Any:
    argv = ["report", "--workspace", str(root), "--out", str(root / out), *args]
    return CliRunner().invoke(app, argv)


def same_on_both(root: Path, *args: str) -> tuple[Any, Any]:
    """polars and duckdb (`--format csv`: the in-engine path) end the same way."""
    first = run(root, "p", "--format", "csv", *args)
    second = run(root, "d", "--format", "csv", "--engine", "duckdb", *args)
    assert second.exit_code == first.exit_code, (first.output, second.output)
    assert "Traceback" not in second.output and "internal error" not in second.output
    for name in ("ledger.csv", "rejected.csv"):
        mine, theirs = root / "p" / name, root / "d" / name
        assert mine.exists() == theirs.exists()
        if mine.exists():
            assert theirs.read_text() == mine.read_text()
    return first, second


@pytest.mark.parametrize("zone", ["UTC", "Etc/UTC", "America/New_York"])
def test_a_contact_before_1900_is_refused_on_every_path(tmp_path: Path, zone: str) -> None:
    root = workspace(tmp_path / "ws", f"contacts: contacts.parquet\ntimezone: {zone}\n")
    stamps = [datetime(2026, 1, 5, tzinfo=UTC), datetime(1800, 5, 1, tzinfo=UTC)]
    contacts(stamps).write_parquet(root / "contacts.parquet")
    first, second = same_on_both(root)
    assert first.exit_code == 1 and "outside the years 1900-2199" in second.output
    same_on_both(root, "--on-bad-rows", "quarantine")


def test_parquet_files_of_different_types_are_the_data_layers_to_judge(tmp_path: Path) -> None:
    root = workspace(tmp_path / "ws", "contacts: contacts\ntimezone: America/New_York\n")
    (root / "contacts").mkdir()
    contacts([datetime(2026, 1, 10, 15, tzinfo=UTC)], ["a1"]).write_parquet(
        root / "contacts" / "a.parquet"
    )
    contacts([datetime(2026, 2, 1, 2)], ["b1"]).write_parquet(root / "contacts" / "b.parquet")
    first, _ = same_on_both(root)  # an instant and a naive time: polars refuses to stack
    assert first.exit_code == 1
    contacts([datetime(2026, 2, 1, 2, tzinfo=UTC)], [7]).write_parquet(
        root / "contacts" / "b.parquet"
    )
    first, _ = same_on_both(root)  # text ids and whole numbers
    assert first.exit_code == 1


def test_a_file_duckdb_cannot_read_gets_the_usual_message(tmp_path: Path) -> None:
    root = workspace(tmp_path / "ws", "contacts: contacts.parquet\n")
    (root / "contacts.parquet").write_bytes(b"PAR1 this is not parquet")
    first, second = same_on_both(root)
    assert first.exit_code == 1
    assert first.output.splitlines()[0] == second.output.splitlines()[0]


def database(root: Path) -> None:
    stamps = [datetime(2026, 1, d, 12, tzinfo=UTC) for d in (5, 6, 7)]
    frame = contacts(stamps).with_columns(
        pl.Series("handle_seconds", [60.0, -1.0, 30.0]), pl.col("started_at")
    )
    con = duckdb.connect(str(root / "cx.db"))
    con.register("frame", frame)
    con.execute("CREATE TABLE contacts AS SELECT * FROM frame")
    con.close()
    (root / "chargeback.yaml").write_text('contacts: {uri: "duckdb:///cx.db", table: contacts}\n')


def test_a_database_sources_rejected_rows_name_the_source(tmp_path: Path) -> None:
    root = workspace(tmp_path / "ws", "")
    database(root)
    result = run(root, "out", "--format", "csv", "--on-bad-rows", "quarantine")
    assert result.exit_code == 0, result.output
    rejected = pl.read_csv(root / "out" / "rejected.csv")
    assert rejected.get_column("source_file").to_list() == [
        "duckdb:///cx.db contacts (ordered by contact_id)"
    ]


def test_a_database_sources_fingerprint_does_not_depend_on_the_path(tmp_path: Path) -> None:
    root = workspace(tmp_path / "ws", "")
    database(root)
    con = duckdb.connect(str(root / "cx.db"))
    con.execute("UPDATE contacts SET handle_seconds = 5 WHERE handle_seconds < 0")
    con.close()
    prints = []
    for formats in ("csv", "csv,json", "csv"):
        result = run(root, f"out-{len(prints)}", "--format", formats)
        assert result.exit_code == 0, result.output
        book = json.loads((root / f"out-{len(prints)}" / "ledger.json").read_text())
        prints.append(book["meta"]["fingerprint"])
    assert prints[0] == prints[1] == prints[2]


def test_show_sql_prints_the_duckdb_aggregation(tmp_path: Path) -> None:
    root = workspace(tmp_path / "ws", "contacts: contacts.parquet\n")
    contacts([datetime(2026, 1, 5, tzinfo=UTC)]).write_parquet(root / "contacts.parquet")
    result = run(root, "out", "--format", "csv,json", "--engine", "duckdb", "--show-sql")
    assert result.exit_code == 0, result.output
    # json's CS value is asked of the engine too: the in-engine ledger's grouped scan ran
    assert "CREATE TEMP TABLE cb_pushdown_flags AS SELECT" in result.output
    assert "GROUP BY" in result.output
