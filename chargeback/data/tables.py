"""Read contact records (CSV, CSV.gz, Parquet, NDJSON; a file, glob or folder).

Everything is lazy polars: only the columns the rules need are read, types are
normalised with expressions, and bad rows are found with expressions too, never
a Python loop over rows. The result has one canonical shape whatever the
source: `local` (wall-clock time in the workspace timezone), `date`, `period`
(YYYY-MM), `hs_us` (handle time in integer microseconds, so sums stay exact),
`tags` as `|a|b|` (so tag tests are plain substring searches), the other
canonical and extra columns as strings, and `_file`/`_row` for messages.

This module stacks the files of one kind of table and decides what happens to
bad rows; finding and opening the files is in chargeback.data.sources, typing the
columns and the row checks in chargeback.data.checks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from chargeback.data.checks import (
    TableSpec,
    describe_bad,
    normalise,
    rejected_frame,
    row_checks,
    typed_columns,
)
from chargeback.data.sources import format_of, line_of, resolve_files, scan, short_error
from chargeback.errors import DataError, Problem
from chargeback.workspace.fields import suggest

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
) -> Loaded:
    """Read, map, type-check and stack every file; stop or quarantine on bad rows."""
    frames: list[pl.LazyFrame] = []
    problems: list[Problem] = []
    missing: dict[str, list[Path]] = {}
    wanted = set(wanted) | set(spec.required)
    for index, path in enumerate(files):
        lf = scan(path)
        try:
            header = lf.collect_schema()
        except (pl.exceptions.PolarsError, OSError) as exc:
            problems.append(Problem(f"cannot read: {short_error(exc)}", path))
            continue
        select: list[pl.Expr] = []
        for name in sorted(wanted):
            source = columns_mapping.get(name, name)
            if source in header:
                select.append(normalise(pl.col(source), header[source], name))
            elif name in spec.required or name in columns_mapping:
                how = (
                    f"mapped to {name} by columns: in chargeback.yaml"
                    if name in columns_mapping
                    else "required"
                )
                problems.append(
                    Problem(
                        f"missing column '{source}' ({how}){suggest(source, header.names())}; "
                        f"the file has: {', '.join(header.names())}",
                        path,
                        1 if format_of(path) in ("csv", "tsv") else None,
                    )
                )
        if problems:
            continue
        present = {e.meta.output_name() for e in select}
        for name in sorted(wanted - present):
            missing.setdefault(name, []).append(path)
            select.append(pl.lit(None, dtype=pl.String).alias(name))  # optional, absent: null
        lf = lf.with_row_index("_row", offset=1).select(
            pl.lit(index, dtype=pl.Int32).alias("_file"), pl.col("_row").cast(pl.Int64), *select
        )
        frames.append(lf)
    if problems:
        raise DataError(problems)

    collected: list[pl.DataFrame] = []
    for path, frame in zip(files, frames, strict=True):
        try:
            collected.append(frame.collect())
        except (pl.exceptions.PolarsError, OSError) as exc:
            problems.append(Problem(f"cannot read {spec.kind}: {short_error(exc)}", path))
    if problems:
        raise DataError(problems)
    # by name: files may differ in which optional columns they have, and in order
    raw = pl.concat(collected, how="diagonal_relaxed")

    keep_raw = [spec.timestamp] + [n for n, _ in spec.numeric if n in raw.columns]
    raw = raw.with_columns([pl.col(c).alias(f"_raw_{c}") for c in keep_raw])
    typed = raw
    for stage in typed_columns(spec, raw, timezone, timestamp_format, tags_separator):
        typed = typed.with_columns(stage)
    checks = row_checks(spec, raw)
    reason = pl.coalesce(
        *[pl.when(cond).then(pl.lit(f"{col}\x1f{msg}")) for cond, col, msg in checks]
    )
    flagged = typed.with_columns(reason.alias("_bad"))
    bad = flagged.filter(pl.col("_bad").is_not_null())
    good = flagged.filter(pl.col("_bad").is_null()).drop(
        "_bad", spec.timestamp, *[f"_raw_{c}" for c in keep_raw], strict=False
    )
    good = good.drop("_ts_text", strict=False)
    if "handle_seconds" in good.columns:
        good = good.with_columns(
            (pl.col("handle_seconds").fill_null(0.0) * 1_000_000)
            .round()
            .cast(pl.Int64)
            .alias("hs_us")
        ).drop("handle_seconds")
    else:
        good = good.with_columns(pl.lit(0, dtype=pl.Int64).alias("hs_us"))
    # a column is missing when no file has it; some files lacking it just gives nulls
    missing = {name: paths for name, paths in missing.items() if len(paths) == len(files)}
    loaded = Loaded(frame=good, files=files, missing=missing)
    if bad.height and good.height == 0:
        on_bad_rows = "stop"  # every row rejected is a setup problem, not data to report on
    if bad.height:
        details = [
            (f, r, columns_mapping.get(c, c), m) for f, r, c, m in describe_bad(bad, raw, files)
        ]
        if on_bad_rows != "quarantine":
            problems = [
                Problem(msg, files[f], line=line_of(files[f], r), row=r, column=c)
                for f, r, c, msg in details[:MAX_LISTED]
            ]
            if any(m.startswith("unparsable timestamp") for _, _, _, m in details):
                problems.append(Problem(TIMESTAMP_HINT, severity="hint"))
            if bad.height > MAX_LISTED:
                problems.append(
                    Problem(
                        severity="note",
                        message=f"... and {bad.height - MAX_LISTED} more bad rows; fix them, "
                        "or run with --on-bad-rows quarantine to set them aside in rejected.csv",
                    )
                )
            raise DataError(problems)
        rejected = rejected_frame(bad, raw, files, details)
        loaded.rejected = rejected.rename(
            {
                k: v
                for k, v in columns_mapping.items()
                if k in rejected.columns and v not in rejected.columns
            }
        )
    return loaded


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
) -> Loaded:
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
    )
