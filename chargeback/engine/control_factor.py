"""SPEC 4b's factor f(r, p) = X(p) / A(p) for rules with `baseline: {method: control}`.

The fit and the excess are floating point (control.py); they enter the exact
arithmetic here, once, as fractions of their 6-decimal rounding, so the same
inputs always give the same weights and every month still adds up to the cent.
The range's low and high excess become a low and a high factor, which the
attribution runs through the same weights to give each line its range.

Not yet: an excess shared by control rules of several decisions is estimated
per rule, not once for the shared contacts and split by `evidence` (SPEC 4b).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from fractions import Fraction

from chargeback.engine.aggregates import Aggregates
from chargeback.engine.control import ControlFit, Excess, excess_by_period, fit_control
from chargeback.engine.dates import month_bounds, shift_day, window_bounds
from chargeback.workspace.model import Rule, Workspace


@dataclass(frozen=True)
class ControlResult:
    """One control rule's fit and its excess per month, for statements and explain."""

    fit: ControlFit
    excess: dict[str, Excess]
    level: Decimal


def _exact(value: float) -> Fraction:
    return Fraction(Decimal(f"{value:.6f}"))


def _seed(rule: Rule, matched: tuple[int, ...], control: tuple[int, ...]) -> int:
    """Same rule and same daily counts, same draws."""
    digest = hashlib.sha256(f"{rule.id}|{matched}|{control}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


def _inside(day: date, first: date, last: date | None) -> bool:
    return first <= day and (last is None or day <= last)


def control_factors(
    ws: Workspace, aggregates: Aggregates, matched: dict[tuple[int, str], int]
) -> tuple[
    dict[tuple[int, str], Fraction],
    dict[tuple[int, str], tuple[Fraction, Fraction]],
    dict[str, ControlResult],
]:
    """f, (f low, f high) per (rule index, period) for control rules, and their fits."""
    factors: dict[tuple[int, str], Fraction] = {}
    ranges: dict[tuple[int, str], tuple[Fraction, Fraction]] = {}
    results: dict[str, ControlResult] = {}
    for i, rule in enumerate(ws.rules):
        if rule.control is None:
            continue
        series = aggregates.control_series.get(rule.id)
        if series is None or not any(j == i for j, _ in matched):
            continue
        first, last = window_bounds(rule, ws.decision(rule.decision))
        # every month of the window the data covers, whichever months were aggregated,
        # so a month's range does not depend on which others a run reports
        periods = sorted({f"{d:%Y-%m}" for d in series.days if _inside(d, first, last)})
        lookback_start = shift_day(first, -rule.control.lookback_days)
        excluded = [
            window_bounds(r, ws.decision(r.decision))
            for r in ws.rules
            if r.id == rule.id or r.id in aggregates.sharing.get(rule.id, frozenset())
        ]
        fit_mask = [
            lookback_start <= d < first and not any(_inside(d, a, b) for a, b in excluded)
            for d in series.days
        ]
        window_days: dict[str, list[int]] = {}
        for period in periods:
            lo, hi = month_bounds(period)
            window_days[period] = [
                k for k, d in enumerate(series.days) if lo <= d <= hi and _inside(d, first, last)
            ]
        window = [k for days in window_days.values() for k in days]
        fit = fit_control(series, fit_mask, window=window)
        level = rule.control.interval
        excess = excess_by_period(
            series, fit, window_days, level=float(level), seed=_seed(rule, series.matched,
                                                                     series.control)
        )
        results[rule.id] = ControlResult(fit, excess, level)
        for period in periods:
            if (i, period) not in matched:
                continue
            a = matched[i, period]
            got = excess[period]

            def factor(x: float, a: int = a) -> Fraction:
                return min(Fraction(1), max(Fraction(0), _exact(x) / a))

            factors[i, period] = factor(got.excess)
            ranges[i, period] = (factor(got.low), factor(got.high))
    return factors, ranges, results
