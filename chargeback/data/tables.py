"""Read contact records (CSV, CSV.gz, Parquet, NDJSON; a file, glob or folder).

Everything is lazy polars: only the columns the rules need are read, types are
normalised with expressions, and bad rows are found with expressions too, never
a Python loop over rows. The result has one canonical shape whatever the
source: `local` (wall-clock time in the workspace timezone), `date`, `period`
(YYYY-MM), `hs_us` (handle time in integer microseconds, so sums stay exact),
`tags` as `|a|b|` (so tag tests are plain substring searches), the other
canonical and extra columns as strings, and `_file`/`_row` for messages.
"""

from __future__ import annotations

import glob
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from chargeback.errors import DataError, Problem, display_path
from chargeback.workspace.load import suggest

SUFFIXES = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".ndjson": "ndjson",
    ".jsonl": "ndjson",
    ".json": "ndjson",
}
MAX_LISTED = 20  # bad rows shown in full; the rest are counted
MAX_HANDLE_SECONDS = 366 * 86_400  # beyond this a value is an export error, not a contact
TIMESTAMP_HINT = (
    "timestamps are read as ISO 8601 (2026-03-01T09:30:00, optionally with an offset such as "
    "+01:00 or Z) or as a date (2026-03-01); for another layout set timestamp_format in "
    'chargeback.yaml, e.g. timestamp_format: "%d-%b-%y" for 22-Apr-15'
)


@dataclass(frozen=True)
class TableSpec:
    """What one kind of input table needs: contacts now, orders later."""

    kind: str  # "contacts" or "orders": prefixes mapping keys and messages
    required: tuple[str, ...]
    timestamp: str  # the timestamp column
    id_column: str | None  # unique within the data set, when set
    numeric: tuple[tuple[str, bool], ...]  # (column, must be >= 0)


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


def resolve_files(spec: str, root: Path, what: str = "contacts") -> list[Path]:
    """A path, glob or folder (relative to the workspace) -> the data files, sorted."""
    base = Path(spec).expanduser()
    if not base.is_absolute():
        base = root / base
    if any(ch in spec for ch in "*?["):
        found = [Path(p) for p in glob.glob(str(base), recursive=True)]
    elif base.is_dir():
        found = [p for p in base.rglob("*") if p.is_file()]
        found = [p for p in found if format_of(p) is not None]
    elif base.is_file():
        found = [base]
    else:
        raise DataError(Problem(f"{what} not found (looked for '{spec}')", base))
    found = sorted(p for p in found if p.is_file())
    if not found:
        raise DataError(Problem(f"no {what} files (CSV, Parquet, NDJSON) match '{spec}'", base))
    unknown = [p for p in found if format_of(p) is None]
    if unknown:
        raise DataError(
            [Problem("not a CSV, Parquet or NDJSON file (by its name)", p) for p in unknown]
        )
    return found


def format_of(path: Path) -> str | None:
    """The reader for a data file, by its name (None: not a data file we read)."""
    suffixes = [s.lower() for s in path.suffixes]
    if not suffixes:
        return None
    if suffixes[-1] == ".gz":
        inner = suffixes[-2] if len(suffixes) > 1 else ""
        return {".csv": "csv", ".tsv": "tsv", ".ndjson": "ndjson", ".jsonl": "ndjson"}.get(inner)
    return SUFFIXES.get(suffixes[-1])


