"""The CS-value report (SPEC 7): what customer service costs, wins and keeps.

Every metric is computed for every month in the contacts (so trailing-12-month
views can be summed), with polars doing the row work and exact integers or
fractions doing the money:

- contact costs come from the same GroupCoster as the ledger, on (month,
  channel, ...) group sums, so a month's cost is the ledger's total; a
  channel's (or a reason's) cost is its own exact sum rounded half-up, what
  anyone recomputing that one figure from the contacts gets;
- `revenue` and order `amount`s are taken to whole cents per row, then summed
  as integers;
- time comparisons (repeat windows, horizons, the 365 days before a save) use
  exact instants in UTC microseconds, not local wall-clock time;
- after-contact figures also come as monthly cohorts beside a comparison group
  of customers who did not contact (value_cohorts.py).

A metric whose input is missing (no orders, no outcome or customer_id column)
is left out, and `notes` says what would enable it.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from fractions import Fraction
from typing import Any
from zoneinfo import ZoneInfo

import polars as pl

from chargeback.engine.attribute import Attribution, PeriodTotals
from chargeback.engine.costing import GroupCoster
from chargeback.engine.dates import trailing_months
from chargeback.engine.ledger import build_ledger, half_up_units
from chargeback.engine.value_after import after_contact, repeats
from chargeback.engine.value_cohorts import cohorts, running_totals
from chargeback.engine.value_facts import ContactFacts, facts_from_frame
from chargeback.engine.value_units import (
    DAY_US,
    cents_str,
    order_instants,
    parse_cents,
    per,
    ratio,
)
from chargeback.workspace.model import Workspace

SAVE_LOOKBACK_DAYS = 365


@dataclass
class ValueReport:
    """cs_value.json as plain data, plus what the documents need beside it."""

    periods: dict[str, dict[str, Any]]  # every month in the contacts
    reported: list[str]
    notes: list[str]
    last_order: str | None  # ISO date of the last order, when there are orders

    def trailing(self, period: str, months: int = 12) -> dict[str, Any]:
        return trailing_view(self, period, months)


def compute_value(
    ws: Workspace,
    contacts: pl.DataFrame | ContactFacts,
    orders: pl.DataFrame | None,
    attribution: Attribution,
    reported: list[str],
) -> ValueReport:
    """The report from the contacts frame (read out) or the engine's grouped rows
    (engine/pushdown_value.py): both become ContactFacts, then one arithmetic."""
    facts = (
        contacts
        if isinstance(contacts, ContactFacts)
        else facts_from_frame(ws, contacts, orders is not None)
    )
    settings = ws.settings.value
    tz = ws.settings.timezone
    has = facts.has
    notes: list[str] = []
    firsts, saved = facts.firsts, facts.saved
    if "customer_id" in has:
        firsts, saved, orders = _coded_customers(firsts, saved, orders)
    periods = sorted(set(attribution.periods) | set(reported))
    coster = GroupCoster(ws.costs)
    totals = {p: attribution.periods.get(p, PeriodTotals()) for p in periods}
    # every month, not only those reported: trailing views sum them
    summaries = {p.period: p for p in build_ledger(ws, attribution, periods).periods}

    out: dict[str, dict[str, Any]] = {p: {} for p in periods}

    # 1. contacts, cost and cost per contact, in total and by channel
    by_channel = facts.by_channel.sort("period", "channel")
    exact: dict[str, list[tuple[tuple[str, str], Fraction]]] = defaultdict(list)
    counts: dict[tuple[str, str], int] = {}
    for period, channel, n, hs in by_channel.iter_rows():
        cost = coster.group_cost(period, channel, int(n), int(hs), totals[period])
        exact[period].append(((channel, ""), cost))
        counts[period, channel] = int(n)
    period_cents: dict[str, int] = {}
    for period in periods:
        parts = exact[period]
        total = sum((c for _, c in parts), Fraction(0))
        cents_total = half_up_units(total, 2)
        period_cents[period] = cents_total
        # each channel's own exact cost, rounded half-up: what anyone recomputing one
        # channel gets (the channels may then differ from the total by a cent or two)
        placed = {key: half_up_units(cost, 2) for key, cost in parts}
        n_total = totals[period].contacts
        entry = out[period]
        entry["contacts"] = n_total
        entry["cost"] = cents_str(cents_total)
        entry["cost_per_contact"] = per(cents_total, n_total)
        entry["by_channel"] = {
            channel: {
                "contacts": counts[period, channel],
                "cost": cents_str(placed[channel, ""]),
                "cost_per_contact": per(placed[channel, ""], counts[period, channel]),
            }
            for (channel, _), _ in sorted(parts)
        }
        # 2. avoidable (decision-driven) cost: the ledger's attributed lines
        attributed = int(summaries[period].attributed_cost * 100)
        entry["avoidable_cost"] = cents_str(attributed)
        entry["avoidable_share"] = ratio(attributed, cents_total)
        entry["unattributed_cost"] = cents_str(cents_total - attributed)

    # 3. revenue won in contacts, saves and their value
    if "outcome" in has:
        assert facts.won is not None
        for row in facts.won.iter_rows(named=True):
            entry = out[row["period"]]
            entry["sales"] = int(row["sales"])
            entry["saves"] = int(row["saves"])
            if "revenue" in has:
                entry["revenue_won"] = cents_str(int(row["won"] or 0))
        for period in periods:
            out[period].setdefault("sales", 0)
            out[period].setdefault("saves", 0)
            if "revenue" in has:
                out[period].setdefault("revenue_won", "0.00")
        save_cents = _save_values(saved, orders, tz)
        from_orders = orders is not None and "customer_id" in has
        for period in periods:
            cents, method = save_cents.get(period, (0, "orders" if from_orders else "fixed"))
            if method == "fixed":
                cents = int(settings.save_value * 100) * out[period]["saves"]
            out[period]["save_value_total"] = cents_str(cents)
            out[period]["save_value_method"] = method
        if "revenue" not in has:
            notes.append(
                "revenue_won needs a 'revenue' column in the contacts (money a sale brought in)"
            )
    else:
        notes.append(
            "revenue_won, saves and save value need an 'outcome' column in the contacts "
            "(sale, saved, resolved, ...)"
        )

    # 4. repeats: an earlier contact by the same customer within the window
    if "customer_id" in has:
        repeats(facts, out, coster, totals)
    else:
        notes.append("repeat rate and repeat cost need a 'customer_id' column in the contacts")

    # 5. after-contact behaviour at each horizon, by outcome of the first contact
    # and the same customers as monthly cohorts beside those who did not contact
    last_order: str | None = None
    if orders is not None and "customer_id" in has and orders.height:
        prepared = order_instants(orders, tz)
        running = running_totals(prepared)
        assert firsts is not None
        followed = after_contact(firsts, prepared, running, out, settings.horizons_days)
        cohorts(facts.first_period, firsts, prepared, followed, tz, settings.horizons_days, out)
        # the local date, like every other date in the report (an order at 22:00 New
        # York time on 30 November is already 1 December in UTC)
        when = datetime.fromtimestamp(followed.last / 1_000_000, UTC).astimezone(ZoneInfo(tz))
        last_order = when.date().isoformat()
    elif orders is None:
        notes.append(
            f"after-contact behaviour (orders in the {horizon_list(settings.horizons_days)} days "
            "after a contact) needs "
            "order data: set 'orders:' in chargeback.yaml or pass --orders"
        )
    elif "customer_id" not in has:
        notes.append("after-contact behaviour needs a 'customer_id' column in the contacts")
    else:
        notes.append("after-contact behaviour needs orders, and the order data has no rows")

    # 6. net value
    for period in periods:
        entry = out[period]
        if "revenue_won" in entry and "save_value_total" in entry:
            net = (
                parse_cents(entry["revenue_won"])
                + parse_cents(entry["save_value_total"])
                - period_cents[period]
            )
            entry["net_value"] = cents_str(net)
    if any("net_value" not in out[p] for p in periods):
        notes.append("net_value needs revenue_won and saves (an 'outcome' and a 'revenue' column)")

    return ValueReport(periods=out, reported=reported, notes=notes, last_order=last_order)


def _coded_customers(
    firsts: pl.DataFrame | None, saved: pl.DataFrame | None, orders: pl.DataFrame | None
) -> tuple[pl.DataFrame | None, pl.DataFrame | None, pl.DataFrame | None]:
    """`customer_id` as one integer code in the contacts' tables and the orders alike.

    Every metric joins, sorts and groups on the customer, never shows one, and
    none depends on how customers sort among themselves (only on each one's
    contacts and orders in time): as text, 3M contacts and 2.6M orders made the
    cohorts' as-of joins take over a minute.
    """
    shared = pl.Categorical(pl.Categories.random())  # one code per id, in every table
    code = pl.col("customer_id").cast(pl.String).cast(shared).to_physical()
    if orders is not None and "customer_id" in orders.columns:
        orders = orders.with_columns(code)
    coded = [None if f is None else f.with_columns(code) for f in (firsts, saved)]
    return coded[0], coded[1], orders


def horizon_list(horizons: tuple[int, ...]) -> str:
    """(30, 180, 540) -> '30, 180 and 540'."""
    texts = [str(h) for h in horizons]
    return texts[0] if len(texts) == 1 else ", ".join(texts[:-1]) + " and " + texts[-1]


def _save_values(
    saved: pl.DataFrame | None, orders: pl.DataFrame | None, tz: str
) -> dict[str, tuple[int, str]]:
    """Per month: the saved customers' order amounts in the 365 days before each save."""
    if orders is None or saved is None:
        return {}
    joined = saved.join(order_instants(orders, tz), on="customer_id", how="inner")
    window = (pl.col("o") >= pl.col("t") - SAVE_LOOKBACK_DAYS * DAY_US) & (
        pl.col("o") < pl.col("t")
    )
    sums = joined.filter(window).group_by("period").agg(pl.col("amount_cents").sum().alias("c"))
    result = {p: (int(c), "orders") for p, c in sums.iter_rows()}
    for period in saved.get_column("period").unique().to_list():
        result.setdefault(period, (0, "orders"))
    return result


