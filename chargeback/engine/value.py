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
  exact instants in UTC microseconds, not local wall-clock time.

A metric whose input is missing (no orders, no outcome or customer_id column)
is left out, and `notes` says what would enable it.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from fractions import Fraction
from typing import Any

import polars as pl

from chargeback.engine.attribute import Attribution, PeriodTotals
from chargeback.engine.costing import GroupCoster
from chargeback.engine.ledger import build_ledger, half_up
from chargeback.engine.months import trailing_months
from chargeback.workspace.model import Workspace

DAY_US = 86_400_000_000
MIN_US = -(2**62)  # before any instant
SAVE_LOOKBACK_DAYS = 365
NO_REASON = "(no reason)"
NO_OUTCOME = "unknown"


def cents_str(cents: int) -> str:
    return f"{Decimal(cents).scaleb(-2):.2f}"


def ratio(part: int | Fraction, whole: int | Fraction) -> float | None:
    """A share as a JSON number, 6 decimals; None when there is nothing to divide by."""
    if not whole:
        return None
    return float(half_up(Fraction(part) / Fraction(whole), 6))


def per(cents: int, n: int) -> str | None:
    """Money per unit (cost per contact), half-up to cents."""
    if not n:
        return None
    return str(half_up(Fraction(cents, 100 * n), 2))


def instant(tz: str) -> pl.Expr:
    """Local wall-clock `local` back to an exact UTC instant, in microseconds."""
    aware = pl.col("local").dt.replace_time_zone(tz, ambiguous="earliest", non_existent="null")
    utc = aware.dt.convert_time_zone("UTC").dt.replace_time_zone(None)
    return utc.fill_null(pl.col("local")).dt.epoch("us")


def money_cents(column: str) -> pl.Expr:
    """Whole cents, half away from zero on the decimal value (2.675 -> 268, as written).

    Rounding x * 100 to 6 places first removes the binary representation error
    (2.675 is stored as 2.67499999...), so the half-up step sees the .5 the
    export meant.
    """
    scaled = (pl.col(column).cast(pl.Float64) * 100).round(6)
    return scaled.round(0, mode="half_away_from_zero").cast(pl.Int64)


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
    contacts: pl.DataFrame,
    orders: pl.DataFrame | None,
    attribution: Attribution,
    reported: list[str],
) -> ValueReport:
    settings = ws.settings.value
    tz = ws.settings.timezone
    has = {c for c in ("customer_id", "outcome", "revenue") if _has_values(contacts, c)}
    notes: list[str] = []
    frame = contacts.select(
        "contact_id",
        "period",
        "channel",
        pl.col("reason").fill_null(NO_REASON)
        if "reason" in contacts.columns
        else pl.lit(NO_REASON).alias("reason"),
        "hs_us",
        instant(tz).alias("t"),
        *[pl.col(c) for c in ("customer_id", "outcome") if c in contacts.columns],
        *([money_cents("revenue").alias("revenue_cents")] if "revenue" in has else []),
    )
    periods = sorted(set(attribution.periods) | set(reported))
    coster = GroupCoster(ws.costs)
    totals = {p: attribution.periods.get(p, PeriodTotals()) for p in periods}
    # every month, not only those reported: trailing views sum them
    summaries = {p.period: p for p in build_ledger(ws, attribution, periods).periods}

    out: dict[str, dict[str, Any]] = {p: {} for p in periods}

    # 1. contacts, cost and cost per contact, in total and by channel
    by_channel = (
        frame.group_by("period", "channel")
        .agg(pl.len().alias("n"), pl.col("hs_us").cast(pl.Int128).sum().alias("hs"))
        .sort("period", "channel")
    )
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
        cents_total = int(half_up(total, 2) * 100)
        period_cents[period] = cents_total
        # each channel's own exact cost, rounded half-up: what anyone recomputing one
        # channel gets (the channels may then differ from the total by a cent or two)
        placed = {key: int(half_up(cost, 2) * 100) for key, cost in parts}
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
        sale = pl.col("outcome").is_in(list(settings.sale_outcomes))
        save = pl.col("outcome").is_in(list(settings.save_outcomes))
        won = frame.group_by("period").agg(
            sale.sum().alias("sales"),
            save.sum().alias("saves"),
            *(
                [pl.when(sale).then(pl.col("revenue_cents")).sum().alias("won")]
                if "revenue" in has
                else []
            ),
        )
        for row in won.iter_rows(named=True):
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
        save_cents = _save_values(
            frame, orders, tz, save, "customer_id" in has, settings.save_value
        )
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
        _repeats(frame, out, coster, totals, settings.repeat_window_days)
    else:
        notes.append("repeat rate and repeat cost need a 'customer_id' column in the contacts")

    # 5. after-contact behaviour at each horizon, by outcome of the first contact
    last_order: str | None = None
    if orders is not None and "customer_id" in has and orders.height:
        last_order = _after_contact(frame, orders, tz, out, settings.horizons_days)
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
                _cents(entry["revenue_won"])
                + _cents(entry["save_value_total"])
                - period_cents[period]
            )
            entry["net_value"] = cents_str(net)
    if any("net_value" not in out[p] for p in periods):
        notes.append("net_value needs revenue_won and saves (an 'outcome' and a 'revenue' column)")

    return ValueReport(periods=out, reported=reported, notes=notes, last_order=last_order)


