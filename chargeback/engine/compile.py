"""Rules -> polars expressions for the embedded engine. No I/O.

The contacts frame these expressions run on is the canonical one from
data/tables.py: strings for the match columns, `tags` as `|a|b|`, `date` as the
local calendar date. match_expr and friends are one rule's expressions (explain,
evidence, control series); match_masks and day_masks are every rule's at once,
built from the distinct values of the columns they test (the only data read here).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial, reduce

import numpy as np
import polars as pl

from chargeback.engine.dates import shift_day, window_bounds
from chargeback.workspace.model import Decision, Match, Rule, Workspace
from chargeback.workspace.re2 import to_rust

MASK_BITS = 62  # rules per int64 mask column
# types whose text form (what any_of compares) is one per value, so a condition
# can be evaluated on the column's distinct values and looked up
LOOKUP_TYPES = (pl.String, pl.Categorical, pl.Enum, pl.Boolean, pl.Decimal)


def any_of(column: str | pl.Expr, values: tuple[str, ...]) -> pl.Expr:
    """Exact, case-sensitive membership; a value ending in `*` is a prefix.

    Compared as text, so a numeric extra column (or `revenue`) matches too.
    """
    col = (pl.col(column) if isinstance(column, str) else column).cast(pl.String)
    exact = [v for v in values if not v.endswith("*")]
    prefixes = [v[:-1] for v in values if v.endswith("*")]
    parts: list[pl.Expr] = []
    if exact:
        parts.append(col.is_in(exact))
    parts.extend(col.str.starts_with(p) for p in prefixes)
    return _or(parts)


def tags_any_of(values: tuple[str, ...], tags: pl.Expr | None = None) -> pl.Expr:
    """Tags are stored as `|a|b|`, so `|fee|` finds a tag and `|fee` a tag prefix."""
    needles = [f"|{v[:-1]}" if v.endswith("*") else f"|{v}|" for v in values]
    return (pl.col("tags") if tags is None else tags).str.contains_any(needles)


def text_any_of(values: tuple[str, ...]) -> pl.Expr:
    """Case-insensitive substrings; a trailing `*` adds nothing to a substring."""
    needles = [v.removesuffix("*").lower() for v in values]
    return pl.col("text_lower").str.contains_any(needles)


def conditions(match: Match) -> list[tuple[str, pl.Expr]]:
    """Each match key as its own condition, named as `explain` shows it (`fields.<column>`)."""
    parts: list[tuple[str, pl.Expr]] = []
    for key in ("reason", "channel", "product", "region", "outcome"):
        values = getattr(match, key)
        if values is not None:
            parts.append((key, any_of(key, values)))
    if match.tags is not None:
        parts.append(("tags", tags_any_of(match.tags)))
    if match.text is not None:
        parts.append(("text", text_any_of(match.text)))
    if match.text_regex is not None:
        parts.append(("text_regex", regex_search(match.text_regex)))
    for column, values in match.fields:
        # tags are stored as |a|b|, so `fields: {tags: ...}` takes the tags rule
        expr = tags_any_of(values) if column == "tags" else any_of(column, values)
        parts.append((f"fields.{column}", expr))
    return parts


def match_expr(match: Match) -> pl.Expr:
    """Every key present must hold; a null never matches (hence the final fill)."""
    parts = [expr for _, expr in conditions(match)]
    if not parts:
        return pl.lit(True)
    return _and(parts).fill_null(False)


def window_expr(rule: Rule, decision: Decision, day: pl.Expr | None = None) -> pl.Expr:
    day = pl.col("date") if day is None else day
    first, last = window_bounds(rule, decision)
    expr = day >= first
    if last is not None:
        expr = expr & (day <= last)
    return expr


def lookback_expr(rule: Rule, decision: Decision, day: pl.Expr | None = None) -> pl.Expr:
    """The flat baseline's lookback: [effective - lookback_days, effective)."""
    assert rule.baseline_lookback_days is not None
    day = pl.col("date") if day is None else day
    start = shift_day(decision.effective, -rule.baseline_lookback_days)
    return (day >= start) & (day < decision.effective)


