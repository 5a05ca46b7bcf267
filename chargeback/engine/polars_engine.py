"""The embedded engine: a polars frame of contacts -> the grouped aggregates.

Step 2 of the attribution (which rules a contact matches) runs here as one
polars pass: every rule's match and window become a bit of an int64 mask
column, and the contacts are grouped by month, channel and masks. The rules'
baseline counts come from the same lazy frame. Nothing per contact leaves.
"""

from __future__ import annotations

import polars as pl

from chargeback.engine.aggregates import Aggregates, Group
from chargeback.engine.compile import (
    baseline_expr,
    lookback_expr,
    match_expr,
    window_expr,
    with_text_lower,
)
from chargeback.engine.control_series import (
    cell_expr,
    control_indexes,
    control_inputs,
    decode_cell,
)
from chargeback.workspace.model import Rule, Workspace

MASK_BITS = 62  # rules per int64 mask column


def rule_masks(rules: tuple[Rule, ...], ws: Workspace) -> list[pl.Expr]:
    """Matched-rule sets packed as bits of int64 columns `_m0`, `_m1`, ..."""
    masks: list[pl.Expr] = []
    for start in range(0, len(rules), MASK_BITS):
        bits = [
            pl.when(match_expr(r.match) & window_expr(r, ws.decision(r.decision)))
            .then(pl.lit(1 << i, dtype=pl.Int64))
            .otherwise(pl.lit(0, dtype=pl.Int64))
            for i, r in enumerate(rules[start : start + MASK_BITS])
        ]
        masks.append(pl.sum_horizontal(bits).alias(f"_m{start // MASK_BITS}"))
    return masks


def decode_masks(values: list[int] | tuple[int, ...]) -> frozenset[int]:
    """The rule indexes whose bits are set in a row's `_m*` mask values."""
    return frozenset(
        chunk * MASK_BITS + bit
        for chunk, value in enumerate(values)
        for bit in range(MASK_BITS)
        if value >> bit & 1
    )


def aggregate(ws: Workspace, contacts: pl.DataFrame, periods: set[str] | None = None) -> Aggregates:
    """The groups (sorted by month, channel, masks) and every baseline rule's B.

    `periods` limits the groups to those months (explain needs one); a month's
    groups, and so its factors and pool shares, do not depend on other months,
    and the baseline counts always read every contact.
    """
    if any(r.control is not None for r in ws.rules):
        # control baselines read every rule's match again (cells, daily series): one
        # pass into bits serves both (MatchBits)
        return MatchBits(ws, contacts).aggregates(periods)
    rules = ws.rules
    lf = with_text_lower(contacts.lazy(), ws)
    masks = rule_masks(rules, ws)
    mask_names = [f"_m{i}" for i in range(len(masks))]
    months = lf if periods is None else lf.filter(pl.col("period").is_in(sorted(periods)))
    cell = cell_expr(ws)  # only with control baselines: the groups are split by cell too
    keys = [*mask_names, *(["_cell"] if cell is not None else [])]
    groups = (
        months.select("period", "channel", "hs_us", *masks, *([cell] if cell is not None else []))
        .group_by("period", "channel", *keys)
        .agg(pl.len().alias("n"), pl.col("hs_us").cast(pl.Int128).sum().alias("hs"))
        .sort("period", "channel", *keys)
        .collect()
    )
    baseline_rules = [r for r in rules if r.baseline_lookback_days is not None]
    baseline_counts: dict[str, int] = {}
    if baseline_rules:
        counts = (
            lf.select(
                [
                    baseline_expr(r, ws.decision(r.decision)).sum().alias(f"_b{i}")
                    for i, r in enumerate(baseline_rules)
                ]
            )
            .collect()
            .row(0)
        )
        baseline_counts = {r.id: int(c or 0) for r, c in zip(baseline_rules, counts, strict=True)}
    return Aggregates(
        groups=tuple(groups_from_rows(ws, groups, len(mask_names), cell is not None)),
        baseline_counts=baseline_counts,
    )


def groups_from_rows(ws: Workspace, rows: pl.DataFrame, n_masks: int, cells: bool) -> list[Group]:
    """(period, channel, masks..., [cell], n, hs) rows as Groups."""
    out = []
    for period, channel, *values, n, hs in rows.iter_rows():
        cell = decode_cell(ws, int(values[n_masks])) if cells else frozenset()
        out.append(Group(period, channel, decode_masks(values[:n_masks]), int(n), int(hs), cell))
    return out


