"""One input file into a frame of raw columns, with its structural bad rows named.

A file is opened lazily (chargeback.data.sources), its header held to the
table's needs (chargeback.data.header), and only the columns wanted are read.
What polars cannot tell on its own is settled here, cheaply on the clean path:

- a CSV row with fewer fields than the header leaves its last column empty, so
  only rows whose last column is empty are looked at again, by their line;
- a row with more fields, a broken quote or a byte that is not UTF-8 make polars
  fail; chargeback.data.diagnose then finds the line, and ragged rows become bad
  rows like any other (named, or set aside with --on-bad-rows quarantine);
- a line with nothing on it but separators (spreadsheets write them) is not a
  contact and is skipped; an empty file or one with a header and no rows is
  reported as such, for chargeback.data.tables to decide on.
"""

from __future__ import annotations

import zlib
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from chargeback.data.checks import TableSpec
from chargeback.data.diagnose import (
    Records,
    blank_text,
    csv_records,
    decoded,
    encoding_problem,
    lines_at,
    ragged_message,
    record_lines,
    text_problems,
)
from chargeback.data.header import plan_columns
from chargeback.data.sources import (
    READ_ERRORS,
    format_of,
    is_text_table,
    scan,
    separator,
    short_error,
)
from chargeback.errors import Problem

SMALL_FILE_ROWS = 500_000


@dataclass
class FileRead:
    """One file's rows (raw columns plus `_file`, `_row`, `_shape`) or why there are none."""

    path: Path
    frame: pl.DataFrame | None = None
    rows: int = 0  # records the reader saw, blank lines included (they are numbered too)
    empty: str | None = None  # "is empty", "has a header but no rows"
    absent: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


def _header_encoding(path: Path) -> Problem | None:
    """A text table's header line must be UTF-8 too: polars reads header names lossily,
    so a Latin-1 header would otherwise slip through, or fail later without a place."""
    if not is_text_table(path) or path.name.lower().endswith(".gz"):
        return None
    try:
        with path.open("rb") as handle:
            head = handle.readline(1 << 20)
    except OSError:
        return None  # the read below names the file
    if len(head) == 1 << 20:
        head = head[:-3]  # a character cut at the limit is not a bad byte
    return encoding_problem(path, head)


def read_file(
    spec: TableSpec,
    index: int,
    path: Path,
    mapping: dict[str, str],
    wanted: set[str],
    optional: Collection[str] = (),
) -> FileRead:
    """One file's wanted columns; `optional` mappings (a preset's) apply where the header is."""
    out = FileRead(path)
    try:
        if path.stat().st_size == 0:
            out.empty = "is empty (0 bytes)"
            return out
    except OSError as exc:
        out.problems.append(Problem(f"cannot read: {exc.strerror or exc}", path))
        return out
    header_problem = _header_encoding(path)
    if header_problem is not None:
        out.problems.append(header_problem)
        return out
    lf = scan(path)
    try:
        header = lf.collect_schema()
    except pl.exceptions.NoDataError:
        out.empty = "is empty"
        return out
    except READ_ERRORS as exc:
        if format_of(path) == "ndjson" and blank_text(path):
            out.empty = "has no rows"
        else:
            out.problems += _unreadable(path, exc)[0]
        return out
    mapping = {k: v for k, v in mapping.items() if k not in optional or v in header}
    plan = plan_columns(spec, path, header, mapping, wanted)
    out.problems += plan.problems
    out.absent = plan.absent
    if out.problems:
        return out
    names = header.names()
    text = is_text_table(path)
    select = [*plan.select, *([pl.col(names[-1]).alias("_last")] if text else [])]

    def collect(lazy: pl.LazyFrame) -> pl.DataFrame:
        return (
            lazy.with_row_index("_row", offset=1)
            .select(
                pl.lit(index, dtype=pl.Int32).alias("_file"), pl.col("_row").cast(pl.Int64), *select
            )
            .collect()
        )

    shape: dict[int, str] = {}
    try:
        frame = collect(lf)
    except READ_ERRORS as exc:
        problems, records = _unreadable(path, exc)
        if records is None or problems:
            out.problems += problems
            return out
        shape = {
            r: ragged_message(w, len(names))
            for r, _, w in records.rows()
            if w not in (0, len(names))
        }
        if not shape:
            out.problems.append(Problem(f"cannot read: {short_error(exc)}", path))
            return out
        try:
            frame = collect(scan(path, ragged=True))
        except READ_ERRORS as again:
            out.problems.append(Problem(f"cannot read: {short_error(again)}", path))
            return out
        if frame.height != len(records.lines) - 1:  # the two readers disagree: name lines
            ragged = [Problem(shape[r], path, line) for r, line, _ in records.rows() if r in shape]
            out.problems += ragged[:20]
            return out
    out.rows = frame.height
    blank: set[int] = set()
    if text:
        unclear = frame.filter(pl.col("_last").is_null()).get_column("_row").to_list()
        if unclear:
            short, blank, broken = _look_closer(path, unclear, frame.height, len(names))
            if broken is not None:
                out.problems.append(broken)
                return out
            shape.update(short)
        frame = frame.drop("_last")
    if blank:
        frame = frame.filter(~pl.col("_row").is_in(sorted(blank)))
    frame = frame.with_columns(
        pl.col("_row").replace_strict(shape, default=None, return_dtype=pl.String).alias("_shape")
        if shape
        else pl.lit(None, dtype=pl.String).alias("_shape")
    )
    if frame.height == 0:
        out.empty = "has a header but no rows" if text else "has no rows"
    # A small file: one chunk per column, copied here while its reader's buffers are freed
    # at once, so the batch it goes into is typed in place. A large one is typed in
    # slices of itself, which a copy would only double (chargeback.data.rows).
    out.frame = frame.rechunk() if frame.height < SMALL_FILE_ROWS else frame
    return out


