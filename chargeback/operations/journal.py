"""A general-ledger journal for one month, laid out for the company's ERP import.

Written through chargeback.csvwrite like every CSV: figures stay plain
numbers (-3080.24), and a memo or name that would read as a spreadsheet formula
gets a leading apostrophe, because finance opens this file in a spreadsheet too.

Each department's charge (its ledger lines, prior-period adjustments
included) is debited to its cost center; the total is credited to the service
cost center from settings, so every journal balances to the cent. The column
layout is a template in `journal: columns:` (header -> text with {fields}), so
the file matches whatever the ERP expects. A closed month journals its frozen
figures, like every other output.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from chargeback.csvwrite import csv_text
from chargeback.engine.dates import month_bounds
from chargeback.engine.ledger import UNATTRIBUTED, Ledger
from chargeback.errors import Problem, WorkspaceError
from chargeback.workspace.journal_format import DELIMITERS
from chargeback.workspace.model import Workspace

DEFAULT_COLUMNS = (
    ("journal_id", "{journal_id}"),
    ("line", "{line}"),
    ("date", "{date}"),
    ("account", "{account}"),
    ("cost_center", "{cost_center}"),
    ("debit", "{debit}"),
    ("credit", "{credit}"),
    ("currency", "{currency}"),
    ("memo", "{memo}"),
)


@dataclass(frozen=True)
class JournalLine:
    account: str
    cost_center: str
    department_id: str
    department_name: str
    amount: Decimal  # debit positive, credit negative
    memo: str


def journal_lines(ws: Workspace, ledger: Ledger, period: str) -> list[JournalLine]:
    settings = ws.settings.journal
    lines: list[JournalLine] = []
    total = Decimal("0.00")
    names = {d.id: d.name for d in ws.departments}
    # from the ledger's lines, not today's rules: a department removed since may still
    # carry a prior-period adjustment
    charged: dict[str, tuple[str, Decimal]] = {}
    for ln in ledger.lines_for(period):
        if ln.department_id == UNATTRIBUTED:
            continue
        center, cost = charged.get(ln.department_id, (ln.cost_center, Decimal("0.00")))
        charged[ln.department_id] = (center or ln.cost_center, cost + ln.cost)
    for dept_id, (center, cost) in sorted(charged.items()):
        if cost == 0:
            continue
        name = names.get(dept_id, dept_id)
        if not center:
            raise WorkspaceError(
                Problem(
                    f"department '{dept_id}' has no cost_center, so the journal cannot debit "
                    f"its {cost:.2f} {ledger.currency}; set one in its rules file"
                )
            )
        total += cost
        lines.append(
            JournalLine(
                account=settings.account,
                cost_center=center,
                department_id=dept_id,
                department_name=name,
                amount=cost,
                memo=f"Customer-service chargeback {period}: {name}",
            )
        )
    if lines:
        lines.append(
            JournalLine(
                account=settings.credit_account or settings.account,
                cost_center=settings.service_cost_center,
                department_id="customer-service",
                department_name="Customer service",
                amount=-total,
                memo=f"Customer-service chargeback {period}: charged to departments",
            )
        )
    return lines


def journal_csv(ws: Workspace, ledger: Ledger, period: str) -> tuple[str, dict[str, Any]]:
    """The journal file's text, and totals for the message (debits == credits)."""
    settings = ws.settings.journal
    day = month_bounds(period)[1]  # booked on the month's last day
    lines = journal_lines(ws, ledger, period)
    columns = settings.columns or DEFAULT_COLUMNS
    rows: list[list[str]] = []
    debit_total = credit_total = Decimal("0.00")
    for number, line in enumerate(lines, 1):
        debit = line.amount if line.amount > 0 else Decimal("0.00")
        credit = -line.amount if line.amount < 0 else Decimal("0.00")
        debit_total += debit
        credit_total += credit
        values = {
            "period": period,
            "date": day.strftime(settings.date_format),
            "journal_id": f"CB-{period.replace('-', '')}",
            "line": str(number),
            "account": line.account,
            "cost_center": line.cost_center,
            "department_id": line.department_id,
            "department_name": line.department_name,
            "debit": f"{debit:.2f}",
            "credit": f"{credit:.2f}",
            "amount": f"{line.amount:.2f}",
            "currency": ledger.currency,
            "memo": line.memo,
        }
        rows.append([template.format(**values) for _, template in columns])
    text = csv_text([header for header, _ in columns], rows, DELIMITERS[settings.delimiter])
    assert debit_total == credit_total, "a journal must balance"
    return text, {
        "lines": len(lines),
        "debit": debit_total,
        "credit": credit_total,
    }


def settings_problem(ws: Workspace) -> Problem | None:
    if not ws.settings.journal.service_cost_center:
        return Problem(
            "a journal needs the service cost center to credit: set journal: "
            "service_cost_center: in chargeback.yaml"
        )
    return None
