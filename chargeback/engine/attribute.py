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
    kept rules; where one of them has a control baseline, among its control
    rules only (a marker rule counts inside the excess, not on top of it).
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
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from functools import cache
from typing import Any

from chargeback.engine.aggregates import Aggregates, Group
from chargeback.engine.control_factor import CellKey, ControlResult, control_factors
from chargeback.engine.costing import GroupCoster, too_costly
from chargeback.engine.dates import days_in_window, window_bounds
from chargeback.errors import WorkspaceError
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
    # ... each control cell's fit and excess, and the factors SPEC 4b gives
    control: dict[frozenset[int], ControlResult] = field(default_factory=dict)
    cell_factors: dict[CellKey, Fraction] = field(default_factory=dict)
    # the groups it was computed from, so documents can reconcile matches to charges
    groups: tuple[Group, ...] = ()


@dataclass(frozen=True)
class Factors:
    """f(rule, month): per rule and month, or for control rules per cell and open windows."""

    flat: dict[tuple[int, str], Fraction]
    cells: dict[CellKey, Fraction] = field(default_factory=dict)
    # share x f of a rule without a control baseline, per month: the same for every group
    weighted: dict[tuple[int, str], Fraction] = field(default_factory=dict, compare=False)

    def of(
        self, ws: Workspace, i: int, period: str, matched: frozenset[int], cell: frozenset[int]
    ) -> Fraction:
        if ws.rules[i].control is None:
            return self.flat[i, period]
        open_rules = frozenset(j for j in matched if ws.rules[j].control is not None)
        return self.cells.get((i, period, cell, open_rules), Fraction(0))

    def weight(
        self, ws: Workspace, i: int, period: str, matched: frozenset[int], cell: frozenset[int]
    ) -> Fraction:
        """Step 4: share x f."""
        if ws.rules[i].control is not None:
            return _fraction(ws.rules[i].share) * self.of(ws, i, period, matched, cell)
        got = self.weighted.get((i, period))
        if got is None:
            got = self.weighted[i, period] = _fraction(ws.rules[i].share) * self.flat[i, period]
        return got


def rule_factors(ws: Workspace, attribution: Attribution) -> Factors:
    """The factors attribute() used, for re-deriving weights (evidence, explain, drill-down)."""
    flat = {
        (i, period): f
        for i, rule in enumerate(ws.rules)
        for period, f in attribution.rules[rule.id].factor.items()
    }
    return Factors(flat, attribution.cell_factors)


def attribute(ws: Workspace, aggregates: Aggregates) -> Attribution:
    """Steps 1 and 3-7 on the engine's grouped aggregates (step 2 is the engine's)."""
    rules = ws.rules
    coster = GroupCoster(ws.costs)
    baseline_counts = aggregates.baseline_counts
    decoded = [
        (g.period, g.channel, g.matched, g.contacts, g.handle_us, g.cell) for g in aggregates.groups
    ]

    # Step 1: totals for pool spreading.
    totals: dict[str, PeriodTotals] = defaultdict(PeriodTotals)
    for period, _, _, n, hs, _ in decoded:
        totals[period].contacts += n
        totals[period].hs_us += hs

    # Step 3: A, D, E and f per rule and month.
    stats = {r.id: RuleStats() for r in rules}
    matched_count: dict[tuple[int, str], int] = defaultdict(int)
    for period, _, matched, n, _, _ in decoded:
        for i in matched:
            matched_count[i, period] += n
    factor: dict[tuple[int, str], Fraction] = {}
    control = control_factors(ws, aggregates)
    effective: dict[tuple[int, str], Fraction] = defaultdict(Fraction)  # control: sum f x n
    for g in aggregates.groups:
        for i in g.matched:
            if rules[i].control is not None:
                key = (i, g.period, g.cell, frozenset(j for j in g.matched if rules[j].control))
                effective[i, g.period] += control.factor.get(key, Fraction(0)) * g.contacts
    for (i, period), a in matched_count.items():
        rule = rules[i]
        stats[rule.id].matched[period] = a
        # a control rule's factor varies by cell: the month's figure is their average
        f = effective[i, period] / a if rule.control is not None else Fraction(1)
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
    for period, channel, _, n, hs, _ in decoded:
        cost = coster.group_cost(period, channel, n, hs, totals[period])
        totals[period].cost += cost
        costs.append(cost)
    unpayable = too_costly(ws.costs, {period: t.cost for period, t in totals.items()})
    if unpayable:
        raise WorkspaceError(unpayable)
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
        warnings=coster.warnings()
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
    """SPEC 4b: a range wider than +/-50% of its central excess, said per month."""
    months = sorted({key[:7] for key, got in result.excess.items() if got.actual and got.wide})
    return [
        f"the {float(result.level):.0%} range of the excess in {m} is wider than +/-50% of it"
        for m in months
    ]