def baseline_expr(rule: Rule, decision: Decision) -> pl.Expr:
    """Contacts that satisfy the match in the lookback before the decision's effective date."""
    return match_expr(rule.match) & lookback_expr(rule, decision)


def _or(parts: list[pl.Expr]) -> pl.Expr:
    return reduce(lambda a, b: a | b, parts)


def _and(parts: list[pl.Expr]) -> pl.Expr:
    return reduce(lambda a, b: a & b, parts)


def with_text_lower(frame: pl.LazyFrame, ws: Workspace) -> pl.LazyFrame:
    """The lower-cased text `text` rules search, made once for every rule."""
    blocks = [r.match for r in ws.rules]
    for r in ws.rules:  # control baselines' evidence and control blocks read text too
        if r.control is not None:
            blocks += [b for b in (r.control.evidence, r.control.control) if b is not None]
    if any(b.text is not None for b in blocks):
        return frame.with_columns(pl.col("text").str.to_lowercase().alias("text_lower"))
    return frame


# --------------------------------------------------------------------------- every rule at once
#
# The masks below hold, per contact, bit i of column `_m{i // 62}` for rule i. Their
# cost must not grow with the rule count as a per-rule pass over the rows would, so
# each kind of condition is evaluated once for all rules ("layers"), and a layer
# gives, per chunk of 62 rules, the bits of the rules whose conditions of that kind
# hold (or that have none). A rule matches when every layer sets its bit: the same
# AND of keys, with a null counted false, as match_expr.
# - A match column (reason, channel, ..., tags, `fields`): each rule's conditions on
#   it are evaluated on the column's distinct values, and each row looks its bits up
#   by the index of its value: one hash per row, whatever the rule count.
# - text: every phrase of every rule in one multi-pattern (Aho-Corasick) pass over
#   the lower-cased text, into bits of the phrases found (phrase_masks); the rules
#   that name them are then looked up by those bits, like a match column.
# - text_regex: one search per distinct pattern (polars_engine.match_frame runs it
#   only on the rows where the rest of one of its rules' match holds).
# - windows and lookbacks: looked up by the local date, like a match column.
# Each is the very expression match_expr uses (any_of, tags_any_of, the same
# lower-cased phrases, regex_search, window_expr), run on fewer values: the bits
# are those match_expr would give.

Condition = Callable[[pl.Expr], pl.Expr]  # a condition on one column, given that column


def _on_columns(match: Match) -> list[tuple[str, Condition]]:
    """The match's conditions that test one column's value, as (column, condition)."""
    parts: list[tuple[str, Condition]] = []
    for key in ("reason", "channel", "product", "region", "outcome"):
        values = getattr(match, key)
        if values is not None:
            parts.append((key, partial(_any_of_on, values)))
    if match.tags is not None:
        parts.append(("tags", partial(tags_any_of, match.tags)))
    for column, values in match.fields:
        # tags are stored as |a|b|, so `fields: {tags: ...}` takes the tags rule
        test = partial(tags_any_of, values) if column == "tags" else partial(_any_of_on, values)
        parts.append((column, test))
    return parts


def _any_of_on(values: tuple[str, ...], column: pl.Expr) -> pl.Expr:
    return any_of(column, values)


def _bits(pairs: list[tuple[pl.Expr, int]], const: int) -> pl.Expr:
    """const | the bits whose condition holds (a null is false); the bits are disjoint."""
    parts = [
        pl.when(cond).then(pl.lit(b, pl.Int64)).otherwise(pl.lit(0, pl.Int64)) for cond, b in pairs
    ]
    return pl.sum_horizontal([pl.lit(const, pl.Int64), *parts])


Inputs = dict[str, pl.Expr | pl.Series] | None  # per-row inputs the masks read, made once


