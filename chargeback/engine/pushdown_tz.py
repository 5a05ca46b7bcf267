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

import polars as pl

from chargeback.engine.pushdown_sql import Dialect, literal
from chargeback.engine.sql_aggregate import Connection

STEP = 900  # seconds: every UTC offset in use since 1970 is a multiple of 15 minutes


def _span(first: int, last: int) -> tuple[int, int]:
    return first - first % STEP, last - last % STEP + STEP


def polars_transitions(tz: str, first: int, last: int) -> list[tuple[int, int]]:
    """(epoch second, UTC offset in seconds) where polars' offset for `tz` changes."""
    start, stop = _span(first, last)
    epochs = pl.int_range(start, stop + 1, STEP, eager=True, dtype=pl.Int64)
    frame = pl.DataFrame({"e": epochs}).with_columns(
        (pl.col("e") * 1_000_000)
        .cast(pl.Datetime("us", "UTC"))
        .dt.convert_time_zone(tz)
        .dt.replace_time_zone(None)
        .cast(pl.Int64)
        .floordiv(1_000_000)
        .sub(pl.col("e"))
        .alias("off")
    )
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
