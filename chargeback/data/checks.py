"""Raw columns to typed ones, and the expressions that find bad rows.

Loading a table (chargeback.data.tables) reads every column as it comes; this
module brings each to its canonical type (numbers, tags as `|a|b|`, wall-clock
`local` time with `date` and `period`), lists the ways a row can break the
contract of its TableSpec, and turns the rows that do into messages and into
the rejected frame that quarantine writes out.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from chargeback.data.limits import (
    AFTER_LAST,
    CONTROL,
    CONTROL_IN_TEXT,
    EARLIEST,
    MAX_HANDLE_SECONDS,
    MAX_MONEY,
    MAX_NUMBER_CHARS,
    MAX_YEAR,
    MIN_YEAR,
    char_limit,
    shown,
)
from chargeback.data.local_time import local_from_utc
from chargeback.data.stamps import (
    all_aware,
    aware_utc,
    iso_text,
    local_time,
    parse_iso,
    utc_instants,
)
from chargeback.data.threads import side_by_side
from chargeback.errors import display_path

MONEY = ("revenue", "amount")  # exact: Decimal(38, 9) from the text as written
MONEY_TYPE = pl.Decimal(38, 9)
LineFor = Callable[[int, int], int | None]  # (file index, row) -> the row's line, if any


@dataclass(frozen=True)
class TableSpec:
    """What one kind of input table needs: contacts now, orders later."""

    kind: str  # "contacts" or "orders": prefixes mapping keys and messages
    required: tuple[str, ...]
    timestamp: str  # the timestamp column
    id_column: str | None  # unique within the data set, when set
    numeric: tuple[tuple[str, bool], ...]  # (column, must be >= 0)


def normalise(col: pl.Expr, dtype: pl.DataType, name: str) -> pl.Expr:
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
    if dtype.is_numeric() and name in MONEY:
        return col.alias(name)  # typed exactly in _numbers
    if dtype.is_numeric() and name == "handle_seconds":
        return col.cast(pl.Float64).alias(name)
    return col.cast(pl.String).alias(name)


def _clean_str(name: str) -> pl.Expr:
    """Strings with surrounding blanks removed; empty becomes null."""
    return pl.col(name).cast(pl.String).str.strip_chars().replace("", None)


AWARE_TEST = "_aware_stamps"  # a test of the timestamp text (stamps.AWARE_STAMP)
MANY_VALUES = ("contact_id", "customer_id", "text")  # about one value per row: no shortcut
DECIDE_ROWS = 500_000


def _already_clean(name: str) -> pl.Expr:
    """No value of a column with few values would be trimmed or blanked: then cleaning is
    the identity on every row, which its distinct values decide at a fraction of the cost."""
    distinct = pl.col(name).cast(pl.String).unique(maintain_order=True)  # read twice below
    cleaned = distinct.str.strip_chars().replace("", None)
    return cleaned.eq_missing(distinct).all()


def is_clean(distinct: pl.Series) -> bool:
    """_already_clean, on a column's distinct values found already (rows.distinct_values)."""
    return bool(distinct.to_frame().select(_already_clean(distinct.name)).item())


def _unpadded(name: str) -> pl.Expr:
    """No value of a column with a value per row is blank or would lose White_Space at
    either end: then trimming is the identity, and the column is not copied (the
    contacts' text: 150 MB at 3M rows). Lengths are compared, nothing is kept."""
    col = pl.col(name)
    return ~((col.str.strip_chars().str.len_bytes() != col.str.len_bytes()) | (col == "")).any()


def _tags_already_clean(parts: pl.Expr) -> pl.Expr:
    """Every tag is already trimmed, not empty and not null: then trimming and dropping
    tags per element is the identity, decided on the distinct tags (a third of the time),
    found once (an expression read twice in a select is worked out twice)."""
    tags = parts.list.explode(keep_nulls=False, empty_as_null=False)  # the tags, no list
    tag = pl.element()
    clean = ((tag.str.strip_chars() == tag) & (tag != "")).fill_null(False)  # null: not clean
    return tags.unique().implode().list.eval(clean).list.all()


