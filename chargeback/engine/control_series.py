"""The daily counts control baselines (SPEC 4b) are fitted on, from the polars engine.

Contacts are put in cells by the set of control rules their match picks up
(windows ignored): a contact two decisions' control rules both match belongs to
one cell, whose excess is estimated once and then split between the decisions
by their `evidence`. Per cell: its contacts each day, the day's control series
(the contacts a rule's `control` block matches, or, without one, the contacts
no rule matches and no rule's `evidence` names), and per rule the cell's
contacts carrying that rule's evidence. Also which rules share contacts with
each control rule (windows ignored): their windows leave its fit. Only daily
counts leave polars.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta

import polars as pl

from chargeback.engine.aggregates import Cell
from chargeback.engine.compile import match_expr, with_text_lower
from chargeback.engine.control import DailySeries
from chargeback.workspace.model import Workspace

MAX_CONTROL_RULES = 62  # cells are int64 bit masks
RuleMatch = Callable[[int], pl.Expr]  # rule index -> whether its match holds (window ignored)


def control_indexes(ws: Workspace) -> list[int]:
    return [i for i, r in enumerate(ws.rules) if r.control is not None]


def cell_expr(ws: Workspace, matches: RuleMatch | None = None) -> pl.Expr | None:
    """`_cell`: the control rules a contact's match picks up (windows ignored), as bits."""
    indexes = control_indexes(ws)
    if not indexes:
        return None
    matches = matches or (lambda i: match_expr(ws.rules[i].match))
    return pl.sum_horizontal(
        [
            pl.when(matches(i))
            .then(pl.lit(1 << k, dtype=pl.Int64))
            .otherwise(pl.lit(0, dtype=pl.Int64))
            for k, i in enumerate(indexes)
        ]
    ).alias("_cell")


def decode_cell(ws: Workspace, value: int) -> frozenset[int]:
    indexes = control_indexes(ws)
    return frozenset(i for k, i in enumerate(indexes) if value >> k & 1)


