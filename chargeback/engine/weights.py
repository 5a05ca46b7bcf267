"""Steps 4-6 for one contact: its rules' weights, overlap and normalisation.

attribute.py re-exports these; they live apart so amounts.py (the same steps
for many groups at once) can fall back on them without importing attribute.py.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from functools import cache

from chargeback.engine.control_factor import CellKey
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


@dataclass(frozen=True)
class Factors:
    """f(rule, month): per rule and month, or for control rules per cell and open windows."""

    flat: dict[tuple[int, str], Fraction]
    cells: dict[CellKey, Fraction] = field(default_factory=dict)
    # share x f of a rule without a control baseline, per month: the same for every group
    weighted: dict[tuple[int, str], Fraction] = field(default_factory=dict, compare=False)
    # decision_weights per (month, matched rules, cell): evidence and the reconciliations
    # weigh the same groups (read only, like every caller's use of them)
    decisions: dict[tuple[str, frozenset[int], frozenset[int]], dict[str, Fraction]] = field(
        default_factory=dict, compare=False
    )

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
            return fraction(ws.rules[i].share) * self.of(ws, i, period, matched, cell)
        got = self.weighted.get((i, period))
        if got is None:
            got = self.weighted[i, period] = fraction(ws.rules[i].share) * self.flat[i, period]
        return got


@cache
def fraction(share: Decimal) -> Fraction:
    """A rule's share as a Fraction, converted once (not once per group)."""
    return Fraction(share)


def kept_rules(ws: Workspace, matched: Iterable[int]) -> list[int]:
    """Step 5's first half: with `overlap: priority`, the matched rules of the top priority."""
    rules = ws.rules
    kept = sorted(matched)
    if ws.settings.overlap == "priority":
        top = max(rules[i].priority for i in kept)
        kept = [i for i in kept if rules[i].priority == top]
    return kept


def counted(ws: Workspace, kept: Iterable[int]) -> list[int]:
    """The kept rules whose weight counts: where a decision's control rule matches a
    contact, its other rules (markers) count inside that excess, not on top of it."""
    kept = sorted(kept)
    controlled = {ws.rules[i].decision for i in kept if ws.rules[i].control is not None}
    return [
        i for i in kept if ws.rules[i].control is not None or ws.rules[i].decision not in controlled
    ]


def decision_weights(
    ws: Workspace,
    matched: frozenset[int],
    period: str,
    factors: Factors,
    cell: frozenset[int] = frozenset(),
) -> dict[str, Fraction]:
    """Steps 4-6 for one contact (or a group of identical ones), worked out once per
    `factors` (the returned dict is shared: read it, do not change it)."""
    got = factors.decisions.get((period, matched, cell))
    if got is not None:
        return got
    rules = ws.rules
    weights: dict[str, Fraction] = {}
    for i in counted(ws, kept_rules(ws, matched)):
        rule = rules[i]
        w = factors.weight(ws, i, period, matched, cell)
        if rule.decision not in weights or w > weights[rule.decision]:
            weights[rule.decision] = w
    total = sum(weights.values(), Fraction(0))
    if total > 1:
        weights = {d: w / total for d, w in weights.items()}
    factors.decisions[period, matched, cell] = weights
    return weights
