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
    With `baseline: {method: control}` (SPEC 4b), f = X / A instead, where X
    is the month's excess over a control series fitted on the months before
    (control_factor.py, control.py); the range's low and high X give each
    line touched by such a rule a low and a high amount, through steps 4-7.
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
weights, so the work is done once per such group. An engine does step 2 where
the contacts are and hands over only the groups (aggregates.py is that seam;
polars_engine.py the embedded engine); the arithmetic on the groups here is
exact (fractions.Fraction), never binary float.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from fractions import Fraction

from chargeback.engine.aggregates import Aggregates
from chargeback.engine.control_factor import ControlResult, control_factors
from chargeback.engine.costing import GroupCoster
from chargeback.engine.dates import days_in_window, window_bounds
from chargeback.workspace.model import Workspace


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
    # SPEC 4b: (low, high) amounts of the lines a control rule weighs on ...
    ranges: dict[tuple[str, str], tuple[Amount, Amount]] = field(default_factory=dict)
    # ... and each control rule's fit and monthly excess
    control: dict[str, ControlResult] = field(default_factory=dict)


def rule_factors(ws: Workspace, attribution: Attribution) -> dict[tuple[int, str], Fraction]:
    """f(rule index, period) as attribute() computed it, for re-deriving weights."""
    return {
        (i, period): f
        for i, rule in enumerate(ws.rules)
        for period, f in attribution.rules[rule.id].factor.items()
    }


def attribute(ws: Workspace, aggregates: Aggregates) -> Attribution:
    """Steps 1 and 3-7 on the engine's grouped aggregates (step 2 is the engine's)."""
    rules = ws.rules
    coster = GroupCoster(ws.costs)
    baseline_counts = aggregates.baseline_counts
    decoded = [(g.period, g.channel, g.matched, g.contacts, g.handle_us) for g in aggregates.groups]

    # Step 1: totals for pool spreading.
    totals: dict[str, PeriodTotals] = defaultdict(PeriodTotals)
    for period, _, _, n, hs in decoded:
        totals[period].contacts += n
        totals[period].hs_us += hs

    # Step 3: A, D, E and f per rule and month.
    stats = {r.id: RuleStats() for r in rules}
    matched_count: dict[tuple[int, str], int] = defaultdict(int)
    for period, _, matched, n, _ in decoded:
        for i in matched:
            matched_count[i, period] += n
    factor: dict[tuple[int, str], Fraction] = {}
    controlled, ranges, fits = control_factors(ws, aggregates, matched_count)
    for (i, period), a in matched_count.items():
        rule = rules[i]
        stats[rule.id].matched[period] = a
        f = controlled.get((i, period), Fraction(1))
        if rule.baseline_lookback_days is not None:
            b = Fraction(baseline_counts.get(rule.id, 0), rule.baseline_lookback_days)
            first, last = window_bounds(rule, ws.decision(rule.decision))
            expected = b * days_in_window(first, last, period)
            f = max(Fraction(0), a - expected) / a
            stats[rule.id].baseline_contacts = baseline_counts.get(rule.id, 0)
            stats[rule.id].baseline_daily = b
        factor[i, period] = f
        stats[rule.id].factor[period] = f

    # Steps 4-7, once per distinct (month, matched set).
    costs = []
    for period, channel, _, n, hs in decoded:
        cost = coster.group_cost(period, channel, n, hs, totals[period])
        totals[period].cost += cost
        costs.append(cost)
    lines = _amounts(ws, decoded, costs, factor)
    line_ranges: dict[tuple[str, str], tuple[Amount, Amount]] = {}
    if ranges:
        low = _amounts(ws, decoded, costs, {**factor, **{k: r[0] for k, r in ranges.items()}})
        high = _amounts(ws, decoded, costs, {**factor, **{k: r[1] for k, r in ranges.items()}})
        for i, period in ranges:
            key = (period, rules[i].decision)
            if key in lines:
                line_ranges[key] = (low.get(key, Amount()), high.get(key, Amount()))
    return Attribution(
        periods=dict(totals),
        lines=lines,
        rules=stats,
        warnings=coster.warnings()
        + [f"rule '{rid}': {w}" for rid, res in fits.items() for w in res.fit.warnings],
        ranges=line_ranges,
        control=fits,
    )


def _amounts(
    ws: Workspace,
    decoded: list[tuple[str, str, frozenset[int], int, int]],
    costs: list[Fraction],
    factor: dict[tuple[int, str], Fraction],
) -> dict[tuple[str, str], Amount]:
    """Step 7: each line's exact contacts, handle time and cost under these factors."""
    weights_cache: dict[tuple[str, frozenset[int]], dict[str, Fraction]] = {}
    lines: dict[tuple[str, str], Amount] = defaultdict(Amount)
    for (period, _, matched, n, hs), cost in zip(decoded, costs, strict=True):
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
    return dict(lines)


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
