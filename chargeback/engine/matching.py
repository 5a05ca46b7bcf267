"""Every rule's match for every contact, as bits, a slice of rows at a time.

The masks (chargeback.engine.masks) are built once from the columns' distinct
values; the rows then find their bits a slice at a time, so the per-row scratch,
and what a caller that sums each slice keeps, is a slice's, not the table's.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import polars as pl

from chargeback.data.rows import repeats
from chargeback.engine.compile import regex_search, with_text_lower
from chargeback.engine.masks import (
    categories,
    category_keys,
    lookup_columns,
    match_masks,
    phrase_masks,
    regex_bits,
    text_keys,
    without_regex,
)
from chargeback.workspace.model import Workspace

MATCH_SLICE = 500_000


def match_frame(ws: Workspace, contacts: pl.DataFrame, keep: list[str]) -> pl.DataFrame:
    """The `keep` columns and every rule's match (windows ignored) as bits `_k0`, `_k1`, ..."""
    return pl.concat(match_slices(ws, contacts, keep))


def match_slices(ws: Workspace, contacts: pl.DataFrame, keep: list[str]) -> Iterator[pl.DataFrame]:
    """match_frame a slice of MATCH_SLICE rows at a time: what the lookups scratch, and
    what a caller that sums each slice keeps, stays a slice's.

    Texts that repeat (rows.repeats) are coded as categories, and their phrases and
    patterns are searched once per distinct text (masks.text_keys). Otherwise a
    text_regex, the costliest test a rule has (a search per pattern), runs last,
    only on the rows where the rest of one of its rules' match holds: elsewhere
    those rules fail whatever the regex says.
    """
    rules = ws.rules
    phrases = phrase_masks(rules)
    found = regex_bits(rules)
    inputs: dict[str, pl.Expr | pl.Series] = {}
    names = lookup_columns(rules, contacts)
    text = contacts.get_column("text") if phrases or found else None
    repeated = text is not None and repeats(text)
    coded = categories(contacts, [*names, *(["text"] if repeated and "text" not in names else [])])
    by_code = category_keys(coded.get_column("text")) if repeated else None
    texts = text_keys(ws, *by_code) if by_code is not None else None
    if texts is not None:
        found = {}  # searched once per distinct text, in the masks
    if phrases and texts is None:  # the one multi-pattern pass, made first: masks look it up
        assert text is not None
        contacts = contacts.hstack(
            with_text_lower(text.to_frame().lazy(), ws).select(phrases).collect()
        )
    masks = match_masks(rules, contacts, not found, inputs, coded, texts)
    del coded  # the codes the masks gather by are in `inputs`, in their smallest type
    made = [s for s in inputs.values() if isinstance(s, pl.Series)]  # indexes made already
    exprs = [e for e in inputs.values() if isinstance(e, pl.Expr)]
    indexed = contacts.hstack(made)
    del made, inputs
    names = [f"_k{k}" for k in range(len(masks))]
    for start in range(0, max(contacts.height, 1), MATCH_SLICE):
        part = (
            indexed.slice(start, MATCH_SLICE)
            .lazy()
            .with_columns(*exprs)
            .select(*keep, *[m.alias(n) for n, m in zip(names, masks, strict=True)])
            .collect()
        )
        if found:
            assert text is not None
            part = _with_regex(part, text.slice(start, MATCH_SLICE), found, without_regex(rules))
        yield part


def _with_regex(
    frame: pl.DataFrame, text: pl.Series, found: dict[str, list[int]], rest: list[int]
) -> pl.DataFrame:
    """Each text_regex searched in the rows where the rest of one of its rules holds (the
    `_k*` bits, found with the regex taken as holding); its rules kept where it is found."""
    names = [f"_k{k}" for k in range(len(rest))]
    found_at: list[tuple[list[int], np.ndarray]] = []  # each pattern's bits, and its rows
    for pattern, bits in found.items():
        maybe = pl.any_horizontal(
            [(pl.col(n) & b) != 0 for n, b in zip(names, bits, strict=True) if b]
        )
        rows = frame.select(pl.arg_where(maybe)).to_series()
        searched = _search(pattern, text, rows)
        found_at.append((bits, rows.filter(searched).to_numpy()))
    for k, (name, kept_bits) in enumerate(zip(names, rest, strict=True)):
        # a chunk's rules without a regex keep their bits; those with one, where it was found
        if not any(bits[k] for bits, _ in found_at):
            continue
        kept = np.full(frame.height, kept_bits, dtype=np.int64)
        for bits, at in found_at:
            if bits[k]:
                kept[at] |= bits[k]
        kept &= frame.get_column(name).to_numpy()
        frame = frame.with_columns(pl.Series(name, kept))  # one column's scratch at a time
    return frame


def _search(pattern: str, text: pl.Series, rows: pl.Series) -> pl.Series:
    """Whether `pattern` is found in the text of each of `rows`."""
    searched = text.gather(rows).to_frame("text").select(regex_search(pattern))
    return searched.to_series().fill_null(False)
