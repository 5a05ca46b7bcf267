"""SPEC 4b on the bill: a control baseline's range, expected line and fit, as plain values.

statements.py asks this module for what a control rule adds to a statement or a
summary, so a document without one never meets it and stays as it was. Ranges
are worded as ledger.json prints them (money half-up to cents, contacts to 3
decimals). The engine fits one counterfactual per cell (the contacts the same
control rules match), so a rule whose contacts are shared with another
decision's rule has one fit per cell it is in; each is named.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from chargeback.documents.charts import (
    EXPECTED_BAND_COLOR,
    EXPECTED_COLOR,
    Baseline,
    Expected,
)
from chargeback.documents.wording import count, describe_match, level_text, pct
from chargeback.engine.attribute import Attribution
from chargeback.engine.control import daily_band, expected, wide_range
from chargeback.engine.control_factor import ControlResult
from chargeback.engine.ledger import LedgerLine, half_up
from chargeback.workspace.model import Decision, Rule, Workspace

UNTOUCHED = "contacts no rule matches and no rule's evidence names"


def line_range(line: LedgerLine) -> dict[str, Any] | None:
    """The line's range at its level, for templates; None on a line no control rule weighs on."""
    if line.range is None:
        return None
    level, (contacts_low, contacts_high), (cost_low, cost_high) = line.range
    return {
        "level": level_text(level),
        "contacts_low": count(contacts_low),
        "contacts_high": count(contacts_high),
        "cost_low": half_up(cost_low, 2),
        "cost_high": half_up(cost_high, 2),
    }


def cells(attribution: Attribution, index: int) -> list[tuple[frozenset[int], ControlResult]]:
    """The fits a control rule (by index) takes part in, in a stable order."""
    found = [(cell, result) for cell, result in attribution.control.items() if index in cell]
    return sorted(found, key=lambda item: sorted(item[0]))


def _month(result: ControlResult, period: str) -> list[str]:
    """The excess keys of a month: the month, or one per set of windows open in it."""
    return [k for k in sorted(result.excess) if k == period or k.startswith(f"{period}|")]


def series_words(ws: Workspace, cell: frozenset[int], family: str | None = None) -> str:
    """The control series a cell follows, as the engine chose it: the first member's
    `control` block, else the untouched contacts of its reason family, else all of them."""
    for i in sorted(cell):
        baseline = ws.rules[i].control
        if baseline is not None and baseline.control is not None:
            return "contacts where " + " and ".join(describe_match(baseline.control))
    if family is not None:
        return f"{UNTOUCHED}, with a reason in the {family} family ({family}.*)"
    return UNTOUCHED


def _fit(
    ws: Workspace, index: int, cell: frozenset[int], result: ControlResult, period: str
) -> dict[str, Any] | None:
    keys = _month(result, period)
    if not keys:
        return None
    fit, days = result.fit, result.series.days
    got = [result.excess[k] for k in keys]
    actual = sum(e.actual for e in got)
    central = sum(e.excess for e in got)
    low, high = sum(e.low for e in got), sum(e.high for e in got)
    others = sorted(ws.rules[i].id for i in cell if i != index)
    level = level_text(result.level)
    warnings = list(fit.warnings)
    if any(e.wide for e in got) or wide_range(central, low, high):
        warnings.append(
            f"the {level} range of the excess, {low:.1f} to {high:.1f} contacts, is wider than"
            f" ±50% of its central {central:.1f}: the charge is uncertain"
        )
    return {
        "contacts": (
            "contacts it shares with " + ", ".join(others) + " (one excess, split by evidence)"
            if others
            else "its contacts"
        ),
        "series": series_words(ws, cell, result.family),
        "lookback_days": max(b.lookback_days for i in cell if (b := ws.rules[i].control)),
        "fit_days": fit.fit_days,
        "fit_from": days[fit.first_fit_day].isoformat() if fit.first_fit_day >= 0 else "",
        "fit_to": days[fit.last_fit_day].isoformat() if fit.last_fit_day >= 0 else "",
        "ratio": f"{fit.ratio:.4f}",
        "actual": actual,
        "expected": f"{sum(e.expected for e in got):.1f}",
        "excess": f"{central:.1f}",
        "excess_low": f"{low:.1f}",
        "excess_high": f"{high:.1f}",
        "level": level,
        "warnings": warnings,
    }


