"""The embedded engine: a polars frame of contacts -> the grouped aggregates.

Step 2 of the attribution (which rules a contact matches) runs here as one
polars pass: every rule's match and window become a bit of an int64 mask
column, and the contacts are grouped by month, channel and masks. The masks
come from compile.match_masks, which evaluates each distinct condition once for
all rules, so the rule count does not multiply the cost. The rules' baseline
counts ride along in the same group-by. Nothing per contact leaves.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from chargeback.engine.aggregates import Aggregates, Group
from chargeback.engine.compile import (
    MASK_BITS,
    day_masks,
    lookback_expr,
    match_expr,
    match_masks,
    phrase_masks,
    regex_bits,
    regex_search,
    window_expr,
    with_text_lower,
    without_regex,
)
from chargeback.engine.control_series import (
    cell_expr,
    control_indexes,
    control_inputs,
    decode_cell,
)
from chargeback.workspace.model import Rule, Workspace

__all__ = [  # MASK_BITS lives in compile.py; evidence, drill-down and SQL engines import it here
    "MASK_BITS",
    "MatchBits",
    "aggregate",
    "bit",
    "decode_group",
    "decode_masks",
    "group_columns",
    "groups_from_rows",
    "match_frame",
    "rule_masks",
]


def rule_masks(rules: tuple[Rule, ...], ws: Workspace) -> list[pl.Expr]:
    """Matched-rule sets packed as bits of int64 columns `_m0`, `_m1`, ...

    An expression per rule, for a frame of any rows (with_text_lower); the
    aggregates' pass, which knows its rows, evaluates each condition once
    instead (match_frame).
    """
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


def _has_lookback(rule: Rule) -> bool:
    return rule.baseline_lookback_days is not None


def lookback_masks(
    rules: tuple[Rule, ...],
    ws: Workspace,
    dates: pl.Series,
    matches: list[pl.Expr],
    inputs: dict[str, pl.Expr] | None = None,
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


def match_frame(ws: Workspace, contacts: pl.DataFrame, keep: list[str]) -> pl.DataFrame:
    """The `keep` columns and every rule's match (windows ignored) as bits `_k0`, `_k1`, ...

    A text_regex is the costliest test a rule has (a search per pattern), so it
    runs last, only on the rows where the rest of one of its rules' match holds:
    elsewhere those rules fail whatever the regex says.
    """
    rules = ws.rules
    phrases = phrase_masks(rules)
    if phrases:  # the one multi-pattern pass, made first: the masks look up its values
        contacts = contacts.hstack(with_text_lower(contacts.lazy(), ws).select(phrases).collect())
    found = regex_bits(rules)
    inputs: dict[str, pl.Expr] = {}
    masks = match_masks(rules, contacts, regex=not found, inputs=inputs)
    frame = (
        contacts.lazy()
        .with_columns(*inputs.values())
        .select(*keep, *[m.alias(f"_k{k}") for k, m in enumerate(masks)])
        .collect()
    )
    if not found:
        return frame
    names = [f"_k{k}" for k in range(len(masks))]
    hits = [np.zeros(frame.height, dtype=np.int64) for _ in names]
    text = contacts.get_column("text")
    for pattern, bits in found.items():
        maybe = pl.any_horizontal(
            [(pl.col(n) & b) != 0 for n, b in zip(names, bits, strict=True) if b]
        )
        rows = frame.select(pl.arg_where(maybe)).to_series()
        searched = text.gather(rows).to_frame("text").select(regex_search(pattern)).to_series()
        at = rows.filter(searched.fill_null(False)).to_numpy()
        for k, b in enumerate(bits):
            hits[k][at] |= b
    return frame.with_columns(
        pl.Series(n, frame.get_column(n).to_numpy() & (hit | rest))
        for n, hit, rest in zip(names, hits, without_regex(rules), strict=True)
    )


def decode_masks(values: list[int] | tuple[int, ...]) -> frozenset[int]:
    """The rule indexes whose bits are set in a row's `_m*` mask values."""
    return frozenset(
        chunk * MASK_BITS + i for chunk, value in enumerate(values) for i in _set_bits(value)
    )


def _set_bits(value: int) -> list[int]:
    """The positions of the set bits, lowest first (one step per set bit, not per bit)."""
    out = []
    while value:
        low = value & -value
        out.append(low.bit_length() - 1)
        value ^= low
    return out


