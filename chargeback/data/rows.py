"""Typing and checking a table's rows, a batch at a time, on every core.

The files of a table are typed and checked in batches of whole chunks (a
Parquet file's row groups, a text reader's blocks, small files): small ones
gathered, a large one sliced. What typing needs to know about the data (which
columns are already clean, which value checks no value can fail, the first and
last instant) is decided once, on the whole table, part by part. Each batch is
then typed (chargeback.data.checks.typed_columns) and its row checks folded into
one `_is_bad` flag on a worker thread (polars releases the GIL). A batch of one
chunk is typed in place, with columns added beside the ones read; one of several
chunks is made one chunk once. Stacking the files and copying the table into one
contiguous frame, as before, held two copies of the table at once.

What needs the whole table is done on the stacked result: later duplicates of an
id, the money totals, and the words of a bad row's message (for those rows only).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import polars as pl

from chargeback.data.checks import (
    MANY_VALUES,
    MONEY,
    TableSpec,
    row_checks,
    typed_columns,
)
from chargeback.data.local_time import WINDOW, with_periods
from chargeback.data.stamps import aware_span, utc_instants
from chargeback.data.threads import side_by_side

BATCH_ROWS = 250_000  # a batch's set-up (a few ms) does not count; two keep both cores busy
LITERALS = ("_file", "_shape")  # one value per file: not chunked like the columns read
VALUE_CHECKS = ("holds a control character", "longer than")  # on one value alone
Check = tuple[pl.Expr, str, str]


@dataclass(frozen=True)
class Typing:
    """What typing a batch needs besides its rows: decided once, on the whole table."""

    stages: list[list[pl.Expr]]  # chargeback.data.checks.typed_columns
    is_bad: pl.Expr  # the checks on a row alone; a later duplicate is checked after
    keep_raw: list[str]  # columns whose value as read is kept, as `_raw_<name>`, for messages


def with_raw(frame: pl.DataFrame, keep_raw: list[str]) -> pl.DataFrame:
    """`_raw_<name>` beside each column kept as read (hstack shares the columns)."""
    return frame.hstack([frame.get_column(c).alias(f"_raw_{c}") for c in keep_raw])


def plan(
    spec: TableSpec,
    parts: list[pl.DataFrame],
    keep_raw: list[str],
    timezone: str,
    timestamp_format: str | None,
    tags_separator: str,
    values: Mapping[str, Mapping[str, str]],
) -> Typing:
    """The typing expressions and the row checks, decided on the whole table: which
    columns need trimming, which value checks no distinct value can fail, the first and
    last instant."""
    frames = [with_raw(p, keep_raw) for p in parts]
    distinct = distinct_values(frames, few_valued(spec, frames[0]))
    stages = typed_columns(
        spec,
        frames,
        timezone,
        timestamp_format,
        tags_separator,
        values,
        span=span_of(spec, frames),
        distinct=distinct,
    )
    first = {e.meta.output_name(): e for e in stages[0]}
    checks = [c for c in row_checks(spec, frames[0]) if c[2] != "duplicate"]
    checks = skip_clean_columns(checks, distinct, first)
    is_bad = pl.any_horizontal(
        pl.col("_shape").is_not_null(), *[cond.fill_null(False) for cond, _, _ in checks]
    )
    return Typing(stages, is_bad, keep_raw)


def batches(frames: list[pl.DataFrame]) -> list[pl.DataFrame]:
    """Files of one schema as batches: a large file on its own, in slices of about
    BATCH_ROWS (views of it); small ones stacked into one contiguous batch."""
    out: list[pl.DataFrame] = []
    pending: list[pl.DataFrame] = []
    rows = 0
    for frame in frames:  # in file order: the first of two equal ids is the earlier row
        if frame.height >= BATCH_ROWS // 2:
            if pending:
                out.append(pl.concat(pending, rechunk=True))
                pending, rows = [], 0
            out += slices(frame)
            continue
        pending.append(frame)
        rows += frame.height
        if rows >= BATCH_ROWS // 2:
            out.append(pl.concat(pending, rechunk=True))
            pending, rows = [], 0
    if pending:
        out.append(pl.concat(pending, rechunk=True))
    return out


def slices(frame: pl.DataFrame) -> list[pl.DataFrame]:
    """A large frame as views of whole chunks (a Parquet file's row groups, a text
    reader's blocks), gathered to about BATCH_ROWS rows, a chunk over that sliced:
    each chunk then belongs to one batch, and is freed once that batch is typed.
    Columns chunked unlike each other (rare) are cut in plain slices."""
    chunked = [
        frame.get_column(c).chunk_lengths()
        for c in frame.columns
        if c not in LITERALS and frame.get_column(c).n_chunks() > 1
    ]
    runs = chunked[0] if chunked and all(c == chunked[0] for c in chunked) else [frame.height]
    out: list[pl.DataFrame] = []
    start = gathered = 0
    for length in runs:
        if length >= BATCH_ROWS // 2:
            if gathered:
                out.append(frame.slice(start - gathered, gathered))
                gathered = 0
            pieces = max(1, round(length / BATCH_ROWS))
            size = -(-length // pieces)
            out += [
                frame.slice(at, min(size, start + length - at))
                for at in range(start, start + length, size)
            ]
        else:
            gathered += length
            if gathered >= BATCH_ROWS // 2:
                out.append(frame.slice(start + length - gathered, gathered))
                gathered = 0
        start += length
    if gathered:
        out.append(frame.slice(start - gathered, gathered))
    return out


def span_of(spec: TableSpec, parts: list[pl.DataFrame]) -> tuple[int | None, int | None]:
    """The first and last instant of the whole table that local_time.WINDOW holds, in
    microseconds (None, None: not instants, or none there). As integers: an instant
    past year 9999 has no Python datetime. Text: a span holding every instant, should
    all of it be stamps of one form (stamps.aware_span), from the least and greatest text."""
    dtype = parts[0].schema[spec.timestamp]
    if dtype == pl.String:
        text = pl.col(spec.timestamp)
        texts = side_by_side(lambda p: p.select(text.min(), text.max().alias("b")).row(0), parts)
        lows = [a for a, _ in texts if a is not None]
        highs = [b for _, b in texts if b is not None]
        return aware_span(min(lows, default=None), max(highs, default=None))
    utc = utc_instants(dtype, spec.timestamp)
    if utc is None:
        return None, None
    micros = utc.cast(pl.Int64)
    micros = micros.filter(micros.is_between(*WINDOW))  # the others keep their UTC time
    ends = side_by_side(
        lambda p: p.select(micros.min().alias("a"), micros.max().alias("b")).row(0), parts
    )
    firsts = [a for a, _ in ends if a is not None]
    lasts = [b for _, b in ends if b is not None]
    return (min(firsts) if firsts else None, max(lasts) if lasts else None)


def type_batch(how: Typing, raw: pl.DataFrame) -> pl.DataFrame:
    """One batch typed, with `_is_bad` set where a check on the row itself fails."""
    typed = with_raw(raw, how.keep_raw)
    for stage in how.stages:
        typed = typed.with_columns(stage)
    typed = with_periods(typed).with_columns(how.is_bad.alias("_is_bad"))
    if any(typed.get_column(c).n_chunks() > 1 for c in typed.columns if c not in LITERALS):
        typed = typed.rechunk()  # a batch of several chunks: one copy of the batch, now
    # `_file` is one value per file; two slices of a file stacked would merge it into
    # one chunk, and a frame whose columns are chunked unlike each other is copied
    # whole by polars at its next filter or select (10M contacts: 1.9 GB)
    return typed.with_columns(typed.get_column("_file"))


def type_all(how: Typing, parts: list[pl.DataFrame]) -> pl.DataFrame:
    """Every batch typed, side by side on the cores. `parts` is emptied here, and each
    batch let go once typed, so the rows read are freed as the typed rows are made."""
    work: list[pl.DataFrame | None] = list(batches(parts))
    parts.clear()
    if len(work) == 1:
        batch = work.pop()
        assert batch is not None
        return type_batch(how, batch)

    def one(index: int) -> pl.DataFrame:
        batch = work[index]
        work[index] = None
        assert batch is not None
        return type_batch(how, batch)

    with ThreadPoolExecutor(max_workers=min(len(work), os.cpu_count() or 1)) as pool:
        typed = list(pool.map(one, range(len(work))))
    return pl.concat(typed)


def with_duplicates(spec: TableSpec, typed: pl.DataFrame) -> tuple[pl.DataFrame, bool]:
    """`_check_dup` for later rows repeating an id, folded into `_is_bad`; (frame, whether
    the check ran). When every id is distinct (most tables) nothing is added."""
    if not spec.id_column or surely_unique(typed, spec.id_column):
        return typed, False
    id_col = pl.col(spec.id_column)
    dup = id_col.is_not_null() & ~id_col.is_first_distinct()
    typed = typed.with_columns(dup.alias("_check_dup"))
    return typed.with_columns((pl.col("_is_bad") | pl.col("_check_dup")).alias("_is_bad")), True


def reasons(spec: TableSpec, raw: pl.DataFrame, windowed: bool) -> pl.Expr:
    """Why a row is bad, as `column\\x1fmessage`: its structural problem, else the first
    check that holds (`raw` gives the columns' names and types). Run on the bad rows
    only: a text per check on every row cost more than all the checks."""
    conds: list[Check] = []
    for cond, column, message in row_checks(spec, raw):
        if message == "duplicate":
            if not windowed:
                continue
            cond = pl.col("_check_dup")
        conds.append((cond, column, message))
    return pl.coalesce(
        pl.concat_str(pl.lit("\x1f"), pl.col("_shape")),
        *[pl.when(c).then(pl.lit(f"{col}\x1f{msg}")) for c, col, msg in conds],
    )


REPEATED = 2  # rows per distinct text at least (on a sample): its checks run on those
SAMPLE_ROWS = 100_000


def few_valued(spec: TableSpec, raw: pl.DataFrame) -> list[str]:
    """The columns decided on their distinct values: all but the instants, numbers, tags
    and ids, and free text too when it repeats (templates, canned subjects: judged on
    the first rows; it changes the time, never the answer)."""
    names = []
    for name in raw.columns:
        if name.startswith("_") or name in (spec.timestamp, "tags", "handle_seconds", *MONEY):
            continue
        if name in MANY_VALUES:
            column = raw.get_column(name)
            if name != "text" or column.dtype != pl.String or not repeats(column):
                continue
        names.append(name)
    return names


def repeats(column: pl.Series) -> bool:
    """Whether a column's values repeat (texts from templates, canned subjects), judged on
    its first rows: then work per distinct value pays. It changes the time, never the
    answer (matching takes the same route for text)."""
    sample = column.head(SAMPLE_ROWS)
    return sample.n_unique() * REPEATED <= sample.len()


def distinct_values(parts: list[pl.DataFrame], names: list[str]) -> dict[str, pl.Series]:
    """Each column's distinct values over the whole table: one select over the parts
    stacked (a view, not a copy), the columns side by side. Its scratch is the distinct
    values themselves, so a select per part saved no memory, and cost a fifth more."""
    if not names:
        return {}
    found = pl.concat(parts, rechunk=False).select(pl.col(n).unique().implode() for n in names)
    return {n: found.get_column(n).explode() for n in names}


def skip_clean_columns(
    checks: list[Check], distinct: Mapping[str, pl.Series], typing: Mapping[str, pl.Expr]
) -> list[Check]:
    """Drop a value check that no `distinct` value of its column fails: it cannot fail on
    any row (the check reads that column alone, typed by `typing` one value at a time),
    and a column's distinct values cost a fraction of a pass."""

    def alone(cond: pl.Expr, name: str, message: str) -> bool:
        return cond.meta.root_names() == [name] and message.startswith(VALUE_CHECKS)

    typed = {n: v.to_frame().select(typing[n]) for n, v in distinct.items() if n in typing}

    def can_fail(cond: pl.Expr, name: str, message: str) -> bool:
        if name not in typed or not alone(cond, name, message):
            return True
        return bool(typed[name].select(cond.fill_null(False).any()).item())

    return [check for check in checks if can_fail(*check)]


def surely_unique(frame: pl.DataFrame, column: str) -> bool:
    """No value repeats: as many distinct 64-bit hashes as values (a collision only
    sends the table through the exact duplicate test); a fifth of that test's time."""
    given = pl.col(column).drop_nulls()
    counts = frame.select(given.hash().n_unique().alias("distinct"), given.len().alias("all"))
    return bool(counts.item(0, "distinct") == counts.item(0, "all"))
