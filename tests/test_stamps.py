"""Timestamp text of one form throughout, read by one parse and the zone's transitions,
gives what the general reading of ISO 8601 gives, row for row."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chargeback.data import checks, stamps
from chargeback.data.limits import AFTER_LAST, EARLIEST
from chargeback.data.local_time import local_from_utc
from chargeback.data.tables import CONTACTS, load_table

ZONES = ["America/New_York", "Europe/Dublin", "Australia/Lord_Howe", "Asia/Kathmandu", "UTC"]

two = st.integers(0, 99).map(lambda n: f"{n:02d}")
year = st.sampled_from(["2026", "2025", "1970", "1899", "1900", "2199", "2200", "0000", "9999"])
fraction = st.sampled_from(["", ".5", ".000000", ".123456789", ".1234567891", "."])
offset = st.one_of(
    st.sampled_from(["Z", "z", "", "+00:00", "-0000", "+05:45", "-03:30", "+24:00", "+23:59"]),
    st.tuples(st.sampled_from("+-"), two, st.sampled_from(["", ":"]), two).map("".join),
    st.tuples(st.sampled_from("+-"), two).map("".join),
)
stamp = st.tuples(
    year,
    st.just("-"),
    st.sampled_from(["01", "02", "03", "10", "11", "12", "13", "00", "1"]),
    st.just("-"),
    st.sampled_from(["01", "09", "28", "29", "30", "31", "32", "1"]),
    st.sampled_from(["T", " ", "t", ""]),
    two,
    st.sampled_from([":", ""]),
    two,
    st.sampled_from([":", ""]),
    two,
    fraction,
    offset,
).map("".join)
one_form_text = st.tuples(  # the shape stamps.AWARE_STAMP admits, valid or not as a date
    year,
    st.sampled_from(["-01-", "-02-", "-03-", "-10-", "-11-", "-12-", "-13-", "-00-"]),
    st.sampled_from(["01", "09", "25", "26", "28", "29", "30", "31", "32"]),
    st.just("T"),
    two,
    st.just(":"),
    two,
    st.just(":"),
    two,
    st.sampled_from(["", ".5", ".000000", ".123456789", ".1234567891"]),
    st.one_of(
        st.sampled_from(["Z", "+00:00", "-0000", "+05:45", "-03:30", "+24:00", "+23:59"]),
        st.tuples(st.sampled_from("+-"), two, st.sampled_from(["", ":"]), two).map("".join),
        st.tuples(st.sampled_from("+-"), two).map("".join),
    ),
).map("".join)
text = st.one_of(
    stamp,
    stamp.map(lambda s: f" {s}"),  # padding: not the one form
    stamp.map(lambda s: s.replace("2", "\u0662")),  # an Arabic-Indic digit
    st.sampled_from(["2026-03-29", "2026-03-29T01:30:00", "", "not a time"]),
)


def general(column: pl.Series, tz: str) -> pl.Series:
    """The general reading every text stamp went through."""
    frame = column.to_frame("t")
    return frame.select(stamps.local_time(pl.String(), "t", tz, None).alias("t")).to_series()


def one_form(column: pl.Series, tz: str) -> pl.Series:
    """The one-form reading, as the loader makes it (its span from the least and greatest text)."""
    frame = column.to_frame("t")
    span = stamps.aware_span(column.min(), column.max())  # type: ignore[arg-type]
    return frame.select(local_from_utc(stamps.aware_utc("t"), *span, tz).alias("t")).to_series()


def micros(at: datetime) -> int:
    return (at - datetime(1970, 1, 1)) // timedelta(microseconds=1)


def same_row(a: object, b: object) -> bool:
    """Equal, or both refused: unparsable, or outside the years (whose local time is the
    UTC time on the transitions' reading, as for Parquet: chargeback.data.local_time)."""
    if a is None or b is None:
        return a is b

    def outside(x: object) -> bool:
        return not (micros(EARLIEST) <= x < micros(AFTER_LAST))  # type: ignore[operator]

    return a == b or (outside(a) and outside(b))


@settings(max_examples=500, deadline=None)
@given(
    texts=st.lists(st.one_of(one_form_text, st.none()), min_size=1, max_size=12),
    tz=st.sampled_from(ZONES),
)
def test_one_form_reads_as_the_general_reading(texts: list[str | None], tz: str) -> None:
    column = pl.Series("t", texts, dtype=pl.String)
    assert column.to_frame().select(stamps.all_aware("t")).item()
    for a, b in zip(
        one_form(column, tz).cast(pl.Int64).to_list(),
        general(column, tz).cast(pl.Int64).to_list(),
        strict=True,
    ):
        assert same_row(a, b)


@settings(max_examples=400, deadline=None)
@given(text=st.one_of(one_form_text, text))
def test_the_one_form_admits_no_text_the_general_reading_would_change(text: str) -> None:
    """Any text the one form admits is read by the aware parse alone in the general reading:
    nothing to trim, no seconds to add, no naive or date form that reads it."""
    frame = pl.Series("t", [text], dtype=pl.String).to_frame()
    if not frame.select(stamps.all_aware("t")).item():
        return
    iso = frame.select(stamps.iso_text(pl.col("t"))).item()
    assert iso == (text[:-1] + "+00:00" if text.endswith("Z") else text)
    naive = pl.col("t").str.to_datetime("%Y-%m-%dT%H:%M:%S%.f", strict=False)
    day = pl.col("t").str.to_date("%Y-%m-%d", strict=False)
    assert frame.select(naive.is_null() & day.is_null()).item()


@settings(max_examples=200, deadline=None)
@given(text=one_form_text)
def test_a_stamp_of_the_one_form_has_a_span(text: str) -> None:
    """A stamp the one form admits and the parse reads lies inside its own span."""
    column = pl.Series("t", [text], dtype=pl.String)
    frame = column.to_frame()
    if not frame.select(stamps.all_aware("t")).item():
        return
    micros = frame.select(stamps.aware_utc("t").cast(pl.Int64)).item()
    first, last = stamps.aware_span(text, text)
    if micros is not None and first is not None and last is not None:
        assert first <= micros <= last


BODY = "c1,{},phone\nc2,{},chat\nc3,{},email\n"


@pytest.mark.parametrize(
    "stamps_in, form",
    [
        (("2026-03-29T00:30:00Z", "2026-03-29T01:30:00+00:00", "2026-10-25T01:30:00.5+0100"), True),
        (("2026-03-29T00:30:00Z", "2026-03-29 01:30:00", "2026-03-29"), False),
    ],
)
def test_the_loader_takes_the_one_form_only_when_every_stamp_has_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stamps_in: tuple[str, ...], form: bool
) -> None:
    path = tmp_path / "contacts.csv"
    path.write_text("contact_id,started_at,channel\n" + BODY.format(*stamps_in))
    taken: list[bool] = []
    decide = checks._decide

    def watch(frames, tests):  # type: ignore[no-untyped-def]
        held = decide(frames, tests)
        taken.append(held.get(checks.AWARE_TEST, False))
        return held

    def local() -> list[object]:
        loaded = load_table(CONTACTS, [path], {}, set(), "Europe/Dublin", None, "stop")
        return loaded.frame.sort("contact_id").get_column("local").to_list()

    monkeypatch.setattr(checks, "_decide", watch)
    fast = local()
    assert taken == [form]
    monkeypatch.setattr(stamps, "AWARE_STAMP", "^$never")
    assert local() == fast  # the general reading, on the same rows
