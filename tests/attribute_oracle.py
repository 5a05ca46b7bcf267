"""attribute() as it was before issue 15's rule-count work, frozen: the identity oracle.

The engine's attribute() now sums groups as integers over common denominators
and weighs each (month, decision, weight) once (engine/weigh.py). This copy of
the previous algorithm (one decision_weights and one Fraction cost per group)
is what tests/test_attribute_identity.py holds it to, exactly: every Fraction
of every line, period and rule. Do not speed it up; it is the reference.
"""

from __future__ import annotations

from collections import defaultdict
from fractions import Fraction
from typing import Any

from chargeback.engine.aggregates import Aggregates
from chargeback.engine.attribute import Amount, Attribution, PeriodTotals, RuleStats
from chargeback.engine.control_factor import CellKey, ControlResult, control_factors
from chargeback.engine.dates import days_in_window, window_bounds
from chargeback.workspace.model import Costs, Workspace

US_PER_MINUTE = 60_000_000


def _group_cost(
    costs: Costs, period: str, channel: str, n: int, hs: int, t: PeriodTotals, empty: set[str]
) -> Fraction:
    if costs.method == "pool":
        pool = Fraction(costs.pool_for(period))
        if pool == 0:
            empty.add(period)
        if t.hs_us > 0:
            return pool * hs / t.hs_us
        return pool * n / t.contacts
    rate = costs.rate_for(channel)
    if rate is None:
        return Fraction(0)
    return Fraction(rate.per_contact) * n + Fraction(rate.per_minute) * Fraction(hs, US_PER_MINUTE)


def oracle_attribute(ws: Workspace, aggregates: Aggregates) -> Attribution:
    """Steps 1 and 3-7 as before, warnings included."""
    rules = ws.rules
    decoded = [
        (g.period, g.channel, g.matched, g.contacts, g.handle_us, g.cell) for g in aggregates.groups
    ]
    totals: dict[str, PeriodTotals] = defaultdict(PeriodTotals)
    for period, _, _, n, hs, _ in decoded:
        totals[period].contacts += n
        totals[period].hs_us += hs
    stats = {r.id: RuleStats() for r in rules}
    matched_count: dict[tuple[int, str], int] = defaultdict(int)
    for period, _, matched, n, _, _ in decoded:
        for i in matched:
            matched_count[i, period] += n
    factor: dict[tuple[int, str], Fraction] = {}
    control = control_factors(ws, aggregates)
    effective: dict[tuple[int, str], Fraction] = defaultdict(Fraction)
    for g in aggregates.groups:
        for i in g.matched:
            if rules[i].control is not None:
                key = (i, g.period, g.cell, frozenset(j for j in g.matched if rules[j].control))
                effective[i, g.period] += control.factor.get(key, Fraction(0)) * g.contacts
    for (i, period), a in matched_count.items():
        rule = rules[i]
        stats[rule.id].matched[period] = a
        f = effective[i, period] / a if rule.control is not None else Fraction(1)
        if rule.baseline_lookback_days is not None:
            b = Fraction(aggregates.baseline_counts.get(rule.id, 0), rule.baseline_lookback_days)
            first, last = window_bounds(rule, ws.decision(rule.decision))
            expected = b * days_in_window(first, last, period)
            f = max(Fraction(0), a - expected) / a
            stats[rule.id].baseline_contacts = aggregates.baseline_counts.get(rule.id, 0)
            stats[rule.id].baseline_daily = b
        factor[i, period] = f
        stats[rule.id].factor[period] = f
    costs = []
    empty: set[str] = set()
    for period, channel, _, n, hs, _ in decoded:
        cost = _group_cost(ws.costs, period, channel, n, hs, totals[period], empty)
        totals[period].cost += cost
        costs.append(cost)
    lines = _amounts(ws, decoded, costs, Factors(factor, control.factor))
    line_ranges: dict[tuple[str, str], tuple[Amount, Amount]] = {}
    if control.factor:
        low = _amounts(ws, decoded, costs, Factors(factor, control.low))
        high = _amounts(ws, decoded, costs, Factors(factor, control.high))
        for i, period, _, _ in control.factor:
            line = (period, rules[i].decision)
            if line in lines:
                line_ranges[line] = (low.get(line, Amount()), high.get(line, Amount()))
    return Attribution(
        periods=dict(totals),
        lines=lines,
        rules=stats,
        warnings=([f"the cost pool is 0 for {', '.join(sorted(empty))}"] if empty else [])
        + [
            f"control baseline of {', '.join(repr(rules[i].id) for i in sorted(cell))}: {w}"
            for cell, res in control.results.items()
            for w in [*res.fit.warnings, *_wide(res)]
        ],
        ranges=line_ranges,
        control=control.results,
        cell_factors=control.factor,
        groups=aggregates.groups,
    )


