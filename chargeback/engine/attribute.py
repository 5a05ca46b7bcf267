"""Attribution: which decision caused how much of each contact, and what it cost.

Order of operations (SPEC section 4), the one place to read the algorithm:

 1. Every contact has a local calendar date and a period (its month) in the
    workspace timezone, and a cost (costing.py): with `rates`, the channel's
    per-contact charge plus its per-minute charge times handle minutes; with
    `pool`, the month's pool spread over the month's contacts by handle time.
 2. For each rule, a contact is *matched* when every `match` key holds and its
    date falls inside the rule's window (effective + start_offset_days, for
    `days` days, never after the decision's `ends`).
 3. Baseline factor f(rule, month). Without a baseline, f = 1. With one, count
    B = contacts that satisfy the match in the `lookback_days` before the
    decision's effective date (window ignored); the expected background in a
    month is E = B / lookback_days x (days of that month inside the window);
    A = the month's matched contacts; f = max(0, A - E) / A. Only the excess
    over the old normal is charged to the decision.
 4. A rule's weight on a matched contact is share x f.
 5. Overlap. With `overlap: priority`, only the matched rules of the highest
    priority among all rules the contact matches are kept. Under either
    policy, a decision's weight on a contact is the largest weight among its
    kept rules.
 6. If a contact's decision weights add up to more than 1, each is divided by
    that sum, so no contact is charged more than once. Whatever weight is
    left (1 - the sum) belongs to the unattributed line.
 7. Per decision and month: contacts = sum of weights, handle minutes = sum of
    weight x minutes, cost = sum of weight x contact cost. These are exact
    fractions here; ledger.py rounds them to cents (largest remainder) so the
    month's lines add up exactly to the month's total cost.

Contacts that share a month, channel and set of matched rules get identical
weights, so the work is done once per such group (polars does the grouping);
the arithmetic on the groups is exact (fractions.Fraction), never binary float.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from fractions import Fraction

import polars as pl

from chargeback.engine.compile import baseline_expr, match_expr, window_bounds, window_expr
from chargeback.engine.costing import GroupCoster
from chargeback.engine.months import month_bounds
from chargeback.workspace.model import Rule, Workspace

MASK_BITS = 62  # rules per int64 mask column


@dataclass
class Amount:
    """Exact sums for one (period, decision) line."""

    contacts: Fraction = Fraction(0)
    hs_us: Fraction = Fraction(0)  # weighted handle time, microseconds
    cost: Fraction = Fraction(0)
    weighted: bool = False  # some contact carries weight > 0


@dataclass
class PeriodTotals:
    contacts: int = 0
    hs_us: int = 0
    cost: Fraction = Fraction(0)


@dataclass
class RuleStats:
    """What each rule did per month, for the statements' method section."""

    baseline_contacts: int | None = None  # B
    baseline_daily: Fraction | None = None  # b
    matched: dict[str, int] = field(default_factory=dict)  # A per period
    factor: dict[str, Fraction] = field(default_factory=dict)  # f per period


@dataclass
class Attribution:
    periods: dict[str, PeriodTotals]
    lines: dict[tuple[str, str], Amount]  # (period, decision_id)
    rules: dict[str, RuleStats]
    warnings: list[str]


def days_in_window(rule: Rule, first: date, last: date | None, period: str) -> int:
    """D: days of the period inside the rule's window."""
    start, end = month_bounds(period)
    lo = max(start, first)
    hi = end if last is None else min(end, last)
    return max(0, (hi - lo).days + 1)


def rule_masks(rules: tuple[Rule, ...], ws: Workspace) -> list[pl.Expr]:
    """Matched-rule sets packed as bits of int64 columns `_m0`, `_m1`, ..."""
    masks: list[pl.Expr] = []
    for start in range(0, len(rules), MASK_BITS):
        bits = [
            pl.when(match_expr(r.match) & window_expr(r, ws.decision(r.decision)))
            .then(pl.lit(1 << i, dtype=pl.Int64))
            .otherwise(pl.lit(0, dtype=pl.Int64))
            for i, r in enumerate(rules[start : start + MASK_BITS])
        ]
        masks.append(pl.sum_horizontal(bits).alias(f"_m{start // MASK_BITS}"))
    return masks


def decode_masks(values: list[int] | tuple[int, ...]) -> frozenset[int]:
    """The rule indexes whose bits are set in a row's `_m*` mask values."""
    return frozenset(
        chunk * MASK_BITS + bit
        for chunk, value in enumerate(values)
        for bit in range(MASK_BITS)
        if value >> bit & 1
    )


def rule_factors(ws: Workspace, attribution: Attribution) -> dict[tuple[int, str], Fraction]:
    """f(rule index, period) as attribute() computed it, for re-deriving weights."""
    return {
        (i, period): f
        for i, rule in enumerate(ws.rules)
        for period, f in attribution.rules[rule.id].factor.items()
    }


