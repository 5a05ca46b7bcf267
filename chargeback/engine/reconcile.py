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
  - what the baseline leaves out: 1 - the largest factor f among its rules
  - rule shares below 100%: that factor less the largest share x f
  - overlaps split with other decisions: share x f less the final weight
  = contacts charged

Every step is a sum of n x (a weight before - a weight after) over groups, so
the steps add up exactly to the line's contacts in the ledger.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction

from chargeback.engine.attribute import Attribution, counted, decision_weights, rule_factors
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
            top_f = max(f.values())
            raw = max(Fraction(rules[i].share) * f[i] for i in own)
            final = weights.get(decision, Fraction(0))
            kind = CONTROL if any(rules[i].control is not None for i in own) else BASELINE
            rec.take(kind, n * (1 - top_f), n)
            rec.take(SHARE, n * (top_f - raw), n)
            others = tuple(sorted(d for d, w in weights.items() if d != decision and w > 0))
            rec.take(SPLIT, n * (raw - final), n, others)
            rec.charged += n * final
    return out
