"""Steps 1 and 3-7 on the groups' columns: numpy per group, key and decision, Python ints
per bucket.

amounts.py walks the (month, matched rules) keys one by one. At 300 rules and
3M contacts (~110,000 groups, ~75,000 keys, ~300,000 matched rules on them) that
walk, and a Group object per group, were most of what 300 rules cost over 30
(issue 15). Here the same steps run on integer columns (aggregates.GroupTable):

- the groups' contacts, handle time and, with `rates`, cost (an integer over
  the month's denominator) are summed per key in int64, once the whole run's
  sums are known to fit: then no partial sum can overflow;
- every key's kept rules (step 5), its decisions' weights as ranks
  (amounts.Ranks) and the multiset of ranks that decides step 6's divisor are
  found for all keys at once; each distinct multiset is summed in Python ints;
- the keys are summed into amounts.weigh's buckets (month, decision, weight,
  divisor) in int64, and only the buckets are weighed in Python ints (numpy
  object arrays): the weights' numerators run past 64 bits.

A workspace with control baselines (a control rule's factor varies by cell),
negative or too large sums, go through amounts.py instead. The results are
amounts.py's, Fraction for Fraction, and the lines come in its order: the order
a walk of the keys first weighs them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from math import lcm

import numpy as np

from chargeback.engine.aggregates import I64_MAX, Group, GroupTable, exact_sum
from chargeback.engine.amounts import Line, Ranks, over, sum_of
from chargeback.engine.costing import GroupCoster
from chargeback.engine.weights import Amount, Factors, PeriodTotals
from chargeback.workspace.model import Workspace

MAX_CODE = 2**62  # combined codes (key x decision, ...) stay below this


@dataclass(frozen=True)
class Keys:
    """The groups summed per (month, matched rules): keys in the order the groups first
    show them, and per key its matched rules (pairs), lowest first."""

    periods: list[str]  # what the month codes name
    period: np.ndarray  # per key: its month's code
    contacts: np.ndarray  # per key, int64 sums ...
    handle_us: np.ndarray
    cost: np.ndarray  # ... cost over the month's denominator (rates; zeros with a pool)
    pair_key: np.ndarray  # per (key, matched rule): the key, ascending ...
    pair_rule: np.ndarray  # ... and the rule, lowest first within a key
    pair_start: np.ndarray  # per key: where its pairs start
    pool: dict[int, tuple[int, int]]  # pool: per month code, cost per contact and per us


@dataclass(frozen=True)
class Summed:
    """What sum_groups and step 3's count give, from the columns."""

    totals: dict[str, PeriodTotals]
    dens: dict[str, int]
    matched: dict[tuple[int, str], int]  # A per (rule, month), in the order keys first show it
    keys: Keys


def summed(ws: Workspace, groups: Sequence[Group], coster: GroupCoster) -> Summed | None:
    """Each month's totals, the keys' sums and every rule's matches per month; None where
    the columns do not apply (control baselines, sums past 64 bits): amounts.py then."""
    rules = ws.rules
    if not groups or any(r.control is not None for r in rules):
        return None
    if any(not -I64_MAX <= r.priority <= I64_MAX for r in rules):
        return None
    t = groups if isinstance(groups, GroupTable) else GroupTable.from_groups(groups)
    n, hs = t.contacts, t.handle_us
    if n.dtype != np.int64 or hs.dtype != np.int64 or n.min() < 0 or hs.min() < 0:
        return None
    all_n, all_hs = exact_sum(n), exact_sum(hs)
    size = len(t.periods) * len(t.sets) * max(len(t.cells), 1)
    if max(all_n, all_hs) > I64_MAX or size >= MAX_CODE:
        return None
    rates = coster.costs.method == "rates"
    den = coster.rates_denominator() if rates else 1
    cost = np.zeros(len(n), dtype=np.int64)
    if rates:
        coefficients = [over(den, coster.linear("", ch, PeriodTotals())) for ch in t.channels]
        most = [max(abs(c[k]) for c in coefficients) for k in (0, 1)]
        if max(most) > I64_MAX or most[0] * all_n + most[1] * all_hs > I64_MAX:
            return None  # every partial sum of costs is at most this bound
        per_contact = np.array([c[0] for c in coefficients], dtype=np.int64)
        per_us = np.array([c[1] for c in coefficients], dtype=np.int64)
        cost = per_contact[t.channel] * n + per_us[t.channel] * hs
    totals, dens, pool = _totals(t, coster, cost, den)
    keys = _keys(t, cost, pool)
    n_decisions = len({r.decision for r in rules})
    if len(keys.contacts) * max(n_decisions, len(rules) + 1) >= MAX_CODE:
        return None
    return Summed(totals, dens, _matched(keys, len(rules)), keys)


