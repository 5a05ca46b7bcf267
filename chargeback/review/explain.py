"""`chargeback explain CONTACT_ID`: how one contact was charged, step by step (SPEC 9).

A department head disputing a charge can follow a single contact through the
order of operations in engine/attribute.py: which conditions of each rule held,
the window, the baseline factor with its A, D and E, which rules overlap
resolution kept, the final weights and the cost each decision was charged.
The factors are the ones the whole run computed (a baseline counts every
contact), and the weights come from the same decision_weights the ledger uses,
so what this shows is exactly what the ledger charged.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import polars as pl

from chargeback.engine.attribute import Attribution, counted, decision_weights, rule_factors
from chargeback.engine.compile import conditions, window_expr, with_text_lower
from chargeback.engine.control_factor import excess_for
from chargeback.engine.costing import US_PER_MINUTE, GroupCoster
from chargeback.engine.dates import days_in_window, window_bounds
from chargeback.engine.drilldown import COST_PLACES, WEIGHT_PLACES
from chargeback.engine.ledger import UNATTRIBUTED, half_up
from chargeback.errors import ChargebackError, Problem
from chargeback.workspace.model import Rule, Workspace

SHOWN_COLUMNS = ("reason", "tags", "text", "product", "region", "outcome", "customer_id")


def weight_str(value: Fraction) -> str:
    return f"{half_up(value, WEIGHT_PLACES):.{WEIGHT_PLACES}f}"


def cost_str(value: Fraction) -> str:
    return f"{half_up(value, COST_PLACES):.{COST_PLACES}f}"


@dataclass(frozen=True)
class RuleCheck:
    rule: Rule
    conditions: dict[str, bool]
    in_window: bool

    @property
    def matched(self) -> bool:
        return self.in_window and all(self.conditions.values())


def _checks(ws: Workspace, row: pl.DataFrame) -> list[RuleCheck]:
    """Each rule's conditions and window, evaluated on the one contact."""
    lf = with_text_lower(row.lazy(), ws)
    exprs: list[pl.Expr] = []
    for i, rule in enumerate(ws.rules):
        for j, (_, expr) in enumerate(conditions(rule.match)):
            exprs.append(expr.fill_null(False).alias(f"c{i}_{j}"))
        exprs.append(window_expr(rule, ws.decision(rule.decision)).alias(f"w{i}"))
    values = lf.select(exprs).collect().row(0, named=True) if exprs else {}
    return [
        RuleCheck(
            rule,
            {key: bool(values[f"c{i}_{j}"]) for j, (key, _) in enumerate(conditions(rule.match))},
            bool(values[f"w{i}"]),
        )
        for i, rule in enumerate(ws.rules)
    ]


def _baseline(ws: Workspace, rule: Rule, attribution: Attribution, period: str) -> dict[str, Any]:
    """B, b, A, D and E of SPEC 4 for the rule in the contact's month."""
    stats = attribution.rules[rule.id]
    first, last = window_bounds(rule, ws.decision(rule.decision))
    b = stats.baseline_daily or Fraction(0)
    d = days_in_window(first, last, period)
    return {
        "method": "flat",
        "lookback_days": rule.baseline_lookback_days,
        "B": stats.baseline_contacts,
        "b": weight_str(b),
        "A": stats.matched.get(period, 0),
        "D": d,
        "E": weight_str(b * d),
    }


def _control(
    ws: Workspace,
    rule: Rule,
    attribution: Attribution,
    period: str,
    cell: frozenset[int],
    open_rules: frozenset[int],
) -> dict[str, Any]:
    """The control fit (SPEC 4b) of the contact's cell behind the rule's factor."""
    result = attribution.control[cell]
    got = excess_for(result, period, open_rules)
    return {
        "method": "control",
        "cell": sorted(ws.rules[i].id for i in cell),
        "lookback_days": rule.control.lookback_days if rule.control else None,
        "fit_days": result.fit.fit_days,
        "ratio": f"{math.exp(result.fit.log_ratio):.6f}",
        "A": got.actual,
        "expected": f"{got.expected:.3f}",
        "X": f"{got.excess:.3f}",
        "range": [f"{got.low:.3f}", f"{got.high:.3f}"],
        "level": float(result.level),
        "warnings": list(result.fit.warnings),
    }


