"""DuckDB's grouped scan drops the stamps' row checks only when the first scan proved them.

Real DuckDB against the polars engine: with every stamp present and within 1970-2037
(pushdown_rows.settle) the grouped scan carries no check or guard for the stamps and
still gives polars' aggregates; a stamp before 1970 (UTC or naive, where no zone-rules
check sends the run elsewhere) keeps both, with polars' aggregates; a missing stamp is
still flagged and the contacts read out.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import polars as pl
import pytest
from test_in_engine_groups import wide_contacts
from test_in_engine_rows import pushed, workspace
from test_pushdown import Duck
from test_pushdown_lists import run

pytest.importorskip("duckdb")

YEARS_GUARD = "CAST('2200-01-01' AS TIMESTAMP)"  # time_column's check and guard of `local`


def grouped_scan(log: list[str]) -> str:
    (scan,) = {s for s in log if s.startswith("CREATE TEMP TABLE cb_pushdown_flags")}
    return scan


def in_zone(tmp: Path, zone: str) -> Path:
    ws = workspace(tmp, 13)
    (ws / "chargeback.yaml").write_text(f"timezone: {zone}\noverlap: split\n")
    return ws


def with_stamp(frame: pl.DataFrame, stamp: datetime | None) -> pl.DataFrame:
    at = pl.col("started_at")
    dtype = frame.schema["started_at"]
    return frame.with_columns(
        pl.when(pl.col("contact_id") == "c7")
        .then(pl.lit(stamp, dtype=dtype))
        .otherwise(at)
        .alias("started_at")
    )


def test_clean_stamps_are_not_checked_again(tmp_path: Path) -> None:
    log = pushed(Duck(), workspace(tmp_path, 13), wide_contacts(), tmp_path)
    assert any('COUNT("v_ts")' in s for s in log)  # the first scan counts the stamped rows
    assert YEARS_GUARD not in grouped_scan(log)
    assert 'CASE WHEN "v_ts" >= CAST(\'1899-12-30' not in grouped_scan(log)


@pytest.mark.parametrize("zone", ["UTC", "America/New_York"])
def test_a_stamp_before_1970_keeps_the_checks(tmp_path: Path, zone: str) -> None:
    frame = wide_contacts()
    if zone == "America/New_York":  # naive stamps: local already, no zone-rules check
        frame = frame.with_columns(pl.col("started_at").dt.replace_time_zone(None))
    frame = with_stamp(frame, datetime(1965, 3, 1, 12))
    log = pushed(Duck(), in_zone(tmp_path, zone), frame, tmp_path)
    assert YEARS_GUARD in grouped_scan(log)


def test_a_missing_stamp_is_still_flagged(tmp_path: Path) -> None:
    got, log = run(with_stamp(wide_contacts(), None), tmp_path)
    assert got is None  # the caller reads the contacts out, and says which row
    assert YEARS_GUARD in grouped_scan(log)  # checked there, as before