SUMMABLE_MONEY = (
    "cost",
    "avoidable_cost",
    "unattributed_cost",
    "revenue_won",
    "save_value_total",
    "repeat_cost",
    "net_value",
)
SUMMABLE_COUNTS = ("contacts", "sales", "saves", "contacts_with_customer", "repeats")


def trailing_view(report: ValueReport, period: str, months: int = 12) -> dict[str, Any]:
    """The months up to `period` (at most `months`, those with contacts) summed."""
    window = [m for m in trailing_months(period, months) if m in report.periods]
    view: dict[str, Any] = {
        "from": window[0] if window else period,
        "to": period,
        "months": len(window),
    }
    for key in SUMMABLE_COUNTS:
        if window and key in report.periods[window[-1]]:
            view[key] = sum(int(report.periods[m].get(key, 0)) for m in window)
    for key in SUMMABLE_MONEY:
        if window and key in report.periods[window[-1]]:
            total = sum(parse_cents(report.periods[m].get(key) or "0") for m in window)
            view[key] = cents_str(total)
    if "cost" in view:
        cost = parse_cents(view["cost"])
        view["cost_per_contact"] = per(cost, view["contacts"])
        view["avoidable_share"] = ratio(parse_cents(view["avoidable_cost"]), cost)
    if "repeats" in view:
        view["repeat_rate"] = ratio(view["repeats"], view["contacts_with_customer"])
    channels: dict[str, dict[str, Any]] = {}
    for m in window:
        for ch, item in report.periods[m]["by_channel"].items():
            acc = channels.setdefault(ch, {"contacts": 0, "cost": 0})
            acc["contacts"] += item["contacts"]
            acc["cost"] += parse_cents(item["cost"])
    view["by_channel"] = {
        ch: {
            "contacts": acc["contacts"],
            "cost": cents_str(acc["cost"]),
            "cost_per_contact": per(acc["cost"], acc["contacts"]),
        }
        for ch, acc in sorted(channels.items())
    }
    return view
