"""The CS-value document's context: plain values, like statements.py.

Page one is for the board: net value, the three biggest levers with their
money. Then the detail, each metric with its one-line definition (DEFINITIONS;
the same words as docs/value.md), and charts drawn from the figures.
"""

from __future__ import annotations

import json
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from chargeback.documents.charts import PALETTE, hbars, line_chart, month_label, short_month
from chargeback.documents.value_charts import money_bars
from chargeback.documents.value_cohort_doc import cohort_view, counted, money_or_none, share
from chargeback.documents.wording import Document
from chargeback.engine.dates import trailing_months
from chargeback.engine.ledger import Ledger, LedgerLine
from chargeback.engine.value import ValueReport, horizon_list
from chargeback.workspace.model import Workspace

DEFINITIONS = {
    "cost": "What customer service cost this month: every contact priced by the cost "
    "rates (or pool), the ledger's total.",
    "cost_per_contact": "Cost divided by the number of contacts.",
    "avoidable_cost": "Cost of contacts that a business decision caused (the ledger's "
    "attributed lines): avoidable if the decision had been made differently.",
    "unattributed_cost": "Cost of contacts no decision explains: the cost of serving customers.",
    "revenue_won": "Revenue from contacts whose outcome is a sale outcome (sales made in service).",
    "saves": "Contacts whose outcome is a save outcome: a customer who meant to leave and stayed.",
    "save_value_total": "With order data: for each save, what that customer ordered in the "
    "365 days before it, summed. Without it: saves times the save value setting.",
    "repeat_rate": "Share of contacts (with a customer id) that follow an earlier contact of "
    "the same customer within the repeat window.",
    "repeat_cost": "Cost of those repeat contacts: what not resolving the first time costs.",
    "after_contact": "Each month's contacted customers, from their first contact of the month: "
    "what they ordered in the {horizons} days after it, by how that contact ended.",
    "comparison": "Customers who ordered in the 12 months before the month and did not "
    "contact in it, measured from the middle of the month: what buying customers do anyway.",
    "lift": "What contacted customers ordered per customer (or the share who ordered) minus "
    "the comparison group's: what an outcome goes with, not proof of what the contact caused.",
    "active_after": "Share of those customers who ordered at least once in that time.",
    "net_value": "Revenue won plus save value minus cost: what customer service brings in "
    "beyond what it costs.",
}


ADJUSTMENT = "adjustment"  # a prior-period adjustment line's kind (operations/closing.py)


