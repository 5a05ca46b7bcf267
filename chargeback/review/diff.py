"""How two rule sets' ledgers differ, line by line and per department (SPEC 9, diff).

Pure: two ledgers in, their differences out; nothing is read, written or printed.
Figures are compared as ledger.csv prints them (contacts to 3 decimals, money to
2), so what a reviewer computes from two ledger.csv files agrees with this to the
last digit. A line present on one side only counts 0.000 contacts and 0.00 on the
other, which is how a rule change that adds or drops a decision reads.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from rich import box
from rich.console import Group
from rich.table import Table
from rich.text import Text

from chargeback.engine.ledger import UNATTRIBUTED, Ledger, LedgerLine, half_up

CENT = Decimal("0.01")
MILLI = Decimal("0.001")


@dataclass(frozen=True)
class Figures:
    """One side's printed contacts and cost (of a line, a department, a month)."""

    contacts: Decimal = Decimal("0.000")
    cost: Decimal = Decimal("0.00")

    def __add__(self, other: Figures) -> Figures:
        return Figures(self.contacts + other.contacts, self.cost + other.cost)

    def __sub__(self, other: Figures) -> Figures:
        return Figures(self.contacts - other.contacts, self.cost - other.cost)

    def as_json(self) -> dict[str, str]:
        return {"contacts": f"{self.contacts:.3f}", "cost": f"{self.cost:.2f}"}


@dataclass(frozen=True)
class Change:
    """The same figures under the old and the new rules."""

    old: Figures
    new: Figures

    @property
    def delta(self) -> Figures:
        return self.new - self.old

    @property
    def moved(self) -> bool:
        return self.old != self.new

    def as_json(self) -> dict[str, dict[str, str]]:
        return {"old": self.old.as_json(), "new": self.new.as_json(), "delta": self.delta.as_json()}


@dataclass(frozen=True)
class LedgerDiff:
    """What moved between two ledgers over the months compared."""

    periods: tuple[str, ...]
    lines: dict[tuple[str, str, str], Change]  # (period, department, decision), moved only
    departments: dict[str, Change]  # every department, summed over the periods
    months: dict[tuple[str, str], Change]  # (department, period), moved only
    compared: int  # ledger lines compared (on either side)
    currency: str
    labels: tuple[str, str] = ("old", "new")
    total: Change = field(default_factory=lambda: Change(Figures(), Figures()))


def printed(line: LedgerLine) -> Figures:
    """A line's contacts and cost exactly as ledger.csv prints them."""
    return Figures(half_up(line.contacts, 3), line.cost.quantize(CENT))


def compare(
    old: Ledger,
    new: Ledger,
    departments: Iterable[str] = (),
    labels: tuple[str, str] = ("old", "new"),
) -> LedgerDiff:
    """Every moved line, and per department the sums over every line of both ledgers."""
    sides = [
        {(ln.period, ln.department_id, ln.decision_id): printed(ln) for ln in led.lines}
        for led in (old, new)
    ]
    keys = sorted(sides[0].keys() | sides[1].keys())
    zero = Figures()
    dept_ids = set(departments) | {key[1] for key in keys} | {UNATTRIBUTED}
    by_dept = {d: [zero, zero] for d in dept_ids}
    by_month: dict[tuple[str, str], list[Figures]] = {}
    lines: dict[tuple[str, str, str], Change] = {}
    total = [zero, zero]
    for key in keys:
        pair = [side.get(key, zero) for side in sides]
        month = by_month.setdefault((key[1], key[0]), [zero, zero])
        for i in (0, 1):
            by_dept[key[1]][i] += pair[i]
            month[i] += pair[i]
            total[i] += pair[i]
        change = Change(*pair)
        if change.moved:
            lines[key] = change
    months = {k: Change(*v) for k, v in sorted(by_month.items()) if Change(*v).moved}
    return LedgerDiff(
        periods=tuple(sorted({p.period for p in old.periods} | {p.period for p in new.periods})),
        lines=lines,
        departments={d: Change(*by_dept[d]) for d in sorted(dept_ids)},
        months=months,
        compared=len(keys),
        currency=new.currency,
        labels=labels,
        total=Change(*total),
    )


def diff_json(diff: LedgerDiff) -> dict[str, Any]:
    """SPEC 9's document: moved lines, then every department (old/new/delta as
    {contacts, cost} objects, like the lines)."""
    return {
        "lines": [
            {"period": p, "department_id": dept, "decision_id": dec, **change.as_json()}
            for (p, dept, dec), change in diff.lines.items()
        ],
        "departments": [
            {"department_id": dept, **change.as_json()} for dept, change in diff.departments.items()
        ],
    }


def diff_text(diff: LedgerDiff) -> Group:
    """For a terminal of 80 columns: the departments' moves per month, then the lines."""
    old, new = diff.labels
    span = "no months" if not diff.periods else diff.periods[0]
    if len(diff.periods) > 1:
        span += f" to {diff.periods[-1]}"
    head = Text(f"old: {old}\nnew: {new}\ncompared: {span}, {diff.compared} ledger lines")
    if not diff.lines:
        return Group(head, Text("Nothing moves: both rule sets give the same ledger."))
    depts = _table(f"How each department's charge moves ({diff.currency})", ["department", "month"])
    for dept in sorted({dept for dept, _ in diff.months}):
        moved = [(period, change) for (d, period), change in diff.months.items() if d == dept]
        for period, change in moved:
            depts.add_row(dept, period, *_cells(change))
        if len(moved) > 1:  # every month compared, the unmoved ones included
            depts.add_row(dept, "all", *_cells(diff.departments[dept]), style="bold")
    lines = _table(f"Ledger lines that move ({diff.currency})", ["department, decision", "month"])
    shown = ""
    for (period, dept, decision), change in sorted(diff.lines.items(), key=_by_department):
        if dept != shown:
            lines.add_row(dept, style="bold")
            shown = dept
        lines.add_row(f"  {decision}", period, *_cells(change))
    total = diff.total.delta.cost
    foot = f"{len(diff.lines)} of {diff.compared} ledger lines move; " + (
        f"the total charged moves by {_signed(total, 2)} {diff.currency}."
        if total
        else "the total charged is the same."
    )
    return Group(head, depts, lines, Text(foot))


def _table(title: str, keys: list[str]) -> Table:
    """Ids on the left (folded, never cut), then old and new cost and the changes."""
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    for key in keys:
        table.add_column(key, overflow="fold")
    for figure in ("old cost", "new cost", "change", "contacts ±"):
        table.add_column(figure, justify="right", no_wrap=True)
    return table


def _by_department(item: tuple[tuple[str, str, str], Change]) -> tuple[str, str, str]:
    (period, dept, decision), _ = item
    return (dept, decision, period)


def _signed(value: Decimal, places: int) -> str:
    return f"{value:+.{places}f}" if value else f"{0:.{places}f}"


def _cells(change: Change) -> list[str]:
    delta = change.delta
    return [
        f"{change.old.cost:.2f}",
        f"{change.new.cost:.2f}",
        _signed(delta.cost, 2),
        _signed(delta.contacts, 3),
    ]
