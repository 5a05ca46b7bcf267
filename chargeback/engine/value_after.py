"""What customers do after a contact: repeat contacts, and orders at each horizon."""

from __future__ import annotations

from collections import defaultdict
from fractions import Fraction
from typing import Any

import polars as pl

from chargeback.engine.costing import GroupCoster
from chargeback.engine.ledger import half_up_units
from chargeback.engine.value_cohorts import Followed, window_sums
from chargeback.engine.value_facts import ContactFacts
from chargeback.engine.value_units import (
    DAY_US,
    cents_str,
    parse_cents,
    ratio,
)


def repeats(
    facts: ContactFacts,
    out: dict[str, dict[str, Any]],
    coster: GroupCoster,
    totals: dict[str, Any],
) -> None:
    """Repeat counts, rates and costs from the repeat flags' grouped rows (value_facts)."""
    base, reason_counts, groups = facts.repeat_base, facts.repeat_reasons, facts.repeat_groups
    assert base is not None and reason_counts is not None and groups is not None
    for period, with_customer, repeats in base.iter_rows():
        entry = out[period]
        entry["contacts_with_customer"] = int(with_customer)
        entry["repeats"] = int(repeats)
        entry["repeat_rate"] = ratio(int(repeats), int(with_customer))
    cost_by_reason: dict[str, dict[str, Fraction]] = defaultdict(lambda: defaultdict(Fraction))
    for period, reason, channel, n, hs in groups.iter_rows():
        cost_by_reason[period][reason] += coster.group_cost(
            period, channel, int(n), int(hs), totals[period]
        )
    by_reason: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
    for period, reason, n, r in reason_counts.sort("period", "reason").iter_rows():
        by_reason[period][reason] = {"contacts": int(n), "repeats": int(r)}
    for period in out:
        entry = out[period]
        entry.setdefault("contacts_with_customer", 0)
        entry.setdefault("repeats", 0)
        entry.setdefault("repeat_rate", None)
        costs = cost_by_reason.get(period, {})
        total = sum(costs.values(), Fraction(0))
        entry["repeat_cost"] = cents_str(half_up_units(total, 2))
        placed = {(r, ""): half_up_units(c, 2) for r, c in costs.items()}  # each its own
        reasons = by_reason.get(period, {})
        for reason, item in reasons.items():
            item["repeat_rate"] = ratio(item["repeats"], item["contacts"])
            item["repeat_cost"] = cents_str(placed.get((reason, ""), 0))
        entry["repeat_by_reason"] = dict(
            sorted(reasons.items(), key=lambda kv: (-parse_cents(kv[1]["repeat_cost"]), kv[0]))
        )


def after_contact(
    firsts: pl.DataFrame,
    prepared: pl.DataFrame,
    running: pl.DataFrame,
    out: dict[str, dict[str, Any]],
    horizons: tuple[int, ...],
) -> Followed:
    """Orders in (t0, t0 + h days] after each customer's first contact of the month.

    `firsts` is value_facts' (period, customer_id, t0, outcome), `prepared` the
    orders as order_instants gives them, `running` their running totals
    (value_cohorts.running_totals); the cohorts reuse what this returns, so the
    contacted customers' figures are the same numbers.
    """
    last = int(prepared.get_column("o").max())  # type: ignore[arg-type]
    per_customer = window_sums(firsts, running, horizons)
    latest = per_customer.group_by("period").agg(pl.col("t0").max().alias("latest"))
    observable = {p: int(t) for p, t in latest.iter_rows()}
    summary = per_customer.group_by("period", "outcome").agg(
        pl.len().alias("customers"),
        *[pl.col(f"sum{h}").sum().alias(f"sum{h}") for h in horizons],
        *[pl.col(f"any{h}").sum().alias(f"any{h}") for h in horizons],
    )
    result: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
    for row in summary.sort("period", "outcome").iter_rows(named=True):
        period = row["period"]
        customers = int(row["customers"])
        horizons_out: dict[str, Any] = {}
        for h in horizons:
            if observable[period] + h * DAY_US > last:
                horizons_out[str(h)] = {
                    "customers": customers,
                    "orders_after": None,
                    "active_after": None,
                }
            else:
                horizons_out[str(h)] = {
                    "customers": customers,
                    "orders_after": cents_str(int(row[f"sum{h}"] or 0)),
                    "active_after": ratio(int(row[f"any{h}"] or 0), customers),
                }
        result[period][row["outcome"]] = horizons_out
    for period in out:
        out[period]["after_contact"] = result.get(period, {})
    return Followed(summary=summary, latest=observable, last=last)