def _unreadable(path: Path, exc: BaseException) -> tuple[list[Problem], Records | None]:
    """Why polars could not read a file, by line where the file is text."""
    if format_of(path) == "parquet":
        return [Problem(f"cannot read (not a valid Parquet file?): {short_error(exc)}", path)], None
    problems, records = text_problems(path)
    if not problems and records is None:
        problems = [Problem(f"cannot read: {short_error(exc)}", path)]
    return problems, records


def _look_closer(
    path: Path, rows: list[int], height: int, width: int
) -> tuple[dict[int, str], set[int], Problem | None]:
    """Rows whose last field is empty: short (too few fields), blank, or fine.

    When every row is one line (no quoted line breaks), each is judged by its
    own line with polars; otherwise the file's records are split in Python (and
    a record Python's csv module cannot split is named, by line).
    """
    sep = separator(path)
    try:
        found, count = lines_at(path, rows)
    except (OSError, EOFError, zlib.error) as exc:  # gzip that breaks past where polars read
        return {}, set(), Problem(f"cannot read: {short_error(exc)}", path)
    if count == height + 1:
        line = pl.col("line")
        judged = pl.DataFrame(
            {"_row": list(found), "line": list(found.values())},
            schema={"_row": pl.Int64, "line": pl.String},
        ).select(
            "_row",
            (line.str.count_matches('"', literal=True) % 2 == 1).alias("odd"),
            line.str.replace_all(r'"[^"]*"', "x")
            .str.count_matches(sep, literal=True)
            .alias("seps"),
            line.str.replace_all(rf'[\s"{sep}]', "").str.len_bytes().eq(0).alias("blank"),
        )
        if not judged.get_column("odd").any():
            short = {
                int(r): ragged_message(int(n) + 1, width)
                for r, n, b in judged.select("_row", "seps", "blank").iter_rows()
                if not b and int(n) + 1 < width
            }
            blank = {int(r) for r, b in judged.select("_row", "blank").iter_rows() if b}
            return short, blank, None
    try:
        _, text = decoded(path)
    except OSError as exc:
        return {}, set(), Problem(f"cannot read: {short_error(exc)}", path)
    records = csv_records(path, text)
    if records.error is not None:
        return {}, set(), records.error
    if len(records.lines) != height + 1:  # the readers split records differently: polars' word
        return {}, set(), None
    wanted = set(rows)
    short = {
        r: ragged_message(w, width)
        for r, _, w in records.rows()
        if r in wanted and 0 < w < width and not records.blank[r]
    }
    blank = {r for r, _, _ in records.rows() if r in wanted and records.blank[r]}
    return short, blank, None


class LineFinder:
    """The line a bad row sits on, worked out only for files that have bad rows."""

    def __init__(self, files: list[Path], heights: list[int]) -> None:
        self.files = files
        self.heights = heights
        self.cache: dict[int, list[int] | None] = {}
        self.identity: set[int] = set()

    def __call__(self, index: int, row: int) -> int | None:
        if row < 1:
            return None
        if index not in self.cache and index not in self.identity:
            self._load(index)
        if index in self.identity:
            return row + 1
        lines = self.cache.get(index)
        return lines[row - 1] if lines is not None and row <= len(lines) else None

    def _load(self, index: int) -> None:
        path = self.files[index]
        if is_text_table(path):
            try:
                if pl.scan_lines(path).select(pl.len()).collect().item() == self.heights[index] + 1:
                    self.identity.add(index)  # every record is one line
                    return
            except READ_ERRORS:
                pass
        self.cache[index] = record_lines(path, self.heights[index])
