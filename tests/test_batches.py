"""Rows typed in batches give what one batch gives: the same frame, the same bad rows
named at the same file and line, the same rejected rows (chargeback.data.rows).

Each workspace is loaded as a single batch and in batches of three and eight rows, so
every file boundary, slice and stack of small files is crossed.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from chargeback.data import reading, rows, tables
from chargeback.data.rows import with_duplicates
from chargeback.data.tables import Loaded, load_contacts
from chargeback.errors import DataError

SIZES = (3, 8)
WANTED = {"contact_id", "started_at", "channel", "reason", "tags", "handle_seconds", "text"}


def contacts(n: int, seed: int, start: int = 0) -> list[dict[str, object]]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        stamp = datetime(2025, 3, 1, tzinfo=UTC) + timedelta(minutes=rng.randrange(400 * 24 * 60))
        out.append(
            {
                "contact_id": f"c{start + i}",
                "started_at": stamp,
                "channel": rng.choice(["phone", "chat", " email "]),
                "reason": rng.choice(["billing.fee", "tech", None]),
                "tags": rng.choice([["a", "b"], [" late "], [], None]),
                "handle_seconds": rng.choice([12.5, 300.0, None]),
                "text": rng.choice(["card declined", "  padded text ", "ok"]),
            }
        )
    return out


def write(folder: Path, parts: list[list[dict[str, object]]], csv_at: set[int]) -> None:
    folder.mkdir()
    for i, part in enumerate(parts):
        frame = pl.DataFrame(part, schema_overrides={"tags": pl.List(pl.String)})
        if i in csv_at:  # text files: tags joined, instants as ISO text
            frame = frame.with_columns(
                pl.col("tags").list.join("|"),
                pl.col("started_at").dt.strftime("%Y-%m-%dT%H:%M:%S%:z"),
            )
            frame.write_csv(folder / f"part-{i:02d}.csv")
        else:
            frame.write_parquet(folder / f"part-{i:02d}.parquet")


def load(folder: Path, batch: int, monkeypatch: pytest.MonkeyPatch, how: str) -> Loaded:
    monkeypatch.setattr(rows, "BATCH_ROWS", batch)
    return load_contacts(folder, str(folder), {}, WANTED, "America/New_York", None, how)


def same_loads(folder: Path, monkeypatch: pytest.MonkeyPatch, how: str) -> Loaded:
    whole = load(folder, 10**9, monkeypatch, how)
    for size in SIZES:  # 3: every file sliced; 8: files under 4 rows stacked
        small = load(folder, size, monkeypatch, how)
        assert small.frame.equals(whole.frame)
        assert small.warnings == whole.warnings
        if whole.rejected is None:
            assert small.rejected is None
        else:
            assert small.rejected is not None and small.rejected.equals(whole.rejected)
    return whole


@pytest.mark.parametrize("csv_at", [set(), {1, 3}])
def test_clean_files_in_batches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, csv_at: set[int]
) -> None:
    parts = [contacts(n, seed=n, start=100 * i) for i, n in enumerate([7, 1, 12, 5, 2])]
    write(tmp_path / "c", parts, csv_at)
    loaded = same_loads(tmp_path / "c", monkeypatch, "stop")
    assert loaded.frame.height == 27
    assert loaded.frame.get_column("_file").to_list() == sorted(
        loaded.frame.get_column("_file").to_list()
    )  # files in order, rows in file order


def test_bad_rows_and_duplicates_across_batches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    parts = [contacts(n, seed=n, start=100 * i) for i, n in enumerate([6, 9, 4])]
    parts[0][2]["channel"] = None  # missing value
    parts[1][7]["contact_id"] = "c1"  # a later duplicate of file 0's second row
    parts[1][1]["handle_seconds"] = -5.0
    parts[2][3]["text"] = "bell\x07"  # a control character
    write(tmp_path / "c", parts, {2})
    for batch in (10**9, *SIZES):
        monkeypatch.setattr(rows, "BATCH_ROWS", batch)
        with pytest.raises(DataError) as caught:
            load_contacts(tmp_path / "c", str(tmp_path / "c"), {}, WANTED, "UTC", None, "stop")
        messages = [
            (p.path.name if p.path else None, p.row, p.message) for p in caught.value.problems
        ]
        if batch == 10**9:
            expected = messages
        assert messages == expected
    assert len(expected) == 4
    assert any("duplicate contact_id 'c1'" in m for _, _, m in expected)
    quarantined = same_loads(tmp_path / "c", monkeypatch, "quarantine")
    assert quarantined.rejected is not None and quarantined.rejected.height == 4
    assert quarantined.frame.height == 19 - 4


def test_blank_values_in_a_column_with_few_values_are_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An empty string is no value, in a Parquet column with few values too: a blank
    reason is missing, a blank channel is a missing required value (it used to pass
    as a channel called '' when every other value of the column was clean)."""
    rows_in = contacts(6, seed=3)
    rows_in[1]["reason"] = ""
    write(tmp_path / "c", [rows_in], set())
    loaded = same_loads(tmp_path / "c", monkeypatch, "stop")
    assert loaded.frame.get_column("reason")[1] is None
    rows_in[4]["channel"] = ""
    write(tmp_path / "d", [rows_in], set())
    with pytest.raises(DataError) as caught:
        load(tmp_path / "d", 10**9, monkeypatch, "stop")
    (problem,) = caught.value.problems
    assert (problem.row, problem.column, problem.message) == (
        5,
        "channel",
        "missing value (required)",
    )


