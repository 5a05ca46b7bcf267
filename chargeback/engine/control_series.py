"""The daily counts a control baseline (SPEC 4b) is fitted on, from the polars engine.

Per rule with `method: control`: the contacts its match picks up each day
(window ignored), and the day's control series: the contacts its `control`
block matches, or, without one, the contacts no rule matches and no rule's
`evidence` names. Also which rules share contacts with it (window ignored),
whose windows the fit leaves out. Only daily counts leave polars.
"""

from __future__ import annotations

from datetime import date, timedelta

import polars as pl

from chargeback.engine.compile import match_expr, with_text_lower
from chargeback.engine.control import DailySeries
from chargeback.workspace.model import Workspace


def control_inputs(
    ws: Workspace, contacts: pl.DataFrame
) -> tuple[dict[str, DailySeries], dict[str, frozenset[str]]]:
    """Each control rule's daily series, and the rules sharing contacts with it."""
    rules = [r for r in ws.rules if r.control is not None]
    if not rules or contacts.height == 0:
        return {}, {}
    lf = with_text_lower(contacts.lazy(), ws)
    matches = [match_expr(r.match).alias(f"_r{i}") for i, r in enumerate(ws.rules)]
    evidence = [
        match_expr(r.control.evidence).alias(f"_e{i}")
        for i, r in enumerate(ws.rules)
        if r.control is not None and r.control.evidence is not None
    ]
    controls = [
        match_expr(r.control.control).alias(f"_c{i}")
        for i, r in enumerate(ws.rules)
        if r.control is not None and r.control.control is not None
    ]
    flagged = lf.select("date", *matches, *evidence, *controls).collect()
    names = [f"_r{i}" for i in range(len(ws.rules))]
    untouched = ~pl.any_horizontal(
        [pl.col(n) for n in names + [e.meta.output_name() for e in evidence]]
    )
    daily = (
        flagged.lazy()
        .group_by("date")
        .agg(
            *[pl.col(n).sum() for n in names],
            *[pl.col(c.meta.output_name()).sum() for c in controls],
            untouched.sum().alias("_untouched"),
        )
        .collect()
    )
    first, last = flagged.get_column("date").min(), flagged.get_column("date").max()
    assert isinstance(first, date) and isinstance(last, date)
    days = tuple(first + timedelta(days=k) for k in range((last - first).days + 1))
    by_day = {row["date"]: row for row in daily.iter_rows(named=True)}

    def column(name: str) -> tuple[int, ...]:
        return tuple(int(by_day[d][name]) if d in by_day else 0 for d in days)

    # which rules' matches meet on a contact (window ignored)
    pairs = flagged.lazy().select(names).unique().collect()
    sharing: dict[str, set[str]] = {r.id: set() for r in rules}
    for row in pairs.iter_rows():
        hit = [ws.rules[i].id for i, v in enumerate(row) if v]
        for rid in hit:
            if rid in sharing:
                sharing[rid].update(h for h in hit if h != rid)
    series = {}
    for i, rule in enumerate(ws.rules):
        if rule.control is None:
            continue
        control = f"_c{i}" if rule.control.control is not None else "_untouched"
        series[rule.id] = DailySeries(days=days, matched=column(f"_r{i}"), control=column(control))
    return series, {k: frozenset(v) for k, v in sharing.items()}
