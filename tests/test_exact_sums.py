"""The documents' and check's sums against the plain Fraction arithmetic they replaced.

A 300-rule report spent most of its time in Fractions: evidence splits, the
matched-to-charged reconciliations and check's overlaps made a product and a sum
per group, decision and split, and largest remainder ranked remainders by cross
products. They now add integers first, multiply once and rank by leading bits.
Each is held here to the old way, written out plainly, on generated workspaces
(test_differential's scenarios: shares, priorities, baselines, pools, rates) and
on control-baseline worlds (one excess shared by two decisions, a marker rule).
"""

from __future__ import annotations

import tempfile
from collections import defaultdict
from fractions import Fraction
from itertools import combinations
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_control_ledger import world, write_shared_world
from test_differential import scenarios, write_scenario

from chargeback.engine.aggregates import Aggregates
from chargeback.engine.attribute import (
    Attribution,
    attribute,
    counted,
    decision_weights,
    rule_factors,
)
from chargeback.engine.costing import GroupCoster
from chargeback.engine.evidence import NO_REASON, frame_counts, line_splits
from chargeback.engine.evidence_counts import EvidenceCounts
from chargeback.engine.ledger import UNATTRIBUTED, largest_remainder
from chargeback.engine.polars_engine import aggregate, decode_group
from chargeback.engine.reconcile import Reconciliation, Step, reconcile
from chargeback.report import ReportOptions, Steps
from chargeback.review.check import overlaps
from chargeback.run import prepare
from chargeback.workspace.model import Workspace

# ------------------------------------------------------------ the old ways, plainly


def plain_largest_remainder(
    amounts: list[tuple[tuple[str, str], Fraction]], total: int
) -> dict[tuple[str, str], int]:
    floors: dict[tuple[str, str], int] = {}
    remainders = []
    for key, amount in amounts:
        cents = amount * 100
        floors[key] = cents.numerator // cents.denominator
        remainders.append((cents - floors[key], key))
    remainders.sort(key=lambda item: (-item[0], item[1]))
    for _, key in remainders[: total - sum(floors.values())]:
        floors[key] += 1
    return floors


def plain_overlaps(
    ws: Workspace, aggregates: Aggregates, attribution: Attribution
) -> dict[tuple[str, str], tuple[int, Fraction]]:
    coster = GroupCoster(ws.costs)
    shared: dict[tuple[str, str], list[Any]] = defaultdict(lambda: [0, Fraction(0)])
    for g in aggregates.groups:
        decisions = sorted({ws.rules[i].decision for i in g.matched})
        cost = coster.group_cost(
            g.period, g.channel, g.contacts, g.handle_us, attribution.periods[g.period]
        )
        for pair in combinations(decisions, 2):
            shared[pair][0] += g.contacts
            shared[pair][1] += cost
    return {pair: (n, cost) for pair, (n, cost) in shared.items()}


def _take(
    rec: Reconciliation, kind: str, amount: Fraction, n: int, others: tuple[str, ...] = ()
) -> None:
    """A step's contacts added one group at a time, as reconcile used to."""
    if amount == 0:
        return
    step = rec.steps.setdefault((kind, others), Step(kind, others=others))
    step.contacts += amount
    step.shared += n


def plain_reconcile(ws: Workspace, attribution: Attribution, period: str) -> dict[str, Any]:
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
            _take(rec, "duplicate", Fraction(n * (len(mine) - 1)), n)
            own = [i for i in counting if rules[i].decision == decision]
            if not own:
                _take(
                    rec,
                    "priority",
                    Fraction(n),
                    n,
                    tuple(sorted({rules[i].decision for i in kept})),
                )
                continue
            f = {i: factors.of(ws, i, period, g.matched, g.cell) for i in own}
            w = max(own, key=lambda i: (Fraction(rules[i].share) * f[i], -i))
            final = weights.get(decision, Fraction(0))
            others = {d for d, x in weights.items() if d != decision and x > 0}
            split = Fraction(rules[w].share) * f[w] - final
            if rules[w].control is not None:
                parts: dict[str, Fraction] = {}
                for i in g.matched:
                    if rules[i].control is not None:
                        x = factors.of(ws, i, period, g.matched, g.cell)
                        parts[rules[i].decision] = max(parts.get(rules[i].decision, Fraction(0)), x)
                cell = min(Fraction(1), sum(parts.values(), Fraction(0)))
                _take(rec, "control", n * (1 - cell), n)
                split += cell - f[w]
                if cell > f[w]:
                    others |= set(parts) - {decision}
            else:
                _take(rec, "baseline", n * (1 - f[w]), n)
            _take(rec, "share", n * f[w] * (1 - Fraction(rules[w].share)), n)
            _take(rec, "split", n * split, n, tuple(sorted(others)))
            rec.charged += n * final
    return {d: _shown(r) for d, r in out.items()}


def _shown(rec: Reconciliation) -> tuple[Any, ...]:
    steps = sorted((s.kind, s.others, s.contacts, s.shared) for s in rec.steps.values())
    return rec.matches, rec.contacts, rec.charged, steps


