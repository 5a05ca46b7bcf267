"""Every rule's match at once, as bit masks: the embedded engine's matching.

The masks below hold, per contact, bit i of column `_m{i // 62}` for rule i. Their
cost must not grow with the rule count as a per-rule pass over the rows would, so
each kind of condition is evaluated once for all rules ("layers"), and a layer
gives, per chunk of 62 rules, the bits of the rules whose conditions of that kind
hold (or that have none). A rule matches when every layer sets its bit: the same
AND of keys, with a null counted false, as match_expr.
- A match column (reason, channel, ..., tags, `fields`): each rule's conditions on
  it are evaluated on the column's distinct values, and each row looks its bits up
  by the index of its value (its category code): one hash per row, whatever the
  rule count.
- text: every phrase of every rule in one multi-pattern (Aho-Corasick) pass over
  the lower-cased text, into bits of the phrases found (phrase_masks); the rules
  that name them are then looked up by those bits, like a match column. Texts
  that repeat are searched once per distinct text instead (text_keys), their
  patterns too, and looked up by code.
- text_regex: otherwise one search per distinct pattern (matching.match_slices runs
  it only on the rows where the rest of one of its rules' match holds).
- windows and lookbacks: looked up by the local date, like a match column.
Each is the very expression match_expr uses (any_of, tags_any_of, the same
lower-cased phrases, regex_search, window_expr), run on fewer values: the bits
are those match_expr would give.

Tables looked up by category codes (several match columns, the distinct texts) are
joined into as few tables as JOINT_KEYS allows: a row then gathers once per chunk of
rules for several columns, the table holding the AND of their bits per combination.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial, reduce
from math import prod
from operator import and_

import numpy as np
import polars as pl

from chargeback.engine.compile import any_of, regex_search, tags_any_of, with_text_lower
from chargeback.workspace.model import Decision, Match, Rule, Workspace

MASK_BITS = 62  # rules per int64 mask column
# types whose text form (what any_of compares) is one per value, so a condition
# can be evaluated on the column's distinct values and looked up
LOOKUP_TYPES = (pl.String, pl.Categorical, pl.Enum, pl.Boolean, pl.Decimal)
JOINT_KEYS = 1 << 16  # keys of a table looked up by several codes at most (8 bytes each)

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
Texts = tuple[pl.DataFrame, pl.Series]  # distinct texts with their `_ph*` masks; rows' codes


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


def _keys(
    values: pl.Series, inputs: Inputs, coded: pl.Series | None
) -> tuple[pl.Series, pl.Expr, str | None]:
    """A column's distinct values (with nulls or unused keys among them, harmless), an
    expression giving each row's position among them, and the name of the code column
    that expression reads when it is one (a joint table may combine it).

    The index costs one hash per row at most: text `coded` once as categories (in
    `categories`) has its codes as positions (unique plus a lookup per row cost
    about twice as much); a date is its distance from the first day, no hashing at
    all. Both need the column made for every row (`inputs`); without, or for other
    types, a hash lookup.
    """
    name = values.name
    if inputs is not None and values.dtype == pl.Date and values.len() and not values.null_count():
        days = values.cast(pl.Int32)
        first, last = int(days.min()), int(days.max())  # type: ignore[arg-type]
        keys = pl.int_range(first, last + 1, eager=True).cast(pl.Date).alias(name)
        index = (pl.col(name).cast(pl.Int32) - first).cast(pl.UInt32)
        return keys, _staged(inputs, f"_ix_{name}", index), None
    if inputs is not None and coded is not None:
        keys, codes = category_keys(coded)
        return keys, _staged(inputs, f"_ix_{name}", codes), f"_ix_{name}"
    keys = values.unique(maintain_order=True)
    index = pl.col(name).replace_strict(keys, pl.Series(range(keys.len()), dtype=pl.UInt32))
    return keys, _staged(inputs, f"_ix_{name}", index), None


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


@dataclass(frozen=True)
class Table:
    """A lookup: per chunk of rules, each key's bits (or one constant for every key), and
    how a row finds its key; `code` names the code column `index` reads, if it is one."""

    bits: list[np.ndarray | int]
    index: pl.Expr
    size: int
    code: str | None = None

    def gathered(self) -> list[pl.Expr]:
        """Per chunk, each row's bits."""
        return [
            pl.lit(pl.Series(b)).gather(self.index)
            if isinstance(b, np.ndarray)
            else pl.lit(b, pl.Int64)
            for b in self.bits
        ]


