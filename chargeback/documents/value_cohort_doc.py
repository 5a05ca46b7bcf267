"""The CS-value report's "after a contact" pages, from cs_value.json's `cohorts`.

The month people run never has an 18-month horizon, so each horizon shows the
latest contact month the data can already see that has contacted customers
(cs_value.json's `latest` may be a later month nobody contacted in), beside
customers who did not contact, and a table of every cohort's lift. Words say "goes with", never
"caused": the comparison group is customers who were buying anyway.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from chargeback.documents.charts import PALETTE, month_label, short_month
from chargeback.documents.value_charts import money_bars
from chargeback.documents.wording import pct

COMPARISON = "did not contact"
NOT_YET = None  # a chart value: the horizon is not yet observable ("n/a")
EMPTY = "no customers"  # a chart value: the group has nobody in it


def counted(n: int, word: str) -> str:
    """'1 save', '155 saves': plain digits, as every figure in the CS-value report."""
    return f"{n} {word if n == 1 else word + 's'}"


def horizon_words(days: int) -> str:
    """365 -> '1 year', 30 -> '1 month', 540 -> '18 months'; other horizons in days."""
    if days > 0 and days % 365 == 0:
        return counted(days // 365, "year")
    if days > 0 and days % 30 == 0:
        return counted(days // 30, "month")
    return counted(days, "day")


def horizon_header(days: int) -> str:
    """A table header: '6 months (180 days)', but '45 days' once, never '45 days (45 days)'."""
    words = horizon_words(days)
    return words if words == counted(days, "day") else f"{words} ({days} days)"


def shown_month(cohorts: dict[str, Any], days: int) -> str | None:
    """The month a horizon's block shows: the latest observable one with contacted customers.

    When no observable month has any, `latest` (observable, nobody contacted), or
    None when nothing is observable yet.
    """
    key = str(days)
    for month in reversed(cohorts["months"]):
        cell = cohorts["cells"][month][key]
        if cell is not None and cell["contacted"]["customers"]:
            return str(month)
    latest = cohorts["latest"].get(key)
    return None if latest is None else str(latest)


def signed(text: str | None) -> str:
    """A lift as a reader sees it: '+12.40', '-3.10', '0.00'; '—' when there is none."""
    if text is None:
        return "—"
    value = Decimal(text)
    return f"{value:+.2f}" if value else "0.00"


def share(value: float | None) -> str:
    """A JSON share as a percentage, the statements' way."""
    return "—" if value is None else pct(Decimal(repr(value)), 1)


def money_or_none(text: str | None) -> Decimal | None:
    return None if text is None else Decimal(text)


def _row(name: str, group: dict[str, Any], kind: str = "") -> dict[str, Any]:
    lift = group.get("lift", {}).get("per_customer")
    return {
        "name": name,
        "kind": kind,
        "customers": str(group["customers"]),
        "per_customer": money_or_none(group["per_customer"]),
        "active": share(group["active_after"]),
        "lift": signed(lift) if "lift" in group else "",
        "loss": lift is not None and Decimal(lift) < 0,
    }


def _block(cohorts: dict[str, Any], days: int, currency: str) -> dict[str, Any]:
    key = str(days)
    month = shown_month(cohorts, days)
    block: dict[str, Any] = {"days": key, "month": month}
    if month is None:
        block.update(observable=False, heading=f"{horizon_words(days)} after a contact")
        return block
    cell = cohorts["cells"][month][key]
    outcomes = sorted(cell["outcomes"].items(), key=lambda kv: (-kv[1]["customers"], kv[0]))
    contacted, comparison = cell["contacted"], cell["comparison"]
    lift = contacted["lift"]
    if lift["per_customer"] is None:
        verdict = "No comparison: " + (
            "nobody with a customer id contacted that month."
            if not contacted["customers"]
            else "no customer bought in the 12 months before without contacting."
        )
    else:
        verdict = (
            f"Contacted customers: {signed(lift['per_customer'])} {currency} per customer vs. "
            f"customers who did not contact ({share(contacted['active_after'])} ordered at "
            f"all, against {share(comparison['active_after'])})."
        )
    block.update(
        observable=True,
        heading=f"{horizon_words(days)} on: contacts in {month_label(month)}"
        + ("" if horizon_header(days) == horizon_words(days) else f", {key} days after"),
        rows=[
            *(_row(outcome, group) for outcome, group in outcomes),
            _row("All contacted customers", contacted, "total"),
            _row(f"Customers who {COMPARISON}", comparison, "other"),
        ],
        verdict=verdict,
        loss=lift["per_customer"] is not None and Decimal(lift["per_customer"]) < 0,
    )
    return block


def _table(cohorts: dict[str, Any], horizons: tuple[int, ...]) -> list[dict[str, Any]]:
    rows = []
    for month in cohorts["months"]:
        cells = []
        for days in horizons:
            cell = cohorts["cells"][month][str(days)]
            if cell is None:
                cells.append({"text": "not yet", "muted": True, "loss": False})
            elif not cell["contacted"]["customers"]:
                cells.append({"text": "no contacts", "muted": True, "loss": False})
            else:
                lift = cell["contacted"]["lift"]["per_customer"]
                cells.append(
                    {
                        "text": signed(lift),
                        "muted": lift is None,
                        "loss": lift is not None and Decimal(lift) < 0,
                    }
                )
        rows.append({"month": month_label(month), "cells": cells})
    return rows


def _chart(blocks: list[dict[str, Any]], currency: str) -> tuple[str, list[dict[str, str]], bool]:
    """The chart, its legend, and whether it draws an "n/a" (a horizon not yet observable)."""
    shown = [b for b in blocks if b["observable"]]
    if not shown:
        return "", [], False
    names: list[str] = []
    for b in shown:
        names += [r["name"] for r in b["rows"] if not r["kind"] and r["name"] not in names]
    groups = [*names, COMPARISON]
    series: list[tuple[str, str, list[float | str | None]]] = []
    legend = []
    for i, b in enumerate(blocks):
        color = PALETTE[i % len(PALETTE)]
        month = f" ({short_month(b['month'])} contacts)" if b["month"] else ""
        label = f"{b['days']} days{month}"
        legend.append({"label": label, "color": color})
        if not b["observable"]:
            series.append((color, label, [NOT_YET for _ in groups]))
            continue
        per = {
            COMPARISON if r["kind"] == "other" else r["name"]: r["per_customer"]
            for r in b["rows"]
            if r["kind"] != "total"
        }
        series.append(
            (color, label, [EMPTY if per.get(g) is None else float(per[g]) for g in groups])
        )
    not_yet = len(shown) < len(blocks)
    return money_bars(groups, series, f"{currency} ordered per customer"), legend, not_yet


def cohort_view(
    cohorts: dict[str, Any] | None, horizons: tuple[int, ...], currency: str
) -> dict[str, Any]:
    """The template's `cohorts`: one block per horizon, a chart and the cohort table."""
    if cohorts is None:
        return {"available": False}
    blocks = [_block(cohorts, days, currency) for days in horizons]
    chart, legend, not_yet = _chart(blocks, currency)
    return {
        "available": True,
        "blocks": blocks,
        "chart": chart,
        "legend": legend,
        "not_yet": not_yet,
        "horizons": [
            {"days": str(d), "label": horizon_words(d), "header": horizon_header(d)}
            for d in horizons
        ],
        "table": _table(cohorts, horizons),
        "first": month_label(cohorts["months"][0]) if cohorts["months"] else "",
    }