def _amounts(
    ws: Workspace,
    decoded: list[tuple[str, str, frozenset[int], int, int, frozenset[int]]],
    costs: list[Fraction],
    factors: Factors,
) -> dict[tuple[str, str], Amount]:
    """Step 7: each line's exact contacts, handle time and cost under these factors.

    Groups that differ only by channel share their weights, so their contacts,
    handle time and cost are summed first (weights are linear). The products are
    then summed as integers over each weight's denominator and turned into one
    Fraction per line at the end: exact, and without a gcd per group and line
    (at 300 rules and 3M contacts, 112,000 groups: 10 s of Fraction arithmetic).
    """
    sums: dict[tuple[str, frozenset[int], frozenset[int]], list[Any]] = {}
    for (period, _, matched, n, hs, cell), cost in zip(decoded, costs, strict=True):
        if not matched:
            continue
        key = (period, matched, cell)
        got = sums.get(key)
        if got is None:
            sums[key] = [n, hs, cost.numerator, cost.denominator]
            continue
        got[0] += n
        got[1] += hs
        if got[3] == cost.denominator:  # rates: one denominator for a month's costs
            got[2] += cost.numerator
        else:
            total = Fraction(got[2], got[3]) + cost
            got[2], got[3] = total.numerator, total.denominator
    # (period, decision) -> denominator -> [contacts, handle time, cost] numerators
    parts: dict[tuple[str, str], dict[int, list[int]]] = defaultdict(dict)
    weighted: set[tuple[str, str]] = set()
    for (period, matched, cell), (n, hs, c_num, c_den) in sums.items():
        for decision_id, w in decision_weights(ws, matched, period, factors, cell).items():
            line = (period, decision_id)
            if w > 0:
                weighted.add(line)
            by_den = parts[line]
            num, den = w.numerator, w.denominator
            acc = by_den.setdefault(den, [0, 0, 0])
            acc[0] += num * n
            acc[1] += num * hs
            costs_acc = by_den.setdefault(-den * c_den, [0, 0, 0])  # cost: w x c's denominator
            costs_acc[2] += num * c_num
    lines: dict[tuple[str, str], Amount] = {}
    for line, by_den in parts.items():
        amount = Amount(weighted=line in weighted)
        for den, (contacts, hs_num, cost_num) in by_den.items():
            if den > 0:
                amount.contacts += Fraction(contacts, den)
                amount.hs_us += Fraction(hs_num, den)
            else:
                amount.cost += Fraction(cost_num, -den)
        lines[line] = amount
    return lines


@cache
def _fraction(share: Decimal) -> Fraction:
    """A rule's share as a Fraction, converted once (not once per group)."""
    return Fraction(share)


def counted(ws: Workspace, kept: Iterable[int]) -> list[int]:
    """The kept rules whose weight counts: where a decision's control rule matches a
    contact, its other rules (markers) count inside that excess, not on top of it."""
    kept = sorted(kept)
    controlled = {ws.rules[i].decision for i in kept if ws.rules[i].control is not None}
    return [
        i
        for i in kept
        if ws.rules[i].control is not None or ws.rules[i].decision not in controlled
    ]


def decision_weights(
    ws: Workspace,
    matched: frozenset[int],
    period: str,
    factors: Factors,
    cell: frozenset[int] = frozenset(),
) -> dict[str, Fraction]:
    """Steps 4-6 for one contact (or a group of identical ones)."""
    rules = ws.rules
    kept = sorted(matched)
    if ws.settings.overlap == "priority":
        top = max(rules[i].priority for i in kept)
        kept = [i for i in kept if rules[i].priority == top]
    weights: dict[str, Fraction] = {}
    for i in counted(ws, kept):
        rule = rules[i]
        w = factors.weight(ws, i, period, matched, cell)
        if rule.decision not in weights or w > weights[rule.decision]:
            weights[rule.decision] = w
    total = sum(weights.values(), Fraction(0))
    if total > 1:
        weights = {d: w / total for d, w in weights.items()}
    return weights