def _per_key(
    keys: pl.Series, per_rule: dict[int, Condition], chunks: list[range], absent: bool
) -> list[np.ndarray | int]:
    """`per_rule`'s conditions run once on the distinct `keys`: per chunk, each key's bits
    (or one constant for every key). A rule without a condition here has its bit set when
    `absent`, else clear."""
    flags = keys.to_frame().select(
        [per_rule[i](pl.col(keys.name)).fill_null(False).alias(str(i)) for i in sorted(per_rule)]
    )
    bits: list[np.ndarray | int] = []
    for chunk in chunks:
        const = sum(1 << (i - chunk.start) for i in chunk if i not in per_rule) if absent else 0
        table = np.full(keys.len(), const, dtype=np.int64)
        for i in (i for i in chunk if i in per_rule):
            table |= flags.get_column(str(i)).to_numpy().astype(np.int64) << (i - chunk.start)
        bits.append(table if (table != const).any() else const)
    return bits


def _lookup(
    values: pl.Series,
    per_rule: dict[int, Condition],
    chunks: list[range],
    absent: bool = True,
    inputs: Inputs = None,
    coded: pl.Series | None = None,
) -> Table:
    """The bits of `per_rule`'s conditions, looked up by the row's value: the conditions
    run once on the column's distinct values, each row finding its bits by the index of
    its value."""
    keys, index, code = _keys(values, inputs, coded)
    return Table(_per_key(keys, per_rule, chunks, absent), index, keys.len(), code)


def _joint(tables: list[Table], inputs: Inputs) -> list[Table]:
    """Tables looked up by codes joined into as few as JOINT_KEYS allows (smallest first):
    a joint key is the codes in mixed radix, its bits the AND of theirs."""
    joined = [t for t in tables if t.code is None or inputs is None]
    groups: list[list[Table]] = []
    for t in sorted((t for t in tables if t.code is not None and inputs is not None), key=_size):
        if groups and prod(map(_size, groups[-1])) * t.size <= JOINT_KEYS:
            groups[-1].append(t)
        else:
            groups.append([t])
    for k, group in enumerate(groups):
        if len(group) == 1:
            joined += group
            continue
        sizes = [t.size for t in group]
        bits: list[np.ndarray | int] = []
        for parts in zip(*(t.bits for t in group), strict=True):
            if all(isinstance(p, int) for p in parts):
                bits.append(reduce(and_, parts))
                continue
            table = np.full(sizes, -1, dtype=np.int64)
            for axis, p in enumerate(parts):  # broadcast along its own axis
                table &= p if isinstance(p, int) else p.reshape(_along(axis, len(sizes), p.size))
            bits.append(table.ravel())
        codes = [
            pl.col(str(t.code)).cast(pl.UInt32) * prod(sizes[j + 1 :]) for j, t in enumerate(group)
        ]
        index = _staged(inputs, f"_ix_joint{k}", reduce(lambda a, b: a + b, codes))
        joined.append(Table(bits, index, prod(sizes)))
    return joined


def _size(table: Table) -> int:
    return table.size


