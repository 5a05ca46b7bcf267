"""Calendar months as 'YYYY-MM' strings: the ledger's periods.

Plain string arithmetic, so every layer (the engine, the statements, the
journal, closing) counts months the same way.
"""

from __future__ import annotations

import calendar
from datetime import date


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
