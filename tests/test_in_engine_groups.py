"""The in-engine ledger's faster shape (engine/pushdown_groups.py, pushdown_bits.py).

Real runs, no mocks: a file without rows is warned about as on the read-out path;
DuckDB's lower-casing conformance is kept between runs; polars' zone offsets,
narrowed to the second, give the local day; a workspace with rules on every
kind of column, regexes, lookbacks and absent columns sums to polars' ledger.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from conftest import write_workspace
from test_engine_choice import RULES
from test_postgres_source import CONTACTS
from typer.testing import CliRunner

from cli import app

duckdb = pytest.importorskip("duckdb")


def report(root: Path, out: Path, *args: str) -> Any:
    return CliRunner().invoke(
        app, ["report", "--workspace", str(root), "--format", "csv", "--out", str(out), *args]
    )


def typed(ws: Path) -> pl.DataFrame:
    return pl.read_csv(ws / "contacts.csv", infer_schema=False).with_columns(
        pl.col("started_at").str.to_datetime(time_zone="UTC", time_unit="us"),
        pl.col("handle_seconds").cast(pl.Float64),
    )


def test_an_empty_file_among_others_is_warned_about_in_engine(tmp_path: Path) -> None:
    ws = write_workspace(tmp_path / "ws", RULES, CONTACTS)
    frame = typed(ws)
    folder = ws / "contacts"
    folder.mkdir()
    frame.write_parquet(folder / "a.parquet")
    frame.clear().write_parquet(folder / "b.parquet")
    (ws / "contacts.csv").unlink()
    (ws / "chargeback.yaml").write_text("contacts: contacts\ntimezone: America/New_York\n")
    polars_run = report(ws, tmp_path / "p")
    duckdb_run = report(ws, tmp_path / "d", "--engine", "duckdb", "--show-sql")
    assert polars_run.exit_code == 0 and duckdb_run.exit_code == 0, duckdb_run.output
    assert "CREATE TEMP TABLE cb_pushdown_flags" in duckdb_run.output  # summed in DuckDB
    # the terminal folds the warning at 80 columns, inside the path where it is long
    warning = "b.parquet has no rows: no contacts read from it".replace(" ", "")
    assert warning in "".join(polars_run.output.split())
    assert warning in "".join(duckdb_run.output.split())
    expected = (tmp_path / "p" / "ledger.csv").read_text()
    assert (tmp_path / "d" / "ledger.csv").read_text() == expected


def test_lower_conformance_is_kept_between_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chargeback.engine import duckdb_engine

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    duckdb_engine.lower_conformance.cache_clear()
    try:
        asked = duckdb_engine.lower_conformance()
        path = duckdb_engine._cache_file()
        assert path.is_file() and path.parent.parent == tmp_path
        duckdb_engine.lower_conformance.cache_clear()
        assert duckdb_engine.lower_conformance() == asked  # read back
        path.write_text("{not json", encoding="utf-8")  # a damaged file is asked again
        duckdb_engine.lower_conformance.cache_clear()
        assert duckdb_engine.lower_conformance() == asked == duckdb_engine._ask_both()
    finally:
        duckdb_engine.lower_conformance.cache_clear()


@pytest.mark.parametrize(
    "tz", ["America/New_York", "Australia/Lord_Howe", "Asia/Kathmandu", "Europe/Dublin", "UTC"]
)
def test_local_days_from_exact_offsets_equal_polars(tz: str) -> None:
    """Instants around every change of offset, a second either side: polars' local day."""
    from chargeback.engine.pushdown_tz import exact_offsets, local_from_offsets

    first = int(datetime(2024, 1, 1, tzinfo=UTC).timestamp())
    last = int(datetime(2026, 12, 31, tzinfo=UTC).timestamp())
    offsets = exact_offsets(tz, first, last)
    assert offsets is not None
    stamps = [datetime.fromtimestamp(first, UTC) + timedelta(hours=h * 7.3) for h in range(3600)]
    for start, _ in offsets[1:]:
        for delta in (-1, -0.000001, 0, 0.5, 1):
            stamps.append(datetime.fromtimestamp(start + delta, UTC))
    frame = pl.DataFrame({"ts": stamps}, schema={"ts": pl.Datetime("us", "UTC")})
    expected = frame.select(pl.col("ts").dt.convert_time_zone(tz).dt.date()).to_series()
    con = duckdb.connect()
    try:
        con.register("f", frame)
        local = local_from_offsets("epoch_us(ts)", offsets)
        got = [
            r[0]
            for r in con.execute(f"SELECT CAST(make_timestamp({local}) AS DATE) FROM f").fetchall()
        ]
    finally:
        con.close()
    assert got == expected.to_list()


WIDE_RULES = """
decisions:
  - {id: d1, title: D1, kind: fee, department: billing, effective: 2026-01-10}
  - {id: d2, title: D2, kind: fee, department: product, effective: 2026-02-01, ends: 2026-02-20}
rules:
"""


