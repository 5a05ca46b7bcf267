"""The embedded engine: a polars frame of contacts -> the grouped aggregates.

Step 2 of the attribution (which rules a contact matches) runs here as one
polars pass: every rule's match and window become a bit of an int64 mask
column, and the contacts are grouped by month, channel and masks. The masks
come from compile.match_masks, which evaluates each distinct condition once for
all rules, so the rule count does not multiply the cost. The rules' baseline
counts are counted in the same collect, and the groups' mask rows are decoded
into rule sets in bulk, once per distinct row. Nothing per contact leaves.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import numpy as np
import polars as pl

from chargeback.engine.aggregates import (
    I64_MAX,
    Aggregates,
    GroupTable,
    MatchedSets,
    int_column,
    set_bits,
)
from chargeback.engine.compile import (
    lookback_expr,
    window_expr,
)
from chargeback.engine.control_series import (
    control_indexes,
    control_inputs,
    decode_cell,
)
from chargeback.engine.masks import (
    MASK_BITS,
    Inputs,
    day_masks,
)
from chargeback.engine.matching import match_frame, match_slices
from chargeback.workspace.model import Rule, Workspace

__all__ = [  # MASK_BITS lives in masks.py; evidence, drill-down and SQL engines import it here
    "MASK_BITS",
    "MatchBits",
    "aggregate",
    "bit",
    "decode_group",
    "decode_masks",
    "groups_from_rows",
]


def _has_lookback(rule: Rule) -> bool:
    return rule.baseline_lookback_days is not None


def lookback_masks(
    rules: tuple[Rule, ...],
    ws: Workspace,
    dates: pl.Series,
    matches: list[pl.Expr],
    inputs: Inputs = None,
) -> list[pl.Expr]:
    """`_b<k>`: the flat-baseline rules whose match holds in their lookback (SPEC 4's B)."""
    lookbacks = day_masks(rules, ws, dates, lookback_expr, only=_has_lookback, inputs=inputs)
    return [
        (m & b).alias(f"_b{k}") for k, (m, b) in enumerate(zip(matches, lookbacks, strict=True))
    ]


def count_bits(rules: tuple[Rule, ...], rows: list[tuple[int, list[int]]]) -> dict[str, int]:
    """B per flat-baseline rule from (contacts, `_b` values) rows: each set bit counts them."""
    counts = {r.id: 0 for r in rules if _has_lookback(r)}
    for n, values in rows:
        for i in decode_masks(values):
            counts[rules[i].id] += n
    return counts


def ledger_columns(ws: Workspace) -> set[str]:
    """The contacts' columns `aggregate` reads (MatchBits' and match_slices' own, every
    rule's and control block's): what a run that writes the ledger alone keeps."""
    wanted = {"date", "period", "channel", "hs_us", "reason", "text"}
    for r in ws.rules:
        wanted |= r.match.columns()
        if r.control is not None:
            for block in (r.control.evidence, r.control.control):
                wanted |= block.columns() if block is not None else set()
    return wanted


def decode_masks(values: list[int] | tuple[int, ...]) -> frozenset[int]:
    """The rule indexes whose bits are set in a row's `_m*` mask values."""
    return frozenset(
        chunk * MASK_BITS + i for chunk, value in enumerate(values) for i in set_bits(value)
    )


def aggregate(ws: Workspace, contacts: pl.DataFrame, periods: set[str] | None = None) -> Aggregates:
    """The groups (sorted by month, channel, masks) and every baseline rule's B.

    `periods` limits the groups to those months (explain needs one); a month's
    groups, and so its factors and pool shares, do not depend on other months,
    and the baseline counts always read every contact.

    Summed a slice of contacts at a time (matching.match_slices), the slices' sums
    then added up: the contacts grouped by month, channel and the windowed masks
    `_m*`, and per chunk of lookback masks `_b*` (rules of a flat baseline) the
    contacts of each value, B being the contacts of each `_b*` bit. Kept out of the
    grouping keys, the lookbacks neither widen its rows nor split its groups.
    """
    if any(r.control is not None for r in ws.rules):
        # control baselines read every rule's match again (cells, daily series): one
        # pass into bits serves both (MatchBits)
        return MatchBits(ws, contacts).aggregates(periods)
    rules = ws.rules
    dates = contacts.get_column("date")
    inputs: dict[str, pl.Expr | pl.Series] = {}
    windows = day_masks(rules, ws, dates, window_expr, inputs=inputs)
    names = [f"_k{k}" for k in range(len(windows))]
    masks = [
        (pl.col(n) & w).alias(f"_m{k}") for k, (n, w) in enumerate(zip(names, windows, strict=True))
    ]
    with_lookback = any(_has_lookback(r) for r in rules)
    lookbacks = (
        lookback_masks(rules, ws, dates, [pl.col(n) for n in names], inputs)
        if with_lookback
        else []
    )
    keys = ["_month", "channel", *[f"_m{k}" for k in range(len(masks))]]
    # grouped by month number, not by its name: an integer key, and no name per row
    month = pl.col("date").dt.year().cast(pl.Int32) * 12 + pl.col("date").dt.month() - 1
    keep = ["date", "channel", "hs_us", *(["period"] if periods is not None else [])]
    sums: list[pl.DataFrame] = []
    bits: list[list[pl.DataFrame]] = [[] for _ in lookbacks]
    for part in match_slices(ws, contacts, keep):
        staged = part.lazy().with_columns(*inputs.values())
        months = (
            staged if periods is None else staged.filter(pl.col("period").is_in(sorted(periods)))
        )
        grouped = (
            months.select(month.alias("_month"), "channel", "hs_us", *masks)
            .group_by(keys)
            .agg(
                pl.len().cast(pl.Int64).alias("n"),
                pl.col("hs_us").cast(pl.Int128).sum().alias("hs"),
            )
        )
        per_chunk = [
            staged.select(b).filter(pl.col(f"_b{k}") != 0).group_by(f"_b{k}").agg(pl.len())
            for k, b in enumerate(lookbacks)
        ]
        summed, *found = pl.collect_all([grouped, *per_chunk])
        sums.append(summed)
        for k, f in enumerate(found):
            bits[k].append(f)
    groups = (
        pl.concat(sums)
        .group_by(keys)
        .agg(pl.col("n").sum(), pl.col("hs").sum())
        .sort(keys)
        .select(period_of(pl.col("_month")).alias("period"), pl.exclude("_month"))
    )
    del sums
    counts: dict[str, int] = {}
    if lookbacks:
        counts = count_bits(
            rules,
            [
                (int(n), [0] * k + [int(v)])
                for k, found in enumerate(bits)
                for v, n in pl.concat(found).iter_rows()
            ],
        )
    return Aggregates(
        groups=groups_from_rows(ws, groups, len(masks), False),
        baseline_counts=counts,
    )


def period_of(month: pl.Expr) -> pl.Expr:
    """A month number (year x 12 + month - 1) as its period name, "YYYY-MM": formatted as
    data.local_time.with_periods formats a date of that month."""
    return pl.date(month // 12, month % 12 + 1, 1).dt.strftime("%Y-%m")


def groups_from_rows(ws: Workspace, rows: pl.DataFrame, n_masks: int, cells: bool) -> GroupTable:
    """(period, channel, masks..., [cell], n, hs) rows as a GroupTable, column by column:
    each distinct mask row is decoded once, all at once (decode_sets), and no Group
    object is made until something reads the groups one by one."""
    names = rows.columns
    if n_masks:
        index, sets = decode_sets(rows.select(names[2 : 2 + n_masks]))
    else:  # no rules
        index = np.zeros(rows.height, dtype=np.int64)
        sets = MatchedSets(np.zeros(2, dtype=np.int64), np.zeros(0, dtype=np.int64))
    periods, period = _codes(rows.get_column(names[0]))
    channels, channel = _codes(rows.get_column(names[1]))
    if cells:
        values, cell = _codes(rows.get_column(names[2 + n_masks]))
        cell_sets = [decode_cell(ws, int(v)) for v in values]
    else:
        cell_sets, cell = [frozenset()], np.zeros(rows.height, dtype=np.int64)
    return GroupTable(
        (periods, channels, sets, cell_sets),
        (period, channel, index, cell),
        _ints(rows.get_column(names[-2])),
        _ints(rows.get_column(names[-1])),
    )


def _codes(column: pl.Series) -> tuple[list[Any], np.ndarray]:
    """A column's distinct values, and per row the index of its value among them."""
    if column.null_count():  # not in a clean run; kept exact all the same
        values = column.to_list()
        distinct = list(dict.fromkeys(values))
        at = {v: k for k, v in enumerate(distinct)}
        return distinct, np.array([at[v] for v in values], dtype=np.int64)
    distinct = column.unique().sort().to_list()  # the order rank("dense") numbers them in
    if not distinct:
        return [], np.zeros(0, dtype=np.int64)
    return distinct, (column.rank("dense").cast(pl.Int64) - 1).to_numpy()


def _ints(column: pl.Series) -> np.ndarray:
    """An integer column as int64 where every value fits (else as Python ints)."""
    if column.len() and column.null_count() == 0:
        low, high = column.min(), column.max()
        if low >= -I64_MAX and high <= I64_MAX:  # type: ignore[operator]
            return column.cast(pl.Int64).to_numpy()
    return int_column(column.to_list())


def bulk_decode(masks: pl.DataFrame) -> tuple[np.ndarray, list[frozenset[int]]]:
    """Per row, an index into the distinct matched-rule sets of `masks` (int64 `_m*` columns),
    and those sets as decode_masks gives them (the same rules, inserted lowest first)."""
    index, sets = decode_sets(masks)
    return index, sets.frozensets()


def decode_sets(masks: pl.DataFrame) -> tuple[np.ndarray, MatchedSets]:
    """Per row, an index into the distinct matched-rule sets of `masks`: the distinct rows
    found by polars, their bits listed by numpy (MatchedSets.of_masks)."""
    if masks.height == 0:
        return np.zeros(0, dtype=np.int64), MatchedSets(
            np.zeros(1, dtype=np.int64), np.zeros(0, dtype=np.int64)
        )
    index = (
        masks.select(pl.struct(masks.columns).rank("dense").cast(pl.Int64) - 1)
        .to_series()
        .to_numpy()
    )
    first = np.empty(int(index.max()) + 1, dtype=np.int64)
    first[index] = np.arange(len(index))  # a row of each distinct value
    return index, MatchedSets.of_masks(masks.to_numpy()[first], MASK_BITS)


def decode_group(
    ws: Workspace, values: list[int] | tuple[int, ...]
) -> tuple[frozenset[int], frozenset[int]]:
    """(matched rules, control cell) from the values of MatchBits.cell's keys."""
    n_masks = -(-len(ws.rules) // MASK_BITS)
    cell = decode_cell(ws, int(values[n_masks])) if len(values) > n_masks else frozenset()
    return decode_masks(values[:n_masks]), cell


def bit(rules_index: int) -> pl.Expr:
    """True where rule `rules_index` matches (window ignored)."""
    chunk, bit = divmod(rules_index, MASK_BITS)
    return (pl.col(f"_k{chunk}") & (1 << bit)) != 0


class MatchBits:
    """The contacts with every rule's match as bits: evaluated once, read many times."""

    def __init__(self, ws: Workspace, contacts: pl.DataFrame, extra: Collection[str] = ()) -> None:
        self.ws = ws
        rules = ws.rules
        wanted = {"date", "period", "channel", "hs_us", "reason", "text", *extra}
        for r in rules:  # what control baselines' evidence and control blocks read
            if r.control is not None:
                for block in (r.control.evidence, r.control.control):
                    wanted |= block.columns() if block is not None else set()
        keep = [c for c in contacts.columns if c in wanted]
        self.frame = match_frame(ws, contacts, keep)
        names = [pl.col(f"_k{k}") for k in range(-(-len(rules) // MASK_BITS))]
        dates = contacts.get_column("date")
        windows = day_masks(rules, ws, dates, window_expr)
        self.windowed = [
            (n & w).alias(f"_m{k}") for k, (n, w) in enumerate(zip(names, windows, strict=True))
        ]
        self.lookbacks = lookback_masks(rules, ws, dates, names)
        self.mask_names = [f"_m{i}" for i in range(len(self.windowed))]

    def cell(self) -> tuple[list[pl.Expr], list[str]]:
        """The control cell as `_cell` (when there are control baselines), and the group
        keys with it (decode_group reads their values)."""
        indexes = control_indexes(self.ws)
        if not indexes:
            return [], list(self.mask_names)
        cell = pl.sum_horizontal([bit(i).cast(pl.Int64) * (1 << k) for k, i in enumerate(indexes)])
        return [cell.alias("_cell")], [*self.mask_names, "_cell"]

    def unmatched(self) -> pl.Expr:
        """A contact no rule matches inside its window (its whole cost is unattributed)."""
        if not self.windowed:
            return pl.lit(True)
        return pl.all_horizontal([m == 0 for m in self.windowed])

    def aggregates(self, periods: set[str] | None = None) -> Aggregates:
        """The same aggregates as the expression path of `aggregate`, from the bits."""
        ws = self.ws
        frame = self.frame.lazy()
        months = frame if periods is None else frame.filter(pl.col("period").is_in(sorted(periods)))
        cell, keys = self.cell()
        groups = (
            months.select("period", "channel", "hs_us", *self.windowed, *cell)
            .group_by("period", "channel", *keys)
            .agg(pl.len().alias("n"), pl.col("hs_us").cast(pl.Int128).sum().alias("hs"))
            .sort("period", "channel", *keys)
            .collect()
        )
        indexes = control_indexes(ws)
        counts: dict[str, int] = {}
        if any(_has_lookback(r) for r in ws.rules):
            keys = [f"_b{k}" for k in range(len(self.lookbacks))]
            found = self.frame.lazy().select(*self.lookbacks).group_by(*keys).len().collect()
            counts = count_bits(ws.rules, [(int(n), list(v)) for *v, n in found.iter_rows()])
        cells, sharing = control_inputs(ws, self.frame, bit)
        return Aggregates(
            groups=groups_from_rows(ws, groups, len(self.mask_names), bool(indexes)),
            baseline_counts=counts,
            cells=cells,
            sharing=sharing,
        )