def horizon_list(horizons: tuple[int, ...]) -> str:
    """(30, 180, 540) -> '30, 180 and 540'."""
    texts = [str(h) for h in horizons]
    return texts[0] if len(texts) == 1 else ", ".join(texts[:-1]) + " and " + texts[-1]


def _has_values(frame: pl.DataFrame, column: str) -> bool:
    return column in frame.columns and frame.get_column(column).null_count() < frame.height


def _cents(text: str) -> int:
    return int(Decimal(text) * 100)


def _save_values(
    frame: pl.DataFrame,
    orders: pl.DataFrame | None,
    tz: str,
    save: pl.Expr,
    has_customer: bool,
    save_value: Decimal,
) -> dict[str, tuple[int, str]]:
    """Per month: the saved customers' order amounts in the 365 days before each save."""
    if orders is None or not has_customer:
        return {}
    saved = frame.filter(save & pl.col("customer_id").is_not_null()).select(
        "period", "contact_id", "customer_id", "t"
    )
    joined = saved.join(_orders(orders, tz), on="customer_id", how="inner")
    window = (pl.col("o") >= pl.col("t") - SAVE_LOOKBACK_DAYS * DAY_US) & (
        pl.col("o") < pl.col("t")
    )
    sums = joined.filter(window).group_by("period").agg(pl.col("amount_cents").sum().alias("c"))
    result = {p: (int(c), "orders") for p, c in sums.iter_rows()}
    for period in saved.get_column("period").unique().to_list():
        result.setdefault(period, (0, "orders"))
    return result


def _orders(orders: pl.DataFrame, tz: str) -> pl.DataFrame:
    return orders.select(
        "customer_id", instant(tz).alias("o"), money_cents("amount").alias("amount_cents")
    )


def _repeats(
    frame: pl.DataFrame,
    out: dict[str, dict[str, Any]],
    coster: GroupCoster,
    totals: dict[str, Any],
    window_days: int,
) -> None:
    # The latest strictly earlier contact of the same customer. Sorted by customer
    # and time, that is the row before, except inside a run of equal instants
    # (ties are not "earlier"): those rows are blanked and filled forward from the
    # run's first row. A customer's first row gets a -1 marker (no earlier
    # contact) so the fill never reaches back into the previous customer. No
    # window functions: over() on many small groups is far slower here.
    previous = pl.col("t").shift(1)
    same = (pl.col("customer_id") == pl.col("customer_id").shift(1)).fill_null(False)
    within = pl.col("t") - pl.col("prev") < window_days * DAY_US
    flagged = (
        frame.filter(pl.col("customer_id").is_not_null())
        .sort("customer_id", "t")
        .with_columns(
            pl.when(~same)
            .then(pl.lit(-1, dtype=pl.Int64))
            .when(pl.col("t") != previous)
            .then(previous)
            .otherwise(None)
            .forward_fill()
            .alias("prev")
        )
        .with_columns(((pl.col("prev") >= 0) & within).alias("repeat"))
    )
    base = flagged.group_by("period").agg(
        pl.len().alias("with_customer"), pl.col("repeat").sum().alias("repeats")
    )
    for period, with_customer, repeats in base.iter_rows():
        entry = out[period]
        entry["contacts_with_customer"] = int(with_customer)
        entry["repeats"] = int(repeats)
        entry["repeat_rate"] = ratio(int(repeats), int(with_customer))
    reason_counts = flagged.group_by("period", "reason").agg(
        pl.len().alias("n"), pl.col("repeat").sum().alias("r")
    )
    groups = (
        flagged.filter(pl.col("repeat"))
        .group_by("period", "reason", "channel")
        .agg(pl.len().alias("n"), pl.col("hs_us").cast(pl.Int128).sum().alias("hs"))
    )
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
        entry["repeat_cost"] = cents_str(int(half_up(total, 2) * 100))
        placed = {(r, ""): int(half_up(c, 2) * 100) for r, c in costs.items()}  # each its own
        reasons = by_reason.get(period, {})
        for reason, item in reasons.items():
            item["repeat_rate"] = ratio(item["repeats"], item["contacts"])
            item["repeat_cost"] = cents_str(placed.get((reason, ""), 0))
        entry["repeat_by_reason"] = dict(
            sorted(reasons.items(), key=lambda kv: (-_cents(kv[1]["repeat_cost"]), kv[0]))
        )