def wide_rules(n: int) -> str:
    """Many rules over every kind of test, so masks span words (62 rules each)."""
    kinds = [
        "{reason: ['billing*']}",
        "{channel: [phone], text: [refund, 'late fee']}",
        "{tags: [vip, 'a*']}",
        "{text_regex: 'twice|\\\\bfee'}",
        "{product: [plus], reason: [billing]}",
        "{text: [bill], region: [south, eu-west]}",
        "{outcome: [resolved]}",
        "{reason: [billing], text_regex: 'refund'}",
        "{fields: {plan: ['gold*']}}",
        "{channel: [email, social]}",
    ]
    lines = []
    for i in range(n):
        baseline = ", baseline: {lookback_days: 15}" if i % 7 == 3 else ""
        decision = "d1" if i % 2 else "d2"
        lines.append(
            f"  - {{id: r{i}, decision: {decision}, match: {kinds[i % len(kinds)]}{baseline}}}"
        )
    return WIDE_RULES + "\n".join(lines) + "\n"


def wide_contacts(n: int = 400, unique: bool = False) -> pl.DataFrame:
    """Contacts over January-March 2026 with every matched column, some of them null;
    `unique` texts make the regexes run per row rather than per distinct text."""
    start = datetime(2026, 1, 1, tzinfo=UTC)
    texts = ["Refunded twice?", "late FEE again", "bill too high", None, "a fee", "Grüße"]
    return pl.DataFrame(
        {
            "contact_id": [f"c{i}" for i in range(n)],
            "started_at": [start + timedelta(hours=5.3 * i) for i in range(n)],
            "channel": [["phone", "chat", "email", "social"][i % 4] for i in range(n)],
            "reason": [["billing", "billing.fee", "tech", None][i % 4] for i in range(n)],
            "text": [
                f"{texts[i % len(texts)]} #{i}"
                if unique and texts[i % len(texts)]
                else texts[i % len(texts)]
                for i in range(n)
            ],
            "tags": [[["vip"], ["a1", "b"], None, ["c"], []][i % 5] for i in range(n)],
            "product": [["plus", "basic", None][i % 3] for i in range(n)],
            "region": [["south", "eu-west", "north"][i % 3] for i in range(n)],
            "outcome": [["resolved", "unresolved"][i % 2] for i in range(n)],
            "plan": [["gold-plus", "silver", None][i % 3] for i in range(n)],
            "handle_seconds": [float(i % 97) * 1.25 for i in range(n)],
        },
        schema_overrides={"started_at": pl.Datetime("us", "UTC"), "tags": pl.List(pl.String)},
    )


@pytest.mark.parametrize("n", [3, 70, 130])
@pytest.mark.parametrize("unique", [False, True])
def test_many_rules_sum_to_polars_ledger(tmp_path: Path, n: int, unique: bool) -> None:
    ws = write_workspace(tmp_path / "ws", wide_rules(n), CONTACTS)
    wide_contacts(unique=unique).write_parquet(ws / "contacts.parquet")
    (ws / "contacts.csv").unlink()
    (ws / "chargeback.yaml").write_text(
        "contacts: contacts.parquet\ntimezone: Europe/Berlin\noverlap: split\n"
    )
    polars_run = report(ws, tmp_path / "p")
    duckdb_run = report(ws, tmp_path / "d", "--engine", "duckdb", "--show-sql")
    assert polars_run.exit_code == 0, polars_run.output
    assert duckdb_run.exit_code == 0, duckdb_run.output
    assert "CREATE TEMP TABLE cb_pushdown_flags" in duckdb_run.output  # not read out
    expected = (tmp_path / "p" / "ledger.csv").read_text()
    assert (tmp_path / "d" / "ledger.csv").read_text() == expected


@pytest.mark.parametrize("tz", ["America/New_York", "UTC"])
@pytest.mark.parametrize("year", [1850, 2150, 2600])
def test_stamps_far_out_fall_back_quickly(tmp_path: Path, tz: str, year: int) -> None:
    """A stamp outside the zone-safe years (or outside 1900-2199) is flagged, before any
    zone series over centuries is built, and the contacts are read as always."""
    import time

    from test_pushdown import Duck, columns_for

    from chargeback.engine import pushdown
    from chargeback.engine.duckdb_engine import DuckDBPrimitives
    from chargeback.workspace.load import load_workspace

    ws_root = write_workspace(tmp_path / "ws", wide_rules(5), CONTACTS, f"timezone: {tz}\n")
    frame = wide_contacts(20).with_columns(
        pl.when(pl.col("contact_id") == "c3")
        .then(pl.lit(datetime(year, 6, 1, tzinfo=UTC)))
        .otherwise(pl.col("started_at"))
        .alias("started_at")
    )
    path = tmp_path / "c.parquet"
    frame.write_parquet(path)
    engine = Duck()
    try:
        relation, families = engine.load(frame, path)
        ws = load_workspace(ws_root)
        started = time.monotonic()
        got = pushdown.pushdown_aggregate(
            ws, relation, columns_for(ws, families), engine, DuckDBPrimitives(), "duckdb"
        )
        expected_through = tz == "UTC" and 1900 <= year <= 2199
        assert (got is not None) == expected_through
        assert time.monotonic() - started < 20
    finally:
        engine.close()