def control_method(
    ws: Workspace, attribution: Attribution, index: int, period: str
) -> dict[str, Any] | None:
    """What the method section says of a control rule in a month; None for any other rule."""
    rule = ws.rules[index]
    if rule.control is None:
        return None
    fits = [
        f for cell, res in cells(attribution, index) if (f := _fit(ws, index, cell, res, period))
    ]
    stats = attribution.rules.get(rule.id)
    factor = stats.factor.get(period) if stats else None
    return {
        "lookback_days": rule.control.lookback_days,
        "level": level_text(rule.control.interval),
        "factor": pct(factor, 1) if factor is not None else "—",
        "fits": fits,
        "warnings": list(dict.fromkeys(w for f in fits for w in f["warnings"])),
    }


def expected_lines(
    ws: Workspace, attribution: Attribution, decision_id: str, start: date, end: date
) -> list[Expected]:
    """The counterfactual of the contacts a decision's control rules match, start to end.

    E(t) adds up the cells those contacts fall in; so does the band, which makes
    it wider than the band of the sum when there are several cells (never narrower).
    """
    indexes = {i for i, r in enumerate(ws.rules) if r.decision == decision_id and r.control}
    found = [(c, r) for c, r in attribution.control.items() if c & indexes]
    if not found:
        return []
    days: dict[date, list[float]] = {}
    for _, result in sorted(found, key=lambda item: sorted(item[0])):
        series = result.series
        shown = [k for k, d in enumerate(series.days) if start <= d <= end]
        if not shown:
            continue
        e = expected(series, result.fit)
        low, high = daily_band(series, result.fit, shown, float(result.level), seed=result.seed)
        for k, lo, hi in zip(shown, low, high, strict=True):
            sums = days.setdefault(series.days[k], [0.0, 0.0, 0.0])
            sums[0] += e[k]
            sums[1] += lo
            sums[2] += hi
    if not days:
        return []
    label = "expected (" + ", ".join(sorted(ws.rules[i].id for i in indexes)) + ")"
    return [Expected(label, {d: (v[0], v[1], v[2]) for d, v in days.items()})]


def chart_legend(decisions: list[dict[str, Any]], ws: Workspace) -> dict[str, Any]:
    """What the statement's charts draw, so its legend names only that."""
    drawn = {d["decision_id"] for d in decisions if d["expected"]}
    levels = sorted(
        {r.control.interval for r in ws.rules if r.control is not None and r.decision in drawn}
    )
    return {
        "expected": bool(drawn),
        "expected_color": EXPECTED_COLOR,
        "band_color": EXPECTED_BAND_COLOR,
        "level": " or ".join(level_text(v) for v in levels),
        "baseline": any(d["baseline"] for d in decisions),
    }


def decision_legend(
    ws: Workspace,
    decision: Decision,
    rules: list[Rule],
    shown: tuple[date, date],
    window: tuple[date, date | None],
    expected: list[Expected],
    baselines: list[Baseline],
) -> dict[str, Any]:
    """One chart's legend: each thing it draws, and nothing it does not."""
    start, end = shown
    levels = sorted({r.control.interval for r in rules if r.control is not None})
    return {
        "effective": start <= decision.effective <= end,
        "window": window[0] <= end and (window[1] is None or window[1] >= start),
        "expected": bool(expected),
        "expected_color": EXPECTED_COLOR,
        "band_color": EXPECTED_BAND_COLOR,
        "level": " or ".join(level_text(v) for v in levels) if expected else "",
        "baselines": [b.label for b in baselines],
    }