def _staged(inputs: Inputs, name: str, expr: pl.Expr | pl.Series) -> pl.Expr:
    """`expr` itself, or, with `inputs`, a column the caller makes from it first (an
    expression) or adds as it is (a Series, already made for every row).

    Polars would evaluate an index shared by several masks once per mask; staged,
    the masks read one column.
    """
    if inputs is None:
        assert isinstance(expr, pl.Expr)
        return expr
    inputs[name] = expr.alias(name)
    return pl.col(name)


def _keys(values: pl.Series, inputs: Inputs, coded: pl.Series | None) -> tuple[pl.Series, pl.Expr]:
    """A column's distinct values (with nulls or unused keys among them, harmless) and an
    expression giving each row's position among them.

    The index costs one hash per row at most: text `coded` once as categories (in
    `categories`) has its codes as positions (unique plus a lookup per row cost
    about twice as much); a date is its distance from the first day, no hashing at
    all. Both need the column made for every row (`inputs`); without, or for other
    types, a hash lookup.
    """
    name = values.name
    if inputs is not None and values.dtype == pl.Date and values.len() > values.null_count():
        days = values.cast(pl.Int32)
        first, last = int(days.min()), int(days.max())  # type: ignore[arg-type]
        keys = pl.int_range(first, last + 1, eager=True).cast(pl.Date).alias(name)
        index = (pl.col(name).cast(pl.Int32) - first).cast(pl.UInt32)
        return keys, _staged(inputs, f"_ix_{name}", index)
    if inputs is not None and coded is not None:
        keys, codes = category_keys(coded)
        return keys, _staged(inputs, f"_ix_{name}", codes)
    keys = values.unique(maintain_order=True)
    index = pl.col(name).replace_strict(keys, pl.Series(range(keys.len()), dtype=pl.UInt32))
    return keys, _staged(inputs, f"_ix_{name}", index)


def categories(frame: pl.DataFrame, names: list[str]) -> pl.DataFrame:
    """Text columns coded as categories, each its own, in one select: side by side."""
    return frame.select(pl.col(n).cast(pl.Categorical(pl.Categories.random())) for n in names)


def category_keys(coded: pl.Series) -> tuple[pl.Series, pl.Series]:
    """A column `categories` coded: its distinct values by code (a null last, for the rows
    without one) and each row's code, so `keys.gather(codes)` is the column."""
    dtype = coded.dtype
    assert isinstance(dtype, pl.Categorical)
    keys = dtype.categories.to_series().alias(coded.name)  # by code: the column's own
    none = pl.Series(coded.name, [None], dtype=pl.String)
    n = keys.len() + 1
    small = pl.UInt8 if n <= 1 << 8 else pl.UInt16 if n <= 1 << 16 else pl.UInt32  # kept
    return pl.concat([keys, none]), coded.to_physical().fill_null(keys.len()).cast(small)


def lookup_columns(rules: tuple[Rule, ...], contacts: pl.DataFrame) -> list[str]:
    """The text columns match_masks looks its rules' conditions up in."""
    named = {column for r in rules for column, _ in _on_columns(r.match)}
    return sorted(c for c in named if contacts.schema.get(c) == pl.String)


def _lookup(
    values: pl.Series,
    per_rule: dict[int, Condition],
    chunks: list[range],
    absent: bool = True,
    inputs: Inputs = None,
    coded: pl.Series | None = None,
) -> list[pl.Expr]:
    """Per chunk, the bits of `per_rule`'s conditions, looked up by the row's value.

    The conditions run once on the column's distinct `values` (a small frame);
    each row then finds its bits by the index of its value. A rule without a
    condition here has its bit set when `absent`, else clear.
    """
    keys, index = _keys(values, inputs, coded)
    flags = keys.to_frame().select(
        [per_rule[i](pl.col(values.name)).fill_null(False).alias(str(i)) for i in sorted(per_rule)]
    )
    out = []
    for chunk in chunks:
        const = sum(1 << (i - chunk.start) for i in chunk if i not in per_rule) if absent else 0
        table = np.full(keys.len(), const, dtype=np.int64)
        for i in (i for i in chunk if i in per_rule):
            table |= flags.get_column(str(i)).to_numpy().astype(np.int64) << (i - chunk.start)
        if (table != const).any():
            out.append(pl.lit(pl.Series(table)).gather(index))
        else:
            out.append(pl.lit(const, pl.Int64))
    return out


