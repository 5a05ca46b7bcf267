"""Timestamps as they come (text, typed columns) to wall-clock time in the workspace's zone.

SPEC 2 reads ISO 8601 with an offset, naive in `timezone`, or a bare date, and a
`timestamp_format` when one is set. The general reading of text brings every
variant to one shape and tries each form on every row. Exports almost always
write one form throughout, most often the full stamp with its offset
(`2026-03-01T09:30:00.000000+0000`): when every stamp of a table has exactly that
shape (`AWARE_STAMP`, decided on the whole table before typing), the rows are
parsed once and the zone's offsets added from its transitions
(chargeback.data.local_time), which gives the same local times at half the cost
(tests/test_stamps.py holds the two readings to each other).
"""

from __future__ import annotations

from datetime import datetime, timedelta

import polars as pl

from chargeback.data.limits import MAX_YEAR, MIN_YEAR, shown

ISO_AWARE = "%Y-%m-%dT%H:%M:%S%.f%#z"
# Shapes on which the general reading is the aware parse alone: nothing to trim, a `T`,
# seconds, and an offset (so neither the naive nor the date form can read it). `Z` is
# what the general reading turns into +00:00 first, and the aware parse reads as UTC.
AWARE_STAMP = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?"
    r"([+-][0-9]{2}(:?[0-9]{2})?|Z)$"
)
WALL = "%Y-%m-%dT%H:%M:%S"
PAD = timedelta(days=2)  # more than any offset the aware parse accepts (under 24 hours)
EPOCH = datetime(1970, 1, 1)


def utc_instants(dtype: pl.DataType, name: str) -> pl.Expr | None:
    """Instants (Parquet, a database) as naive UTC microseconds, when local time may come
    from the zone's transitions rather than per row. Nanoseconds stay per row: truncating
    to microseconds before or after adding an offset could differ."""
    if not isinstance(dtype, pl.Datetime) or dtype.time_zone is None or dtype.time_unit == "ns":
        return None
    utc = pl.col(name).dt.convert_time_zone("UTC").dt.replace_time_zone(None)
    return utc.dt.cast_time_unit("us")


def all_aware(name: str) -> pl.Expr:
    """Every stamp given has the AWARE_STAMP shape (nulls aside): a boolean over the column."""
    return pl.col(name).str.contains(AWARE_STAMP).all()


def aware_utc(name: str) -> pl.Expr:
    """AWARE_STAMP text as naive UTC microseconds, by the general reading's own parse."""
    parsed = pl.col(name).str.to_datetime(ISO_AWARE, strict=False, time_unit="us")
    return parsed.dt.replace_time_zone(None)


def aware_span(low: str | None, high: str | None) -> tuple[int | None, int | None]:
    """Microseconds sure to hold every instant of AWARE_STAMP texts that sort between
    `low` and `high`: fixed-width digits sort as their wall-clock times do, and the
    offset moves an instant less than a day. (None, None) when there is no such span."""
    if low is None or high is None:
        return None, None
    try:
        first = datetime.strptime(low[:19], WALL) - PAD
        last = datetime.strptime(high[:19], WALL) + PAD
    except (ValueError, OverflowError):  # not the shape, or at the calendar's ends
        return None, None
    unit = timedelta(microseconds=1)
    return (first - EPOCH) // unit, (last - EPOCH) // unit


def local_time(dtype: pl.DataType, name: str, tz: str, fmt: str | None) -> pl.Expr:
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
        return parse_iso(iso_text(text), tz)
    if not any(code in fmt for code in ("%H", "%I", "%T", "%R", "%c", "%s")):
        return text.str.to_date(fmt, strict=False).cast(pl.Datetime("us"))
    parsed = text.str.to_datetime(fmt, strict=False, time_unit="us")
    if "%z" in fmt or "%#z" in fmt or "%:z" in fmt:
        parsed = parsed.dt.convert_time_zone(tz).dt.replace_time_zone(None)
    return parsed


def reads_as_timestamps(texts: list[str], fmt: str | None) -> int:
    """How many of these texts the loader reads as timestamps in layout `fmt` (None: ISO).

    The very expression the rows go through, so `init --from-export` suggests
    only a layout the run will read.
    """
    frame = pl.DataFrame({"t": texts}, schema={"t": pl.String})
    try:
        parsed = frame.select(local_time(pl.String(), "t", "UTC", fmt).alias("t"))
        # in the years the rows are held to: %Y reads "26" as the year 26, a bad row
        good = parsed.filter(pl.col("t").dt.year().is_between(MIN_YEAR, MAX_YEAR))
    except (pl.exceptions.PolarsError, pl.exceptions.PanicException, ValueError):
        return 0
    return good.height


def probe_format(ts: str, tz: str, fmt: str | None) -> str | None:
    """Why the timestamp parsing cannot run at all (a format polars refuses), or None.

    The very expression the rows go through is tried on one made-up value, so a
    `timestamp_format` that polars rejects stops the run with a message instead
    of failing half-way through typing the rows.
    """
    if fmt is None:
        return None
    sample = pl.DataFrame({ts: ["2026-03-01 09:30:00"]})
    try:
        sample.select(local_time(pl.String(), ts, tz, fmt))
    except (pl.exceptions.PolarsError, pl.exceptions.PanicException, ValueError) as exc:
        lines = str(exc).strip().splitlines()
        why = shown(lines[0], 200) if lines else type(exc).__name__
        return f"timestamp_format '{shown(fmt)}' (chargeback.yaml) cannot be used: {why}"
    return None


def iso_text(text: pl.Expr) -> pl.Expr:
    """ISO 8601 variants brought to one shape: `T` separator, seconds, `+00:00` for Z."""
    return (
        text.cast(pl.String)
        .str.strip_chars()
        .str.replace(r"^(\d{4}-\d{2}-\d{2})[ T]", "${1}T")
        .str.replace(r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2})([^:\d]|$)", "${1}:00${2}")
        .str.replace(r"[zZ]$", "+00:00")
    )


def parse_iso(iso: pl.Expr, tz: str) -> pl.Expr:
    """Aware stamps are converted to `tz`; naive ones and bare dates are already local."""
    aware = (
        iso.str.to_datetime(ISO_AWARE, strict=False, time_unit="us")
        .dt.convert_time_zone(tz)
        .dt.replace_time_zone(None)
    )
    naive = iso.str.to_datetime("%Y-%m-%dT%H:%M:%S%.f", strict=False, time_unit="us")
    day = iso.str.to_date("%Y-%m-%d", strict=False).cast(pl.Datetime("us"))
    return pl.coalesce(aware, naive, day)
