"""The in-engine ledger's hashed keys and the first scan's cheap id test, on DuckDB.

Real DuckDB, no mocks of the engine: a value table's key is a 64-bit hash, so two values
that hash alike must send the run to the read-out path (a hash made to clash shows it,
with the same ledger as polars); and the first scan's padding and control-character
search runs only on ids url_encode changes (engine/pushdown_groups.py _plain_first), so
url_encode must keep exactly the URL-unreserved characters, and every bad id is still
flagged while odd but good ids are still answered in the engine.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
import pytest
from test_in_engine_groups import report, wide_contacts
from test_in_engine_rows import pushed, workspace
from test_pushdown import Duck, columns_for

from chargeback.engine import pushdown, pushdown_groups
from chargeback.engine.pushdown_sql import Dialect
from chargeback.workspace.load import load_workspace

duckdb = pytest.importorskip("duckdb")

UNRESERVED = "-.0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz~"


def test_url_encode_keeps_only_the_unreserved_characters() -> None:
    """Over every code point (surrogates aside): what _plain_first takes as plain."""
    con = duckdb.connect()
    test = Dialect("duckdb").unreserved("chr(CAST(i AS INTEGER))")
    (kept,) = con.execute(
        f"SELECT list(i ORDER BY i) FROM range(0, 1114112) AS t(i) "
        f"WHERE (i < 55296 OR i > 57343) AND {test}"
    ).fetchone()
    assert "".join(chr(c) for c in kept) == UNRESERVED
    empty = Dialect("duckdb").unreserved("''")
    assert con.execute(f"SELECT {empty}").fetchone() == (True,)


def with_id(frame: pl.DataFrame, bad: str) -> pl.DataFrame:
    cid = pl.col("contact_id")
    return frame.with_columns(
        pl.when(cid == "c7").then(pl.lit(bad)).otherwise(cid).alias("contact_id")
    )


def run(frame: pl.DataFrame, tmp: Path, engine: Duck | None = None) -> tuple[Any, list[str]]:
    path = tmp / "contacts.parquet"
    frame.write_parquet(path)
    engine = engine or Duck()
    try:
        ws = load_workspace(workspace(tmp, 13))
        relation, families = engine.load(frame, path)
        log: list[str] = []
        got = pushdown.pushdown_aggregate(
            ws, relation, columns_for(ws, families), engine, engine.prims(ws), "duckdb", sql_log=log
        )
    finally:
        engine.close()
    return got, log


@pytest.mark.parametrize(
    "bad",
    ["", " c7", "c7\u3000", "c\x017", "c7\t", "\x7f", "c7\n"],
    ids=["empty", "leading", "trailing", "control", "tab", "delete", "newline"],
)
def test_a_bad_id_is_still_flagged(tmp_path: Path, bad: str) -> None:
    got, log = run(with_id(wide_contacts(), bad), tmp_path)
    assert got is None
    assert any("url_encode" in s for s in log)  # by the first scan's cheap test's route
    assert not any(s.startswith("CREATE TEMP TABLE cb_pushdown_flags") for s in log)


@pytest.mark.parametrize("odd", ["c#7", "Grüße-7", "c 7", "c:7/x", "7"])
def test_an_odd_but_good_id_is_answered_in_engine(tmp_path: Path, odd: str) -> None:
    """Ids url_encode changes (or not) but no check refuses: polars' aggregates."""
    log = pushed(Duck(), workspace(tmp_path, 13), with_id(wide_contacts(), odd), tmp_path)
    assert any("url_encode" in s for s in log)


def clashing(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Every value table's key made to clash (hash % 2: two keys for 3+ values); the ids'
    duplicate query keeps its own hash. Returns what the value tables flagged."""
    real = Dialect.hash

    def hash_(self: Dialect, exprs: str) -> str:
        return f"({real(self, exprs)} % 2)" if "IS NULL" in exprs else real(self, exprs)

    monkeypatch.setattr(Dialect, "hash", hash_)
    held: dict[str, int] = {}
    tables = pushdown_groups.value_tables

    def spy(*args: Any) -> dict[str, int]:
        out = tables(*args)
        held.update(out)
        return out

    monkeypatch.setattr(pushdown_groups, "value_tables", spy)
    return held


def test_values_that_hash_alike_are_read_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    held = clashing(monkeypatch)
    got, log = run(wide_contacts(), tmp_path)
    assert got is None  # the caller reads the contacts out
    assert "tags: two values hash alike" in held  # a list: its table is keyed by a hash
    assert "channel: two values hash alike" not in held  # text: keyed by the text itself
    assert any("% 2" in s and "cb_pd_v_" in s for s in log)
    assert not any(s.startswith("CREATE TEMP TABLE cb_pushdown_flags") for s in log)


def test_a_hash_clash_gives_the_polars_ledger(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through the CLI on Parquet (tags a list): the clash read out, the same ledger.csv."""
    from chargeback.sample.generate import generate_sample

    generate_sample(tmp_path / "s", contacts=3000, seed=5)
    ws = tmp_path / "s"
    first = report(ws, tmp_path / "polars")
    assert first.exit_code == 0, first.output
    held = clashing(monkeypatch)
    result = report(ws, tmp_path / "duckdb", "--engine", "duckdb", "--show-sql")
    assert result.exit_code == 0, result.output
    assert any(n.endswith("two values hash alike") for n in held)
    assert "% 2" in result.output  # the clashing keys were made, then nothing summed there:
    assert "CREATE TEMP TABLE cb_pd_rows" not in result.output
    assert "CREATE TEMP TABLE cb_pushdown_flags" not in result.output
    expected = (tmp_path / "polars" / "ledger.csv").read_text()
    assert (tmp_path / "duckdb" / "ledger.csv").read_text() == expected


def test_a_null_tag_is_flagged_before_its_hash_clash(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DuckDB hashes [] and [NULL] alike (key_of hashes no length): harmless, because a
    NULL tag is a bad tag whatever its key, and the run is read out for that."""
    held = clashing(monkeypatch)
    monkeypatch.setattr(Dialect, "hash", lambda self, exprs: f"hash({exprs})")  # real keys
    lists = [[], [None], ["vip"], None]
    frame = wide_contacts().with_columns(
        pl.Series("tags", [lists[i % len(lists)] for i in range(400)], pl.List(pl.String))
    )
    got, _ = run(frame, tmp_path)
    assert got is None
    assert "tags: empty or padded tag" in held
    assert "tags: two values hash alike" in held