def chunks_of(rules: tuple[Rule, ...]) -> list[range]:
    return [range(s, min(s + MASK_BITS, len(rules))) for s in range(0, len(rules), MASK_BITS)]


def day_masks(
    rules: tuple[Rule, ...],
    ws: Workspace,
    dates: pl.Series,
    condition: Callable[[Rule, Decision, pl.Expr], pl.Expr],
    only: Callable[[Rule], bool] = lambda rule: True,
    inputs: Inputs = None,
) -> list[pl.Expr]:
    """Per chunk of 62 rules, the bits of the rules (`only` those) whose `condition`
    (window_expr, lookback_expr) holds on the row's local date, looked up by date."""
    conds: dict[int, Condition] = {
        i: partial(condition, r, ws.decision(r.decision)) for i, r in enumerate(rules) if only(r)
    }
    return _lookup(dates, conds, chunks_of(rules), absent=False, inputs=inputs)


def _phrases(rules: tuple[Rule, ...]) -> dict[int, set[str]]:
    """Each text rule's phrases, lower-cased; a trailing `*` adds nothing to a substring."""
    return {
        i: {v.removesuffix("*").lower() for v in r.match.text}
        for i, r in enumerate(rules)
        if r.match.text is not None
    }


def phrase_masks(rules: tuple[Rule, ...]) -> list[pl.Expr]:
    """`_ph0`, `_ph1`, ...: which of the rules' distinct phrases (62 per column) the row's
    `text_lower` holds, from one multi-pattern (Aho-Corasick) pass for all of them.

    Overlapping matches, so a phrase inside or across another is found too. A
    row without text holds none.
    """
    found = sorted({n for ns in _phrases(rules).values() for n in ns if n})
    if not found:
        return []
    hits = pl.col("text_lower").str.extract_many(found, overlapping=True)
    return [
        hits.list.eval(
            pl.element().replace_strict(
                found,
                [1 << (j - g) if g <= j < g + MASK_BITS else 0 for j in range(len(found))],
                return_dtype=pl.Int64,
            )
        )
        .list.agg(pl.element().bitwise_or())
        .fill_null(0)
        .alias(f"_ph{g // MASK_BITS}")
        for g in range(0, len(found), MASK_BITS)
    ]


def _text_layer(
    rules: tuple[Rule, ...], chunks: list[range], contacts: pl.DataFrame, inputs: Inputs
) -> list[pl.Expr]:
    """A text rule holds where one of its phrases does: looked up by the phrase masks."""
    needles = _phrases(rules)
    found = sorted({n for ns in needles.values() for n in ns if n})
    per_column: list[dict[int, Condition]] = []
    for g in range(0, len(found), MASK_BITS):
        column: dict[int, Condition] = {}
        for i, ns in needles.items():
            bits = sum(1 << (j - g) for j, n in enumerate(found[g : g + MASK_BITS], g) if n in ns)
            if bits:
                column[i] = partial(_any_bit, bits)
        per_column.append(column)
    layers = [
        _lookup(contacts.get_column(f"_ph{g}"), column, chunks, absent=False, inputs=inputs)
        for g, column in enumerate(per_column)
    ]
    out = []
    for k, chunk in enumerate(chunks):
        layer = pl.lit(sum(1 << (i - chunk.start) for i in chunk if i not in needles), pl.Int64)
        for found_in in layers:
            layer = layer | found_in[k]
        empty = sum(1 << (i - chunk.start) for i in chunk if "" in needles.get(i, ()))
        if empty:  # an empty phrase is in every text
            layer = layer | pl.when(pl.col("text").is_not_null()).then(empty).otherwise(0)
        out.append(layer)
    return out


def _any_bit(bits: int, column: pl.Expr) -> pl.Expr:
    return (column & bits) != 0