def test_every_column_is_chunked_alike(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Columns chunked unlike each other make polars copy the whole table at the next
    filter or select (10M contacts: 1.9 GB more). Slices of Parquet row groups must
    leave every typed column chunked alike, `_file` (one value per file) included."""
    folder = tmp_path / "c"
    folder.mkdir()
    for i, n in enumerate([20, 14, 9]):
        frame = pl.DataFrame(
            contacts(n, seed=n, start=100 * i), schema_overrides={"tags": pl.List(pl.String)}
        )
        frame.write_parquet(folder / f"p{i}.parquet", row_group_size=7)
    seen: list[pl.DataFrame] = []

    def keep(spec: object, typed: pl.DataFrame) -> tuple[pl.DataFrame, bool]:
        seen.append(typed)
        return with_duplicates(spec, typed)  # type: ignore[arg-type]

    monkeypatch.setattr(tables, "with_duplicates", keep)
    monkeypatch.setattr(reading, "SMALL_FILE_ROWS", 0)  # row groups kept as chunks
    for size in (3, 8):
        seen.clear()
        load(folder, size, monkeypatch, "stop")
        layouts = {tuple(s.chunk_lengths()) for s in seen[0].get_columns() if s.n_chunks() > 1}
        assert len(layouts) == 1, layouts


def test_a_small_last_row_group_keeps_the_columns_chunked_alike(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Row groups of 7 and a remainder of 2: every chunk belongs to one batch (small
    ones gathered and copied once), so the typed table is still chunked alike."""
    folder = tmp_path / "c"
    folder.mkdir()
    frame = pl.DataFrame(contacts(23, seed=5), schema_overrides={"tags": pl.List(pl.String)})
    frame.write_parquet(folder / "p.parquet", row_group_size=7)
    seen: list[pl.DataFrame] = []

    def keep(spec: object, typed: pl.DataFrame) -> tuple[pl.DataFrame, bool]:
        seen.append(typed)
        return with_duplicates(spec, typed)  # type: ignore[arg-type]

    monkeypatch.setattr(tables, "with_duplicates", keep)
    monkeypatch.setattr(reading, "SMALL_FILE_ROWS", 0)
    for size in (3, 8, 14):
        seen.clear()
        loaded = load(folder, size, monkeypatch, "stop")
        layouts = {tuple(s.chunk_lengths()) for s in seen[0].get_columns() if s.n_chunks() > 1}
        assert len(layouts) <= 1, (size, layouts)
        assert loaded.frame.height == 23


@pytest.mark.parametrize("how", ["stop", "quarantine"])
def test_instants_past_the_calendar_are_bad_rows_not_a_crash(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    """An instant in year 9999 or past Python's calendar is a row outside the years, named
    at its row, in any zone; the others are read as usual."""
    rows_in = contacts(4, seed=9)
    frame = pl.DataFrame(rows_in, schema_overrides={"tags": pl.List(pl.String)})
    stamps = frame.get_column("started_at").dt.cast_time_unit("us").cast(pl.Int64).to_list()
    stamps[1] = 2**62  # year 148108
    stamps[2] = 253_402_300_500_000_000  # 9999-12-31 23:55 UTC
    frame = frame.with_columns(pl.Series("started_at", stamps).cast(pl.Datetime("us", "UTC")))
    (tmp_path / "c").mkdir()
    frame.write_parquet(tmp_path / "c" / "p.parquet")
    if how == "stop":
        with pytest.raises(DataError) as caught:
            load(tmp_path / "c", 10**9, monkeypatch, how)
        got = [(p.row, p.column) for p in caught.value.problems]
        assert got == [(2, "started_at"), (3, "started_at")]
        assert all("outside the years" in p.message for p in caught.value.problems)
    else:
        loaded = same_loads(tmp_path / "c", monkeypatch, how)
        assert loaded.frame.height == 2
        assert loaded.rejected is not None and loaded.rejected.height == 2


def test_texts_checked_on_their_distinct_values_or_row_by_row_alike(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Free text that repeats is trimmed and checked on its distinct values (rows.few_valued,
    judged on a sample): the same frame, the same named bad rows and the same rejected rows
    as row by row, for padded, blank, overlong and control-character texts."""
    parts = [contacts(n, seed=n + 40, start=100 * i) for i, n in enumerate([9, 6])]
    parts[0][1]["text"] = "   "  # blank: no text
    parts[0][4]["text"] = "tab\tand\nnew line"  # allowed in text
    parts[1][2]["text"] = "bell\x07"
    parts[1][3]["text"] = "x" * 40_000  # over the text limit
    write(tmp_path / "c", parts, {1})
    got = []
    for repeated in (0, 10**9):  # 0: always by distinct values; 10**9: never
        monkeypatch.setattr(rows, "REPEATED", repeated)
        with pytest.raises(DataError) as caught:
            load(tmp_path / "c", 10**9, monkeypatch, "stop")
        problems = [(p.row, p.column, p.message) for p in caught.value.problems]
        kept = load(tmp_path / "c", 4, monkeypatch, "quarantine")
        got.append((problems, kept.frame, kept.rejected))
    (problems, frame, rejected), (problems2, frame2, rejected2) = got
    assert problems == problems2 and len(problems) == 2
    assert frame.equals(frame2) and rejected is not None and rejected2 is not None
    assert rejected.equals(rejected2)
    texts = frame.get_column("text").to_list()
    assert None in texts and "padded text" in texts and "tab\tand\nnew line" in texts