def _clean_tests(
    raw: pl.DataFrame,
    ts: str,
    tags_separator: str,
    values: Mapping[str, Mapping[str, str]],
    distinct: Mapping[str, pl.Series],
) -> dict[str, pl.Expr]:
    """Per column that typed_columns may leave as read, the test that it is clean (a
    column whose `distinct` values are known already is decided on them instead)."""
    tests: dict[str, pl.Expr] = {}
    for name in raw.columns:
        if name in ("_file", "_row", ts) or name.startswith("_raw_") or values.get(name):
            continue
        if name in distinct:
            continue
        if name in MONEY or name == "handle_seconds":
            continue
        if name == "tags":
            tests[name] = _tags_already_clean(_tag_parts(raw, tags_separator))
        elif name in MANY_VALUES:
            if raw.schema[name] == pl.String:
                tests[name] = _unpadded(name)
        else:
            tests[name] = _already_clean(name)
    return tests


def _tag_parts(raw: pl.DataFrame, tags_separator: str) -> pl.Expr:
    """`tags` as a list: split when the export has them as text."""
    if raw.schema["tags"] == pl.String:
        return pl.col("tags").str.split(tags_separator)
    return pl.col("tags")


def _decide(frames: Sequence[pl.DataFrame], tests: dict[str, pl.Expr]) -> dict[str, bool]:
    """Each test (a boolean over a whole column) holds in every frame: one select per
    frame, so polars runs a frame's tests side by side."""
    held = dict.fromkeys(tests, True)
    if not tests:
        return held
    # a large frame a slice at a time: a test's scratch (a trimmed copy of the text, to
    # compare lengths) stays a slice's; the slices side by side
    whole = pl.concat(frames)  # a view of the parts, not a copy: fewer, larger selects
    slices = [whole.slice(at, DECIDE_ROWS) for at in range(0, whole.height, DECIDE_ROWS)]
    for row in side_by_side(lambda part: part.select(**tests).row(0, named=True), slices):
        held |= {k: False for k, v in row.items() if v is not True}
    return held


def typed_columns(
    spec: TableSpec,
    frames: Sequence[pl.DataFrame],
    tz: str,
    fmt: str | None,
    tags_separator: str = "|",
    values: Mapping[str, Mapping[str, str]] | None = None,
    *,
    span: tuple[int | None, int | None],
    distinct: Mapping[str, pl.Series] | None = None,
) -> list[list[pl.Expr]]:
    """Typing expressions in stages: each stage may use the columns made before it.

    Staging matters for speed: polars does not share a subexpression between
    columns of one select, so the normalised timestamp text is made once and
    parsed after, and `date` comes from the parsed column (`period` from `date`,
    by chargeback.data.local_time.with_periods). `values:`
    (SPEC 1) is applied here, to the trimmed text and to each tag, so every
    check, match and price after sees the mapped words. `frames` are the table's
    parts, of one schema: what is decided on the data (which columns are already
    clean) is decided part by part, so its scratch memory stays a part's, or on a
    column's `distinct` values when the caller found them. `span` is the table's
    first and last instant that gets an offset (rows.span_of).
    """
    raw = frames[0]
    values = values or {}
    ts = spec.timestamp
    distinct = distinct or {}
    tests = _clean_tests(raw, ts, tags_separator, values, distinct)
    if raw.schema[ts] == pl.String and fmt is None:
        tests[AWARE_TEST] = all_aware(ts)
    clean = _decide(frames, tests)
    clean |= {n: is_clean(v) for n, v in distinct.items() if not values.get(n)}
    first: list[pl.Expr] = []
    for name in raw.columns:
        if name in ("_file", "_row", ts) or name.startswith("_raw_"):
            continue
        if name == "tags":
            parts = _tag_parts(raw, tags_separator)
            tag = pl.element().str.strip_chars()
            kept = tag.filter(tag != "")
            if values.get("tags"):
                kept = kept.replace(dict(values["tags"]))
                parts = parts.list.eval(kept)
            elif not clean.get(name, False):
                parts = parts.list.eval(kept)
            joined = pl.concat_str(pl.lit("|"), parts.list.join("|"), pl.lit("|"))
            first.append(pl.when(parts.list.len() > 0).then(joined).otherwise(None).alias("tags"))
        elif name in MONEY or name == "handle_seconds":
            if raw.schema[name] == pl.String:  # trimmed once, parsed in the next stage
                first.append(_clean_str(name).alias(f"_txt_{name}"))
            else:
                first += _numbers(name, raw.schema[name])
        elif values.get(name):
            first.append(_clean_str(name).replace(dict(values[name])).alias(name))
        elif clean.get(name, False) and name not in MANY_VALUES:
            first.append(pl.col(name).cast(pl.String).alias(name))
        elif clean.get(name, False):  # a column with a value per row, unpadded
            first.append(pl.col(name))
        else:
            first.append(_clean_str(name).alias(name))
    dtype = raw.schema[ts]
    if clean.get(AWARE_TEST, False):  # one form throughout: one parse, the zone's offsets
        first.append(aware_utc(ts).alias("_utc"))  # a column: an expression is run per use
        local = local_from_utc(pl.col("_utc"), span[0], span[1], tz)
    elif dtype == pl.String and fmt is None:
        first.append(iso_text(pl.col(ts)).alias("_ts_text"))
        local = parse_iso(pl.col("_ts_text"), tz)
    elif (utc := utc_instants(dtype, ts)) is not None:
        first.append(utc.alias("_utc"))
        local = local_from_utc(pl.col("_utc"), span[0], span[1], tz)
    else:
        local = local_time(dtype, ts, tz, fmt)
    second = [local.alias("local")]
    for name in raw.columns:
        if (name in MONEY or name == "handle_seconds") and raw.schema[name] == pl.String:
            second += _numbers(name, pl.String())
    # `period` follows from `date`, once per distinct date (local_time.with_periods)
    return [first, second, [pl.col("local").dt.date().alias("date")]]