def _scan(path: Path) -> pl.LazyFrame:
    fmt = format_of(path)
    try:
        if fmt in ("csv", "tsv"):
            return pl.scan_csv(
                path,
                separator="\t" if fmt == "tsv" else ",",
                infer_schema=False,  # all text: types are checked row by row below
                encoding="utf8-lossy",
            )
        if fmt == "parquet":
            return pl.scan_parquet(path)
        return pl.scan_ndjson(path, infer_schema_length=None)
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise DataError(Problem(f"cannot read: {_short(exc)}", path)) from None


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def load_table(
    spec: TableSpec,
    files: list[Path],
    columns_mapping: dict[str, str],
    wanted: set[str],
    timezone: str,
    timestamp_format: str | None,
    on_bad_rows: str,
) -> Loaded:
    """Read, map, type-check and stack every file; stop or quarantine on bad rows."""
    frames: list[pl.LazyFrame] = []
    problems: list[Problem] = []
    missing: dict[str, list[Path]] = {}
    wanted = set(wanted) | set(spec.required)
    for index, path in enumerate(files):
        lf = _scan(path)
        try:
            header = lf.collect_schema()
        except (pl.exceptions.PolarsError, OSError) as exc:
            problems.append(Problem(f"cannot read: {_short(exc)}", path))
            continue
        select: list[pl.Expr] = []
        for name in sorted(wanted):
            source = columns_mapping.get(name, name)
            if source in header:
                select.append(_normalise(pl.col(source), header[source], name))
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
            problems.append(Problem(f"cannot read {spec.kind}: {_short(exc)}", path))
    if problems:
        raise DataError(problems)
    # by name: files may differ in which optional columns they have, and in order
    raw = pl.concat(collected, how="diagonal_relaxed")

    keep_raw = [spec.timestamp] + [n for n, _ in spec.numeric if n in raw.columns]
    raw = raw.with_columns([pl.col(c).alias(f"_raw_{c}") for c in keep_raw])
    typed = raw
    for stage in _typed_columns(spec, raw, timezone, timestamp_format):
        typed = typed.with_columns(stage)
    checks = _checks(spec, raw)
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
            (f, r, columns_mapping.get(c, c), m) for f, r, c, m in _describe_bad(bad, raw, files)
        ]
        if on_bad_rows != "quarantine":
            problems = [
                Problem(msg, files[f], line=_line_of(files[f], r), row=r, column=c)
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
        rejected = _rejected_frame(bad, raw, files, details)
        loaded.rejected = rejected.rename(
            {
                k: v
                for k, v in columns_mapping.items()
                if k in rejected.columns and v not in rejected.columns
            }
        )
    return loaded


def _line_of(path: Path, row: int) -> int | None:
    """A CSV's data row N sits on line N + 1 (after the header); other formats have rows."""
    return row + 1 if format_of(path) in ("csv", "tsv") else None


def _normalise(col: pl.Expr, dtype: pl.DataType, name: str) -> pl.Expr:
    """Bring one source column to a canonical dtype (timestamps are parsed later)."""
    if name == "tags":
        if isinstance(dtype, pl.List):
            return col.cast(pl.List(pl.String)).alias(name)
        return col.cast(pl.String).alias(name)
    if isinstance(dtype, pl.Datetime) and dtype.time_zone is not None:
        return col.dt.convert_time_zone("UTC").dt.cast_time_unit("us").alias(name)
    if isinstance(dtype, pl.Datetime):
        return col.dt.cast_time_unit("us").alias(name)
    if dtype == pl.String or name == "started_at" or name == "ordered_at":
        return col.alias(name)
    if dtype.is_numeric() and name in ("handle_seconds", "revenue", "amount"):
        return col.cast(pl.Float64).alias(name)
    return col.cast(pl.String).alias(name)


def _clean_str(name: str) -> pl.Expr:
    """Strings with surrounding blanks removed; empty becomes null."""
    s = pl.col(name).cast(pl.String).str.strip_chars()
    return pl.when(s == "").then(None).otherwise(s)


def _typed_columns(
    spec: TableSpec, raw: pl.DataFrame, tz: str, fmt: str | None
) -> list[list[pl.Expr]]:
    """Typing expressions in stages: each stage may use the columns made before it.

    Staging matters for speed: polars does not share a subexpression between
    columns of one select, so the normalised timestamp text is made once and
    parsed after, and `date`/`period` come from the parsed column.
    """
    ts = spec.timestamp
    first: list[pl.Expr] = []
    for name in raw.columns:
        if name in ("_file", "_row", ts) or name.startswith("_raw_"):
            continue
        if name == "tags":
            parts = (
                pl.col("tags").str.split("|") if raw.schema["tags"] == pl.String else pl.col("tags")
            )
            parts = parts.list.eval(pl.element().str.strip_chars().filter(pl.element() != ""))
            joined = pl.concat_str(pl.lit("|"), parts.list.join("|"), pl.lit("|"))
            first.append(pl.when(parts.list.len() > 0).then(joined).otherwise(None).alias("tags"))
        elif name in ("handle_seconds", "revenue", "amount"):
            first.append(_number(name, raw).alias(name))
        else:
            first.append(_clean_str(name).alias(name))
    dtype = raw.schema[ts]
    if dtype == pl.String and fmt is None:
        first.append(_iso_text(pl.col(ts)).alias("_ts_text"))
        local = _parse_iso(pl.col("_ts_text"), tz)
    else:
        local = _local_time(dtype, ts, tz, fmt)
    second = [local.alias("local")]
    third = [
        pl.col("local").dt.date().alias("date"),
        pl.col("local").dt.strftime("%Y-%m").alias("period"),
    ]
    return [first, second, third]


def _number(name: str, raw: pl.DataFrame) -> pl.Expr:
    if raw.schema[name] == pl.String:
        # No thousands separators: "1,5" could be a decimal comma; better refused than misread.
        return _clean_str(name).cast(pl.Float64, strict=False)
    return pl.col(name).cast(pl.Float64)


def _local_time(dtype: pl.DataType, name: str, tz: str, fmt: str | None) -> pl.Expr:
    """Wall-clock time in `tz` for typed columns or a user-given format."""
    col = pl.col(name)
    if isinstance(dtype, pl.Datetime):
        if dtype.time_zone is not None:
            return col.dt.convert_time_zone(tz).dt.replace_time_zone(None).dt.cast_time_unit("us")
        return col.dt.cast_time_unit("us")
    if dtype == pl.Date:
        return col.cast(pl.Datetime("us"))
    text = col.cast(pl.String).str.strip_chars()
    if fmt is None:
        return _parse_iso(_iso_text(text), tz)
    if not any(code in fmt for code in ("%H", "%I", "%T", "%R", "%c", "%s")):
        return text.str.to_date(fmt, strict=False).cast(pl.Datetime("us"))
    parsed = text.str.to_datetime(fmt, strict=False, time_unit="us")
    if "%z" in fmt or "%#z" in fmt or "%:z" in fmt:
        parsed = parsed.dt.convert_time_zone(tz).dt.replace_time_zone(None)
    return parsed


def _iso_text(text: pl.Expr) -> pl.Expr:
    """ISO 8601 variants brought to one shape: `T` separator, seconds, `+00:00` for Z."""
    return (
        text.cast(pl.String)
        .str.strip_chars()
        .str.replace(r"^(\d{4}-\d{2}-\d{2})[ T]", "${1}T")
        .str.replace(r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2})([^:\d]|$)", "${1}:00${2}")
        .str.replace(r"[zZ]$", "+00:00")
    )


