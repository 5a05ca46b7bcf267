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

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from fractions import Fraction

from chargeback.engine.aggregates import Group
from chargeback.engine.amounts import weighted_sum
from chargeback.engine.attribute import (
    Attribution,
    Factors,
    counted,
    decision_weights,
    rule_factors,
)
from chargeback.engine.weights import fraction
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
    ways: int = 1  # steps of this kind added up into this one (reconcile_doc folds the small)


@dataclass
class Reconciliation:
    """One decision in one month, from its rules' matches to its charged contacts."""

    matches: int = 0  # each rule's matched contacts, added up
    contacts: int = 0  # distinct contacts any of its rules matched
    charged: Fraction = Fraction(0)  # the ledger line's contacts, exactly
    steps: dict[tuple[str, tuple[str, ...]], Step] = field(default_factory=dict)

    def ordered(self) -> list[Step]:
        """The steps in the order attribution takes them, then by the decisions named."""
        return sorted(self.steps.values(), key=lambda s: (ORDER.index(s.kind), s.others))


Sums = dict[tuple[frozenset[int], frozenset[int]], int]  # (matched, cell) -> contacts


def month_sums(groups: Iterable[Group]) -> dict[str, Sums]:
    """Each month's matched contacts per matched set and cell: the steps depend on
    nothing else, so the channels' groups are added up before any Fraction is made."""
    out: dict[str, Sums] = defaultdict(dict)
    for g in groups:
        if g.matched:
            month = out[g.period]
            month[g.matched, g.cell] = month.get((g.matched, g.cell), 0) + g.contacts
    return out


def reconcile(
    ws: Workspace, attribution: Attribution, period: str, sums: Sums | None = None
) -> dict[str, Reconciliation]:
    """Each decision with a matched contact in `period`, reconciled from the run's groups
    (`sums`: the month's, from month_sums, when the caller reconciles many months)."""
    if sums is None:
        sums = month_sums(g for g in attribution.groups if g.period == period).get(period, {})
    factors = rule_factors(ws, attribution)
    rules = ws.rules
    out: dict[str, Reconciliation] = {}
    # each step's amounts as (coefficient, contacts), summed once at the end (weighted_sum)
    terms: dict[tuple[str, str, tuple[str, ...]], list[tuple[Fraction | int, int]]] = {}
    charged: dict[str, list[tuple[Fraction | int, int]]] = defaultdict(list)
    # a rule without a control baseline: (share x f, 1 - f, f x (1 - share)) in the month
    flat: dict[int, tuple[Fraction, Fraction, Fraction]] = {}

    def take(
        decision: str, kind: str, coefficient: Fraction | int, n: int, others: tuple[str, ...] = ()
    ) -> None:
        if coefficient == 0:
            return
        got = terms.get((decision, kind, others))
        if got is None:
            got = terms[decision, kind, others] = []
            out[decision].steps[kind, others] = Step(kind, others=others)
        got.append((coefficient, n))
        out[decision].steps[kind, others].shared += n

    for (matched, cell), n in sums.items():
        kept = sorted(matched)
        if ws.settings.overlap == "priority":
            top = max(rules[i].priority for i in kept)
            kept = [i for i in kept if rules[i].priority == top]
        counting = counted(ws, kept)
        weights = decision_weights(ws, matched, period, factors, cell)
        positive = {d for d, x in weights.items() if x.numerator > 0}
        for decision in sorted({rules[i].decision for i in matched}):
            rec = out.setdefault(decision, Reconciliation())
            mine = [i for i in matched if rules[i].decision == decision]
            rec.matches += n * len(mine)
            rec.contacts += n
            take(decision, DUPLICATE, len(mine) - 1, n)
            own = [i for i in counting if rules[i].decision == decision]
            if not own:
                take(decision, PRIORITY, 1, n, tuple(sorted({rules[i].decision for i in kept})))
                continue
            # the rule that sets the weight: the largest share x f (first on a tie)
            w = (
                own[0]
                if len(own) == 1
                else max(own, key=lambda i: (factors.weight(ws, i, period, matched, cell), -i))
            )
            final = weights.get(decision, Fraction(0))
            others = positive - {decision}
            if rules[w].control is None:  # the same steps for every group of the month
                got = flat.get(w)
                if got is None:
                    f_w, share = factors.of(ws, w, period, matched, cell), fraction(rules[w].share)
                    got = flat[w] = (share * f_w, 1 - f_w, f_w * (1 - share))
                raw, baseline, shares = got
                split = raw - final
                take(decision, BASELINE, baseline, n)
                take(decision, SHARE, shares, n)
            else:
                # the cell's excess is one, split by evidence between its decisions:
                # what is not excess is expected anyway, the others' part a split
                f_w, share = factors.of(ws, w, period, matched, cell), fraction(rules[w].share)
                whole = _cell_factor(ws, factors, period, matched, cell)
                take(decision, CONTROL, 1 - whole, n)
                split = share * f_w - final + whole - f_w
                if whole > f_w:
                    others |= _cell_decisions(ws, matched) - {decision}
                take(decision, SHARE, f_w * (1 - share), n)
            take(decision, SPLIT, split, n, tuple(sorted(others)))
            if final:
                charged[decision].append((final, n))
    for (decision, kind, names), amounts in terms.items():
        out[decision].steps[kind, names].contacts = weighted_sum(amounts)
    for decision, amounts in charged.items():
        out[decision].charged = weighted_sum(amounts)
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