def aggregate(ws: Workspace, contacts: pl.DataFrame, periods: set[str] | None = None) -> Aggregates:
    """The groups (sorted by month, channel, masks) and every baseline rule's B.

    `periods` limits the groups to those months (explain needs one); a month's
    groups, and so its factors and pool shares, do not depend on other months,
    and the baseline counts always read every contact.

    One pass over the contacts does both: it groups by the windowed masks `_m*`
    and the lookback masks `_b*`; the groups are those rows summed over `_b*`,
    and B is the contacts of each `_b*` bit.
    """
    if any(r.control is not None for r in ws.rules):
        # control baselines read every rule's match again (cells, daily series): one
        # pass into bits serves both (MatchBits)
        return MatchBits(ws, contacts).aggregates(periods)
    rules = ws.rules
    dates = contacts.get_column("date")
    lf = match_frame(ws, contacts, ["date", "period", "channel", "hs_us"]).lazy()
    inputs: dict[str, pl.Expr] = {}
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
    mask_names = [f"_m{k}" for k in range(len(masks))]
    lookback_names = [f"_b{k}" for k in range(len(lookbacks))]
    both = (
        lf.with_columns(*inputs.values())
        .select("period", "channel", "hs_us", *masks, *lookbacks)
        .group_by("period", "channel", *mask_names, *lookback_names)
        .agg(pl.len().alias("n"), pl.col("hs_us").cast(pl.Int128).sum().alias("hs"))
        .collect()
        .lazy()
    )
    months = both if periods is None else both.filter(pl.col("period").is_in(sorted(periods)))
    groups = (
        months.group_by("period", "channel", *mask_names)
        .agg(pl.col("n").sum(), pl.col("hs").sum())
        .sort("period", "channel", *mask_names)
        .collect()
    )
    counts: dict[str, int] = {}
    if lookbacks:
        found = (
            both.filter(pl.any_horizontal([pl.col(n) != 0 for n in lookback_names]))
            .group_by(*lookback_names)
            .agg(pl.col("n").sum())
            .collect()
        )
        counts = count_bits(rules, [(int(n), list(v)) for *v, n in found.iter_rows()])
    return Aggregates(
        groups=tuple(groups_from_rows(ws, groups, len(masks), False)),
        baseline_counts=counts,
    )


def groups_from_rows(ws: Workspace, rows: pl.DataFrame, n_masks: int, cells: bool) -> list[Group]:
    """(period, channel, masks..., [cell], n, hs) rows as Groups."""
    out = []
    decoded: dict[tuple[int, ...], frozenset[int]] = {}  # many months share a mask
    for period, channel, *values, n, hs in rows.iter_rows():
        cell = decode_cell(ws, int(values[n_masks])) if cells else frozenset()
        key = tuple(values[:n_masks])
        matched = decoded.get(key)
        if matched is None:
            matched = decoded[key] = decode_masks(key)
        out.append(Group(period, channel, matched, int(n), int(hs), cell))
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
        self.frame = match_frame(ws, contacts, keep)
        names = [pl.col(f"_k{k}") for k in range(-(-len(rules) // MASK_BITS))]
        dates = contacts.get_column("date")
        windows = day_masks(rules, ws, dates, window_expr)
        self.windowed = [
            (n & w).alias(f"_m{k}") for k, (n, w) in enumerate(zip(names, windows, strict=True))
        ]
        self.lookbacks = lookback_masks(rules, ws, dates, names)
        self.mask_names = [f"_m{i}" for i in range(len(self.windowed))]

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
        counts: dict[str, int] = {}
        if any(_has_lookback(r) for r in ws.rules):
            keys = [f"_b{k}" for k in range(len(self.lookbacks))]
            found = self.frame.lazy().select(*self.lookbacks).group_by(*keys).len().collect()
            counts = count_bits(ws.rules, [(int(n), list(v)) for *v, n in found.iter_rows()])
        cells, sharing = control_inputs(ws, self.frame, bit)
        return Aggregates(
            groups=tuple(groups_from_rows(ws, groups, len(self.mask_names), bool(indexes))),
            baseline_counts=counts,
            cells=cells,
            sharing=sharing,
        )