def _numbers(name: str, dtype: pl.DataType) -> list[pl.Expr]:
    """handle_seconds as a float; money as a float (for its checks) and an exact decimal.

    Text comes trimmed in `_txt_<name>`. No thousands separators: "1,5" could be
    a decimal comma; better refused than misread. Money is never taken through a
    binary float: text is read as a decimal as written, and a float column
    (Parquet, NDJSON) through its shortest text, which is what the export meant
    (2.675, not 2.67499999999999982236431605997495353221893310546875).
    """
    text = dtype == pl.String
    col = pl.col(f"_txt_{name}" if text else name)
    number = col.cast(pl.Float64, strict=False)
    if name not in MONEY:
        return [number.alias(name)]
    if text:
        exact = col.cast(MONEY_TYPE, strict=False)
    elif dtype.is_float():
        exact = col.cast(pl.String).cast(MONEY_TYPE, strict=False)
    else:
        exact = col.cast(MONEY_TYPE, strict=False)
    return [number.alias(f"_num_{name}"), exact.alias(name)]


def row_checks(spec: TableSpec, raw: pl.DataFrame) -> list[tuple[pl.Expr, str, str]]:
    """(condition on the typed frame, column, message) for each way a row can be bad.

    The first condition that holds names the row's problem. Every value is held
    to the limits in chargeback.data.limits.
    """
    checks: list[tuple[pl.Expr, str, str]] = []
    ts = spec.timestamp
    numeric = {n for n, _ in spec.numeric}
    for name in spec.required:
        if name in numeric and f"_raw_{name}" in raw.columns:
            checks.append((~_given(name, raw), name, "missing value (required)"))
        elif name != ts:
            checks.append((pl.col(name).is_null(), name, "missing value (required)"))
    checks += _text_checks(spec, raw)
    raw_ts = pl.col(f"_raw_{ts}")
    if raw.schema[ts] == pl.String:
        raw_ts = _clean_str(f"_raw_{ts}")
    checks.append((raw_ts.is_null(), ts, "missing value (required)"))
    checks.append((pl.col("local").is_null(), ts, "unparsable timestamp"))
    local = pl.col("local")
    checks.append(
        ((local < EARLIEST) | (local >= AFTER_LAST), ts, f"outside the years {MIN_YEAR}-{MAX_YEAR}")
    )
    for name, non_negative in spec.numeric:
        if name in raw.columns:
            checks += _number_checks(name, non_negative, raw)
    if spec.id_column:
        later = ~pl.col(spec.id_column).is_first_distinct()
        checks.append((pl.col(spec.id_column).is_not_null() & later, spec.id_column, "duplicate"))
    return checks