def _totals(
    t: GroupTable, coster: GroupCoster, cost: np.ndarray, den: int
) -> tuple[dict[str, PeriodTotals], dict[str, int], dict[int, tuple[int, int]]]:
    """Each month's totals (months in the order the groups first show them), its cost
    denominator, and with a pool its coefficients over that denominator."""
    count = len(t.periods)
    first = np.full(count, len(t), dtype=np.int64)
    np.minimum.at(first, t.period, np.arange(len(t), dtype=np.int64))
    sums = []
    for column in (t.contacts, t.handle_us, cost):
        out = np.zeros(count, dtype=np.int64)
        np.add.at(out, t.period, column)
        sums.append(out.tolist())
    totals: dict[str, PeriodTotals] = {}
    dens: dict[str, int] = {}
    pool: dict[int, tuple[int, int]] = {}
    for p in np.argsort(first, kind="stable").tolist():
        if first[p] == len(t):  # a month no group has (a subset's)
            continue
        name = t.periods[p]
        month = totals[name] = PeriodTotals(contacts=sums[0][p], hs_us=sums[1][p])
        if coster.costs.method == "rates":
            dens[name], cost_num = den, sums[2][p]
        else:  # the same coefficients for every channel of a month
            a, b = coster.linear(name, "", month)
            dens[name] = lcm(a.denominator, b.denominator)
            pool[p] = over(dens[name], (a, b))
            cost_num = pool[p][0] * month.contacts + pool[p][1] * month.hs_us
        month.cost = Fraction(cost_num, dens[name])
    return totals, dens, pool