def group_columns(ws: Workspace) -> tuple[list[pl.Expr], list[str]]:
    """The windowed rule masks, and the control cell when there are control baselines."""
    masks = rule_masks(ws.rules, ws)
    names = [f"_m{i}" for i in range(len(masks))]
    cell = cell_expr(ws)
    if cell is not None:
        masks.append(cell)
        names.append("_cell")
    return masks, names


def decode_group(
    ws: Workspace, values: list[int] | tuple[int, ...]
) -> tuple[frozenset[int], frozenset[int]]:
    """(matched rules, control cell) from group_columns' values."""
    n_masks = -(-len(ws.rules) // MASK_BITS)
    cell = decode_cell(ws, int(values[n_masks])) if len(values) > n_masks else frozenset()
    return decode_masks(values[:n_masks]), cell


def bit(rules_index: int) -> pl.Expr:
    """True where rule `rules_index` matches (window ignored)."""
    chunk, bit = divmod(rules_index, MASK_BITS)
    return (pl.col(f"_k{chunk}") & (1 << bit)) != 0


class MatchBits:
    """The contacts with every rule's match as bits: evaluated once, read many times."""

    def __init__(self, ws: Workspace, contacts: pl.DataFrame) -> None:
        self.ws = ws
        rules = ws.rules
        wanted = {"date", "period", "channel", "hs_us", "reason", "text"}
        for r in rules:  # what control baselines' evidence and control blocks read
            if r.control is not None:
                for block in (r.control.evidence, r.control.control):
                    wanted |= block.columns() if block is not None else set()
        keep = [c for c in contacts.columns if c in wanted]
        masks = [
            pl.sum_horizontal(
                [
                    pl.when(match_expr(r.match))
                    .then(pl.lit(1 << i, dtype=pl.Int64))
                    .otherwise(pl.lit(0, dtype=pl.Int64))
                    for i, r in enumerate(rules[start : start + MASK_BITS])
                ]
            ).alias(f"_k{start // MASK_BITS}")
            for start in range(0, len(rules), MASK_BITS)
        ]
        lf = with_text_lower(contacts.lazy(), ws)
        self.frame = lf.select(*keep, *masks).collect()
        windowed = []
        for start in range(0, len(rules), MASK_BITS):
            bits = [
                pl.when(bit(start + i) & window_expr(r, ws.decision(r.decision)))
                .then(pl.lit(1 << i, dtype=pl.Int64))
                .otherwise(pl.lit(0, dtype=pl.Int64))
                for i, r in enumerate(rules[start : start + MASK_BITS])
            ]
            windowed.append(pl.sum_horizontal(bits).alias(f"_m{start // MASK_BITS}"))
        self.windowed = windowed
        self.mask_names = [f"_m{i}" for i in range(len(windowed))]

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
        indexes = control_indexes(ws)
        cell = (
            [
                pl.sum_horizontal(
                    [bit(i).cast(pl.Int64) * (1 << k) for k, i in enumerate(indexes)]
                ).alias("_cell")
            ]
            if indexes
            else []
        )
        keys = [*self.mask_names, *(["_cell"] if indexes else [])]
        groups = (
            months.select("period", "channel", "hs_us", *self.windowed, *cell)
            .group_by("period", "channel", *keys)
            .agg(pl.len().alias("n"), pl.col("hs_us").cast(pl.Int128).sum().alias("hs"))
            .sort("period", "channel", *keys)
            .collect()
        )
        baseline = [(i, r) for i, r in enumerate(ws.rules) if r.baseline_lookback_days]
        counts: dict[str, int] = {}
        if baseline:
            row = self.frame.select(
                [
                    (bit(i) & lookback_expr(r, ws.decision(r.decision))).sum().alias(f"_b{i}")
                    for i, r in baseline
                ]
            ).row(0)
            counts = {r.id: int(c or 0) for (_, r), c in zip(baseline, row, strict=True)}
        cells, sharing = control_inputs(ws, self.frame, bit)
        return Aggregates(
            groups=tuple(groups_from_rows(ws, groups, len(self.mask_names), bool(indexes))),
            baseline_counts=counts,
            cells=cells,
            sharing=sharing,
        )