def with_text_lower(frame: pl.LazyFrame, ws: Workspace) -> pl.LazyFrame:
    if any(r.match.text is not None for r in ws.rules):
        return frame.with_columns(pl.col("text").str.to_lowercase().alias("text_lower"))
    return frame


def attribute(ws: Workspace, contacts: pl.DataFrame) -> Attribution:
    rules = ws.rules
    coster = GroupCoster(ws.costs)
    lf = with_text_lower(contacts.lazy(), ws)
    masks = rule_masks(rules, ws)
    mask_names = [f"_m{i}" for i in range(len(masks))]
    groups = (
        lf.select("period", "channel", "hs_us", *masks)
        .group_by("period", "channel", *mask_names)
        .agg(pl.len().alias("n"), pl.col("hs_us").cast(pl.Int128).sum().alias("hs"))
        .sort("period", "channel", *mask_names)
        .collect()
    )
    baseline_rules = [r for r in rules if r.baseline_lookback_days is not None]
    baseline_counts: dict[str, int] = {}
    if baseline_rules:
        counts = (
            lf.select(
                [
                    baseline_expr(r, ws.decision(r.decision)).sum().alias(f"_b{i}")
                    for i, r in enumerate(baseline_rules)
                ]
            )
            .collect()
            .row(0)
        )
        baseline_counts = {r.id: int(c or 0) for r, c in zip(baseline_rules, counts, strict=True)}

    # Step 1 (totals for pool spreading) and step 2 (matched sets) per group.
    totals: dict[str, PeriodTotals] = defaultdict(PeriodTotals)
    decoded: list[tuple[str, str, frozenset[int], int, int]] = []
    for row in groups.iter_rows():
        period, channel, *mask_values, n, hs = row
        matched = decode_masks(mask_values)
        decoded.append((period, channel, matched, int(n), int(hs)))
        totals[period].contacts += int(n)
        totals[period].hs_us += int(hs)

    # Step 3: A, D, E and f per rule and month.
    stats = {r.id: RuleStats() for r in rules}
    matched_count: dict[tuple[int, str], int] = defaultdict(int)
    for period, _, matched, n, _ in decoded:
        for i in matched:
            matched_count[i, period] += n
    factor: dict[tuple[int, str], Fraction] = {}
    for (i, period), a in matched_count.items():
        rule = rules[i]
        stats[rule.id].matched[period] = a
        f = Fraction(1)
        if rule.baseline_lookback_days is not None:
            b = Fraction(baseline_counts.get(rule.id, 0), rule.baseline_lookback_days)
            first, last = window_bounds(rule, ws.decision(rule.decision))
            expected = b * days_in_window(rule, first, last, period)
            f = max(Fraction(0), a - expected) / a
            stats[rule.id].baseline_contacts = baseline_counts.get(rule.id, 0)
            stats[rule.id].baseline_daily = b
        factor[i, period] = f
        stats[rule.id].factor[period] = f

    # Steps 4-7, once per distinct (month, matched set).
    weights_cache: dict[tuple[str, frozenset[int]], dict[str, Fraction]] = {}
    lines: dict[tuple[str, str], Amount] = defaultdict(Amount)
    for period, channel, matched, n, hs in decoded:
        cost = coster.group_cost(period, channel, n, hs, totals[period])
        totals[period].cost += cost
        if not matched:
            continue
        key = (period, matched)
        if key not in weights_cache:
            weights_cache[key] = decision_weights(ws, matched, period, factor)
        for decision_id, w in weights_cache[key].items():
            line = lines[period, decision_id]
            line.contacts += w * n
            line.hs_us += w * hs
            line.cost += w * cost
            line.weighted = line.weighted or w > 0
    return Attribution(
        periods=dict(totals), lines=dict(lines), rules=stats, warnings=coster.warnings()
    )


def decision_weights(
    ws: Workspace, matched: frozenset[int], period: str, factor: dict[tuple[int, str], Fraction]
) -> dict[str, Fraction]:
    """Steps 4-6 for one contact (or a group of identical ones)."""
    rules = ws.rules
    kept = sorted(matched)
    if ws.settings.overlap == "priority":
        top = max(rules[i].priority for i in kept)
        kept = [i for i in kept if rules[i].priority == top]
    weights: dict[str, Fraction] = {}
    for i in kept:
        rule = rules[i]
        w = Fraction(rule.share) * factor[i, period]
        if rule.decision not in weights or w > weights[rule.decision]:
            weights[rule.decision] = w
    total = sum(weights.values(), Fraction(0))
    if total > 1:
        weights = {d: w / total for d, w in weights.items()}
    return weights
