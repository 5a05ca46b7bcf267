"""From a decision's rule matches to the contacts it is charged: each step, exactly.

A statement lists each rule's matched contacts and, above, the contacts a
decision is charged; a controller reading 1204 + 276 matched against 1127.576
charged needs the steps between. They are attribute.py's own steps 4-6 taken
apart per group of identical contacts, with the run's factors and weights
(rule_factors, decision_weights), in this order:

  rule matches
  - contacts two or more of the decision's rules matched (counted once)
  = contacts matched
  - contacts its rules lost to higher-priority rules (overlap: priority)
  - what the baseline leaves out: 1 - f of the rule that sets the weight (the
    rule w with the largest share x f); for a control rule, 1 - the cell's
    whole excess factor (its decisions' parts added up): expected anyway
  - rule shares below 100%: f_w x (1 - share_w)
  - split with other decisions: a control cell's excess that is the other
    decisions' part (cell factor - f_w), and share_w x f_w less the final
    weight where weights over 1 are scaled down
  = contacts charged

Every step is a sum of n x (a weight before - a weight after) over groups, so
the steps add up exactly to the line's contacts in the ledger.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction

from chargeback.engine.attribute import (
    Attribution,
    Factors,
    counted,
    decision_weights,
    rule_factors,
)
from chargeback.workspace.model import Workspace

DUPLICATE = "duplicate"  # matched by two or more rules of the decision
PRIORITY = "priority"  # every rule of the decision lost to higher-priority rules
BASELINE = "baseline"  # a flat baseline's usual level
CONTROL = "control"  # a control baseline's expected count
SHARE = "share"  # rule shares below 100%
SPLIT = "split"  # weights over 1 scaled down with other decisions
ORDER = (DUPLICATE, PRIORITY, BASELINE, CONTROL, SHARE, SPLIT)


@dataclass
class Step:
    """Contacts one step takes away, and (priority, split) whom it goes to."""

    kind: str
    contacts: Fraction = Fraction(0)
    others: tuple[str, ...] = ()  # the decisions that took or shared them
    shared: int = 0  # contacts in the groups where that happened


@dataclass
class Reconciliation:
    """One decision in one month, from its rules' matches to its charged contacts."""

    matches: int = 0  # each rule's matched contacts, added up
    contacts: int = 0  # distinct contacts any of its rules matched
    charged: Fraction = Fraction(0)  # the ledger line's contacts, exactly
    steps: dict[tuple[str, tuple[str, ...]], Step] = field(default_factory=dict)

    def take(self, kind: str, amount: Fraction, n: int, others: tuple[str, ...] = ()) -> None:
        if amount == 0:
            return
        step = self.steps.setdefault((kind, others), Step(kind, others=others))
        step.contacts += amount
        step.shared += n

    def ordered(self) -> list[Step]:
        """The steps in the order attribution takes them, then by the decisions named."""
        return sorted(self.steps.values(), key=lambda s: (ORDER.index(s.kind), s.others))


def reconcile(ws: Workspace, attribution: Attribution, period: str) -> dict[str, Reconciliation]:
    """Each decision with a matched contact in `period`, reconciled from the run's groups."""
    factors = rule_factors(ws, attribution)
    rules = ws.rules
    out: dict[str, Reconciliation] = {}
    for g in attribution.groups:
        if g.period != period or not g.matched:
            continue
        n = g.contacts
        kept = sorted(g.matched)
        if ws.settings.overlap == "priority":
            top = max(rules[i].priority for i in kept)
            kept = [i for i in kept if rules[i].priority == top]
        counting = counted(ws, kept)
        weights = decision_weights(ws, g.matched, period, factors, g.cell)
        for decision in sorted({rules[i].decision for i in g.matched}):
            rec = out.setdefault(decision, Reconciliation())
            mine = [i for i in g.matched if rules[i].decision == decision]
            rec.matches += n * len(mine)
            rec.contacts += n
            rec.take(DUPLICATE, Fraction(n * (len(mine) - 1)), n)
            own = [i for i in counting if rules[i].decision == decision]
            if not own:
                winners = tuple(sorted({rules[i].decision for i in kept}))
                rec.take(PRIORITY, Fraction(n), n, winners)
                continue
            f = {i: factors.of(ws, i, period, g.matched, g.cell) for i in own}
            # the rule that sets the weight: the largest share x f (first on a tie)
            w = max(own, key=lambda i: (Fraction(rules[i].share) * f[i], -i))
            raw = Fraction(rules[w].share) * f[w]
            final = weights.get(decision, Fraction(0))
            others = {d for d, x in weights.items() if d != decision and x > 0}
            split = raw - final
            if rules[w].control is not None:
                # the cell's excess is one, split by evidence between its decisions:
                # what is not excess is expected anyway, the others' part a split
                cell = _cell_factor(ws, factors, period, g.matched, g.cell)
                rec.take(CONTROL, n * (1 - cell), n)
                split += cell - f[w]
                if cell > f[w]:
                    others |= _cell_decisions(ws, g.matched) - {decision}
            else:
                rec.take(BASELINE, n * (1 - f[w]), n)
            rec.take(SHARE, n * f[w] * (1 - Fraction(rules[w].share)), n)
            rec.take(SPLIT, n * split, n, tuple(sorted(others)))
            rec.charged += n * final
    return out


def _cell_decisions(ws: Workspace, matched: frozenset[int]) -> set[str]:
    """The decisions whose control rules match these contacts: one excess between them."""
    return {ws.rules[i].decision for i in matched if ws.rules[i].control is not None}


def _cell_factor(
    ws: Workspace, factors: Factors, period: str, matched: frozenset[int], cell: frozenset[int]
) -> Fraction:
    """The cell's whole excess over its contacts: each open decision's part, added up
    (a decision's control rules in a cell all carry its part)."""
    parts: dict[str, Fraction] = {}
    for i in matched:
        if ws.rules[i].control is not None:
            f = factors.of(ws, i, period, matched, cell)
            d = ws.rules[i].decision
            parts[d] = max(parts.get(d, Fraction(0)), f)
    return min(Fraction(1), sum(parts.values(), Fraction(0)))
