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
exact (fractions.Fraction and integers over common denominators), never binary
float. Steps 4-6 for one contact are weights.py's decision_weights; amounts.py
does steps 1 and 4-7 for every group at once, with the same exact results, so
that hundreds of rules do not cost a Fraction per group; columnar.py does the
same on the groups' integer columns (no Python object per group or key) where
no rule has a control baseline and the sums fit in 64 bits.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction

from chargeback.engine.aggregates import Aggregates, Group, no_cycle_collection
from chargeback.engine.amounts import sum_groups, weigh
from chargeback.engine.columnar import summed, weigh_columns
from chargeback.engine.control_factor import CellKey, ControlResult, control_factors
from chargeback.engine.costing import GroupCoster, too_costly
from chargeback.engine.dates import days_in_window, window_bounds
from chargeback.engine.weights import (
    Amount,
    Factors,
    PeriodTotals,
    counted,
    decision_weights,
    kept_rules,
)
from chargeback.errors import WorkspaceError
from chargeback.workspace.model import Workspace

__all__ = [  # steps 4-6 for one contact live in weights.py; explain, evidence ... import them here
    "Amount",
    "Attribution",
    "Factors",
    "PeriodTotals",
    "RuleStats",
    "attribute",
    "counted",
    "decision_weights",
    "kept_rules",
    "rule_factors",
]


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
    groups: Sequence[Group] = ()
    # rule_factors' answer for the workspace it was asked with, kept with its weights' memo
    # (not an init field: dataclasses.replace makes a copy without it)
    factors_memo: tuple[Workspace, Factors] | None = field(
        default=None, init=False, compare=False, repr=False
    )


def rule_factors(ws: Workspace, attribution: Attribution) -> Factors:
    """The factors attribute() used, for re-deriving weights (evidence, explain, drill-down):
    made once per attribution, so the documents' many callers share one memo of weights."""
    memo = attribution.factors_memo
    if memo is not None and memo[0] is ws:
        return memo[1]
    flat = {
        (i, period): f
        for i, rule in enumerate(ws.rules)
        for period, f in attribution.rules[rule.id].factor.items()
    }
    factors = Factors(flat, attribution.cell_factors)
    attribution.factors_memo = (ws, factors)
    return factors


def attribute(ws: Workspace, aggregates: Aggregates) -> Attribution:
    """Steps 1 and 3-7 on the engine's grouped aggregates (step 2 is the engine's)."""
    with no_cycle_collection():
        return _attribute(ws, aggregates)


def _attribute(ws: Workspace, aggregates: Aggregates) -> Attribution:
    rules = ws.rules
    coster = GroupCoster(ws.costs)
    baseline_counts = aggregates.baseline_counts

    # Step 1: each month's totals and cost; the groups summed per (month, matched, cell):
    # on their columns where they allow it (columnar.py), else one by one (amounts.py).
    columns = summed(ws, aggregates.groups, coster)
    if columns is None:
        totals, keys, dens = sum_groups(aggregates.groups, coster)
        matched_count: dict[tuple[int, str], int] = defaultdict(int)
        for (period, matched, _), (n, _, _) in keys.items():
            for i in matched:
                matched_count[i, period] += n
    else:
        totals, dens, matched_count, keys = columns.totals, columns.dens, columns.matched, {}

    # Step 3: A, D, E and f per rule and month.
    stats = {r.id: RuleStats() for r in rules}
    factor: dict[tuple[int, str], Fraction] = {}
    control = control_factors(ws, aggregates)
    effective: dict[tuple[int, str], Fraction] = defaultdict(Fraction)  # control: sum f x n
    if any(r.control is not None for r in rules):
        for (period, matched, cell), (n, _, _) in keys.items():
            open_rules = frozenset(j for j in matched if rules[j].control)
            for i in open_rules:
                key = (i, period, cell, open_rules)
                effective[i, period] += control.factor.get(key, Fraction(0)) * n
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

    # Steps 4-7, once per (month, decision, weight) (amounts.py).
    unpayable = too_costly(ws.costs, {period: t.cost for period, t in totals.items()})
    if unpayable:
        raise WorkspaceError(unpayable)
    if columns is not None:  # no control rule: no ranges either
        lines = weigh_columns(ws, columns.keys, dens, Factors(factor, control.factor))
    else:
        lines = weigh(ws, keys, dens, Factors(factor, control.factor))
    line_ranges: dict[tuple[str, str], tuple[Amount, Amount]] = {}
    if control.factor:
        low = weigh(ws, keys, dens, Factors(factor, control.low))
        high = weigh(ws, keys, dens, Factors(factor, control.high))
        for i, period, _, _ in control.factor:
            line = (period, rules[i].decision)
            if line in lines:
                line_ranges[line] = (low.get(line, Amount()), high.get(line, Amount()))
    return Attribution(
        periods=totals,
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
