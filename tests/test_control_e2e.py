"""`method: control` end to end: the real CLI on small worlds whose injected truth we know.

bench/bench_control_truth.py generates the worlds (seasons, holidays, month-end
peaks, level shifts, overlapping and sequential decisions, decisions just after
a peak) and measures ledger.json against the contacts each decision added; it
prints issue 11's figures on 61 worlds. Here one small world of each kind goes
through `chargeback report --format json`, so CI notices when a change to the
engine's cells, control series, fit period or split breaks the path the
statistics module's own truth test (test_control_truth.py) cannot see. The
bounds are looser than the issue's targets: eight worlds at half the volume are
a smoke test of the path, not a measurement.
"""

from __future__ import annotations

import importlib.util
import statistics
import sys
from decimal import Decimal
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench" / "bench_control_truth.py"


def _bench() -> ModuleType:
    """bench/ is no package; load the generator from its file."""
    spec = importlib.util.spec_from_file_location("bench_control_truth", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


truth = _bench()
SCALE = 0.5  # half the bench's volume: a few hundred to a thousand contacts a day
SEEDS = {kind: 40 + k for k, kind in enumerate(truth.KINDS)}


@pytest.fixture(scope="module")
def measured(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Each kind's world, reported once; its decisions' figures and its ledger."""
    out: dict[str, Any] = {}
    for kind, seed in SEEDS.items():
        root = tmp_path_factory.mktemp(kind)
        world = truth.make_world(seed, kind, SCALE)
        world.write(root)
        ledger = truth.report(root)
        out[kind] = (world, ledger, truth.measure(world, ledger))
    return out


def test_the_charges_are_near_the_injected_contacts(measured: dict[str, Any]) -> None:
    decisions = [m for _, _, got in measured.values() for m in got]
    errors = [abs(m.error) for m in decisions]
    report = "\n".join(m.line() for m in decisions)
    assert len(decisions) >= len(truth.KINDS) + 2, report  # overlap and sequential have two
    assert sum(e <= 0.15 for e in errors) >= len(decisions) - 1, report
    assert statistics.median(errors) <= 0.06, report


def test_the_ranges_hold_the_truth_and_the_charge(measured: dict[str, Any]) -> None:
    figures = truth.Figures(tuple(m for _, _, got in measured.values() for m in got))
    months = figures.months
    assert all(m.low <= m.charged <= m.high for m in months)
    assert figures.coverage >= 0.65, "\n".join(m.line() for m in figures.measured)


def test_overlapping_decisions_are_split_by_their_evidence(measured: dict[str, Any]) -> None:
    """Both rules match the same reason: each decision gets about what its contacts named."""
    _, _, got = measured["overlap"]
    for m in got:
        assert m.decision.evidence is not None
        assert abs(m.error) <= 0.15, m.line()


def test_every_month_adds_up_and_control_lines_carry_a_range(measured: dict[str, Any]) -> None:
    for world, ledger, _ in measured.values():
        ids = {d.id for d in world.decisions}
        for period, totals in ledger["periods"].items():
            lines = [ln for ln in ledger["lines"] if ln["period"] == period]
            assert sum(Decimal(ln["cost"]) for ln in lines) == Decimal(totals["cost"])
            for ln in lines:
                if ln["decision_id"] in ids and Decimal(ln["contacts"]) > 0:
                    assert ln["range"]["level"] == 0.8