class ValueBuilder:
    def __init__(self, ws: Workspace, report: ValueReport, ledger: Ledger) -> None:
        self.ws = ws
        self.report = report
        self.ledger = ledger

    def document(self, period: str, common: dict[str, Any]) -> Document:
        entry = self.report.periods[period]
        trailing = self.report.trailing(period)
        levers = self.levers(period, entry)
        context: dict[str, Any] = {
            **common,
            "kind": "cs_value",
            "definitions": {
                key: text.replace("{horizons}", horizon_list(self.ws.settings.value.horizons_days))
                for key, text in DEFINITIONS.items()
            },
            "notes": self.report.notes,
            "last_order_date": self.report.last_order or "",
            "settings": {
                "sale_outcomes": ", ".join(self.ws.settings.value.sale_outcomes),
                "save_outcomes": ", ".join(self.ws.settings.value.save_outcomes),
                "save_value": self.ws.settings.value.save_value,
                "repeat_window_days": self.ws.settings.value.repeat_window_days,
                "horizons": [str(h) for h in self.ws.settings.value.horizons_days],
            },
            "month": self.figures(entry),
            "trailing": self.figures(trailing),
            "trailing_from": trailing["from"],
            "trailing_months": trailing["months"],
            "levers": levers,
            "lever_note": self.lever_note(period),
            "channels": [
                {
                    "channel": ch,
                    "contacts": str(item["contacts"]),
                    "cost": Decimal(item["cost"]),
                    "cost_per_contact": money_or_none(item["cost_per_contact"]),
                }
                for ch, item in sorted(
                    entry["by_channel"].items(), key=lambda kv: -Decimal(kv[1]["cost"])
                )
            ],
            "cost_trend_chart": self.cost_trend(period),
            "avoidable": self.avoidable(period),
            "repeats": self.repeats(entry),
            "after_contact": self.after_contact(entry),
            "cohorts": cohort_view(
                entry.get("cohorts"),
                self.ws.settings.value.horizons_days,
                self.ws.costs.currency,
            ),
        }
        figures = {"period": period, **entry, "trailing_12_months": trailing}
        return Document(
            period=period,
            name=f"{period}/cs-value",
            attachment=(
                f"chargeback-cs-value-{period}.json",
                json.dumps(figures, indent=2, ensure_ascii=False) + "\n",
            ),
            template="cs_value.html.j2",
            context=context,
            title=f"What customer service is worth, {month_label(period)}",
            subject=f"The CS-value report for {period}: cost, revenue won, saves, repeats "
            "and what customers do after a contact",
        )

    def figures(self, entry: dict[str, Any]) -> dict[str, Any]:
        """The headline figures of a month (or a trailing view); absent metrics are None."""
        return {
            "contacts": str(entry.get("contacts", 0)),
            "cost": money_or_none(entry.get("cost")),
            "cost_per_contact": money_or_none(entry.get("cost_per_contact")),
            "avoidable_cost": money_or_none(entry.get("avoidable_cost")),
            "avoidable_share": share(entry.get("avoidable_share")),
            "unattributed_cost": money_or_none(entry.get("unattributed_cost")),
            "revenue_won": money_or_none(entry.get("revenue_won")),
            "sales": str(entry["sales"]) if "sales" in entry else None,
            "saves": str(entry["saves"]) if "saves" in entry else None,
            "save_value_total": money_or_none(entry.get("save_value_total")),
            "repeats": str(entry["repeats"]) if "repeats" in entry else None,
            "repeat_rate": share(entry.get("repeat_rate")) if "repeats" in entry else None,
            "repeat_cost": money_or_none(entry.get("repeat_cost")),
            "net_value": money_or_none(entry.get("net_value")),
        }

    def levers(self, period: str, entry: dict[str, Any]) -> list[dict[str, Any]]:
        """The three biggest sums a CS leader can move, with what moving them means.

        A decision is a lever only when it costs more in service than it brings
        (a negative net, or no revenue declared): fixing one that nets a profit
        would be bad advice.
        """
        found: list[dict[str, Any]] = []
        lines = self.costly_decisions(period)
        if lines:
            top = lines[0]
            brings = (
                f"it brings {top.revenue:.2f} in revenue, {-top.net:.2f} less than it costs"
                if top.has_revenue
                else "no revenue is declared against it"
            )
            found.append(
                {
                    "name": "A decision that costs more than it brings",
                    "amount": top.cost,
                    "text": f"Contacts caused by “{top.title}” ({top.department_id}) cost "
                    f"this much and {brings}; fixing what drives them saves it.",
                }
            )
        days = self.ws.settings.value.repeat_window_days
        if entry.get("repeat_cost") and Decimal(entry["repeat_cost"]) > 0:
            found.append(
                {
                    "name": "Repeat contacts",
                    "amount": Decimal(entry["repeat_cost"]),
                    "text": f"{counted(entry['repeats'], 'repeat contact')}: the same customer "
                    f"back within {counted(days, 'day')}; resolving the first contact avoids "
                    "this cost.",
                }
            )
        if entry.get("revenue_won") and Decimal(entry["revenue_won"]) > 0:
            found.append(
                {
                    "name": "Revenue won in contacts",
                    "amount": Decimal(entry["revenue_won"]),
                    "text": f"{counted(entry['sales'], 'contact')} ended in a sale.",
                }
            )
        if entry.get("save_value_total") and Decimal(entry["save_value_total"]) > 0:
            found.append(
                {
                    "name": "Saves",
                    "amount": Decimal(entry["save_value_total"]),
                    "text": f"{counted(entry['saves'], 'save')}, each a contact in which a "
                    "customer who meant to leave stayed. The amount is "
                    + (
                        "what those customers ordered in the year before."
                        if entry.get("save_value_method") == "orders"
                        else "saves times the save value setting."
                    ),
                }
            )
        found.sort(key=lambda lever: -lever["amount"])
        return found[:3]

    def costly_decisions(self, period: str) -> list[LedgerLine]:
        """Decision lines that cost more in service than they bring, costliest first."""
        return sorted(
            (ln for ln in self.decision_lines(period) if ln.net_negative or not ln.has_revenue),
            key=lambda ln: (-ln.cost, ln.decision_id),
        )

    def decision_lines(self, period: str) -> list[LedgerLine]:
        """The month's decisions that caused contacts costing something.

        A prior-period adjustment (kind "adjustment", SPEC 4) is a correction of a
        closed month's figures, not a decision made this month: never a lever.
        """
        return [
            ln
            for ln in self.ledger.lines_for(period)
            if not ln.is_unattributed and ln.kind != ADJUSTMENT and ln.cost > 0
        ]

    def lever_note(self, period: str) -> str:
        """Say so when no decision is worth fixing for its service cost alone."""
        if self.decision_lines(period) and not self.costly_decisions(period):
            return (
                "Every decision that caused contacts this month brings in more revenue than "
                "its service cost, so none is listed as a lever to fix."
            )
        return ""

    def cost_trend(self, period: str) -> str:
        months = [m for m in trailing_months(period, 12) if m in self.report.periods]
        channels = sorted(
            {ch for m in months for ch in self.report.periods[m]["by_channel"]},
            key=lambda ch: (
                -sum(
                    self.report.periods[m]["by_channel"].get(ch, {}).get("contacts", 0)
                    for m in months
                ),
                ch,  # equal counts in a fixed order: a set's order changes from run to run
            ),
        )
        series = []
        for i, ch in enumerate(channels):
            values: list[float | None] = []
            for m in months:
                item = self.report.periods[m]["by_channel"].get(ch)
                cpc = item.get("cost_per_contact") if item else None
                values.append(float(cpc) if cpc is not None else None)
            series.append((PALETTE[i % len(PALETTE)], ch, values))
        return line_chart([short_month(m) for m in months], series, unit="")

    def avoidable(self, period: str) -> dict[str, Any]:
        lines = sorted(
            (ln for ln in self.ledger.lines_for(period) if not ln.is_unattributed and ln.cost > 0),
            key=lambda ln: (-ln.cost, ln.decision_id),
        )[:12]
        return {
            "rows": [
                {
                    "decision_id": ln.decision_id,
                    "title": ln.title,
                    "department_id": ln.department_id,
                    "cost": ln.cost,
                }
                for ln in lines
            ],
            "chart": hbars([(ln.title, float(ln.cost), f"{ln.cost:.2f}") for ln in lines])
            if lines
            else "",
        }

    def repeats(self, entry: dict[str, Any]) -> dict[str, Any]:
        reasons = entry.get("repeat_by_reason")
        if reasons is None:
            return {"available": False, "rows": [], "chart": ""}
        top = [(r, item) for r, item in reasons.items() if item["repeats"] > 0][:10]
        return {
            "available": True,
            "rows": [
                {
                    "reason": r,
                    "contacts": str(item["contacts"]),
                    "repeats": str(item["repeats"]),
                    "repeat_rate": share(item["repeat_rate"]),
                    "repeat_cost": Decimal(item["repeat_cost"]),
                }
                for r, item in top
            ],
            "chart": hbars(
                sorted(
                    (
                        (r, (item["repeat_rate"] or 0) * 100, share(item["repeat_rate"]))
                        for r, item in top
                    ),
                    key=lambda bar: -bar[1],
                ),
                color="#c2455a",
            )
            if top
            else "",
        }

    def after_contact(self, entry: dict[str, Any]) -> dict[str, Any]:
        """The reported month's own after-contact figures (custom templates use them)."""
        data = entry.get("after_contact")
        if data is None:
            return {"available": False, "rows": [], "chart": "", "horizons": [], "legend": []}
        currency = self.ws.costs.currency
        horizons = [str(h) for h in self.ws.settings.value.horizons_days]
        outcomes = sorted(data, key=lambda o: -data[o][horizons[0]]["customers"] if horizons else 0)
        rows = []
        for outcome in outcomes:
            cells = []
            for h in horizons:
                item = data[outcome][h]
                observable = item["orders_after"] is not None
                per_customer = (
                    Decimal(item["orders_after"]) / item["customers"]
                    if observable and item["customers"]
                    else None
                )
                cells.append(
                    {
                        "horizon": h,
                        "observable": observable,
                        "orders_after": money_or_none(item["orders_after"]),
                        "per_customer": per_customer.quantize(Decimal("0.01"), ROUND_HALF_UP)
                        if per_customer is not None
                        else None,
                        "active_after": share(item["active_after"]),
                    }
                )
            customers = data[outcome][horizons[0]]["customers"] if horizons else 0
            rows.append({"outcome": outcome, "customers": str(customers), "cells": cells})
        series = []
        for i, h in enumerate(horizons):
            values: list[float | str | None] = []
            for row in rows:
                cell = row["cells"][i]
                if not cell["observable"]:
                    values.append(None)  # "n/a": not yet observable
                elif cell["per_customer"] is None:
                    values.append("no customers")
                else:
                    values.append(float(cell["per_customer"]))
            series.append((PALETTE[i % len(PALETTE)], f"{h} days", values))
        return {
            "available": True,
            "horizons": horizons,
            "rows": rows,
            "legend": [
                {"label": f"{h} days", "color": PALETTE[i % len(PALETTE)]}
                for i, h in enumerate(horizons)
            ],
            "chart": money_bars(
                [r["outcome"] for r in rows], series, f"{currency} ordered per customer"
            )
            if rows
            else "",
        }
