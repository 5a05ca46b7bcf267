"""Local time from a zone's transitions and months from distinct dates: each equal to
the per-row polars expression it replaces."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chargeback.data.local_time import (
    MAX_SPAN,
    WINDOW,
    local_from_utc,
    transitions,
    with_periods,
)

ZONES = [
    "America/New_York",
    "Europe/London",
    "Europe/Dublin",  # negative DST in the tz database
    "Australia/Lord_Howe",  # 30-minute DST
    "Asia/Kathmandu",  # +05:45
    "Pacific/Chatham",  # +12:45 / +13:45
    "America/St_Johns",
    "Africa/Casablanca",  # DST suspended for Ramadan, several changes a year
    "Antarctica/Troll",  # a 2-hour DST
    "Pacific/Apia",  # skipped a whole day in 2011
    "Asia/Kolkata",
    "UTC",
]


def per_row(instants: pl.Series, tz: str) -> pl.Series:
    """The expression local_from_utc replaces."""
    return instants.dt.replace_time_zone("UTC").dt.convert_time_zone(tz).dt.replace_time_zone(None)


def fast(instants: pl.Series, tz: str) -> pl.Series:
    frame = instants.to_frame("t")
    micros = pl.col("t").cast(pl.Int64)
    micros = micros.filter(micros.is_between(*WINDOW))  # as rows.span_of
    first, last = frame.select(micros.min(), micros.max().alias("b")).row(0)
    return frame.select(local_from_utc(pl.col("t"), first, last, tz).alias("t")).to_series()


def spread(start: datetime, days: int, n: int, seed: int) -> pl.Series:
    rng = random.Random(seed)
    micros = [rng.randrange(days * 86_400 * 1_000_000) for _ in range(n)]
    stamps = [start + timedelta(microseconds=m) for m in micros]
    return pl.Series("t", stamps, dtype=pl.Datetime("us"))


@pytest.mark.parametrize("tz", ZONES)
@pytest.mark.parametrize(
    "start, days",
    [
        (datetime(2024, 1, 1), 3 * 366),
        (datetime(1900, 1, 1), 20 * 366),  # local mean time and early offsets
        (datetime(1969, 6, 1), 366),  # either side of the epoch
        (datetime(2036, 1, 1), 5 * 366),  # past 2038: rules, not a table
        (datetime(2011, 12, 25), 14),  # Apia's lost day
    ],
)
def test_local_time_equals_polars_per_row(tz: str, start: datetime, days: int) -> None:
    instants = spread(start, days, 20_000, seed=days)
    assert fast(instants, tz).equals(per_row(instants, tz))


@pytest.mark.parametrize("tz", ["America/New_York", "Europe/London", "Australia/Lord_Howe"])
def test_every_instant_next_to_a_transition(tz: str) -> None:
    """Each microsecond either side of every change in 2025-2026 is converted as polars does."""
    starts, _ = transitions(datetime(2025, 1, 1), datetime(2026, 12, 31), tz)
    assert len(starts) >= 5  # the span's changes were all found
    near = [s + d for s in starts[1:] for d in range(-3, 4)]
    instants = pl.Series("t", near, dtype=pl.Int64).cast(pl.Datetime("us"))
    assert fast(instants, tz).equals(per_row(instants, tz))


@settings(max_examples=60, deadline=None)
@given(
    tz=st.sampled_from(ZONES),
    micros=st.lists(
        st.integers(
            int((datetime(1950, 1, 1) - datetime(1970, 1, 1)).total_seconds() * 1e6),
            int((datetime(2080, 1, 1) - datetime(1970, 1, 1)).total_seconds() * 1e6),
        ),
        min_size=1,
        max_size=40,
    ),
    nulls=st.booleans(),
)
def test_any_instants(tz: str, micros: list[int], nulls: bool) -> None:
    values: list[int | None] = [*micros, None] if nulls else list(micros)
    instants = pl.Series("t", values, dtype=pl.Int64).cast(pl.Datetime("us"))
    assert fast(instants, tz).equals(per_row(instants, tz))


def test_instants_far_outside_the_years_keep_their_utc_time() -> None:
    """Rows outside 1900-2199 are refused whatever their offset; they keep their UTC
    time, the calendar's last minutes do not overflow, and the rest are exact."""
    stamps = [datetime(9999, 12, 31, 23, 55), datetime(1, 1, 1), datetime(2026, 7, 1, 12)]
    instants = pl.Series("t", stamps, dtype=pl.Datetime("us"))
    local = fast(instants, "America/New_York").to_list()
    assert local == [stamps[0], stamps[1], datetime(2026, 7, 1, 8)]
    july = 1_782_907_200_000_000  # 2026-07-01 12:00 UTC
    extreme = pl.Series("t", [2**62, -(2**62), july], dtype=pl.Int64).cast(pl.Datetime("us"))
    got = fast(extreme, "Asia/Tokyo").to_physical().to_list()
    assert got == [2**62, -(2**62), july + 9 * 3_600_000_000]


def test_a_span_wider_than_the_grid_is_converted_per_row() -> None:
    instants = pl.Series("t", [datetime(1901, 1, 1), datetime(2190, 1, 1)], dtype=pl.Datetime("us"))
    assert instants[1] - instants[0] > MAX_SPAN
    assert fast(instants, "Europe/Paris").equals(per_row(instants, "Europe/Paris"))


def test_periods_from_distinct_dates() -> None:
    dates = pl.Series(
        "date",
        [
            datetime(2026, 1, 31).date(),
            None,
            datetime(1900, 12, 1).date(),
            datetime(2199, 12, 31).date(),
        ],
    )
    frame = with_periods(dates.to_frame())
    assert frame.get_column("period").to_list() == ["2026-01", None, "1900-12", "2199-12"]