def _parse_iso(iso: pl.Expr, tz: str) -> pl.Expr:
    """Aware stamps are converted to `tz`; naive ones and bare dates are already local."""
    aware = (
        iso.str.to_datetime("%Y-%m-%dT%H:%M:%S%.f%#z", strict=False, time_unit="us")
        .dt.convert_time_zone(tz)
        .dt.replace_time_zone(None)
    )
    naive = iso.str.to_datetime("%Y-%m-%dT%H:%M:%S%.f", strict=False, time_unit="us")
    day = iso.str.to_date("%Y-%m-%d", strict=False).cast(pl.Datetime("us"))
    return pl.coalesce(aware, naive, day)


def _checks(spec: TableSpec, raw: pl.DataFrame) -> list[tuple[pl.Expr, str, str]]:
    """(condition on the typed frame, column, message) for each way a row can be bad.

    The first condition that holds names the row's problem.
    """
    checks: list[tuple[pl.Expr, str, str]] = []
    ts = spec.timestamp
    numeric = {n for n, _ in spec.numeric}
    for name in spec.required:
        if name in numeric and f"_raw_{name}" in raw.columns:
            checks.append((_clean_str(f"_raw_{name}").is_null(), name, "missing value (required)"))
        elif name != ts:
            checks.append((pl.col(name).is_null(), name, "missing value (required)"))
    raw_ts = pl.col(f"_raw_{ts}")
    if raw.schema[ts] == pl.String:
        raw_ts = _clean_str(f"_raw_{ts}")
    checks.append((raw_ts.is_null(), ts, "missing value (required)"))
    checks.append((pl.col("local").is_null(), ts, "unparsable timestamp"))
    for name, non_negative in spec.numeric:
        if name not in raw.columns:
            continue
        given = _clean_str(f"_raw_{name}").is_not_null()
        checks.append((pl.col(name).is_null() & given, name, "not a number"))
        checks.append((~pl.col(name).is_finite(), name, "not a finite number"))
        if non_negative:
            checks.append((pl.col(name) < 0, name, "must not be negative"))
        if name == "handle_seconds":
            checks.append(
                (pl.col(name) > MAX_HANDLE_SECONDS, name, "implausibly long (over a year)")
            )
    if spec.id_column:
        later = ~pl.col(spec.id_column).is_first_distinct()
        checks.append((pl.col(spec.id_column).is_not_null() & later, spec.id_column, "duplicate"))
    return checks