def control_inputs(
    ws: Workspace, contacts: pl.DataFrame, rule_match: RuleMatch | None = None
) -> tuple[dict[frozenset[int], Cell], dict[str, frozenset[str]]]:
    """Every non-empty cell's daily series, and the rules sharing contacts with control rules.

    `rule_match(i)`: how to read rule i's match on `contacts` (windows ignored); by
    default its expression, or the bits a one-pass frame already holds.
    """
    indexes = control_indexes(ws)
    if not indexes or contacts.height == 0:
        return {}, {}
    if len(indexes) > MAX_CONTROL_RULES:
        raise ValueError(f"at most {MAX_CONTROL_RULES} rules may use a control baseline")
    rule_match = rule_match or (lambda i: match_expr(ws.rules[i].match))
    cell = cell_expr(ws, rule_match)
    assert cell is not None
    lf = with_text_lower(contacts.lazy(), ws)
    matches = [rule_match(i).alias(f"_r{i}") for i in range(len(ws.rules))]
    baselines = {i: ws.rules[i].control for i in indexes}
    evidence = {
        i: match_expr(b.evidence).alias(f"_e{i}")
        for i, b in baselines.items()
        if b is not None and b.evidence is not None
    }
    controls = {
        i: match_expr(b.control).alias(f"_c{i}")
        for i, b in baselines.items()
        if b is not None and b.control is not None
    }
    has_reason = "reason" in lf.collect_schema().names()
    family = (
        pl.col("reason").str.split(".").list.first() if has_reason else pl.lit(None, pl.String)
    ).alias("_family")
    flagged = lf.select(
        "date", cell, family, *matches, *evidence.values(), *controls.values()
    ).collect()
    names = [f"_r{i}" for i in range(len(ws.rules))]
    untouched = ~pl.any_horizontal([pl.col(n) for n in [*names, *(f"_e{i}" for i in evidence)]])
    per_day = (
        flagged.lazy()
        .group_by("date")
        .agg(
            *[pl.col(f"_c{i}").sum() for i in controls],
            untouched.sum().alias("_untouched"),
        )
        .collect()
    )
    per_cell = (
        flagged.lazy()
        .filter(pl.col("_cell") != 0)
        .group_by("_cell", "date")
        .agg(pl.len().alias("_n"), *[pl.col(f"_e{i}").sum() for i in evidence])
        .collect()
    )
    first, last = flagged.get_column("date").min(), flagged.get_column("date").max()
    assert isinstance(first, date) and isinstance(last, date)
    days = tuple(first + timedelta(days=k) for k in range((last - first).days + 1))
    position = {d: k for k, d in enumerate(days)}

    def daily(rows: list[tuple[date, int]]) -> tuple[int, ...]:
        counts = [0] * len(days)
        for d, n in rows:
            counts[position[d]] = int(n or 0)
        return tuple(counts)

    control_cols = {
        name: daily(list(zip(per_day["date"], per_day[name], strict=True)))
        for name in ["_untouched", *(f"_c{i}" for i in controls)]
    }
    families = _family_controls(flagged, untouched, daily, len(days))
    cells: dict[frozenset[int], Cell] = {}
    for value in sorted(per_cell.get_column("_cell").unique().to_list()):
        rows = per_cell.filter(pl.col("_cell") == value)
        members = decode_cell(ws, int(value))
        # the control series of the first member rule with a control block, else the
        # untouched contacts of the cell's reason family, else all untouched contacts
        own = [i for i in sorted(members) if i in controls]
        control = control_cols[f"_c{own[0]}" if own else "_untouched"]
        reason_family = None
        if not own:
            main = _main_family(flagged, int(value))
            reason_family = main if main is not None and main in families else None
            control = families[reason_family] if reason_family is not None else control
        cells[members] = Cell(
            rules=members,
            series=DailySeries(
                days=days,
                matched=daily(list(zip(rows["date"], rows["_n"], strict=True))),
                control=control,
            ),
            evidence={
                i: daily(list(zip(rows["date"], rows[f"_e{i}"], strict=True)))
                for i in members
                if i in evidence
            },
            family=reason_family,
        )
    pairs = flagged.lazy().select(names).unique().collect()
    sharing: dict[str, set[str]] = {ws.rules[i].id: set() for i in indexes}
    for row in pairs.iter_rows():
        hit = [ws.rules[i].id for i, v in enumerate(row) if v]
        for rid in hit:
            if rid in sharing:
                sharing[rid].update(h for h in hit if h != rid)
    return cells, {k: frozenset(v) for k, v in sharing.items()}


FAMILY_SHARE = 0.8  # a cell this much of one reason family follows that family's untouched
FAMILY_DAILY = 20  # ... when the family has this many untouched contacts a day on average


def _main_family(flagged: pl.DataFrame, cell: int) -> str | None:
    """The reason family (`billing` of `billing.late_fee`) of 80% or more of a cell's contacts."""
    counts = (
        flagged.lazy()
        .filter(pl.col("_cell") == cell)
        .group_by("_family")
        .len()
        .sort("len", descending=True)
        .collect()
    )
    if counts.height == 0:
        return None
    top, n = counts.row(0)
    total = int(counts["len"].sum())
    return str(top) if top is not None and int(n) >= FAMILY_SHARE * total else None


def _family_controls(
    flagged: pl.DataFrame,
    untouched: pl.Expr,
    daily: Callable[[list[tuple[date, int]]], tuple[int, ...]],
    n_days: int,
) -> dict[str, tuple[int, ...]]:
    """Untouched contacts per reason family and day, for families with enough of them."""
    rows = (
        flagged.lazy()
        .filter(untouched & pl.col("_family").is_not_null())
        .group_by("_family", "date")
        .len()
        .collect()
    )
    out = {}
    for name in rows.get_column("_family").unique().to_list():
        part = rows.filter(pl.col("_family") == name)
        if int(part["len"].sum()) >= FAMILY_DAILY * n_days:
            out[str(name)] = daily(list(zip(part["date"], part["len"], strict=True)))
    return out
