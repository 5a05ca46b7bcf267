"""Cohorts: what contacted customers order after a contact, against those who did not.

`after_contact` alone cannot answer "do customers keep buying after a contact?"
for the month people run (its 18-month horizon is never observable yet), nor
say whether buying is the contact's doing. So each contact month c is a cohort,
measured at every horizon the data can already see, beside a comparison group:
customers who bought in the 12 months before c and did not contact in c,
measured from the middle of c. A lift is what an outcome goes with, not proof
of what it causes.

Times are exact UTC microseconds; month bounds are local midnights read in the
workspace timezone, the same way contacts and orders are (value_units.instant).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from fractions import Fraction
from typing import Any

import polars as pl

from chargeback.engine.dates import month_range, shift_month, trailing_months
from chargeback.engine.ledger import half_up
from chargeback.engine.value_units import DAY_US, MIN_US, cents_str, instant, per, ratio

WINDOW_MONTHS = 24  # the cohort table's rows: contact months up to the report's
LOOKBACK_MONTHS = 12  # a comparison customer bought in the 12 months before c


@dataclass
class Followed:
    """Order sums after each contacted customer's first contact, per (month, outcome)."""

    summary: pl.DataFrame  # period, outcome, customers, sum{h}, any{h}
    latest: dict[str, int]  # per month: the latest first contact (t0)
    last: int  # the last order instant


def running_totals(prepared: pl.DataFrame) -> pl.DataFrame:
    """Each customer's running order totals (cents, count), sorted by instant `o`.

    One empty order per customer at the start of time makes every as-of lookup
    land on that customer's rows, so the difference of two lookups is that
    customer's sum between them, without pairing every anchor with every order.
    """
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
    return (
        pl.concat([starts, per_instant.select(starts.columns)], how="vertical_relaxed")
        .sort("customer_id", "o")
        .with_columns(pl.col("a").cum_sum().alias("cum_a"), pl.col("n").cum_sum().alias("cum_n"))
        .select("customer_id", "o", "cum_a", "cum_n")
        .sort("o")
    )