def regex_search(pattern: str, text: pl.Expr | None = None) -> pl.Expr:
    """A case-insensitive search with RE2's meaning, in Rust's syntax."""
    return (pl.col("text") if text is None else text).str.contains("(?i)" + to_rust(pattern))


def regex_bits(rules: tuple[Rule, ...]) -> dict[str, list[int]]:
    """Each distinct text_regex, with the bits (per chunk of 62) of the rules that use it."""
    chunks = chunks_of(rules)
    out: dict[str, list[int]] = {}
    for i, rule in enumerate(rules):
        if rule.match.text_regex is not None:
            bits = out.setdefault(rule.match.text_regex, [0] * len(chunks))
            bits[i // MASK_BITS] |= 1 << (i % MASK_BITS)
    return out


def without_regex(rules: tuple[Rule, ...]) -> list[int]:
    """Per chunk, the bits of the rules that have no text_regex."""
    return [
        sum(1 << (i - ch.start) for i in ch if rules[i].match.text_regex is None)
        for ch in chunks_of(rules)
    ]


def _regex_layer(rules: tuple[Rule, ...]) -> list[pl.Expr]:
    """One search per distinct pattern, over every row."""
    found = regex_bits(rules).items()
    return [
        _bits([(regex_search(p), bits[k]) for p, bits in found if bits[k]], const)
        for k, const in enumerate(without_regex(rules))
    ]


def match_masks(
    rules: tuple[Rule, ...],
    contacts: pl.DataFrame,
    regex: bool = True,
    inputs: Inputs = None,
    coded: pl.DataFrame | None = None,
) -> list[pl.Expr]:
    """Int64 expressions, 62 rules each: bit k of mask c is rules[62c + k]'s match.

    `regex=False` leaves text_regex out (as if it held): the caller searches
    only the rows where the rest of a regex rule's match holds.
    For a frame of these `contacts` (or of some of their rows), which have the
    phrase_masks columns when a rule has `text`. Their columns' distinct values
    are read here; a `fields` column whose text form is not one per value (a float)
    is tested row by row. With `inputs`, the per-row inputs go there, to be made
    (with_columns) before the masks; `coded` (categories) has text columns coded.
    """
    chunks = chunks_of(rules)
    layers: list[list[pl.Expr]] = []
    by_column: dict[str, dict[int, list[Condition]]] = {}
    for i, rule in enumerate(rules):
        for column, cond in _on_columns(rule.match):
            by_column.setdefault(column, {}).setdefault(i, []).append(cond)
    for column, per_rule in by_column.items():
        conds = {i: _all(cs) for i, cs in per_rule.items()}
        if _lookable(contacts.schema.get(column)):
            values = contacts.get_column(column)
            known = coded.get_column(column) if coded is not None and column in coded else None
            layers.append(_lookup(values, conds, chunks, inputs=inputs, coded=known))
        else:  # row by row: e.g. a float column, whose distinct values are not its texts'
            layers.append(
                [
                    _bits(
                        [(conds[i](pl.col(column)), 1 << (i - ch.start)) for i in ch if i in conds],
                        sum(1 << (i - ch.start) for i in ch if i not in conds),
                    )
                    for ch in chunks
                ]
            )
    if any(r.match.text is not None for r in rules):
        layers.append(_text_layer(rules, chunks, contacts, inputs))
    if regex and any(r.match.text_regex is not None for r in rules):
        layers.append(_regex_layer(rules))
    masks = []
    for k, chunk in enumerate(chunks):
        mask = pl.lit((1 << len(chunk)) - 1, pl.Int64)
        for layer in layers:
            mask = mask & layer[k]
        masks.append(mask)
    return masks


def _all(conds: list[Condition]) -> Condition:
    return lambda c: _and([cond(c) for cond in conds])


def _lookable(dtype: pl.DataType | None) -> bool:
    return dtype is not None and (isinstance(dtype, LOOKUP_TYPES) or dtype.is_integer())
