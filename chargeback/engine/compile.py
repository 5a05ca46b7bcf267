"""Rules -> polars expressions for the embedded engine. No I/O.

The contacts frame these expressions run on is the canonical one from
data/tables.py: strings for the match columns, `tags` as `|a|b|`, `date` as the
local calendar date. These are one rule's expressions (explain, evidence, control
series); chargeback.engine.masks evaluates every rule at once from the same ones.
"""

from __future__ import annotations

from functools import reduce

import polars as pl

from chargeback.engine.dates import shift_day, window_bounds
from chargeback.workspace.model import Decision, Match, Rule, Workspace
from chargeback.workspace.re2 import to_rust


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


def regex_search(pattern: str, text: pl.Expr | None = None) -> pl.Expr:
    """A case-insensitive search with RE2's meaning, in Rust's syntax."""
    return (pl.col("text") if text is None else text).str.contains("(?i)" + to_rust(pattern))
