"""Every contact's weight and cost per decision: SPEC 5's drill-down.

The ledger needs only sums per group (attribute.py); finance and BI tools also
want the contacts a department paid for. A contact's weights depend only on its
month and matched rules, so they are computed once per distinct (month, rule
masks) in exact fractions (attribute.decision_weights) and joined back to the
contacts. A contact's cost is linear in its handle time (costing.py), so its
cost on one decision is w x (F0 + F1 x handle microseconds): that is rounded
half-up exactly in polars Int128 integer arithmetic, once per contact, with
Python fractions taking over only where the integers could overflow. Nothing is
rounded through a binary float; the weight column is a float of the 9-decimal
half-up value.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from fractions import Fraction
from math import lcm

import polars as pl

from chargeback.engine.attribute import (
    Attribution,
    Factors,
    PeriodTotals,
    decision_weights,
    rule_factors,
)
from chargeback.engine.costing import GroupCoster
from chargeback.engine.ledger import UNATTRIBUTED, half_up
from chargeback.engine.polars_engine import MatchBits, decode_group
from chargeback.workspace.model import Workspace

COLUMNS = ("contact_id", "period", "department_id", "decision_id", "weight", "cost")
WEIGHT_PLACES = 9
COST_PLACES = 6
COST_DTYPE = pl.Decimal(38, COST_PLACES)
MICRO = pl.lit(Decimal(1).scaleb(-COST_PLACES), dtype=COST_DTYPE)  # exact: micro-units to money
INT128_ROOM = 1 << 126  # every intermediate stays below this (Int128 holds up to 2**127 - 1)
_CONSTANTS = ("_a0", "_a1", "_b0", "_b1", "_e")


def rounding_terms(w: Fraction, f0: Fraction, f1: Fraction) -> tuple[int, int, int, int, int]:
    """Integers with floor(w x (f0 + f1 x hs) x 10**6 + 1/2) = a0 + a1 hs + (b0 + b1 hs) // e.

    That is the cost rounded half-up to micro-units (costs are never negative);
    the split keeps the one division's operands below e x (1 + hs).
    """
    scale = 10**COST_PLACES
    t0 = w * f0 * scale + Fraction(1, 2)
    t1 = w * f1 * scale
    e = lcm(t0.denominator, t1.denominator)
    a0, b0 = divmod(t0.numerator * (e // t0.denominator), e)
    a1, b1 = divmod(t1.numerator * (e // t1.denominator), e)
    return a0, a1, b0, b1, e


def micro_cost(w: Fraction, f0: Fraction, f1: Fraction, hs_us: int) -> int:
    """The same rounding in Python fractions, for the rare terms too large for Int128."""
    exact = w * (f0 + f1 * hs_us) * 10**COST_PLACES + Fraction(1, 2)
    return int(exact.numerator // exact.denominator)


def _unit_cost(
    coster: GroupCoster, period: str, channel: str, totals: PeriodTotals
) -> tuple[Fraction, Fraction]:
    """One contact's cost as f0 + f1 x its handle microseconds (linear for rates and pool)."""
    f0 = coster.group_cost(period, channel, 1, 0, totals)
    return f0, coster.group_cost(period, channel, 1, 1, totals) - f0


