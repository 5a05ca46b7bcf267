"""DuckDB spills into chargeback's private scratch folder, never the user's current folder.

By default an in-memory DuckDB writes what does not fit in memory to `.tmp` in the
current directory (a killed run once left 54 GB there); every connection the
engines open comes from warehouse.duckdb_connect, which points it elsewhere.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from chargeback.data.scratch import scratch_dir
from chargeback.data.warehouse import duckdb_connect

pytest.importorskip("duckdb")


def test_a_spilling_sort_writes_nothing_into_the_current_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    con = duckdb_connect()
    try:
        (setting,) = con.execute("SELECT current_setting('temp_directory')").fetchone()
        assert Path(setting).parent == scratch_dir()
        con.execute("SET memory_limit = '32MB'")
        con.execute("SET threads = 1")
        (n,) = con.execute(
            "SELECT COUNT(*) FROM (SELECT md5(i::VARCHAR) AS h FROM range(2000000) t(i) ORDER BY h)"
        ).fetchone()
        assert n == 2_000_000
        assert list(tmp_path.iterdir()) == []  # DuckDB's own default leaves .tmp here
    finally:
        con.close()


@pytest.mark.parametrize("stamps", [(1e9, 1e9 + 60, 1e9 + 120), (1e9, 1e9, 1e9)])
def test_cached_parquet_footers_never_serve_a_rewritten_file(
    tmp_path: Path, stamps: tuple[float, ...]
) -> None:
    """The connection caches Parquet metadata across statements (a run reads the same
    files ten times); a file rewritten between two statements is read as it now is.
    Each rewrite is dated long ago (DuckDB trusts no entry for a file modified in the
    last seconds, so a fresh date would not reach the cache), with a new date or even
    the same one."""
    path = tmp_path / "c.parquet"
    con, writer = duckdb_connect(), duckdb_connect()
    try:
        (setting,) = con.execute("SELECT current_setting('parquet_metadata_cache')").fetchone()
        assert setting is True
        sql = f"SELECT COUNT(*), SUM(x) FROM '{path}'"
        for rows, stamp in zip((10, 1000, 5), stamps, strict=True):
            writer.execute(f"COPY (SELECT range AS x FROM range({rows})) TO '{path}'")
            os.utime(path, (stamp, stamp))
            for _ in range(2):  # the second read is the one a cache would answer
                assert con.execute(sql).fetchone() == (rows, rows * (rows - 1) // 2)
    finally:
        con.close()
        writer.close()
