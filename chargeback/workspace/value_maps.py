"""How an export's shape is read from chargeback.yaml: `columns:`, `values:`, `tags_separator`.

These are the settings that make a platform's export look like SPEC 2's contacts.
Each is checked here, at its line, so a typo in a header or a channel word is a
workspace error before any file is read: `columns:` maps canonical names to the
export's headers; `values:` maps the export's words to yours, column by column,
after `columns:` (so its keys are canonical names, never the export's headers).
A preset (chargeback.workspace.presets) is read with these same checks.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from chargeback.workspace.fields import BadValue, Item, as_text, suggest
from chargeback.workspace.limits import shown
from chargeback.workspace.model import (
    CONTACT_COLUMNS,
    ORDER_COLUMNS,
    TAG_SEPARATORS,
    ValueMap,
)
from chargeback.workspace.yamlio import YList, YMap

NOT_TEXT = {"started_at": "a timestamp", "handle_seconds": "a number", "revenue": "a number"}
TAG_MARK = "|"  # tags are kept as |a|b| inside chargeback.data: no tag may hold one


def as_separator(value: Any) -> str:
    """One of TAG_SEPARATORS, as written (a lone space is kept, never trimmed away)."""
    if not isinstance(value, str) or value not in TAG_SEPARATORS:
        names = {" ": '" " (a space)'}
        raise BadValue(
            "must be one of "
            + ", ".join(names.get(s, f'"{s}"') for s in TAG_SEPARATORS)
            + f", not {value!r}"
        )
    return value


def column_pairs(sub: Item, skip: tuple[str, ...] = ()) -> tuple[tuple[str, str], ...]:
    """`columns:` as (canonical name, export header) pairs, each checked at its line.

    A key close to a canonical name is a typo (did you mean); any other key
    renames an extra column on purpose (`plan: "Plan Name"`).
    """
    known = (*CONTACT_COLUMNS, *(f"orders.{c}" for c in ORDER_COLUMNS))
    out: list[tuple[str, str]] = []
    for key, value in sub.node.items():
        if key in skip:
            continue
        name = str(key)
        hint = suggest(name, known)
        if name not in known and hint:
            sub.error(key, f"'{shown(name)}' is not a contacts column{hint}")
            continue
        if isinstance(value, YMap | YList) or value is None:
            sub.error(key, f"'{shown(name)}' must be a single value: the export's header")
            continue
        try:
            out.append((as_text(key), as_text(value)))
        except BadValue as exc:
            sub.error(key, f"'{shown(name)}': {exc}")
    return tuple(out)


def value_maps(sub: Item, renamed: Mapping[str, str]) -> tuple[ValueMap, ...]:
    """`values:`, column by column; `renamed` is header -> canonical name, from `columns:`."""
    out: list[ValueMap] = []
    for key, node in sub.node.items():
        try:
            name = as_text(key)
        except BadValue as exc:
            sub.error(key, f"column '{shown(key)}': {exc}")
            continue
        problem = _column_problem(name, renamed)
        if problem:
            sub.error(key, problem)
            continue
        if not isinstance(node, YMap):
            sub.error(
                key,
                f"'{shown(name)}' must map the export's values to yours, one per line, "
                'such as  "Phone Call (Incoming)": phone',
            )
            continue
        inner = Item(sub.ck, node, sub.label)
        out.append(ValueMap(name, _pairs(inner, name), sub.place(key)))
    return tuple(out)


def _column_problem(name: str, renamed: Mapping[str, str]) -> str | None:
    """Why `name` cannot have its values mapped (None when it can)."""
    if name.startswith("orders."):
        return f"'{shown(name)}': values: maps the contacts' columns only, not the orders'"
    if name in NOT_TEXT:
        return f"'{name}' is {NOT_TEXT[name]}: values: maps text columns only"
    if name in renamed and name not in CONTACT_COLUMNS:
        canonical = renamed[name]
        return (
            f"'{shown(name)}' is the export's header for {canonical} (columns:); values: "
            f"names a column as chargeback knows it, after columns:, so write {canonical}:"
        )
    hint = suggest(name, CONTACT_COLUMNS)
    if name not in CONTACT_COLUMNS and hint:
        return f"'{shown(name)}' is not a contacts column{hint}"
    return None


def _pairs(inner: Item, column: str) -> tuple[tuple[str, str], ...]:
    """One column's (export value, your value) pairs; keys are exact, compared trimmed."""
    out: list[tuple[str, str]] = []
    for key, value in inner.node.items():
        if key is None:
            inner.error(None, f"{column}: a value to map must be text, not empty")
            continue
        if isinstance(value, YMap | YList) or value is None:
            inner.error(key, f"{column}: '{shown(key)}' must map to one value, such as phone")
            continue
        try:
            before, after = as_text(key), as_text(value)
        except BadValue as exc:
            inner.error(key, f"{column}: '{shown(key)}' {exc}")
            continue
        problem = _text_problem(before, "a value to map") or _text_problem(after, "its new value")
        if problem:
            inner.error(key, f"{column}: '{shown(before)}': {problem}")
        elif column == "tags" and TAG_MARK in after:
            inner.error(key, f"tags: '{shown(before)}': a tag cannot hold '{TAG_MARK}'")
        else:
            out.append((before, after))
    return tuple(out)


def _text_problem(text: str, what: str) -> str | None:
    """A value is read trimmed and a blank cell is a missing value: neither can be mapped."""
    if not text.strip():
        return f"{what} cannot be blank (a blank cell is a missing value)"
    if text != text.strip():
        return f"{what} has blanks around it; values are compared trimmed, so leave them out"
    return None


def merged_values(
    preset: tuple[ValueMap, ...], explicit: tuple[ValueMap, ...]
) -> tuple[ValueMap, ...]:
    """A preset's `values:` with the user's laid over them, key by key (the user's win)."""
    by_column: dict[str, ValueMap] = {vm.column: vm for vm in preset}
    for vm in explicit:
        base = dict(by_column[vm.column].pairs) if vm.column in by_column else {}
        base.update(vm.pairs)
        by_column[vm.column] = ValueMap(vm.column, tuple(base.items()), vm.place)
    return tuple(by_column.values())