def explain(
    ws: Workspace, contacts: pl.DataFrame, attribution: Attribution, contact_id: str
) -> dict[str, Any]:
    """SPEC 9's explain document for one contact (extra keys help a person read it)."""
    row = contacts.filter(pl.col("contact_id") == contact_id)
    if row.height == 0:
        raise ChargebackError(
            Problem(f"contact '{contact_id}' is not in the contacts ({contacts.height:,} loaded)")
        )
    first = row.row(0, named=True)
    period, channel, hs_us = first["period"], first["channel"], int(first["hs_us"] or 0)
    cost = GroupCoster(ws.costs).group_cost(period, channel, 1, hs_us, attribution.periods[period])
    checks = _checks(ws, row.head(1))
    matched = [i for i, c in enumerate(checks) if c.matched]
    matched_set = frozenset(matched)
    # SPEC 4b: the control rules whose match holds, windows ignored, and those in window
    cell = frozenset(
        i for i, c in enumerate(checks) if c.rule.control and all(c.conditions.values())
    )
    open_rules = frozenset(i for i in matched if ws.rules[i].control is not None)
    top = max((ws.rules[i].priority for i in matched), default=0)
    kept = {i for i in matched if ws.settings.overlap == "split" or ws.rules[i].priority == top}
    factors = rule_factors(ws, attribution)
    rules_doc = []
    for i, c in enumerate(checks):
        rule = c.rule
        factor = factors.of(ws, i, period, matched_set, cell) if c.matched else None
        doc: dict[str, Any] = {
            "id": rule.id,
            "decision": rule.decision,
            "matched": c.matched,
            "in_window": c.in_window,
            "conditions": c.conditions,
            "share": weight_str(Fraction(rule.share)),
            "factor": None if factor is None else weight_str(factor),
            "kept": i in kept,
            "weight": weight_str(
                Fraction(rule.share) * factor if factor is not None else Fraction(0)
            ),
            "priority": rule.priority,
        }
        first_day, last_day = window_bounds(rule, ws.decision(rule.decision))
        doc["window"] = {
            "from": first_day.isoformat(),
            "to": None if last_day is None or last_day == last_day.max else last_day.isoformat(),
        }
        if rule.baseline_lookback_days is not None and c.matched:
            doc["baseline"] = _baseline(ws, rule, attribution, period)
        if rule.control is not None and c.matched and cell in attribution.control:
            doc["baseline"] = _control(ws, rule, attribution, period, cell, open_rules)
        rules_doc.append(doc)
    weights = decision_weights(ws, matched_set, period, factors, cell) if matched else {}
    raw: dict[str, Fraction] = {}
    for i in counted(ws, kept):
        w = Fraction(ws.rules[i].share) * factors.of(ws, i, period, matched_set, cell)
        raw[ws.rules[i].decision] = max(raw.get(ws.rules[i].decision, Fraction(0)), w)
    rest = 1 - sum(weights.values(), Fraction(0))
    shown = {k: str(first[k]) for k in SHOWN_COLUMNS if k in first and first[k] is not None}
    if "tags" in shown:  # stored as |a|b|; shown as the tags they are
        shown["tags"] = ", ".join(t for t in shown["tags"].split("|") if t)
    return {
        "contact_id": contact_id,
        "period": period,
        "date": first["date"].isoformat(),
        "channel": channel,
        "cost": cost_str(cost),
        "rules": rules_doc,
        "decisions": {
            d: {
                "weight": weight_str(w),
                "cost": cost_str(w * cost),
                "department": ws.decision(d).department,
                "before_normalising": weight_str(raw.get(d, w)),
            }
            for d, w in sorted(weights.items())
        },
        UNATTRIBUTED: {"weight": weight_str(rest), "cost": cost_str(rest * cost)},
        "overlap": ws.settings.overlap,
        "handle_minutes": weight_str(Fraction(hs_us, US_PER_MINUTE)),
        "currency": ws.costs.currency,
        "contact": shown,
        "duplicates": row.height - 1,
    }