def _wide(result: ControlResult) -> list[str]:
    months = sorted({key[:7] for key, got in result.excess.items() if got.actual and got.wide})
    return [
        f"the {float(result.level):.0%} range of the excess in {m} is wider than +/-50% of it"
        for m in months
    ]


class Factors:
    """f(rule, month), and per control cell."""

    def __init__(self, flat: dict[tuple[int, str], Fraction], cells: dict[CellKey, Fraction]):
        self.flat = flat
        self.cells = cells


def _counted(ws: Workspace, kept: list[int]) -> list[int]:
    controlled = {ws.rules[i].decision for i in kept if ws.rules[i].control is not None}
    return [
        i
        for i in sorted(kept)
        if ws.rules[i].control is not None or ws.rules[i].decision not in controlled
    ]


def _amounts(
    ws: Workspace,
    decoded: list[tuple[str, str, frozenset[int], int, int, frozenset[int]]],
    costs: list[Fraction],
    factors: Factors,
) -> dict[tuple[str, str], Amount]:
    """Per (month, matched, cell), once: its weights, times its summed contacts and cost."""
    sums: dict[tuple[str, frozenset[int], frozenset[int]], list[Any]] = {}
    for (period, _, matched, n, hs, cell), cost in zip(decoded, costs, strict=True):
        if not matched:
            continue
        key = (period, matched, cell)
        got = sums.setdefault(key, [0, 0, Fraction(0)])
        got[0] += n
        got[1] += hs
        got[2] += cost
    lines: dict[tuple[str, str], Amount] = {}
    for (period, matched, cell), (n, hs, cost) in sums.items():
        for decision_id, w in _decision_weights(ws, matched, period, factors, cell).items():
            amount = lines.setdefault((period, decision_id), Amount())
            amount.weighted = amount.weighted or w > 0
            amount.contacts += w * n
            amount.hs_us += w * hs
            amount.cost += w * cost
    return lines


def _decision_weights(
    ws: Workspace,
    matched: frozenset[int],
    period: str,
    factors: Factors,
    cell: frozenset[int],
) -> dict[str, Fraction]:
    """Steps 4-6 for one contact."""
    rules = ws.rules
    kept = sorted(matched)
    if ws.settings.overlap == "priority":
        top = max(rules[i].priority for i in kept)
        kept = [i for i in kept if rules[i].priority == top]
    weights: dict[str, Fraction] = {}
    for i in _counted(ws, kept):
        rule = rules[i]
        if rule.control is not None:
            open_rules = frozenset(j for j in matched if rules[j].control is not None)
            f = factors.cells.get((i, period, cell, open_rules), Fraction(0))
            w = Fraction(rule.share) * f
        else:
            w = Fraction(rule.share) * factors.flat[i, period]
        if rule.decision not in weights or w > weights[rule.decision]:
            weights[rule.decision] = w
    total = sum(weights.values(), Fraction(0))
    if total > 1:
        weights = {d: w / total for d, w in weights.items()}
    return weights
