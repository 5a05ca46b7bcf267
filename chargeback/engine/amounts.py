"""Steps 1 and 4-7 for every group at once: exact, with integers in the inner loops.

At 300 rules and 3M contacts an engine hands over ~110,000 groups and ~75,000
distinct (month, matched rules) keys, nearly each with weights of its own, so a
Fraction per group and a decision_weights per key cost seconds of gcds. Here:

- a group's cost is an integer over its month's common denominator (the rates
  or the pool put over one denominator once per month), so the groups of a key
  are summed as integers (sum_groups);
- the rules' weights in a month are ranked, so a decision's weight (the largest
  of its rules') is an integer max; the keys that give a decision the same
  weight (and, where the weights add up to more than 1, the same sum) are summed
  as integers first, and each such bucket is weighed once (weigh);
- a key on which a control rule counts takes decision_weights itself (its
  factors vary by cell).

The amounts are the very Fractions a decision_weights per group gives
(tests/attribute_oracle.py is that algorithm, frozen, and the tests compare).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from fractions import Fraction
from math import gcd, lcm

from chargeback.engine.aggregates import Group
from chargeback.engine.costing import GroupCoster
from chargeback.engine.weights import (
    Amount,
    Factors,
    PeriodTotals,
    decision_weights,
    kept_rules,
)
from chargeback.workspace.model import Workspace

Key = tuple[str, frozenset[int], frozenset[int]]  # (month, matched rules, control cell)
Line = tuple[str, str]  # (month, decision id)
# per matched set: the counted decisions (indexes into _Shapes.names), their rules
# when each has one, and each one's counted rules; None where a control rule
# counts (decision_weights then)
Shape = tuple[tuple[int, ...], tuple[int, ...] | None, tuple[tuple[int, ...], ...]] | None


def sum_groups(
    groups: Iterable[Group], coster: GroupCoster
) -> tuple[dict[str, PeriodTotals], dict[Key, list[int]], dict[str, int]]:
    """Each month's totals, and the groups of a key summed: contacts, handle time, cost.

    A key's cost is an integer over its month's denominator (returned too): every
    cost is linear in (contacts, handle time), with coefficients (GroupCoster.linear)
    that depend on the channel with `rates` (one denominator serves them all) and
    on the month with `pool` (a key's cost then comes from its sums).
    """
    rates = coster.costs.method == "rates"
    den = coster.rates_denominator() if rates else 1
    coefficients: dict[str, tuple[int, int]] = {}
    totals: dict[str, PeriodTotals] = defaultdict(PeriodTotals)
    cost_num: dict[str, int] = defaultdict(int)
    keys: dict[Key, list[int]] = {}
    for g in groups:
        t = totals[g.period]
        t.contacts += g.contacts
        t.hs_us += g.handle_us
        cost = 0
        if rates:
            got_rate = coefficients.get(g.channel)
            if got_rate is None:
                got_rate = coefficients[g.channel] = over(
                    den, coster.linear(g.period, g.channel, t)
                )
            cost = got_rate[0] * g.contacts + got_rate[1] * g.handle_us
            cost_num[g.period] += cost
        if not g.matched:
            continue
        key = (g.period, g.matched, g.cell)
        got = keys.get(key)
        if got is None:
            keys[key] = [g.contacts, g.handle_us, cost]
        else:
            got[0] += g.contacts
            got[1] += g.handle_us
            got[2] += cost
    dens: dict[str, int] = {}
    by_month: dict[str, tuple[int, int]] = {}
    for period, t in totals.items():
        if rates:
            dens[period] = den
            continue
        a, b = coster.linear(period, "", t)
        dens[period] = lcm(a.denominator, b.denominator)
        by_month[period] = over(dens[period], (a, b))
    if not rates:  # pool: the same coefficients for every channel of a month
        for (period, _, _), acc in keys.items():
            per_contact, per_us = by_month[period]
            acc[2] = per_contact * acc[0] + per_us * acc[1]
        for period, t in totals.items():
            cost_num[period] = by_month[period][0] * t.contacts + by_month[period][1] * t.hs_us
    for period, t in totals.items():
        t.cost = Fraction(cost_num[period], dens[period])
    return dict(totals), keys, dens


class MonthPrices:
    """Each month and channel's cost per contact and per handle microsecond as integers
    over the month's denominator (GroupCoster.linear), so a group's cost is an integer
    numerator: with `rates` one denominator serves every channel, with `pool` each
    month has its own (its channels share its coefficients)."""

    def __init__(self, coster: GroupCoster, totals: Mapping[str, PeriodTotals]) -> None:
        self.coster, self.totals = coster, totals
        self.rates_den = coster.rates_denominator() if coster.costs.method == "rates" else 0
        self.dens: dict[str, int] = {}  # month -> its denominator, once a price was asked
        self._prices: dict[tuple[str, str], tuple[int, int]] = {}

    def of(self, period: str, channel: str) -> tuple[int, int]:
        """(per contact, per microsecond) as numerators over dens[period]."""
        got = self._prices.get((period, channel))
        if got is None:
            a, b = self.coster.linear(period, channel, self.totals[period])
            den = self.dens.setdefault(period, self.rates_den or lcm(a.denominator, b.denominator))
            got = self._prices[period, channel] = over(den, (a, b))
        return got


def over(den: int, coefficients: tuple[Fraction, Fraction]) -> tuple[int, int]:
    """Coefficients as numerators over `den`, which every one of their denominators divides."""
    a, b = coefficients
    assert den % a.denominator == 0 and den % b.denominator == 0, (den, a, b)
    return a.numerator * (den // a.denominator), b.numerator * (den // b.denominator)


class Ranks:
    """Per month, each rule's weight (share x f) as its rank among the month's weights.

    A decision's weight is then the largest rank of its rules, an integer max, and
    keys whose decisions get the same ranks get the same weights. The weights are
    also put over one denominator per month, so their sums compare as integers.
    """

    def __init__(self, ws: Workspace, factors: Factors) -> None:
        self.by_month: dict[str, dict[int, int]] = {}
        self.values: dict[str, list[int]] = {}  # rank -> weight x common[month]
        self.common: dict[str, int] = {}
        rules_in: dict[str, list[int]] = defaultdict(list)
        for i, period in factors.flat:
            if ws.rules[i].control is None:
                rules_in[period].append(i)
        empty: frozenset[int] = frozenset()
        for period, rules in rules_in.items():
            weight = {i: factors.weight(ws, i, period, empty, empty) for i in rules}
            values = sorted(set(weight.values()))
            at = {v: k for k, v in enumerate(values)}
            common = lcm(*(v.denominator for v in values))
            self.common[period] = common
            self.values[period] = [v.numerator * (common // v.denominator) for v in values]
            self.by_month[period] = {i: at[w] for i, w in weight.items()}


class _Shapes:
    """Per matched set, the decisions counted on it, each with its rules (step 5)."""

    def __init__(self, ws: Workspace) -> None:
        self.ws = ws
        self.names = sorted({r.decision for r in ws.rules})
        at = {d: k for k, d in enumerate(self.names)}
        self.decision = [at[r.decision] for r in ws.rules]
        self.controlled = {i for i, r in enumerate(ws.rules) if r.control is not None}
        self.simple = ws.settings.overlap != "priority" and not self.controlled
        self.found: dict[frozenset[int], Shape] = {}

    def of(self, matched: frozenset[int]) -> Shape:
        got = self.found.get(matched, False)
        if got is False:
            got = self.found[matched] = self._shape(matched)
        return got  # type: ignore[return-value]

    def _shape(self, matched: frozenset[int]) -> Shape:
        kept = sorted(matched) if self.simple else kept_rules(self.ws, matched)
        if not self.controlled.isdisjoint(kept):  # counted keeps every control rule
            return None
        decisions = [self.decision[i] for i in kept]
        if len(set(decisions)) == len(decisions):
            return tuple(decisions), tuple(kept), ()
        found: dict[int, list[int]] = {}
        for d, i in zip(decisions, kept, strict=True):
            found.setdefault(d, []).append(i)
        return tuple(found), None, tuple(tuple(rs) for rs in found.values())


def weigh(
    ws: Workspace, keys: dict[Key, list[int]], dens: dict[str, int], factors: Factors
) -> dict[Line, Amount]:
    """Steps 4-7: each line's exact contacts, handle time and cost under these factors.

    The keys are summed into buckets, per month: (decision, weight's rank, and
    which sum of weights divides it when the key's weights add up to more than 1),
    packed into one integer; each bucket is then weighed once. Lines come in the
    order a walk of the keys first weighs them (as one decision_weights per key
    would), whatever their weight.
    """
    ranks = Ranks(ws, factors)
    shapes = _Shapes(ws)
    names = shapes.names
    d_bits = len(names).bit_length()
    k_bits = (len(ws.rules) + 1).bit_length()  # ranks: at most one per rule
    months: dict[str, _Month] = {}
    exact: dict[tuple[str, str, Fraction], list[int]] = {}  # by decision_weights
    order: dict[Line, None] = {}  # a line's first bucket is made where the line first shows
    month = _Month(1)
    rank: dict[int, int] = {}
    values: list[int] = []
    found = shapes.found
    for key, acc in keys.items():
        period, matched, cell = key
        shape = found[matched] if matched in found else shapes.of(matched)
        if shape is None:
            for name, w in decision_weights(ws, matched, period, factors, cell).items():
                _add(exact, (period, name, w), (period, name), acc, order)
            continue
        if period not in months:
            months[period] = _Month(ranks.common[period])
        if months[period] is not month:
            month, rank, values = months[period], ranks.by_month[period], ranks.values[period]
        decisions, singles, groups = shape
        if singles is not None:
            picked = list(map(rank.__getitem__, singles))
        else:
            picked = [max(map(rank.__getitem__, rs)) for rs in groups]
        together = tuple(sorted(picked))
        which = month.which.get(together)
        if which is None:
            which = month.divide(together, sum([values[k] for k in together]))
        base = which << k_bits
        n, hs, cost = acc
        buckets = month.buckets
        for d, k in zip(decisions, picked, strict=True):
            bucket = ((base | k) << d_bits) | d
            got = buckets.get(bucket)
            if got is None:
                buckets[bucket] = [n, hs, cost]
                order.setdefault((period, names[d]), None)
            else:
                got[0] += n
                got[1] += hs
                got[2] += cost
    parts: dict[Line, _Parts] = {line: _Parts() for line in order}
    for period, m in months.items():
        values = ranks.values[period]
        for bucket, acc in m.buckets.items():
            d = bucket & ((1 << d_bits) - 1)
            k = (bucket >> d_bits) & ((1 << k_bits) - 1)
            parts[period, names[d]].add(values[k], m.dens[bucket >> (d_bits + k_bits)], acc)
    for (period, name, w), acc in exact.items():
        parts[period, name].add(w.numerator, w.denominator, acc)
    return {line: p.amount(dens[line[0]]) for line, p in parts.items()}


class _Month:
    """One month's buckets, and the sums of weights that divide them (step 6)."""

    __slots__ = ("buckets", "dens", "which")

    def __init__(self, common: int) -> None:
        self.buckets: dict[int, list[int]] = {}  # packed bucket -> [contacts, handle time, cost]
        # weights are ranks' values / dens[which]: the month's common denominator (0), or
        # where a key's weights add up to more than 1, their sum (over that denominator)
        self.dens = [common]
        self.which: dict[tuple[int, ...], int] = {}  # a key's ranks, sorted -> its divisor

    def divide(self, together: tuple[int, ...], total: int) -> int:
        """The divisor of weights whose ranks are `together` and values add up to `total`."""
        if total > self.dens[0]:
            self.dens.append(total)
            which = self.which[together] = len(self.dens) - 1
        else:
            which = self.which[together] = 0
        return which


def _add(
    exact: dict[tuple[str, str, Fraction], list[int]],
    bucket: tuple[str, str, Fraction],
    line: Line,
    acc: list[int],
    order: dict[Line, None],
) -> None:
    """acc into its bucket; a new bucket may be its line's first showing."""
    got = exact.get(bucket)
    if got is None:
        exact[bucket] = list(acc)
        order.setdefault(line, None)
        return
    got[0] += acc[0]
    got[1] += acc[1]
    got[2] += acc[2]


class _Parts:
    """A line's weighted sums as integers per weight denominator: one Fraction at the end.

    A line is one month's, so its costs share that month's denominator, put on last.
    """

    __slots__ = ("sums", "weighted")

    def __init__(self) -> None:
        self.sums: dict[int, list[int]] = {}  # w's denominator -> [contacts, handle time, cost]
        self.weighted = False

    def add(self, num: int, den: int, acc: list[int]) -> None:
        """acc x num / den (a weight, not necessarily in lowest terms)."""
        if num > 0:
            self.weighted = True
        got = self.sums.get(den)
        if got is None:
            self.sums[den] = [num * acc[0], num * acc[1], num * acc[2]]
        else:
            got[0] += num * acc[0]
            got[1] += num * acc[1]
            got[2] += num * acc[2]

    def amount(self, cost_den: int) -> Amount:
        """The exact sums (the costs over the month's cost denominator too)."""
        contacts, hs_us, cost, den = sum_of(
            [(den, s[0], s[1], s[2]) for den, s in self.sums.items()]
        )
        return Amount(
            contacts=Fraction(contacts, den),
            hs_us=Fraction(hs_us, den),
            cost=Fraction(cost, den * cost_den),
            weighted=self.weighted,
        )


def sum_of(terms: list[tuple[int, int, int, int]]) -> tuple[int, int, int, int]:
    """Three sums of fractions over the same denominators, (den, a, b, c) each: a/den, ...

    Summed exactly, in pairs and then pairs of pairs, each pair over the least
    common multiple of its denominators. Not reduced: the caller's Fractions are, and
    a reduction per pair (a gcd of four numbers of hundreds of bits) was 40% of the
    time at 300 rules for the few bits it takes off.
    """
    if not terms:
        return 0, 0, 0, 1
    while len(terms) > 1:
        pairs = []
        for (d1, a1, b1, c1), (d2, a2, b2, c2) in zip(terms[::2], terms[1::2], strict=False):
            g = gcd(d1, d2)
            m1, m2 = d2 // g, d1 // g
            pairs.append((d1 * m1, a1 * m1 + a2 * m2, b1 * m1 + b2 * m2, c1 * m1 + c2 * m2))
        if len(terms) % 2:
            pairs.append(terms[-1])
        terms = pairs
    den, a, b, c = terms[0]
    return a, b, c, den


def fraction_sum(values: Iterable[Fraction]) -> Fraction:
    """Σ values, exactly, by sum_of (pairs unreduced), reduced once at the end. A running
    Fraction sum reduces at every step (two gcds of numbers of thousands of bits: a
    month's costs at 300 rules); this takes half the time."""
    return weighted_sum((v, 1) for v in values)


def weighted_sum(terms: Iterable[tuple[Fraction | int, int]]) -> Fraction:
    """Σ value x times, exactly, as fraction_sum adds (a reconciliation step's
    coefficient per group, times the group's contacts)."""
    total, _, _, den = sum_of([(v.denominator, v.numerator * k, 0, 0) for v, k in terms])
    return Fraction(total, den)