def _text_checks(spec: TableSpec, raw: pl.DataFrame) -> list[tuple[pl.Expr, str, str]]:
    """No control characters (tab aside; line breaks in `text`), no overlong value."""
    numeric = {n for n, _ in spec.numeric}
    checks: list[tuple[pl.Expr, str, str]] = []
    for name in raw.columns:
        if name.startswith("_") or name == spec.timestamp or name in numeric:
            continue
        col = pl.col(name)
        control = CONTROL_IN_TEXT if name == "text" else CONTROL
        checks.append((col.str.contains_any(control), name, "holds a control character"))
        limit = char_limit(name)
        checks.append((col.str.len_chars() > limit, name, f"longer than {limit:,} characters"))
    return checks


def _given(name: str, raw: pl.DataFrame) -> pl.Expr:
    """A value was written (text: not blank); typed columns need no text pass."""
    if raw.schema[name] == pl.String:
        return pl.col(f"_txt_{name}").is_not_null()
    return pl.col(f"_raw_{name}").is_not_null()


def _number_checks(
    name: str, non_negative: bool, raw: pl.DataFrame
) -> list[tuple[pl.Expr, str, str]]:
    given = _given(name, raw)
    num = pl.col(f"_num_{name}" if name in MONEY else name)
    checks = [
        (num.is_null() & given, name, "not a number"),
        (~num.is_finite(), name, "not a finite number"),
    ]
    if raw.schema[name] == pl.String:
        long = pl.col(f"_txt_{name}").str.len_chars() > MAX_NUMBER_CHARS
        checks.append((long, name, f"longer than {MAX_NUMBER_CHARS} characters for a number"))
    if non_negative:
        checks.append((num < 0, name, "must not be negative"))
    if name == "handle_seconds":
        over = f"over {MAX_HANDLE_SECONDS:,} seconds (30 days), the most one contact may take"
        checks.append((num > MAX_HANDLE_SECONDS, name, over))
    if name in MONEY:
        one = {"revenue": "a contact's revenue", "amount": "an order's amount"}.get(name, name)
        beyond = f"{one} must lie between -{MAX_MONEY:,} and {MAX_MONEY:,} (exclusive)"
        checks.append((num.abs() >= MAX_MONEY, name, beyond))
        checks.append((pl.col(name).is_null() & given, name, "not a number"))
    return checks


def describe_bad(
    bad: pl.DataFrame, whole: pl.DataFrame | None, files: list[Path], line_for: LineFor
) -> list[tuple[int, int, str, str]]:
    """(file index, row, column, message) for each bad row, quoting the offending value;
    `whole` is every row, typed, where a duplicate's first row is looked up."""
    firsts: dict[str, tuple[int, int]] = {}
    dup = bad.filter(pl.col("_bad").str.ends_with("\x1fduplicate"))
    if dup.height and whole is not None:
        id_col = str(dup["_bad"][0]).split("\x1f")[0]
        first = (
            whole.with_columns(pl.col(id_col).alias("_id"))
            .group_by("_id", maintain_order=True)
            .agg(pl.col("_file").first(), pl.col("_row").first())
        )
        firsts = {str(k): (int(f), int(r)) for k, f, r in first.iter_rows()}
    typed = ("local", "date", "period")
    value_cols = [
        pl.col(c).cast(pl.String)  # as text: a datetime past year 9999 has no Python value
        for c in bad.columns
        if c.startswith("_raw_") or not (c.startswith("_") or c in typed)
    ]
    out: list[tuple[int, int, str, str]] = []
    for row in bad.select("_file", "_row", "_bad", *value_cols).iter_rows(named=True):
        column, message = str(row["_bad"]).split("\x1f", 1)
        value = row.get(f"_raw_{column}", row.get(column)) if column else None
        if message == "duplicate":
            f, r = firsts.get(str(value), (row["_file"], 0))
            line = line_for(f, r)
            where = f"line {line}" if line is not None else f"row {r}"
            if f != row["_file"]:
                where = f"{display_path(files[f])} {where}"
            message = f"duplicate {column} '{shown(value)}' (first at {where})"
        elif value is not None and message != "missing value (required)":
            message = f"{message}: '{shown(value)}'"
        out.append((int(row["_file"]), int(row["_row"]), column, message))
    return out


def rejected_frame(
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