def window_sums(
    anchors: pl.DataFrame, running: pl.DataFrame, horizons: tuple[int, ...]
) -> pl.DataFrame:
    """`anchors` (customer_id, t0, ...) plus sum{h} (cents) and any{h} over (t0, t0 + h days]."""
    indexed = anchors.with_row_index("i")

    def totals_at(instants: pl.Expr) -> pl.DataFrame:
        # lookups come back to their anchor by row number, not by another join
        return (
            indexed.select("i", "customer_id", instants.alias("at"))
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
    columns = []
    for h in horizons:
        end = totals_at(pl.col("t0") + h * DAY_US)
        columns.append((end["cum_a"] - start["cum_a"]).alias(f"sum{h}"))
        columns.append((end["cum_n"] > start["cum_n"]).alias(f"any{h}"))
    return anchors.with_columns(columns)


def month_starts(months: list[str], tz: str) -> list[int]:
    """Local midnight of each month's first day, as exact UTC microseconds."""
    local = pl.DataFrame(
        {"local": [datetime(int(m[:4]), int(m[5:7]), 1) for m in months]},
        schema={"local": pl.Datetime("us")},
    )
    return [int(v) for v in local.select(instant(tz)).to_series().to_list()]


def cohorts(
    first: str | None,
    firsts: pl.DataFrame,
    prepared: pl.DataFrame,
    followed: Followed,
    tz: str,
    horizons: tuple[int, ...],
    out: dict[str, dict[str, Any]],
) -> None:
    """Each month of `out` gets `cohorts`: its 24-month window of cohort cells.

    `first` is the earliest month with contacts (None: none); `firsts` each
    contacted customer's first contact of a month (value_facts), which says who
    contacted in which month."""
    if first is None or not out:
        return
    last_month = max(out)
    months = month_range(first, last_month) if first <= last_month else []
    if months:
        bounds = month_range(shift_month(first, -LOOKBACK_MONTHS), shift_month(last_month, 1))
        starts = dict(zip(bounds, month_starts(bounds, tz), strict=True))
        cells = _cells(firsts, prepared, followed, horizons, months, bounds, starts)
    else:
        cells = {}
    for period, entry in out.items():
        window = [m for m in trailing_months(period, WINDOW_MONTHS) if m >= first]
        latest: dict[str, str | None] = {}
        for h in horizons:
            seen = [m for m in window if cells[m][str(h)] is not None]
            latest[str(h)] = seen[-1] if seen else None
        entry["cohorts"] = {
            "months": window,
            "latest": latest,
            "cells": {m: cells[m] for m in window},
        }


def _cells(
    firsts: pl.DataFrame,
    prepared: pl.DataFrame,
    followed: Followed,
    horizons: tuple[int, ...],
    months: list[str],
    bounds: list[str],
    starts: dict[str, int],
) -> dict[str, dict[str, Any]]:
    mids = {m: starts[m] + (starts[shift_month(m, 1)] - starts[m]) // 2 for m in months}
    comparison = _comparison(firsts, prepared, horizons, months, bounds, starts, mids)
    contacted: dict[str, dict[str, dict[str, Any]]] = {}
    for row in followed.summary.iter_rows(named=True):
        contacted.setdefault(row["period"], {})[row["outcome"]] = row
    cells: dict[str, dict[str, Any]] = {}
    for m in months:
        anchor = max(mids[m], followed.latest.get(m, mids[m]))
        cells[m] = {}
        for h in horizons:
            key = str(h)
            if anchor + h * DAY_US > followed.last:
                cells[m][key] = None  # not yet observable: unknown, never zero
                continue
            base = comparison.get(m, {})
            compared = _tally(base.get("customers", 0), base.get(f"sum{h}"), base.get(f"any{h}"))
            outcomes = {
                outcome: _tally(row["customers"], row[f"sum{h}"], row[f"any{h}"])
                for outcome, row in sorted(contacted.get(m, {}).items())
            }
            total = (
                sum(t[0] for t in outcomes.values()),
                sum(t[1] for t in outcomes.values()),
                sum(t[2] for t in outcomes.values()),
            )
            cells[m][key] = {
                "contacted": _group(total, compared),
                "outcomes": {o: _group(t, compared) for o, t in outcomes.items()},
                "comparison": _group(compared, None),
            }
    return cells


def _comparison(
    firsts: pl.DataFrame,
    prepared: pl.DataFrame,
    horizons: tuple[int, ...],
    months: list[str],
    bounds: list[str],
    starts: dict[str, int],
    mids: dict[str, int],
) -> dict[str, dict[str, Any]]:
    """Per month c: buyers in [start(c - 12), start(c)) with no contact in c, from mid(c).

    Month by month: every member of c is measured from the same instant mid(c), so
    their sums at each horizon are those of the orders in (mid(c), mid(c) + h] that
    members placed: one slice of the orders by instant, kept for c's members. (An
    as-of lookup per member, month and horizon took over a minute at 1M customers.)
    A month without members has no entry.
    """
    index = {m: i for i, m in enumerate(bounds)}
    edges = pl.Series([starts[m] for m in bounds], dtype=pl.Int64)
    # each order's month by its instant: the last month start at or before it
    slot = (edges.search_sorted(prepared.get_column("o"), side="right") - 1).cast(pl.Int64)
    bought = (
        prepared.select("customer_id")
        .with_columns(slot.alias("slot"))
        .filter((pl.col("slot") >= 0) & (pl.col("slot") < len(bounds) - 1))
        .unique()
    )
    contacted = firsts.select(
        "customer_id", pl.col("period").replace_strict(index, default=-1).alias("c")
    ).unique()
    orders = prepared.select("customer_id", "o", "amount_cents").sort("o")
    instants = orders.get_column("o")
    longest = max(horizons) * DAY_US
    out: dict[str, dict[str, Any]] = {}
    for m in months:
        c = index[m]
        bought_before = bought.filter(pl.col("slot").is_between(c - LOOKBACK_MONTHS, c - 1))
        members = (
            bought_before.select("customer_id")
            .unique()
            .join(
                contacted.filter(pl.col("c") == c).select("customer_id"),
                on="customer_id",
                how="anti",
            )
        )
        if members.height == 0:
            continue
        t0 = mids[m]
        first = int(instants.search_sorted(t0, side="right"))  # the first order after t0
        after = int(instants.search_sorted(t0 + longest, side="right"))
        placed = orders.slice(first, after - first).join(members, on="customer_id", how="semi")
        row: dict[str, Any] = {"c": c, "customers": members.height}
        for h in horizons:
            within = placed.filter(pl.col("o") <= t0 + h * DAY_US)
            row[f"sum{h}"] = int(within.get_column("amount_cents").sum())
            row[f"any{h}"] = within.get_column("customer_id").n_unique()
        out[m] = row
    return out


Tally = tuple[int, int, int]  # customers, order cents, active customers


def _tally(customers: int, cents: int | None, active: int | None) -> Tally:
    return int(customers), int(cents or 0), int(active or 0)


def _group(tally: Tally, compared: Tally | None) -> dict[str, Any]:
    """A group's figures, and its lift against the comparison group when given one."""
    n, cents, active = tally
    group: dict[str, Any] = {
        "customers": n,
        "orders_after": cents_str(cents),
        "active_after": ratio(active, n),
        "per_customer": per(cents, n),
    }
    if compared is not None:
        n_c, cents_c, active_c = compared
        if n and n_c:
            money = Fraction(cents, 100 * n) - Fraction(cents_c, 100 * n_c)
            share = Fraction(active, n) - Fraction(active_c, n_c)
            group["lift"] = {
                "per_customer": str(half_up(money, 2)),
                "active_after": float(half_up(share, 6)),
            }
        else:
            group["lift"] = {"per_customer": None, "active_after": None}
    return group
