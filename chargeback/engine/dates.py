"""Calendar dates: months as 'YYYY-MM' strings (the ledger's periods) and rule windows.

Plain date arithmetic with no engine in it, so every engine, the statements,
the journal and closing count months and windows the same way.
"""

from __future__ import annotations

import calendar
import re
from datetime import date, timedelta

from chargeback.workspace.model import Decision, Rule

# A period as every part of the product names one: YYYY-MM in ASCII digits, matched
# whole (fullmatch), so "2026-03\n" or full-width digits never pass for a month.
MONTH = re.compile(r"[12][0-9]{3}-(0[1-9]|1[0-2])")


def month_bounds(period: str) -> tuple[date, date]:
    """The first and last calendar day of a period."""
    year, month = int(period[:4]), int(period[5:7])
    return date(year, month, 1), date(year, month, calendar.monthrange(year, month)[1])


def shift_month(period: str, n: int) -> str:
    """'2026-01' shifted by n months: shift_month('2026-01', -1) == '2025-12'."""
    index = int(period[:4]) * 12 + int(period[5:7]) - 1 + n
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def trailing_months(period: str, n: int) -> list[str]:
    """The n months ending with `period`, oldest first."""
    return [shift_month(period, k) for k in range(1 - n, 1)]


def month_range(first: str, last: str) -> list[str]:
    """Every month from first to last, both included."""
    year, month = int(first[:4]), int(first[5:7])
    out = []
    while f"{year:04d}-{month:02d}" <= last:
        out.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return out


def shift_day(day: date, days: int) -> date:
    """day + days, pinned to the calendar's ends (a 3,000,000-day window is open-ended)."""
    try:
        return day + timedelta(days=days)
    except OverflowError:
        return date.max if days > 0 else date.min


def window_bounds(rule: Rule, decision: Decision) -> tuple[date, date | None]:
    """[first, last] local dates of the rule's window; last None = open-ended."""
    first = shift_day(decision.effective, rule.start_offset_days)
    last = shift_day(first, rule.days - 1) if rule.days is not None else None
    if decision.ends is not None:
        last = decision.ends if last is None else min(last, decision.ends)
    return first, last


def days_in_window(first: date, last: date | None, period: str) -> int:
    """D: days of the period inside a window [first, last]."""
    start, end = month_bounds(period)
    lo = max(start, first)
    hi = end if last is None else min(end, last)
    return max(0, (hi - lo).days + 1)