def contact_attributions(
    ws: Workspace, contacts: pl.DataFrame, attribution: Attribution, periods: Sequence[str]
) -> pl.DataFrame:
    """SPEC 5's rows for the contacts of `periods`: one per decision with weight > 0, plus the rest.

    Sorted by period, then the contacts' order in the data, then department_id
    and decision_id (the rest sorting as `unattributed`).
    """
    # every rule's match as bits, once (engine/masks.py): the windowed masks and the cell
    bits = MatchBits(ws, contacts.filter(pl.col("period").is_in(list(periods))), ("contact_id",))
    cell, names = bits.cell()
    keys = ["period", "channel", *names]
    frame = (
        bits.frame.lazy()
        .with_row_index("_seq")
        .select(
            "_seq",
            pl.col("contact_id").cast(pl.String),
            *keys[:2],
            "hs_us",
            *bits.windowed,
            *cell,
        )
        .collect()
    )
    table, in_python = _parts(ws, attribution, frame, keys)
    hs = pl.col("hs_us").cast(pl.Int128)
    whole = pl.col("_a0") + pl.col("_a1") * hs
    rows = (
        frame.lazy()
        .join(table.lazy(), on=keys, how="inner")
        .with_columns(
            (whole + (pl.col("_b0") + pl.col("_b1") * hs) // pl.col("_e")).alias("_micro")
        )
    )
    if in_python:
        rows = _costs_in_python(rows, in_python)
    order = ["_period", "_seq", "_line"]
    cost = (pl.col("_micro").cast(COST_DTYPE) * MICRO).cast(COST_DTYPE).alias("cost")
    return rows.select(*order, *COLUMNS[:-1], cost).sort(order).drop(order).collect()


def _parts(
    ws: Workspace, attribution: Attribution, frame: pl.DataFrame, keys: list[str]
) -> tuple[pl.DataFrame, list[tuple[Fraction, Fraction, Fraction]]]:
    """Per distinct (period, channel, masks): each row's weight and its cost's integer terms.

    Also the (weight, f0, f1) of the parts whose terms do not fit Int128 (their
    `_part` indexes that list; -1 elsewhere), and integer sort keys for the
    period and the (department_id, decision_id) line.
    """
    hs_max = int(frame.select(pl.col("hs_us").max().fill_null(0)).item())
    factor = rule_factors(ws, attribution)
    coster = GroupCoster(ws.costs)  # its own: the run's coster already gave its warnings
    lines = sorted({(d.department, d.id) for d in ws.decisions} | {(UNATTRIBUTED, UNATTRIBUTED)})
    line_order = {line: i for i, line in enumerate(lines)}
    period_order = {p: i for i, p in enumerate(sorted(attribution.periods))}
    weights: dict[tuple[str, tuple[int, ...]], list[tuple[str, str, Fraction]]] = {}
    parts: list[tuple[object, ...]] = []
    in_python: list[tuple[Fraction, Fraction, Fraction]] = []
    for period, channel, *values in frame.select(keys).unique().iter_rows():
        mask_key = (period, tuple(values))
        if mask_key not in weights:
            weights[mask_key] = _weights(ws, *decode_group(ws, values), period, factor)
        f0, f1 = _unit_cost(coster, period, channel, attribution.periods[period])
        for department, decision, w in weights[mask_key]:
            terms = rounding_terms(w, f0, f1)
            part = -1
            a0, a1, _, _, e = terms
            if a0 + a1 * hs_max + e * (hs_max + 1) >= INT128_ROOM:  # b0, b1 < e
                part, terms = len(in_python), (0, 0, 0, 0, 1)
                in_python.append((w, f0, f1))
            weight = float(half_up(w, WEIGHT_PLACES))
            order = (period_order[period], line_order[department, decision])
            parts.append((period, channel, *values, department, decision, weight, *order, part))
            parts[-1] += terms
    schema: dict[str, pl.DataType] = {
        **{k: frame.schema[k] for k in keys},
        "department_id": pl.String(),
        "decision_id": pl.String(),
        "weight": pl.Float64(),
        "_period": pl.Int32(),
        "_line": pl.Int32(),
        "_part": pl.Int64(),
        **dict.fromkeys(_CONSTANTS, pl.Int128()),
    }
    return pl.DataFrame(parts, schema=schema, orient="row"), in_python


def _weights(
    ws: Workspace, matched: frozenset[int], cell: frozenset[int], period: str, factor: Factors
) -> list[tuple[str, str, Fraction]]:
    """(department, decision, weight) for weights > 0, then the unattributed rest when > 0."""
    by_decision = decision_weights(ws, matched, period, factor, cell) if matched else {}
    out = [
        (ws.decision(decision).department, decision, w)
        for decision, w in by_decision.items()
        if w > 0
    ]
    rest = 1 - sum(by_decision.values(), Fraction(0))
    if rest > 0:
        out.append((UNATTRIBUTED, UNATTRIBUTED, rest))
    return out


def _costs_in_python(
    rows: pl.LazyFrame, in_python: list[tuple[Fraction, Fraction, Fraction]]
) -> pl.LazyFrame:
    """Costs whose integers would overflow Int128, per distinct (part, handle time)."""
    wanted = rows.filter(pl.col("_part") >= 0).select("_part", "hs_us").unique().collect()
    costs = []
    for part, hs in wanted.iter_rows():
        w, f0, f1 = in_python[part]
        costs.append((part, hs, micro_cost(w, f0, f1, hs)))
    exact = pl.DataFrame(
        costs,
        schema={"_part": pl.Int64, "hs_us": pl.Int64, "_exact": pl.Int128},
        orient="row",
    )
    return rows.join(exact.lazy(), on=["_part", "hs_us"], how="left").with_columns(
        pl.coalesce("_exact", "_micro").alias("_micro")
    )
