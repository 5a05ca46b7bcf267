"""Units of the CS-value figures: whole cents, shares, exact instants.

Shared by the monthly metrics (value.py) and the follow-up ones
(value_after.py), so both round and compare time the same way.
"""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import polars as pl

from chargeback.engine.ledger import half_up

DAY_US = 86_400_000_000
MIN_US = -(2**62)  # before any instant
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

    The data layer reads money as an exact Decimal(38, 9) from the text as written
    (chargeback.data.checks), so the rounding sees the .5 the export meant, and its
    limits keep every sum of cents inside 64 bits. (A float column, in a frame built
    by hand, is taken at its value rounded to 9 decimals.)
    """
    exact = pl.col(column).cast(pl.Decimal(38, 9), strict=False)
    return (exact * 100).round(0, mode="half_away_from_zero").cast(pl.Int64)


def parse_cents(text: str) -> int:
    return int(Decimal(text) * 100)


def order_instants(orders: pl.DataFrame, tz: str) -> pl.DataFrame:
    """Orders as (customer_id, exact instant `o`, whole cents)."""
    return orders.select(
        "customer_id", instant(tz).alias("o"), money_cents("amount").alias("amount_cents")
    )