def _keys(t: GroupTable, cost: np.ndarray, pool: dict[int, tuple[int, int]]) -> Keys:
    """The groups with a matched rule, summed per (month, matched set, cell)."""
    ptr, set_rules = t.sets.ptr, t.sets.rules
    sizes = np.diff(ptr)
    kept = np.flatnonzero(sizes[t.matched] > 0)
    n_sets, n_cells = len(t.sets), max(len(t.cells), 1)
    code = (t.period[kept] * n_sets + t.matched[kept]) * n_cells + t.cell[kept]
    order, starts, walk = first_seen(code)  # keys as the groups first show them
    code = code[order[starts[walk]]]
    # no partial sum overflows (summed checked the whole run's); reduceat wants a start
    sums = [
        np.add.reduceat(c[kept][order], starts)[walk] if len(starts) else np.zeros(0, np.int64)
        for c in (t.contacts, t.handle_us, cost)
    ]
    key_set = (code // n_cells) % n_sets
    lengths = sizes[key_set]
    pair_start = np.cumsum(lengths) - lengths
    pair_key = np.repeat(np.arange(len(code), dtype=np.int64), lengths)
    within = np.arange(len(pair_key), dtype=np.int64) - np.repeat(pair_start, lengths)
    pair_rule = set_rules[np.repeat(ptr[key_set], lengths) + within]
    period = code // (n_cells * n_sets)
    n, hs, costs = sums
    return Keys(t.periods, period, n, hs, costs, pair_key, pair_rule, pair_start, pool)


def runs(code: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A stable order sorting `code`, and where each run of equal codes starts in it: a
    run's first position is its code's first row. np.unique's index and inverse took
    twice as long (its inverse is a second pass, unused where reduceat sums the runs)."""
    if not len(code):
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    low = int(code.min())
    if int(code.max()) - low < 1 << 16:  # numpy sorts 16 bits by radix: 1/6 the time
        order = np.argsort((code - low).astype(np.uint16), kind="stable")
    else:
        order = np.argsort(code, kind="stable")
    change = np.ones(len(code), dtype=bool)
    sorted_code = code[order]
    np.not_equal(sorted_code[1:], sorted_code[:-1], out=change[1:])
    return order, np.flatnonzero(change)


def first_seen(code: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """runs(code), and the runs in the order their codes first show in `code` (a walk):
    run walk[j] is the j-th distinct code met, `code[order[starts[walk]]]` those codes."""
    order, starts = runs(code)
    return order, starts, np.argsort(order[starts], kind="stable")


def _matched(keys: Keys, n_rules: int) -> dict[tuple[int, str], int]:
    """A: each rule's matched contacts per month, in the order a walk of the keys first
    meets each (rule, month) (attribute.RuleStats keeps its months in that order)."""
    n_periods = len(keys.periods)
    code = keys.pair_rule * n_periods + keys.period[keys.pair_key]
    counts = np.zeros(n_rules * n_periods, dtype=np.int64)
    np.add.at(counts, code, keys.contacts[keys.pair_key])
    first = np.full(n_rules * n_periods, len(keys.contacts), dtype=np.int64)
    np.minimum.at(first, code, keys.pair_key)
    present = np.flatnonzero(first < len(keys.contacts))
    present = present[np.lexsort((present, first[present]))]
    names, got = keys.periods, counts.tolist()
    return {(c // n_periods, names[c % n_periods]): got[c] for c in present.tolist()}


def weigh_columns(
    ws: Workspace, keys: Keys, dens: dict[str, int], factors: Factors
) -> dict[Line, Amount]:
    """Steps 4-7 on the keys' columns: amounts.weigh's lines, in its order."""
    rules = ws.rules
    if len(keys.contacts) == 0:
        return {}
    names = sorted({r.decision for r in rules})
    at = {d: k for k, d in enumerate(names)}
    ranks = Ranks(ws, factors)
    rank = np.full((len(keys.periods), len(rules)), -1, dtype=np.int64)
    for p, period in enumerate(keys.periods):
        got = ranks.by_month.get(period)
        if got:
            rank[p, list(got)] = list(got.values())
    pair_key, pair_rule = keys.pair_key, keys.pair_rule
    if ws.settings.overlap == "priority":  # step 5: the matched rules of the top priority
        priority = np.array([r.priority for r in rules], dtype=np.int64)[pair_rule]
        top = np.maximum.reduceat(priority, keys.pair_start)
        keep = priority == top[pair_key]
        pair_key, pair_rule = pair_key[keep], pair_rule[keep]
    decision = np.array([at[r.decision] for r in rules], dtype=np.int64)
    dp_key, dp_dec, dp_rank = _decisions(
        pair_key, decision[pair_rule], rank[keys.period[pair_key], pair_rule], len(names)
    )
    key_den, den_value, den_period = _divisors(keys, ranks, dp_key, dp_rank)
    dp_line, lines = _lines(keys.period[dp_key], dp_dec, len(names))
    dp = (dp_key, key_den[dp_key], dp_line, dp_rank)
    terms, line_start, weighted = _buckets(keys, ranks, dp, den_value, den_period)
    out: dict[Line, Amount] = {}
    for k, (p, d) in enumerate(lines):
        period = keys.periods[p]
        contacts, hs_us, cost, den = sum_of(terms[line_start[k] : line_start[k + 1]])
        out[period, names[d]] = Amount(
            contacts=Fraction(contacts, den),
            hs_us=Fraction(hs_us, den),
            cost=Fraction(cost, den * dens[period]),
            weighted=weighted[k],
        )
    return out


def _decisions(
    pair_key: np.ndarray, pair_dec: np.ndarray, pair_rank: np.ndarray, n_decisions: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per (key, decision): the largest rank of its kept rules (step 5), in walk order:
    keys in order, a key's decisions in the order of their lowest rule."""
    assert pair_rank.size == 0 or int(pair_rank.min()) >= 0, "a matched rule without a weight"
    code = pair_key * n_decisions + pair_dec
    order, starts, walk = first_seen(code)
    picked = np.maximum.reduceat(pair_rank[order], starts) if len(starts) else pair_rank
    code = code[order[starts[walk]]]
    return code // n_decisions, code % n_decisions, picked[walk]


def _divisors(
    keys: Keys, ranks: Ranks, dp_key: np.ndarray, dp_rank: np.ndarray
) -> tuple[np.ndarray, list[int], list[int]]:
    """Step 6 per key: its weights' divisor, the month's common denominator or, where
    they add up past it, their sum. Keys alike in month and multiset of ranks share it,
    so each such multiset is summed once. Returns per key a divisor id (keys without a
    decision: none), and per id its value and month (ids are per month and value)."""
    n_keys = len(keys.contacts)
    per_key = np.bincount(dp_key, minlength=n_keys)
    # dp_key ascends already: sorting by (key, rank) keeps each key's block in place
    ranked = dp_rank[sort_order(dp_key, dp_rank)]
    width = per_key[dp_key]
    by_width, at = runs(width)  # stable: a key's block stays whole, in order
    widths = width[by_width[at]]
    values, offset = _flat_values(keys, ranks)
    common = np.empty(len(keys.periods), dtype=object)
    common[:] = [ranks.common.get(period, 0) for period in keys.periods]
    key_den = np.zeros(n_keys, dtype=np.int64)
    ids: dict[tuple[int, int], int] = {}
    # keys of one width at a time: one key with many decisions must not widen the table
    # of every key (memory follows the pairs, not keys x the widest key)
    ends = [*at[1:].tolist(), len(width)]
    for w, lo, hi in zip(widths.tolist(), at.tolist(), ends, strict=True):
        block = by_width[lo:hi]
        of = dp_key[block[::w]]
        table = np.empty((len(of), w + 1), dtype=np.int64)
        table[:, 0] = keys.period[of]
        table[:, 1:] = ranked[block].reshape(-1, w)
        first, combo_of_row = row_ids(table)
        p = table[first, 0]
        total = values[offset[p][:, None] + table[first, 1:]].sum(axis=1)  # Python ints
        den = np.where(total > common[p], total, common[p])
        combo_den = [
            ids.setdefault(pd, len(ids)) for pd in zip(p.tolist(), den.tolist(), strict=True)
        ]
        key_den[of] = np.array(combo_den, dtype=np.int64)[combo_of_row]
    return key_den, [den for _, den in ids], [p for p, _ in ids]


def _flat_values(keys: Keys, ranks: Ranks) -> tuple[np.ndarray, np.ndarray]:
    """Every month's weights over its common denominator, one Python int per rank, in
    one object array; and per month code where its ranks start."""
    offset: list[int] = []
    flat: list[int] = []
    for period in keys.periods:
        offset.append(len(flat))
        flat.extend(ranks.values.get(period, []))
    values = np.empty(len(flat), dtype=object)
    values[:] = flat
    return values, np.array(offset, dtype=np.int64)


def _lines(
    dp_period: np.ndarray, dp_dec: np.ndarray, n_decisions: int
) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """The lines (month code, decision code) in the order the walk first weighs them, and
    per (key, decision) its line's index."""
    code = dp_period * n_decisions + dp_dec
    order, starts, walk = first_seen(code)
    index = np.empty(len(starts), dtype=np.int64)
    index[walk] = np.arange(len(starts), dtype=np.int64)
    run = np.zeros(len(code), dtype=np.int64)  # per sorted position: its run
    run[starts[1:]] = 1
    line = np.empty(len(code), dtype=np.int64)
    line[order] = index[np.cumsum(run)]
    ordered = code[order[starts[walk]]].tolist()
    return line, [(c // n_decisions, c % n_decisions) for c in ordered]


def _buckets(
    keys: Keys,
    ranks: Ranks,
    dp: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    den_value: list[int],
    den_period: list[int],
) -> tuple[list[tuple[int, int, int, int]], list[int], list[bool]]:
    """The (key, decision) sums per bucket (line, divisor, rank) in int64, each then
    weighed in Python ints and summed per (line, divisor): sum_of's terms (divisor,
    contacts, handle time and cost, each x the weight's numerator), each line's
    together and the lines in order; where each line's start; per line, some weight > 0."""
    dp_key, dp_den, dp_line, dp_rank = dp
    order = sort_order(dp_line, dp_den, dp_rank)  # equal rows in any order: sums only
    line_s, den_s, rank_s, key_s = dp_line[order], dp_den[order], dp_rank[order], dp_key[order]
    changed = np.ones(len(order), dtype=bool)
    changed[1:] = (np.diff(line_s) != 0) | (np.diff(den_s) != 0) | (np.diff(rank_s) != 0)
    starts = np.flatnonzero(changed)
    # no key is twice in a bucket: each bucket's sums are partial sums of the run's
    n, hs, cost = (
        np.add.reduceat(c[key_s], starts) for c in (keys.contacts, keys.handle_us, keys.cost)
    )
    b_line, b_den = line_s[starts], den_s[starts]
    values, offset = _flat_values(keys, ranks)
    b_period = np.array(den_period, dtype=np.int64)[b_den]
    v = values[offset[b_period] + rank_s[starts]]
    part = np.ones(len(starts), dtype=bool)
    part[1:] = (np.diff(b_line) != 0) | (np.diff(b_den) != 0)
    at = np.flatnonzero(part)
    a, b = np.add.reduceat(v * n, at), np.add.reduceat(v * hs, at)
    if keys.pool:  # a month's cost is linear in its contacts and handle time
        coefficients = [keys.pool[p] for p in b_period[at].tolist()]
        c = [
            x * aa + y * bb
            for (x, y), aa, bb in zip(coefficients, a.tolist(), b.tolist(), strict=True)
        ]
    else:
        c = np.add.reduceat(v * cost, at).tolist()
    divisor = np.empty(len(den_value), dtype=object)
    divisor[:] = den_value
    terms = list(zip(divisor[b_den[at]].tolist(), a.tolist(), b.tolist(), c, strict=True))
    p_line = b_line[at]
    first = np.ones(len(at), dtype=bool)
    first[1:] = p_line[1:] != p_line[:-1]
    line_start = np.flatnonzero(first)
    positive = np.logical_or.reduceat(v > 0, at[line_start])  # a line's first part onwards
    return terms, [*line_start.tolist(), len(at)], positive.tolist()


def sort_order(*columns: np.ndarray) -> np.ndarray:
    """An order sorting by the columns (non-negative ints), the first most significant;
    rows alike in all of them in no particular order. One argsort of the columns packed
    into one int64 where they fit: a fifth of np.lexsort's time (283,000 rows, 300 rules)."""
    code = np.zeros(len(columns[0]), dtype=np.int64)
    room = 1
    for column in columns:
        width = int(column.max(initial=0)) + 1
        room *= width
        if room >= MAX_CODE or int(column.min(initial=0)) < 0:
            return np.lexsort(columns[::-1])
        code = code * width + column
    return np.argsort(code)


def row_ids(table: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Alike rows of a table of integers >= -1: a row of each distinct one, and per row
    its distinct one's index. Columns are packed into int64 codes as many as fit,
    then the code so far is renumbered densely and packing goes on."""
    code = np.zeros(len(table), dtype=np.int64)
    used = 0  # bits the code holds
    for column in table.T:
        shifted = column + 1
        bits = max(int(shifted.max(initial=0)).bit_length(), 1)
        if bits > 31:  # renumbered densely: below len(table) < 2**31
            shifted = np.unique(shifted, return_inverse=True)[1].reshape(-1)
            bits = max(int(shifted.max(initial=0)).bit_length(), 1)
        if used + bits > 62:
            code = np.unique(code, return_inverse=True)[1].reshape(-1)
            used = max(len(table).bit_length(), 1)
        code = (code << bits) | shifted
        used += bits
    _, first, inverse = np.unique(code, return_index=True, return_inverse=True)
    return first, inverse.reshape(-1)
