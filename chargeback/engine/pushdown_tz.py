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


def _offsets(tz: str, epochs: list[int]) -> list[int]:
    """polars' UTC offset of `tz` at each epoch second."""
    frame = pl.DataFrame({"e": epochs}, schema={"e": pl.Int64}).with_columns(
        _offset(tz).alias("off")
    )
    return [int(o) for o in frame.get_column("off")]


def exact_offsets(tz: str, first: int, last: int) -> list[tuple[int, int]] | None:
    """polars' offsets for `tz` from `first` to `last`: (epoch second it starts, offset).

    Why: the engine can then compute local time as instant + offset, plain integer
    arithmetic, instead of its own time zone conversion per row (DuckDB's ICU is
    the costliest step of the scan), and with polars' own rules. Zone rules change
    at whole seconds, so each change found on the 15-minute grid is narrowed to
    its second. None when a 15-minute step holds more than one change.
    """
    coarse = polars_transitions(tz, first, last)
    if not coarse:
        return None
    out = [(coarse[0][0], coarse[0][1])]
    for e, off in coarse[1:]:
        seconds = list(range(e - STEP + 1, e + 1))
        values = _offsets(tz, seconds)
        changed = [s for s, v in zip(seconds, values, strict=True) if v == off]
        start = changed[0]
        if changed != list(range(start, e + 1)) or any(
            v != out[-1][1] for s, v in zip(seconds, values, strict=True) if s < start
        ):
            return None
        out.append((start, off))
    return out


def local_from_offsets(instant_us: str, offsets: list[tuple[int, int]]) -> str:
    """Microseconds of wall-clock time: the instant's plus the offset in force then."""
    whens = " ".join(
        f"WHEN {instant_us} < {start * 1_000_000} THEN {prev * 1_000_000}"
        for (start, _), (_, prev) in zip(offsets[1:], offsets, strict=False)
    )
    last = offsets[-1][1] * 1_000_000
    shift = f"CASE {whens} ELSE {last} END" if whens else str(last)
    return f"({instant_us} + CAST({shift} AS BIGINT))"
