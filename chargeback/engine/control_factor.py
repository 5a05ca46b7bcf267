"""SPEC 4b's factors for rules with `baseline: {method: control}`.

Per cell (contacts the same control rules match, windows ignored), month and
set of open windows: the excess X over the cell's control series is estimated
once, on the days of that month where exactly those windows are open, and
split between the decisions whose windows are open in proportion to the
contacts carrying each one's `evidence` (evenly when none does). A decision's
part divided by A (the cell's contacts on those days) is the factor of its
rules for those contacts; shares, priority and normalisation follow as in
SPEC 4. One decision in the cell: its part is all of X, so f = X / A.

The fit and X are floating point (control.py); they enter the exact arithmetic
here, once, as fractions of their 6-decimal rounding, so the same inputs always
give the same weights and every month still adds up to the cent. The range's
low and high X give a low and a high factor, run through the same weights for
each line's range.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from fractions import Fraction

from chargeback.engine.aggregates import Aggregates, Cell
from chargeback.engine.control import (
    ControlFit,
    DailySeries,
    Excess,
    excess_by_period,
    fit_control,
)
from chargeback.engine.dates import shift_day, window_bounds
from chargeback.workspace.model import Workspace

# (rule index, period, cell, open control rules) -> factor
CellKey = tuple[int, str, frozenset[int], frozenset[int]]


@dataclass(frozen=True)
class ControlResult:
    """One cell's fit and its excess per month and open windows, for documents and explain."""

    rules: frozenset[int]
    fit: ControlFit
    excess: dict[str, Excess]  # "YYYY-MM" when one set of windows is open all month, else
    level: Decimal  # "YYYY-MM|rule,rule" per set of open windows
    series: DailySeries  # what the fit saw: a statement's chart draws E(t) and its band from it
    seed: int  # the range's seed, so the chart's band is as deterministic as the range
    family: str | None = None  # the reason family whose untouched contacts are the control


@dataclass
class ControlFactors:
    factor: dict[CellKey, Fraction]
    low: dict[CellKey, Fraction]
    high: dict[CellKey, Fraction]
    results: dict[frozenset[int], ControlResult]


def _exact(value: float) -> Fraction:
    return Fraction(Decimal(f"{value:.6f}"))


def _seed(cell: Cell) -> int:
    """Same cell and same daily counts, same draws."""
    text = f"{sorted(cell.rules)}|{cell.series.matched}|{cell.series.control}"
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")


def _inside(day: date, bounds: tuple[date, date | None]) -> bool:
    first, last = bounds
    return first <= day and (last is None or day <= last)


def _key(period: str, open_rules: frozenset[int], only: bool) -> str:
    return period if only else f"{period}|{','.join(str(i) for i in sorted(open_rules))}"


def excess_for(result: ControlResult, period: str, open_rules: frozenset[int]) -> Excess:
    """The excess behind a month's factor, whether one or several sets of windows were open."""
    return result.excess.get(period) or result.excess[_key(period, open_rules, False)]


def _split(
    cell: Cell, ws: Workspace, open_rules: frozenset[int], days: Sequence[int]
) -> dict[str, Fraction]:
    """Each open decision's share of the excess: its evidence over all evidence, or even."""
    decisions = sorted({ws.rules[i].decision for i in open_rules})
    carried = {
        d: sum(
            sum(cell.evidence[i][k] for k in days)
            for i in open_rules
            if ws.rules[i].decision == d and i in cell.evidence
        )
        for d in decisions
    }
    total = sum(carried.values())
    if total == 0:
        return {d: Fraction(1, len(decisions)) for d in decisions}
    return {d: Fraction(n, total) for d, n in carried.items()}


def control_factors(ws: Workspace, aggregates: Aggregates) -> ControlFactors:
    """Every control cell's fit, excess and factors."""
    out = ControlFactors({}, {}, {}, {})
    for members, cell in sorted(aggregates.cells.items(), key=lambda kv: sorted(kv[0])):
        days = cell.series.days
        windows = {
            i: window_bounds(ws.rules[i], ws.decision(ws.rules[i].decision)) for i in members
        }
        start = min(first for first, _ in windows.values())
        lookback = max(ws.rules[i].control.lookback_days for i in members)  # type: ignore[union-attr]
        shared = {r for i in members for r in aggregates.sharing.get(ws.rules[i].id, frozenset())}
        excluded = [
            window_bounds(r, ws.decision(r.decision))
            for r in ws.rules
            if r.id in shared or ws.rules.index(r) in members
        ]
        fit_mask = [
            shift_day(start, -lookback) <= d < start and not any(_inside(d, b) for b in excluded)
            for d in days
        ]
        # days grouped by month and the set of windows open on them
        by_open: dict[tuple[str, frozenset[int]], list[int]] = {}
        for k, d in enumerate(days):
            open_rules = frozenset(i for i in members if _inside(d, windows[i]))
            if open_rules:
                by_open.setdefault((f"{d:%Y-%m}", open_rules), []).append(k)
        if not by_open:
            continue
        per_month: dict[str, int] = {}
        for period, _ in by_open:
            per_month[period] = per_month.get(period, 0) + 1
        window_days = {_key(p, o, per_month[p] == 1): ks for (p, o), ks in by_open.items()}
        fit = fit_control(cell.series, fit_mask, window=[k for ks in by_open.values() for k in ks])
        levels = {ws.rules[i].control.interval for i in members}  # type: ignore[union-attr]
        level = max(levels)
        excess = excess_by_period(
            cell.series, fit, window_days, level=float(level), seed=_seed(cell)
        )
        out.results[members] = ControlResult(
            members, fit, excess, level, cell.series, _seed(cell), cell.family
        )
        for (period, open_rules), ks in by_open.items():
            got = excess[_key(period, open_rules, per_month[period] == 1)]
            if got.actual == 0:
                continue
            parts = _split(cell, ws, open_rules, ks)
            for i in open_rules:
                part = parts[ws.rules[i].decision]
                key = (i, period, members, open_rules)
                for target, x in (
                    (out.factor, got.excess),
                    (out.low, got.low),
                    (out.high, got.high),
                ):
                    target[key] = min(Fraction(1), max(Fraction(0), _exact(x) * part / got.actual))
    return out
