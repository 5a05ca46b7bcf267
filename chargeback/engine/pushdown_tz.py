"""Do the engine's zone rules equal polars' over the contacts' span? (engine/pushdown.py)

polars converts instants to local time with its own copy of the time zone
database; DuckDB uses ICU's, PostgreSQL the server's. Copies of different ages
disagree where a country changed its rules, and a contact near midnight would
then fall on another local date. So before trusting the engine's conversion,
its UTC offset is compared with polars' every 15 minutes from the first to
the last contact (the detector keeps instants within 1970-2037, at most ~2.4
million points): only the points where the offset changes come back.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import polars as pl

from chargeback.data.local_time import transitions
from chargeback.engine.pushdown_sql import Dialect, literal
from chargeback.engine.sql_aggregate import Connection

US_PER_S = 1_000_000
STEP = 900  # seconds: every UTC offset in use since 1970 is a multiple of 15 minutes


def _span(first: int, last: int) -> tuple[int, int]:
    return first - first % STEP, last - last % STEP + STEP


def _offset(tz: str) -> pl.Expr:
    """polars' UTC offset of `tz`, in seconds, at the epoch second in column `e`."""
    local = (pl.col("e") * 1_000_000).cast(pl.Datetime("us", "UTC")).dt.convert_time_zone(tz)
    return local.dt.replace_time_zone(None).cast(pl.Int64).floordiv(1_000_000).sub(pl.col("e"))


def polars_transitions(tz: str, first: int, last: int) -> list[tuple[int, int]]:
    """(epoch second, UTC offset in seconds) where polars' offset for `tz` changes."""
    start, stop = _span(first, last)
    epochs = pl.int_range(start, stop + 1, STEP, eager=True, dtype=pl.Int64)
    frame = pl.DataFrame({"e": epochs}).with_columns(_offset(tz).alias("off"))
    changed = frame.filter(pl.col("off").ne_missing(pl.col("off").shift(1)))
    return [(int(e), int(o)) for e, o in changed.iter_rows()]


def engine_transitions_sql(d: Dialect, tz: str, first: int, last: int) -> str:
    """The same list from the engine: a series of instants, their offsets, the changes."""
    start, stop = _span(first, last)
    zone = literal(tz)
    if d.pg:
        local = f"(to_timestamp(e) AT TIME ZONE {zone})"
        offset = f"CAST(extract(epoch FROM {local}) AS BIGINT) - e"
        series = f"generate_series(CAST({start} AS BIGINT), {stop}, {STEP}) AS t(e)"
    else:
        offset = f"CAST(epoch(timezone({zone}, to_timestamp(e))) AS BIGINT) - e"
        series = f"range(CAST({start} AS BIGINT), {stop + 1}, {STEP}) AS t(e)"
    offsets = f"SELECT e, {offset} AS off FROM {series}"
    lagged = f"SELECT e, off, LAG(off) OVER (ORDER BY e) AS prev FROM ({offsets}) AS g"
    return f"SELECT e, off FROM ({lagged}) AS w WHERE prev IS NULL OR prev <> off ORDER BY e"


def zone_rules_agree(
    con: Connection, d: Dialect, tz: str, first: int | None, last: int | None
) -> bool:
    """The engine's and polars' offsets for `tz` agree from `first` to `last` (epoch s)."""
    if first is None or last is None:
        return True  # no instant to convert
    rows = con.execute(engine_transitions_sql(d, tz, int(first), int(last)))
    engine = [(int(e), int(o)) for e, o in rows]
    return engine == polars_transitions(tz, int(first), int(last))


def exact_offsets(tz: str, first: int, last: int) -> list[tuple[int, int]] | None:
    """polars' offsets for `tz` from `first` to `last`: (epoch second it starts, offset).

    Why: the engine can then compute local time as instant + offset, plain integer
    arithmetic, instead of its own time zone conversion per row (DuckDB's ICU is
    the costliest step of the scan), and with polars' own rules: the very changes
    the data layer finds (chargeback.data.local_time.transitions). None when one
    falls between whole seconds.
    """
    epoch = datetime(1970, 1, 1)
    starts, values = transitions(
        epoch + timedelta(seconds=first), epoch + timedelta(seconds=last), tz
    )
    if any(s % US_PER_S for s in starts[1:]) or any(v % US_PER_S for v in values):
        return None
    return [(s // US_PER_S, v // US_PER_S) for s, v in zip(starts, values, strict=True)]


def local_from_offsets(instant_us: str, offsets: list[tuple[int, int]]) -> str:
    """Microseconds of wall-clock time: the instant's plus the offset in force then."""
    whens = " ".join(
        f"WHEN {instant_us} < {start * 1_000_000} THEN {prev * 1_000_000}"
        for (start, _), (_, prev) in zip(offsets[1:], offsets, strict=False)
    )
    last = offsets[-1][1] * 1_000_000
    shift = f"CASE {whens} ELSE {last} END" if whens else str(last)
    return f"({instant_us} + CAST({shift} AS BIGINT))"