def _describe_bad(
    bad: pl.DataFrame, raw: pl.DataFrame, files: list[Path]
) -> list[tuple[int, int, str, str]]:
    """(file index, row, column, message) for each bad row, quoting the offending value."""
    firsts: dict[str, tuple[int, int]] = {}
    dup = bad.filter(pl.col("_bad").str.ends_with("\x1fduplicate"))
    if dup.height:
        id_col = str(dup["_bad"][0]).split("\x1f")[0]
        first = (
            raw.with_columns(_clean_str(id_col).alias("_id"))
            .group_by("_id", maintain_order=True)
            .agg(pl.col("_file").first(), pl.col("_row").first())
        )
        firsts = {str(k): (int(f), int(r)) for k, f, r in first.iter_rows()}
    value_cols = [c for c in bad.columns if c.startswith("_raw_")]
    value_cols += [c for c in ("contact_id", "customer_id", "channel") if c in bad.columns]
    out: list[tuple[int, int, str, str]] = []
    for row in bad.select("_file", "_row", "_bad", *value_cols).iter_rows(named=True):
        column, message = str(row["_bad"]).split("\x1f")
        value = row.get(f"_raw_{column}", row.get(column))
        if message == "duplicate":
            f, r = firsts.get(str(value), (row["_file"], 0))
            line = _line_of(files[f], r)
            where = f"line {line}" if line is not None else f"row {r}"
            if f != row["_file"]:
                where = f"{display_path(files[f])} {where}"
            message = f"duplicate {column} '{value}' (first at {where})"
        elif value is not None and message != "missing value (required)":
            message = f"{message}: '{value}'"
        out.append((int(row["_file"]), int(row["_row"]), column, message))
    return out


def _rejected_frame(
    bad: pl.DataFrame,
    raw: pl.DataFrame,
    files: list[Path],
    details: list[tuple[int, int, str, str]],
) -> pl.DataFrame:
    meta = pl.DataFrame(
        {
            "source_file": [display_path(files[f]) for f, _, _, _ in details],
            "source_row": [r for _, r, _, _ in details],
            "bad_column": [c for _, _, c, _ in details],
            "problem": [m for _, _, _, m in details],
        },
        schema={
            "source_file": pl.String,
            "source_row": pl.Int64,
            "bad_column": pl.String,
            "problem": pl.String,
        },
    )
    shown = [c for c in raw.columns if not c.startswith("_") and c not in ("tags",)]
    originals = bad.select(
        [
            pl.col(f"_raw_{c}" if f"_raw_{c}" in bad.columns else c).cast(pl.String).alias(c)
            for c in shown
        ]
    )
    return pl.concat([meta, originals], how="horizontal")


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
) -> Loaded:
    files = resolve_files(spec, root)
    return load_table(
        CONTACTS, files, columns_mapping, wanted, timezone, timestamp_format, on_bad_rows
    )