def _along(axis: int, dims: int, size: int) -> list[int]:
    return [size if d == axis else 1 for d in range(dims)]


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
    return _lookup(dates, conds, chunks_of(rules), absent=False, inputs=inputs).gathered()


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
    rules: tuple[Rule, ...],
    chunks: list[range],
    contacts: pl.DataFrame,
    inputs: Inputs,
    texts: Texts | None,
) -> Table | list[pl.Expr]:
    """A text rule holds where one of its phrases does: looked up by the phrase masks of
    each row (`_ph*` columns of `contacts`), or with `texts`, by the text's code in a
    table of the distinct texts, which also holds the text_regex rules' searches."""
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
    consts = [sum(1 << (i - ch.start) for i in ch if i not in needles) for ch in chunks]
    empties = [sum(1 << (i - ch.start) for i in ch if "" in needles.get(i, ())) for ch in chunks]
    if texts is not None:  # one key per distinct text: its phrases' and patterns' bits
        keys, codes = texts
        masks = [
            _per_key(keys.get_column(f"_ph{g}"), column, chunks, False)
            for g, column in enumerate(per_column)
        ]
        given = keys.get_column("text").is_not_null().to_numpy()
        patterns = regex_bits(rules)
        hits = {p: keys.select(regex_search(p).fill_null(False)).to_series() for p in patterns}
        per_key: list[np.ndarray | int] = []
        for k, const in enumerate(consts):
            table = np.full(keys.height, const, dtype=np.int64)
            for found_in in masks:
                table |= found_in[k]
            table[given] |= empties[k]  # an empty phrase is in every text
            for pattern, of_rules in patterns.items():  # a pattern not found clears its rules
                if of_rules[k]:
                    table[~hits[pattern].to_numpy()] &= ~of_rules[k]
            per_key.append(table if (table != table[0]).any() else int(table[0]))
        return Table(per_key, _staged(inputs, "_ix_text", codes), keys.height, "_ix_text")
    looked_up = [
        _lookup(contacts.get_column(f"_ph{g}"), column, chunks, False, inputs).gathered()
        for g, column in enumerate(per_column)
    ]
    out = []
    for k, const in enumerate(consts):
        layer = pl.lit(const, pl.Int64)
        for looked in looked_up:
            layer = layer | looked[k]
        if empties[k]:  # an empty phrase is in every text
            layer = layer | pl.when(pl.col("text").is_not_null()).then(empties[k]).otherwise(0)
        out.append(layer)
    return out


def _any_bit(bits: int, column: pl.Expr) -> pl.Expr:
    return (column & bits) != 0


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
    texts: Texts | None = None,
) -> list[pl.Expr]:
    """Int64 expressions, 62 rules each: bit k of mask c is rules[62c + k]'s match.

    `regex=False` leaves text_regex out (as if it held): the caller searches
    only the rows where the rest of a regex rule's match holds.
    For a frame of these `contacts` (or of some of their rows), which have the
    phrase_masks columns when a rule has `text`, unless `texts` gives them per
    distinct text (text_keys), text_regex searched there too, whatever `regex`.
    Their columns' distinct values are read here; a `fields` column whose text form
    is not one per value (a float) is tested row by row. With `inputs`, the per-row
    inputs go there, to be made (with_columns) before the masks; `coded`
    (categories) has text columns coded.
    """
    chunks = chunks_of(rules)
    tables: list[Table] = []
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
            tables.append(_lookup(values, conds, chunks, inputs=inputs, coded=known))
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
    if texts is not None:  # text and text_regex in one table of the distinct texts
        text = _text_layer(rules, chunks, contacts, inputs, texts)
        assert isinstance(text, Table)
        tables.append(text)
    else:
        if any(r.match.text is not None for r in rules):
            rows = _text_layer(rules, chunks, contacts, inputs, None)
            assert isinstance(rows, list)
            layers.append(rows)
        if regex and any(r.match.text_regex is not None for r in rules):
            layers.append(_regex_layer(rules))
    layers += [t.gathered() for t in _joint(tables, inputs)]
    masks = []
    for k, chunk in enumerate(chunks):
        mask = pl.lit((1 << len(chunk)) - 1, pl.Int64)
        for layer in layers:
            mask = mask & layer[k]
        masks.append(mask)
    return masks


def text_keys(ws: Workspace, keys: pl.Series, codes: pl.Series) -> Texts:
    """The distinct texts (category_keys) with their phrase masks, and each row's code:
    what match_masks looks text and text_regex rules up in when texts repeat."""
    frame = with_text_lower(keys.alias("text").to_frame().lazy(), ws)
    return frame.select(pl.col("text"), *phrase_masks(ws.rules)).collect(), codes


def _all(conds: list[Condition]) -> Condition:
    return lambda c: reduce(and_, [cond(c) for cond in conds])


def _lookable(dtype: pl.DataType | None) -> bool:
    return dtype is not None and (isinstance(dtype, LOOKUP_TYPES) or dtype.is_integer())
