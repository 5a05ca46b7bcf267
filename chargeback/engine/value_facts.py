"""What the CS-value report needs from the contacts, as grouped rows (SPEC 7, SPEC 10).

The report's arithmetic (value.py, value_after.py, value_cohorts.py) reads only
these: counts and handle sums per (month, channel), sales, saves and revenue
won per month, the repeat flags' counts and sums, and two per-customer tables
that must meet the orders (each customer's first contact of a month, and every
saved contact). `facts_from_frame` computes them with polars from the read-out
frame; engine/pushdown_value.py computes the very same rows in the engine, so
both paths share one code path for the money and cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import polars as pl

from chargeback.engine.value_units import DAY_US, NO_OUTCOME, instant, money_cents
from chargeback.workspace.model import Workspace

NO_REASON = "(no reason)"
OPTIONAL = ("customer_id", "outcome", "revenue")
Types = Mapping[str, pl.DataType | type[pl.DataType]]


@dataclass
class ContactFacts:
    """The contacts as the CS-value report reads them; frames are None when `has` lacks
    what they need. Customer ids are text, instants exact UTC microseconds."""

    has: frozenset[str]  # of OPTIONAL: the columns holding at least one value
    first_period: str | None  # the earliest month with contacts (None: no contacts)
    by_channel: pl.DataFrame  # period, channel, n, hs
    won: pl.DataFrame | None  # period, sales, saves, won (sales' revenue cents; outcome)
    saved: pl.DataFrame | None  # period, customer_id, t: saves with a customer
    repeat_base: pl.DataFrame | None  # period, with_customer, repeats (customer_id)
    repeat_reasons: pl.DataFrame | None  # period, reason, n, r
    repeat_groups: pl.DataFrame | None  # period, reason, channel, n, hs of repeats
    firsts: pl.DataFrame | None  # period, customer_id, t0, outcome: first contact a month


BY_CHANNEL = {"period": pl.String, "channel": pl.String, "n": pl.Int64, "hs": pl.Int128}
WON = {"period": pl.String, "sales": pl.Int64, "saves": pl.Int64, "won": pl.Int64}
SAVED = {"period": pl.String, "customer_id": pl.String, "t": pl.Int64}
REPEAT_BASE = {"period": pl.String, "with_customer": pl.Int64, "repeats": pl.Int64}
REPEAT_REASONS = {"period": pl.String, "reason": pl.String, "n": pl.Int64, "r": pl.Int64}
REPEAT_GROUPS = {
    "period": pl.String,
    "reason": pl.String,
    "channel": pl.String,
    "n": pl.Int64,
    "hs": pl.Int128,
}
FIRSTS = {"period": pl.String, "customer_id": pl.String, "t0": pl.Int64, "outcome": pl.String}


def _has_values(frame: pl.DataFrame, column: str) -> bool:
    return column in frame.columns and frame.get_column(column).null_count() < frame.height


def facts_from_frame(ws: Workspace, contacts: pl.DataFrame, orders: bool = True) -> ContactFacts:
    """The read-out path: the facts from the contacts frame, with polars. `orders`: the
    run has orders, so the per-customer tables that meet them are wanted."""
    settings = ws.settings.value
    has = frozenset(c for c in OPTIONAL if _has_values(contacts, c))
    frame = contacts.select(
        "contact_id",
        "period",
        "channel",
        pl.col("reason").fill_null(NO_REASON)
        if "reason" in contacts.columns
        else pl.lit(NO_REASON).alias("reason"),
        "hs_us",
        instant(ws.settings.timezone).alias("t"),
        pl.col("customer_id").cast(pl.String)
        if "customer_id" in has
        else pl.lit(None, dtype=pl.String).alias("customer_id"),
        pl.col("outcome") if "outcome" in has else pl.lit(None, dtype=pl.String).alias("outcome"),
        money_cents("revenue").alias("revenue_cents")
        if "revenue" in has
        else pl.lit(None, dtype=pl.Int64).alias("revenue_cents"),
    )
    by_channel = frame.group_by("period", "channel").agg(
        pl.len().alias("n"), pl.col("hs_us").cast(pl.Int128).sum().alias("hs")
    )
    first = None if frame.height == 0 else str(frame.get_column("period").min())
    won = saved = base = reasons = groups = firsts = None
    if "outcome" in has:
        sale = pl.col("outcome").is_in(list(settings.sale_outcomes))
        save = pl.col("outcome").is_in(list(settings.save_outcomes))
        won = frame.group_by("period").agg(
            sale.sum().alias("sales"),
            save.sum().alias("saves"),
            pl.when(sale).then(pl.col("revenue_cents")).sum().alias("won"),
        )
        if "customer_id" in has and orders:
            saved = frame.filter(save & pl.col("customer_id").is_not_null()).select(
                "period", "customer_id", "t"
            )
    if "customer_id" in has:
        base, reasons, groups = _repeats(frame, settings.repeat_window_days)
    if "customer_id" in has and orders:
        firsts = (
            frame.filter(pl.col("customer_id").is_not_null())
            .sort("t", "contact_id")
            .group_by("period", "customer_id", maintain_order=True)
            .first()
            .select(
                "period",
                "customer_id",
                pl.col("t").alias("t0"),
                pl.col("outcome").fill_null(NO_OUTCOME),
            )
        )
    return ContactFacts(
        has=has,
        first_period=first,
        by_channel=_typed(by_channel, BY_CHANNEL),
        won=None if won is None else _typed(won, WON),
        saved=None if saved is None else _typed(saved, SAVED),
        repeat_base=None if base is None else _typed(base, REPEAT_BASE),
        repeat_reasons=None if reasons is None else _typed(reasons, REPEAT_REASONS),
        repeat_groups=None if groups is None else _typed(groups, REPEAT_GROUPS),
        firsts=None if firsts is None else _typed(firsts, FIRSTS),
    )


def _repeats(
    frame: pl.DataFrame, window_days: int
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    # The latest strictly earlier contact of the same customer. Sorted by customer
    # and time, that is the row before, except inside a run of equal instants
    # (ties are not "earlier"): those rows are blanked and filled forward from the
    # run's first row. A customer's first row gets a -1 marker (no earlier
    # contact) so the fill never reaches back into the previous customer (an
    # earlier contact before 1970 counts as none: engine/pushdown_value.py copies
    # that). Customers as integer codes: sorting 3M ids as text is far slower. No
    # window functions: over() on many small groups is far slower here.
    code = pl.col("customer_id").cast(pl.Categorical).to_physical().alias("cust")
    previous = pl.col("t").shift(1)
    same = (pl.col("cust") == pl.col("cust").shift(1)).fill_null(False)
    within = pl.col("t") - pl.col("prev") < window_days * DAY_US
    flagged = (
        frame.filter(pl.col("customer_id").is_not_null())
        .with_columns(code)
        .sort("cust", "t")
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
    reasons = flagged.group_by("period", "reason").agg(
        pl.len().alias("n"), pl.col("repeat").sum().alias("r")
    )
    groups = (
        flagged.filter(pl.col("repeat"))
        .group_by("period", "reason", "channel")
        .agg(pl.len().alias("n"), pl.col("hs_us").cast(pl.Int128).sum().alias("hs"))
    )
    return base, reasons, groups


def _typed(frame: pl.DataFrame, schema: Types) -> pl.DataFrame:
    return frame.select([pl.col(n).cast(t) for n, t in schema.items()])


def facts_frame(rows: list[tuple[Any, ...]], schema: Types) -> pl.DataFrame:
    """Grouped rows from an engine, typed as facts_from_frame types them (PostgreSQL's
    sums of bigints come as exact Decimals: whole numbers, taken as ints)."""
    fixed = [tuple(int(v) if isinstance(v, Decimal) else v for v in row) for row in rows]
    return pl.DataFrame(fixed, schema=dict(schema), orient="row")
