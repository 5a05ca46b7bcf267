"""The summary's 12-month trend, read from the book (SPEC 5).

A month the book holds is drawn as the book has it: closed months frozen,
months an earlier run reported as it reported them, so a one-month run's
summary still shows the year, and the bars are the figures finance was sent.
Only a month the book lacks is computed from the data (a quiet month shows 0).
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from chargeback.documents.book import Month
from chargeback.documents.charts import PALETTE, REST, short_month, stacked_bars
from chargeback.engine.attribute import Attribution
from chargeback.engine.dates import trailing_months
from chargeback.engine.ledger import UNATTRIBUTED, build_ledger
from chargeback.workspace.model import Workspace

ZERO = Decimal("0.00")


def trend(
    ws: Workspace, attribution: Attribution, book: Mapping[str, Month], period: str
) -> dict[str, Any]:
    """Monthly cost by department, the 12 months to `period` from the first on record."""
    first = min([*attribution.periods, *book, period])
    months = [m for m in trailing_months(period, 12) if m >= first]
    costs = month_costs(ws, attribution, book, months)
    known = [d.id for d in ws.departments]
    gone = {d for by_dept, _ in costs.values() for d in by_dept} - {*known, UNATTRIBUTED}
    names = [*known, *sorted(gone), UNATTRIBUTED]  # a department since removed keeps its bars
    series: list[dict[str, Any]] = []
    for index, dept_id in enumerate(names):
        values = [costs[m][0].get(dept_id, ZERO) for m in months]
        if any(values):
            label = dept_id
            if dept_id == UNATTRIBUTED:
                label = "unattributed"
            elif dept_id in known:
                label = ws.department(dept_id).name
            series.append(
                {
                    "id": dept_id,
                    "name": label,
                    "color": REST if dept_id == UNATTRIBUTED else PALETTE[index % len(PALETTE)],
                    "amounts": values,
                }
            )
    rows = [
        {
            "period": m,
            "label": short_month(m),
            "amounts": [s["amounts"][i] for s in series],
            "total": costs[m][1],
        }
        for i, m in enumerate(months)
    ]
    chart = stacked_bars(
        [short_month(m) for m in months],
        [(s["color"], s["amounts"]) for s in series],
    )
    return {
        "months": months,
        "month_labels": [short_month(m) for m in months],
        "series": series,
        "rows": rows,
        "chart": chart,
    }


def month_costs(
    ws: Workspace, attribution: Attribution, book: Mapping[str, Month], months: list[str]
) -> dict[str, tuple[dict[str, Decimal], Decimal]]:
    """Per month: cost by department and the month's total, from the book where it has them."""
    computed = build_ledger(ws, attribution, [m for m in months if m not in book])
    totals = {p.period: p.cost for p in computed.periods}
    found: dict[str, tuple[dict[str, Decimal], Decimal]] = {}
    for m in months:
        if m in book:
            rows = [(ln["department_id"], Decimal(ln["cost"])) for ln in book[m].lines]
            total = Decimal(book[m].totals["cost"])
        else:
            rows = [(ln.department_id, ln.cost) for ln in computed.lines_for(m)]
            total = totals[m]
        by_dept: dict[str, Decimal] = {}
        for dept_id, cost in rows:
            by_dept[dept_id] = by_dept.get(dept_id, ZERO) + cost
        found[m] = (by_dept, total)
    return found
