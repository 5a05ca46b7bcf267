"""The embedded engine: a polars frame of contacts -> the grouped aggregates.

Step 2 of the attribution (which rules a contact matches) runs here as one
polars pass: every rule's match and window become a bit of an int64 mask
column, and the contacts are grouped by month, channel and masks. The rules'
baseline counts come from the same lazy frame. Nothing per contact leaves.
"""

from __future__ import annotations

import polars as pl

from chargeback.engine.aggregates import Aggregates, Group
from chargeback.engine.compile import baseline_expr, match_expr, window_expr, with_text_lower
from chargeback.engine.control_series import cell_expr, control_inputs, decode_cell
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


def aggregate(
    ws: Workspace, contacts: pl.DataFrame, periods: set[str] | None = None
) -> Aggregates:
    """The groups (sorted by month, channel, masks) and every baseline rule's B.

    `periods` limits the groups to those months (explain needs one); a month's
    groups, and so its factors and pool shares, do not depend on other months,
    and the baseline counts always read every contact.
    """
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
    cells, sharing = control_inputs(ws, contacts)
    return Aggregates(
        groups=tuple(groups_from_rows(ws, groups, len(mask_names), cell is not None)),
        baseline_counts=baseline_counts,
        cells=cells,
        sharing=sharing,
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
