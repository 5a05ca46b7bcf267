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

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import polars as pl

from chargeback.engine.aggregates import Cell
from chargeback.engine.compile import match_expr, with_text_lower
from chargeback.engine.control import DailySeries
from chargeback.workspace.model import Workspace

MAX_CONTROL_RULES = 62  # cells are int64 bit masks
FAMILY_SHARE = 0.8  # a cell this much of one reason family follows that family's untouched
FAMILY_DAILY = 20  # ... when the family has this many untouched contacts a day on average
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
    # grouped first by everything the counts read (a few hundred thousand groups at 3M
    # contacts): each count below is then a sum of the groups' contacts, `_n`
    flagged = (
        lf.group_by(
            "date",
            pl.col("reason") if has_reason else pl.lit(None, pl.String).alias("reason"),
            cell,
            *matches,
            *evidence.values(),
            *controls.values(),
        )
        .agg(pl.len().cast(pl.Int64).alias("_n"))
        .with_columns(pl.col("reason").str.split(".").list.first().alias("_family"))
        .collect()
    )
    n = pl.col("_n")
    names = [f"_r{i}" for i in range(len(ws.rules))]
    untouched = ~pl.any_horizontal([pl.col(n) for n in [*names, *(f"_e{i}" for i in evidence)]])
    per_day = (
        flagged.lazy()
        .group_by("date")
        .agg(
            *[n.filter(pl.col(f"_c{i}")).sum().alias(f"_c{i}") for i in controls],
            n.filter(untouched).sum().alias("_untouched"),
        )
        .collect()
    )
    per_cell = (
        flagged.lazy()
        .filter(pl.col("_cell") != 0)
        .group_by("_cell", "date")
        .agg(n.sum(), *[n.filter(pl.col(f"_e{i}")).sum().alias(f"_e{i}") for i in evidence])
        .collect()
    )
    first, last = flagged.get_column("date").min(), flagged.get_column("date").max()
    assert isinstance(first, date) and isinstance(last, date)
    family_rows = (
        flagged.lazy()
        .filter(untouched & pl.col("_family").is_not_null())
        .group_by("_family", "date")
        .agg(n.sum())
        .collect()
    )
    cell_families = flagged.lazy().group_by("_cell", "_family").agg(n.sum()).collect()
    counts = CellCounts(
        first=first,
        last=last,
        untouched=list(zip(per_day["date"], per_day["_untouched"], strict=True)),
        controls={i: list(zip(per_day["date"], per_day[f"_c{i}"], strict=True)) for i in controls},
        families=grouped(family_rows.iter_rows()),
        cells=cell_rows(per_cell.iter_rows()),
        mains=main_families(cell_families.iter_rows()),
        pairs=list(flagged.lazy().select(names).unique().collect().iter_rows()),
    )
    return assemble_cells(ws, list(controls), list(evidence), counts)


@dataclass
class CellCounts:
    """What an engine counts for the control cells, as plain rows; assemble_cells does the rest,
    so every engine (polars, SQL) builds the same cells from the same counts."""

    first: date  # the data's first and last calendar day
    last: date
    untouched: list[tuple[date, int]]  # contacts no rule matches and no evidence names
    controls: dict[int, list[tuple[date, int]]]  # rule index -> its control block's contacts
    families: dict[str, list[tuple[date, int]]]  # untouched contacts per reason family
    # cell mask -> (day, contacts, the evidence rules' counts in rule order), cells != 0
    cells: dict[int, list[tuple[date, int, tuple[int, ...]]]]
    mains: dict[int, str | None]  # cell mask -> the reason family of 80% of its contacts
    pairs: list[tuple[Any, ...]]  # the distinct rows of every rule's match (windows ignored)


def grouped(rows: Iterable[tuple[Any, ...]]) -> dict[str, list[tuple[date, int]]]:
    """(key, day, n) rows as key -> [(day, n)]."""
    out: dict[str, list[tuple[date, int]]] = {}
    for key, day, n in rows:
        out.setdefault(str(key), []).append((day, int(n)))
    return out


def cell_rows(
    rows: Iterable[tuple[Any, ...]],
) -> dict[int, list[tuple[date, int, tuple[int, ...]]]]:
    """(cell, day, n, evidence counts...) rows as cell -> [(day, n, evidence counts)]."""
    out: dict[int, list[tuple[date, int, tuple[int, ...]]]] = {}
    for value, day, n, *evidence in rows:
        out.setdefault(int(value), []).append((day, n, tuple(evidence)))
    return out


def main_families(rows: Iterable[tuple[Any, ...]]) -> dict[int, str | None]:
    """Per cell, from (cell, family, n) rows, the reason family (`billing` of
    `billing.late_fee`) of 80% or more of its contacts, or None."""
    totals: dict[int, int] = {}
    top: dict[int, tuple[int, str | None]] = {}
    for value, fam, n in rows:
        value, n = int(value), int(n)
        totals[value] = totals.get(value, 0) + n
        if value not in top or n > top[value][0]:
            top[value] = (n, fam)
    return {
        v: (str(fam) if fam is not None and n >= FAMILY_SHARE * totals[v] else None)
        for v, (n, fam) in top.items()
    }


def assemble_cells(
    ws: Workspace, controls: list[int], evidence: list[int], counts: CellCounts
) -> tuple[dict[frozenset[int], Cell], dict[str, frozenset[str]]]:
    """The cells' daily series and the rules sharing contacts with control rules."""
    first = counts.first
    days = tuple(first + timedelta(days=k) for k in range((counts.last - first).days + 1))

    def daily(rows: Iterable[tuple[date, int | None]]) -> tuple[int, ...]:
        out = [0] * len(days)
        for d, n in rows:
            out[(d - first).days] = int(n or 0)
        return tuple(out)

    untouched = daily(counts.untouched)
    control_cols = {i: daily(rows) for i, rows in counts.controls.items()}
    families = {
        name: daily(rows)
        for name, rows in counts.families.items()
        if sum(n for _, n in rows) >= FAMILY_DAILY * len(days)
    }
    cells: dict[frozenset[int], Cell] = {}
    for value in sorted(counts.cells):
        rows = counts.cells[value]
        members = decode_cell(ws, value)
        # the control series of the first member rule with a control block, else the
        # untouched contacts of the cell's reason family, else all untouched contacts
        own = [i for i in sorted(members) if i in controls]
        control = control_cols[own[0]] if own else untouched
        reason_family = None
        if not own:
            main = counts.mains.get(value)
            reason_family = main if main is not None and main in families else None
            control = families[reason_family] if reason_family is not None else control
        cells[members] = Cell(
            rules=members,
            series=DailySeries(
                days=days, matched=daily((d, n) for d, n, _ in rows), control=control
            ),
            evidence={
                i: daily((d, ev[k]) for d, _, ev in rows)
                for k, i in enumerate(evidence)
                if i in members
            },
            family=reason_family,
        )
    sharing: dict[str, set[str]] = {ws.rules[i].id: set() for i in control_indexes(ws)}
    for row in counts.pairs:
        hit = [ws.rules[i].id for i, v in enumerate(row) if v]
        for rid in hit:
            if rid in sharing:
                sharing[rid].update(h for h in hit if h != rid)
    return cells, {k: frozenset(v) for k, v in sharing.items()}