def plain_splits(
    ws: Workspace, counts: EvidenceCounts, attribution: Attribution, wanted: set[str]
) -> tuple[dict[Any, Any], dict[Any, Any]]:
    coster = GroupCoster(ws.costs)
    factors = rule_factors(ws, attribution)
    by_reason: dict[Any, dict[str, list[Fraction]]] = defaultdict(dict)
    by_channel: dict[Any, dict[str, list[Fraction]]] = defaultdict(dict)
    for period, channel, reason, *masks, n, hs in counts.groups:
        if period not in wanted:
            continue
        matched, cell = decode_group(ws, [int(v) for v in masks])
        cost = coster.group_cost(period, channel, int(n), int(hs), attribution.periods[period])
        weights = decision_weights(ws, matched, period, factors, cell) if matched else {}
        rest = 1 - sum(weights.values(), Fraction(0))
        for decision, w in [*weights.items(), (UNATTRIBUTED, rest)]:
            if w == 0:
                continue
            for table, label in (
                (by_reason, NO_REASON if reason is None else reason),
                (by_channel, channel),
            ):
                acc = table[period, decision].setdefault(label, [Fraction(0), Fraction(0)])
                acc[0] += w * n
                acc[1] += w * cost
    return tuple(  # type: ignore[return-value]
        {key: {k: (v[0], v[1]) for k, v in labels.items()} for key, labels in t.items()}
        for t in (by_reason, by_channel)
    )


# ------------------------------------------------------------ held to them


def same_as_plain(ws: Workspace, frame: Any) -> None:
    aggregates = aggregate(ws, frame)
    attribution = attribute(ws, aggregates)
    assert overlaps(ws, aggregates, attribution) == plain_overlaps(ws, aggregates, attribution)
    periods = sorted(attribution.periods)
    for period in periods:
        new = {d: _shown(r) for d, r in reconcile(ws, attribution, period).items()}
        assert new == plain_reconcile(ws, attribution, period), period
    decisions = {d.id for d in ws.decisions} | {UNATTRIBUTED}
    counts = frame_counts(ws, frame, periods, decisions)
    assert line_splits(ws, counts, attribution, set(periods)) == plain_splits(
        ws, counts, attribution, set(periods)
    )


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sc=scenarios())
def test_generated_workspaces_sum_as_the_plain_fractions_do(sc: Any) -> None:
    if not sc.contacts:
        return
    with tempfile.TemporaryDirectory() as tmp:
        ws_dir, contacts_csv = write_scenario(sc, Path(tmp))
        ws, loaded = prepare(ReportOptions(workspace=ws_dir, contacts=str(contacts_csv)), Steps())
        same_as_plain(ws, loaded.frame)


@pytest.mark.parametrize("which", ["one control rule", "a shared excess", "a share of 0.8"])
def test_control_worlds_sum_as_the_plain_fractions_do(which: str, tmp_path: Path) -> None:
    ws_dir = tmp_path / "ws"
    if which == "one control rule":
        world(ws_dir)
    else:
        ws_dir.mkdir()
        write_shared_world(ws_dir)
    if which == "a share of 0.8":
        rules = ws_dir / "rules" / "main.yaml"
        text = rules.read_text().replace(
            "window: {days: 61}\n", "window: {days: 61}\n    share: 0.8\n", 1
        )
        rules.write_text(text)
    ws, loaded = prepare(ReportOptions(workspace=ws_dir), Steps())
    assert any(r.control is not None for r in ws.rules)
    same_as_plain(ws, loaded.frame)


def test_a_reconciliation_step_is_a_plain_step() -> None:
    """What the documents read: Step and Reconciliation keep their shape."""
    rec = Reconciliation(matches=3, contacts=2, charged=Fraction(3, 2))
    rec.steps["share", ()] = Step("share", Fraction(1, 2), shared=2)
    assert [s.contacts for s in rec.ordered()] == [Fraction(1, 2)]


remainders = st.lists(
    st.tuples(
        st.integers(-(10**6), 10**6),
        st.sampled_from([1, 3, 7, 2**64 + 1, 2**64 - 1, 3**90, 10**40 + 7]),
    ),
    min_size=1,
    max_size=12,
)


@settings(max_examples=300, deadline=None)
@given(parts=remainders, near=st.booleans(), extra=st.integers(0, 12))
def test_largest_remainder_ranks_as_the_plain_sort(
    parts: list[tuple[int, int]], near: bool, extra: int
) -> None:
    amounts = [((f"d{k}", ""), Fraction(n, d)) for k, (n, d) in enumerate(parts)]
    if near:  # remainders apart by less than 2**-64 of a cent, and exact twins
        a = amounts[0][1]
        amounts += [(("near", ""), a + Fraction(1, 2**80)), (("twin", ""), a)]
    floors = sum((x * 100).numerator // (x * 100).denominator for _, x in amounts)
    total = floors + min(extra, len(amounts))
    assert largest_remainder(amounts, total) == plain_largest_remainder(amounts, total)


def test_largest_remainder_below_the_leading_bits() -> None:
    """Two remainders equal in their first 64 bits: the larger still takes the cent."""
    small = Fraction(1, 3) / 100
    amounts = [(("a", ""), small), (("b", ""), small + Fraction(1, 2**90))]
    assert largest_remainder(amounts, 1) == {("a", ""): 0, ("b", ""): 1}