def _after_contact(
    frame: pl.DataFrame,
    orders: pl.DataFrame,
    tz: str,
    out: dict[str, dict[str, Any]],
    horizons: tuple[int, ...],
) -> str:
    """Orders in (t0, t0 + h days] after each customer's first contact of the month.

    Each customer's orders become running totals; the sum over (t0, t0 + h] is
    then the total at t0 + h minus the total at t0, both found by an as-of join
    (the last order at or before that instant), without pairing every contact
    with every order.
    """
    firsts = (
        frame.filter(pl.col("customer_id").is_not_null())
        .sort("t", "contact_id")
        .group_by("period", "customer_id", maintain_order=True)
        .first()
        .select(
            "period",
            "customer_id",
            pl.col("t").alias("t0"),
            pl.col("outcome").fill_null(NO_OUTCOME)
            if "outcome" in frame.columns
            else pl.lit(NO_OUTCOME).alias("outcome"),
        )
    )
    prepared = _orders(orders, tz)
    last = int(prepared.get_column("o").max())  # type: ignore[arg-type]
    # Running totals over all orders sorted by customer, plus one empty order per
    # customer at the start of time: a lookup then always lands on that
    # customer's rows, and the difference of two lookups is that customer's sum.
    per_instant = prepared.group_by("customer_id", "o").agg(
        pl.col("amount_cents").sum().alias("a"), pl.len().cast(pl.Int64).alias("n")
    )
    starts = (
        per_instant.select("customer_id")
        .unique()
        .with_columns(
            pl.lit(MIN_US, dtype=pl.Int64).alias("o"),
            pl.lit(0, dtype=pl.Int64).alias("a"),
            pl.lit(0, dtype=pl.Int64).alias("n"),
        )
    )
    running = (
        pl.concat([starts, per_instant.select(starts.columns)], how="vertical_relaxed")
        .sort("customer_id", "o")
        .with_columns(pl.col("a").cum_sum().alias("cum_a"), pl.col("n").cum_sum().alias("cum_n"))
        .select("customer_id", "o", "cum_a", "cum_n")
        .sort("o")
    )

    # lookups are matched back to their customer by row number, not by joining
    # on (period, customer_id) strings again
    firsts = firsts.with_row_index("i")

    def totals_at(instants: pl.Expr) -> pl.DataFrame:
        """Running totals (amount, count) at each first contact's given instant."""
        return (
            firsts.select("i", "customer_id", instants.alias("at"))
            .sort("at")
            .join_asof(
                running,
                left_on="at",
                right_on="o",
                by="customer_id",
                strategy="backward",
                check_sortedness=False,
            )
            .sort("i")
            .select(pl.col("cum_a").fill_null(0), pl.col("cum_n").fill_null(0))
        )

    start = totals_at(pl.col("t0"))
    columns = [firsts.get_column(c) for c in ("period", "outcome", "t0")]
    for h in horizons:
        end = totals_at(pl.col("t0") + h * DAY_US)
        columns.append((end["cum_a"] - start["cum_a"]).alias(f"sum{h}"))
        columns.append((end["cum_n"] > start["cum_n"]).alias(f"any{h}"))
    per_customer = pl.DataFrame(columns)
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
    return datetime.fromtimestamp(last / 1_000_000, UTC).date().isoformat()


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
            view[key] = cents_str(sum(_cents(report.periods[m].get(key) or "0") for m in window))
    if "cost" in view:
        view["cost_per_contact"] = per(_cents(view["cost"]), view["contacts"])
        view["avoidable_share"] = ratio(_cents(view["avoidable_cost"]), _cents(view["cost"]))
    if "repeats" in view:
        view["repeat_rate"] = ratio(view["repeats"], view["contacts_with_customer"])
    channels: dict[str, dict[str, Any]] = {}
    for m in window:
        for ch, item in report.periods[m]["by_channel"].items():
            acc = channels.setdefault(ch, {"contacts": 0, "cost": 0})
            acc["contacts"] += item["contacts"]
            acc["cost"] += _cents(item["cost"])
    view["by_channel"] = {
        ch: {
            "contacts": acc["contacts"],
            "cost": cents_str(acc["cost"]),
            "cost_per_contact": per(acc["cost"], acc["contacts"]),
        }
        for ch, acc in sorted(channels.items())
    }
    return view


def value_json(report: ValueReport, ws: Workspace, meta: dict[str, Any]) -> dict[str, Any]:
    """cs_value.json: SPEC 7's `periods` (the months asked for) plus notes and trailing views."""
    settings = ws.settings.value
    return {
        "currency": ws.costs.currency,
        "periods": {p: report.periods[p] for p in report.reported},
        "trailing_12_months": {p: report.trailing(p) for p in report.reported},
        "notes": report.notes,
        "last_order_date": report.last_order,
        "settings": {
            "sale_outcomes": list(settings.sale_outcomes),
            "save_outcomes": list(settings.save_outcomes),
            "save_value": f"{settings.save_value:.2f}",
            "repeat_window_days": settings.repeat_window_days,
            "horizons_days": list(settings.horizons_days),
        },
        "meta": {k: meta[k] for k in ("tool", "version", "generated_at", "fingerprint")},
    }
