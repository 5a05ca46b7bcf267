"""Date and time layouts a setting may give, tried when the workspace loads.

`timestamp_format` is run by polars (chrono's strftime) on every contact, and
polars does not refuse a broken layout: every timestamp would simply fail to
parse, and the run would blame the data. So the layout is tried here on one
known moment: it must format it, and parsing that text back must give the same
calendar day. A layout that cannot (an unknown %-code, no year, month or day)
is refused at its line in chargeback.yaml. The journal's `date_format` is run
by Python's strftime, and is tried the same way.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from chargeback.workspace.fields import BadValue, as_text
from chargeback.workspace.limits import shown

_SAMPLE = datetime(2026, 3, 14, 13, 45, 30, 123456)
_TIME_CODES = ("%H", "%I", "%T", "%R", "%c", "%s")  # as chargeback.data reads the layout
_ZONE_CODES = ("%z", "%:z", "%#z", "%::z", "%:::z")


def as_timestamp_format(value: Any) -> str:
    """A chrono strftime layout polars can both write and read back to the same day."""
    fmt = as_text(value, 200)
    problem = timestamp_format_problem(fmt)
    if problem:
        raise BadValue(f"'{shown(fmt)}' {problem}")
    return fmt


def timestamp_format_problem(fmt: str) -> str | None:
    """Why polars cannot read timestamps in this layout (None when it can)."""
    import polars as pl

    if "%" not in fmt:
        return "has no %-codes: write the layout of the timestamps, such as %d/%m/%Y %H:%M"
    zoned = any(code in fmt for code in _ZONE_CODES)
    # %#z only parses; write the same offset with %:z to have a text to read back
    writable = fmt.replace("%#z", "%:z")
    try:
        moment = pl.Series([_SAMPLE])
        if zoned:
            moment = moment.dt.replace_time_zone("UTC")
        text = moment.dt.strftime(writable)
        if any(code in fmt for code in _TIME_CODES):
            back = text.str.to_datetime(fmt, strict=False, time_unit="us").dt.date()
        else:
            back = text.str.to_date(fmt, strict=False)
        day = back.item()
    except (pl.exceptions.PolarsError, pl.exceptions.PanicException, ValueError):
        return "is not a strftime layout polars can read (unknown or incomplete %-code)"
    if day != _SAMPLE.date():
        return (
            "cannot tell a day: it must hold the year, month and day "
            "(such as %Y-%m-%d %H:%M, or %d-%b-%y)"
        )
    return None


def as_date_format(value: Any) -> str:
    """The journal's date layout (Python strftime): it must write a day that reads back."""
    fmt = as_text(value, 200)
    try:
        written = date(2026, 3, 14).strftime(fmt)
    except (ValueError, UnicodeError):
        raise BadValue(f"'{shown(fmt)}' is not a strftime layout") from None
    if "%" not in fmt or not written.strip():
        raise BadValue(f"'{shown(fmt)}' must hold %-codes for the date, such as %Y-%m-%d")
    return fmt
