"""Rules -> polars expressions. Pure: no I/O, no data, just the translation.

The contacts frame these expressions run on is the canonical one from
contacts.py: strings for the match columns, `tags` as `|a|b|`, `date` as the
local calendar date.
"""

from __future__ import annotations

from datetime import date, timedelta
from functools import reduce

import polars as pl

from chargeback.workspace.model import Decision, Match, Rule


def any_of(column: str, values: tuple[str, ...]) -> pl.Expr:
    """Exact, case-sensitive membership; a value ending in `*` is a prefix.

    Compared as text, so a numeric extra column (or `revenue`) matches too.
    """
    col = pl.col(column).cast(pl.String)
    exact = [v for v in values if not v.endswith("*")]
    prefixes = [v[:-1] for v in values if v.endswith("*")]
    parts: list[pl.Expr] = []
    if exact:
        parts.append(col.is_in(exact))
    parts.extend(col.str.starts_with(p) for p in prefixes)
    return _or(parts)


def tags_any_of(values: tuple[str, ...]) -> pl.Expr:
    """Tags are stored as `|a|b|`, so `|fee|` finds a tag and `|fee` a tag prefix."""
    needles = [f"|{v[:-1]}" if v.endswith("*") else f"|{v}|" for v in values]
    return pl.col("tags").str.contains_any(needles)


def text_any_of(values: tuple[str, ...]) -> pl.Expr:
    """Case-insensitive substrings; a trailing `*` adds nothing to a substring."""
    needles = [v.removesuffix("*").lower() for v in values]
    return pl.col("text_lower").str.contains_any(needles)


def match_expr(match: Match) -> pl.Expr:
    """Every key present must hold; a null never matches (hence the final fill)."""
    parts: list[pl.Expr] = []
    for key in ("reason", "channel", "product", "region", "outcome"):
        values = getattr(match, key)
        if values is not None:
            parts.append(any_of(key, values))
    if match.tags is not None:
        parts.append(tags_any_of(match.tags))
    if match.text is not None:
        parts.append(text_any_of(match.text))
    if match.text_regex is not None:
        parts.append(pl.col("text").str.contains("(?i)" + match.text_regex))
    for column, values in match.fields:
        # tags are stored as |a|b|, so `fields: {tags: ...}` takes the tags rule
        parts.append(tags_any_of(values) if column == "tags" else any_of(column, values))
    if not parts:
        return pl.lit(True)
    return _and(parts).fill_null(False)


def window_bounds(rule: Rule, decision: Decision) -> tuple[date, date | None]:
    """[first, last] local dates of the rule's window; last None = open-ended."""
    first = _shift(decision.effective, rule.start_offset_days)
    last = _shift(first, rule.days - 1) if rule.days is not None else None
    if decision.ends is not None:
        last = decision.ends if last is None else min(last, decision.ends)
    return first, last


def window_expr(rule: Rule, decision: Decision) -> pl.Expr:
    first, last = window_bounds(rule, decision)
    expr = pl.col("date") >= first
    if last is not None:
        expr = expr & (pl.col("date") <= last)
    return expr


def baseline_expr(rule: Rule, decision: Decision) -> pl.Expr:
    """Contacts that satisfy the match in the lookback before the decision's effective date."""
    assert rule.baseline_lookback_days is not None
    start = _shift(decision.effective, -rule.baseline_lookback_days)
    in_lookback = (pl.col("date") >= start) & (pl.col("date") < decision.effective)
    return match_expr(rule.match) & in_lookback


def _shift(day: date, days: int) -> date:
    """day + days, pinned to the calendar's ends (a 3,000,000-day window is open-ended)."""
    try:
        return day + timedelta(days=days)
    except OverflowError:
        return date.max if days > 0 else date.min


def _or(parts: list[pl.Expr]) -> pl.Expr:
    return reduce(lambda a, b: a | b, parts)


def _and(parts: list[pl.Expr]) -> pl.Expr:
    return reduce(lambda a, b: a & b, parts)
