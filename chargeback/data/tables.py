"""Read contact records (CSV, CSV.gz, Parquet, NDJSON; a file, glob or folder).

Everything is lazy polars: only the columns the rules need are read, types are
normalised with expressions, and bad rows are found with expressions too, never
a Python loop over rows. The result has one canonical shape whatever the
source: `local` (wall-clock time in the workspace timezone), `date`, `period`
(YYYY-MM), `hs_us` (handle time in integer microseconds, so sums stay exact),
money (`revenue`, `amount`) as exact decimals, `tags` as `|a|b|` (so tag tests
are plain substring searches), the other canonical and extra columns as strings,
and `_file`/`_row` for messages.

Every hostile input ends as a DataError that names its place: a file that
cannot be read (by line, chargeback.data.diagnose), a header that does not fit
(chargeback.data.header), a row outside the limits of chargeback.data.limits
(file, line or row, column). A file with no rows is a warning when others have
rows, and an error (naming each file) when no file has any.

This module stacks the files of one kind of table and decides what happens to
bad rows; finding and opening the files is in chargeback.data.sources, reading
one file in chargeback.data.reading, typing the columns and the row checks in
chargeback.data.checks.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from chargeback.data.checks import (
    MONEY,
    TableSpec,
    describe_bad,
    rejected_frame,
)
from chargeback.data.limits import MAX_MONEY_TOTAL, shown
from chargeback.data.reading import FileRead, LineFinder, read_file
from chargeback.data.rows import plan, reasons, type_all, with_duplicates, with_raw
from chargeback.data.sources import READ_ERRORS, format_of, resolve_files, short_error
from chargeback.data.stamps import probe_format
from chargeback.errors import DataError, Problem, WorkspaceError, display_path, problem_at
from chargeback.workspace.model import CONTACT_COLUMNS, ValueMap

# format_of, resolve_files and TableSpec live below this module; they are
# exported here too, as the loading side of the data layer
__all__ = [
    "CONTACTS",
    "ORDERS",
    "Loaded",
    "TableSpec",
    "format_of",
    "load_contacts",
    "load_orders",
    "load_table",
    "resolve_files",
]

MAX_LISTED = 20  # bad rows shown in full; the rest are counted
TIMESTAMP_HINT = (
    "timestamps are read as ISO 8601 (2026-03-01T09:30:00, optionally with an offset such as "
    "+01:00 or Z) or as a date (2026-03-01); for another layout set timestamp_format in "
    'chargeback.yaml, e.g. timestamp_format: "%d-%b-%y" for 22-Apr-15'
)
INTERNAL = ("_bad", "_ts_text", "_utc", "_shape")
UNPARSABLE = "unparsable timestamp: '"
OUTSIDE_YEARS = "outside the years "


def timestamp_hint(stamps: list[str]) -> str:
    """A layout that fits the failing values themselves, when one of the usual ones does."""
    from chargeback.data.inference import layout_for  # the error path only

    fmt = layout_for(stamps)
    if fmt is None:
        return TIMESTAMP_HINT
    swapped = (
        ""
        if "%d/%m" not in fmt and "%m/%d" not in fmt
        else (" (check whether the day or the month comes first)")
    )
    return (
        f"'{stamps[0]}' reads with timestamp_format: \"{fmt}\" in chargeback.yaml{swapped}; "
        "without it timestamps are read as ISO 8601 (2026-03-01T09:30:00, optionally with an "
        "offset such as +01:00 or Z)"
    )


CONTACTS = TableSpec(
    kind="contacts",
    required=("contact_id", "started_at", "channel"),
    timestamp="started_at",
    id_column="contact_id",
    numeric=(("handle_seconds", True), ("revenue", False)),
)


ORDERS = TableSpec(
    kind="orders",
    required=("customer_id", "ordered_at", "amount"),
    timestamp="ordered_at",
    id_column=None,
    numeric=(("amount", False),),  # refunds may be negative
)


@dataclass
class Loaded:
    """A clean table plus what was set aside and where it came from."""

    frame: pl.DataFrame
    files: list[Path]
    rejected: pl.DataFrame | None = None
    missing: dict[str, list[Path]] = field(default_factory=dict)  # columns in no file
    warnings: list[str] = field(default_factory=list)  # e.g. a file without rows, skipped
    labels: dict[Path, str] = field(default_factory=dict)  # a database source's export -> its name
    rows: int | None = None  # summed in the engine: `frame` holds only the months (SPEC 10)

    @property
    def contacts(self) -> int:
        """How many contacts were read, wherever they were counted."""
        return self.frame.height if self.rows is None else self.rows

    @property
    def rejected_count(self) -> int:
        return 0 if self.rejected is None else self.rejected.height


def load_table(
    spec: TableSpec,
    files: list[Path],
    columns_mapping: dict[str, str],
    wanted: set[str],
    timezone: str,
    timestamp_format: str | None,
    on_bad_rows: str,
    tags_separator: str = "|",
    *,
    values: Sequence[ValueMap] = (),
    optional_columns: Collection[str] = (),
) -> Loaded:
    """Read, map, type-check and stack every file; stop or quarantine on bad rows.

    `optional_columns` are mappings (a preset's) that apply only in a file with
    that header; `values` maps the export's words to yours (SPEC 1).
    """
    extra = {vm.column for vm in values if vm.column not in CONTACT_COLUMNS}
    wanted = set(wanted) | set(spec.required) | extra
    unusable = probe_format(spec.timestamp, timezone, timestamp_format)
    if unusable:
        raise DataError(Problem(unusable, files[0], column=spec.timestamp))

    def read(index: int) -> FileRead:
        return read_file(spec, index, files[index], columns_mapping, wanted, optional_columns)

    if len(files) > 1:  # polars releases the GIL while it reads: files side by side
        with ThreadPoolExecutor(max_workers=min(len(files), os.cpu_count() or 1)) as pool:
            reads = list(pool.map(read, range(len(files))))
    else:
        reads = [read(0)]
    problems = [p for r in reads for p in r.problems]
    if problems:
        raise DataError(problems)
    parts, loaded = _stack(spec, reads, tags_separator)
    for done in reads:
        done.frame = None  # the parts hold the rows now, and are let go batch by batch
    _check_value_columns(values, extra, loaded)
    try:
        return _check_rows(
            spec,
            parts,
            loaded,
            reads,
            columns_mapping,
            timezone,
            timestamp_format,
            on_bad_rows,
            tags_separator,
            {vm.column: dict(vm.pairs) for vm in values if vm.pairs},
        )
    except READ_ERRORS as exc:  # a value no check foresaw: still a clean refusal
        where = files[0] if len(files) == 1 else None
        raise DataError(
            Problem(f"cannot read the {spec.kind}: {short_error(exc)}", where)
        ) from None


def _check_value_columns(values: Sequence[ValueMap], extra: set[str], loaded: Loaded) -> None:
    """`values:` naming a column no file has: a workspace error at its line in chargeback.yaml.

    A canonical column may be absent (a preset maps channel words whatever else
    the export holds); any other name must be a column of the contacts.
    """
    problems = []
    for vm in values:
        if vm.column in extra and vm.column in loaded.missing:
            files = ", ".join(p.name for p in loaded.missing[vm.column][:5])
            problems.append(
                problem_at(
                    f"values: '{shown(vm.column)}' is not a column of the contacts ({files}); "
                    "values: names columns as chargeback knows them, after columns:",
                    vm.place,
                )
            )
    if problems:
        raise WorkspaceError(problems)


def _stack(
    spec: TableSpec, reads: list[FileRead], tags_separator: str
) -> tuple[list[pl.DataFrame], Loaded]:
    """Every file with rows, by column name; files without rows are warned about.

    A run needs at least one row: when no file has any, that is an error naming
    each file. One empty file among others (a quiet day's export) is a warning.
    """
    files = [r.path for r in reads]
    full = [r for r in reads if r.empty is None and r.frame is not None]
    if not full:
        raise DataError([Problem(f"no {spec.kind}: the file {r.empty}", r.path) for r in reads])
    frames = [
        r.frame.with_columns([pl.lit(None, dtype=pl.String).alias(n) for n in r.absent])
        for r in full
        if r.frame is not None
    ]
    if any(isinstance(f.schema.get("tags"), pl.List) for f in frames):
        # a list column in one file, text in another: split the text ones as lists
        frames = [
            f.with_columns(pl.col("tags").cast(pl.String).str.split(tags_separator))
            if "tags" in f.columns and not isinstance(f.schema["tags"], pl.List)
            else f
            for f in frames
        ]
    # by name: files may differ in which optional columns they have, in order and in
    # types; each file is brought to the stacked schema, and typed on its own after
    try:
        schema = pl.concat([f.clear() for f in frames], how="diagonal_relaxed").schema
        parts = [
            f.select(
                pl.col(n).cast(t) if n in f.columns else pl.lit(None, dtype=t).alias(n)
                for n, t in schema.items()
            )
            for f in frames
        ]
    except READ_ERRORS as exc:
        raise DataError(
            Problem(f"the files' columns cannot be stacked: {short_error(exc)}", files[0])
        ) from None
    del frames
    # a column is missing when no file with rows has it; some files lacking it gives nulls
    missing: dict[str, list[Path]] = {}
    for name in {n for r in full for n in r.absent}:
        if all(name in r.absent for r in full):
            missing[name] = [r.path for r in full]
    warnings = [
        f"{display_path(r.path)} {r.empty}: no {spec.kind} read from it" for r in reads if r.empty
    ]
    return parts, Loaded(frame=parts[0].clear(), files=files, missing=missing, warnings=warnings)


def _check_rows(
    spec: TableSpec,
    parts: list[pl.DataFrame],
    loaded: Loaded,
    reads: list[FileRead],
    columns_mapping: dict[str, str],
    timezone: str,
    timestamp_format: str | None,
    on_bad_rows: str,
    tags_separator: str,
    values: dict[str, dict[str, str]],
) -> Loaded:
    files = loaded.files
    columns = parts[0].schema
    keep_raw = [spec.timestamp] + [n for n, _ in spec.numeric if n in columns]
    raw = with_raw(parts[0].clear(), keep_raw)  # the raw columns' names, for messages
    how = plan(spec, parts, keep_raw, timezone, timestamp_format, tags_separator, values)
    typed, windowed = with_duplicates(spec, type_all(how, parts))
    # Which rows are bad is one boolean pass per batch; why (the first check that
    # holds, as text) is worked out for those rows only.
    scratch_checks = ["_is_bad", *(["_check_dup"] if windowed else [])]
    # counted first: a filter, even one that keeps nothing, copies a many-chunk frame
    flagged = typed.select(pl.col("_is_bad").sum()).item()
    bad = typed.filter(pl.col("_is_bad")) if flagged else typed.clear()
    bad = bad.with_columns(reasons(spec, raw, windowed).alias("_bad")).drop(scratch_checks)
    # no bad row (the usual case): the typed frame itself, not a filtered copy of it
    good = typed.filter(~pl.col("_is_bad")) if bad.height else typed
    good = good.drop(scratch_checks)
    whole = typed if bad.height else None  # a duplicate's message names the first row
    del typed
    drop = [*INTERNAL, spec.timestamp, *[f"_raw_{c}" for c in keep_raw]]
    _check_totals(spec, good, files)
    scratch = [c for c in good.columns if c.startswith(("_num_", "_txt_"))]
    good = good.drop(*drop, *scratch, strict=False)
    if "handle_seconds" in good.columns:
        good = good.with_columns(
            (pl.col("handle_seconds").fill_null(0.0) * 1_000_000)
            .round()
            .cast(pl.Int64)
            .alias("hs_us")
        ).drop("handle_seconds")
    else:
        good = good.with_columns(pl.lit(0, dtype=pl.Int64).alias("hs_us"))
    # a column without a value (revenue absent from every file) as one null, not a null per
    # row: typed revenue is 16 bytes a row (48 MB at 3M contacts)
    empty = [c for c in good.columns if good.get_column(c).null_count() == good.height]
    loaded.frame = good.with_columns(pl.lit(None, good.schema[c]).alias(c) for c in empty)
    if bad.height and good.height == 0:
        on_bad_rows = "stop"  # every row rejected is a setup problem, not data to report on
    if not bad.height:
        return loaded
    line_for = LineFinder(files, [r.rows for r in reads])
    if on_bad_rows != "quarantine":
        head = bad.head(MAX_LISTED)
        details = [
            (f, r, columns_mapping.get(c, c), m)
            for f, r, c, m in describe_bad(head, whole, files, line_for)
        ]
        problems = [
            Problem(msg, files[f], line=line_for(f, r), row=r, column=c or None)
            for f, r, c, msg in details
        ]
        # a stamp no layout read, or text read in the wrong one that lands in another
        # century ('22-04-15' as the year 22): the same hint
        text = columns[spec.timestamp] == pl.String
        about = (UNPARSABLE, OUTSIDE_YEARS) if text else (UNPARSABLE,)
        stamps = [s for *_, m in details if (s := quoted_stamp(m, about)) is not None]
        if stamps:
            problems.append(Problem(timestamp_hint(stamps), severity="hint"))
        if bad.height > MAX_LISTED:
            advice = (
                "every row is bad: check the settings (columns:, timestamp_format) first"
                if good.height == 0
                else "fix them, or run with --on-bad-rows quarantine to set them aside in "
                "rejected.csv"
            )
            more = f"... and {bad.height - MAX_LISTED} more bad rows; {advice}"
            problems.append(Problem(severity="note", message=more))
        raise DataError(problems)
    details = [
        (f, r, columns_mapping.get(c, c), m)
        for f, r, c, m in describe_bad(bad, whole, files, line_for)
    ]
    # the rows as written: not the columns no file has (null here only as read)
    rejected = rejected_frame(bad, raw, files, details).drop(loaded.missing, strict=False)
    loaded.rejected = rejected.rename(
        {
            k: v
            for k, v in columns_mapping.items()
            if k in rejected.columns and v not in rejected.columns
        }
    )
    return loaded


def quoted_stamp(message: str, problems: tuple[str, ...]) -> str | None:
    """The timestamp a row's problem quotes (checks.describe_bad ends it `: '<value>'`),
    when the problem begins with one of `problems`."""
    if not message.startswith(problems) or ": '" not in message or not message.endswith("'"):
        return None
    return message.split(": '", 1)[1][:-1]


def _check_totals(spec: TableSpec, good: pl.DataFrame, files: list[Path]) -> None:
    """Money summed over the whole table must stay exact in 64-bit cents."""
    for name in MONEY:
        number = f"_num_{name}"
        if number not in good.columns or good.height == 0:
            continue
        if float(good.select(pl.col(number).abs().sum()).item() or 0) >= MAX_MONEY_TOTAL:
            sums = good.group_by("_file").agg(pl.col(number).abs().sum().alias("s"))
            worst = int(sums.sort("s", descending=True).get_column("_file")[0])
            raise DataError(
                Problem(
                    f"the {spec.kind}' {name} values add up to {MAX_MONEY_TOTAL:,} or more "
                    "(either sign counted): beyond what chargeback sums exactly",
                    files[worst],
                    column=name,
                )
            )


def load_orders(
    root: Path,
    spec: str,
    columns_mapping: dict[str, str],
    timezone: str,
    timestamp_format: str | None,
    on_bad_rows: str,
) -> Loaded:
    """Orders (SPEC 7) with the contacts' rules; `columns:` keys are `orders.<column>`."""
    files = resolve_files(spec, root, "orders")
    mapping = {
        k.removeprefix("orders."): v for k, v in columns_mapping.items() if k.startswith("orders.")
    }
    return load_table(
        ORDERS, files, mapping, set(ORDERS.required), timezone, timestamp_format, on_bad_rows
    )


def load_contacts(
    root: Path,
    spec: str,
    columns_mapping: dict[str, str],
    wanted: set[str],
    timezone: str,
    timestamp_format: str | None,
    on_bad_rows: str,
    tags_separator: str = "|",
    *,
    values: Sequence[ValueMap] = (),
    optional_columns: Collection[str] = (),
) -> Loaded:
    """SPEC 2's contacts: `columns:` (a preset's optional ones too) and `values:` applied."""
    files = resolve_files(spec, root)
    return load_table(
        CONTACTS,
        files,
        columns_mapping,
        wanted,
        timezone,
        timestamp_format,
        on_bad_rows,
        tags_separator,
        values=values,
        optional_columns=optional_columns,
    )
