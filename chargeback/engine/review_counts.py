"""The counts `check` reads from the contacts, computed by the embedded engine.

Only counts leave polars: per rule, its matches inside its window and in the
days before its decision took effect; the data's dates; per value, how often a
match column holds it; and, for contacts no rule matches, their reasons and
the word phrases of their text next to those of matched contacts. The review
layer turns them into findings with exact costs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import polars as pl

from chargeback.engine.compile import match_expr, window_expr
from chargeback.engine.dates import shift_day
from chargeback.engine.polars_engine import rule_masks, with_text_lower
from chargeback.workspace.model import Workspace

LEAK_LOOKBACK_DAYS = 56  # SPEC 9: the days before a decision that leaky-rule compares
MAX_PHRASE_WORDS = 3
WORD = r"[\p{L}\p{N}][\p{L}\p{N}'\u2019-]*"  # a word: letters, digits, apostrophes
VALUE_COLUMNS = ("reason", "channel", "product", "region", "outcome")


@dataclass(frozen=True)
class RuleActivity:
    in_window: int  # contacts the rule matches inside its window
    before: int  # contacts its match picks up (window ignored) in the 56 days before effective


@dataclass(frozen=True)
class DataSpan:
    first: date | None  # first and last local date of any contact
    last: date | None

    def overlap_days(self, lo: date, hi: date) -> int:
        """Days of [lo, hi] the data covers."""
        if self.first is None or self.last is None:
            return 0
        start, end = max(lo, self.first), min(hi, self.last)
        return max(0, (end - start).days + 1)


def rule_activity(
    ws: Workspace, contacts: pl.DataFrame
) -> tuple[dict[str, RuleActivity], DataSpan]:
    """One pass: every rule's in-window and before-effective counts, and the data's dates."""
    lf = with_text_lower(contacts.lazy(), ws)
    exprs: list[pl.Expr] = [
        pl.col("date").min().alias("_first"),
        pl.col("date").max().alias("_last"),
    ]
    for i, rule in enumerate(ws.rules):
        decision = ws.decision(rule.decision)
        match = match_expr(rule.match)
        start = shift_day(decision.effective, -LEAK_LOOKBACK_DAYS)
        before = (pl.col("date") >= start) & (pl.col("date") < decision.effective)
        exprs.append((match & window_expr(rule, decision)).sum().alias(f"_w{i}"))
        exprs.append((match & before).sum().alias(f"_b{i}"))
    row = lf.select(exprs).collect().row(0, named=True)
    activity = {
        rule.id: RuleActivity(int(row[f"_w{i}"] or 0), int(row[f"_b{i}"] or 0))
        for i, rule in enumerate(ws.rules)
    }
    return activity, DataSpan(row["_first"], row["_last"])


def value_counts(contacts: pl.DataFrame, columns: list[str]) -> dict[str, dict[str, int]]:
    """How many contacts hold each value of each column (tags split into single tags)."""
    out: dict[str, dict[str, int]] = {}
    for column in columns:
        if column not in contacts.columns:
            continue
        col = pl.col(column).cast(pl.String)
        if column == "tags":
            values = contacts.select(col.str.strip_chars("|").str.split("|").alias("v")).explode(
                "v"
            )
        else:
            values = contacts.select(col.alias("v"))
        counted = values.drop_nulls().group_by("v").len()
        out[column] = {str(v): int(n) for v, n in counted.iter_rows()}
    return out


def _unmatched(ws: Workspace, lf: pl.LazyFrame) -> pl.Expr:
    """True for a contact no rule matches inside its window (its whole cost is unattributed)."""
    masks = rule_masks(ws.rules, ws)
    if not masks:
        return pl.lit(True)
    return pl.all_horizontal([m == 0 for m in masks])


def unmatched_reasons(ws: Workspace, contacts: pl.DataFrame) -> pl.DataFrame:
    """(reason, period, channel, n, hs) of contacts no rule matches, for pricing per reason."""
    if "reason" not in contacts.columns:
        return pl.DataFrame()
    lf = with_text_lower(contacts.lazy(), ws)
    return (
        lf.filter(_unmatched(ws, lf) & pl.col("reason").is_not_null())
        .group_by("reason", "period", "channel")
        .agg(pl.len().alias("n"), pl.col("hs_us").cast(pl.Int128).sum().alias("hs"))
        .sort("reason", "period", "channel")
        .collect()
    )


def phrase_counts(ws: Workspace, contacts: pl.DataFrame) -> tuple[pl.DataFrame, int, int]:
    """Per word phrase (1 to 3 words): how many unmatched and matched contacts use it.

    Counted once per contact. Returns the table (phrase, unmatched, matched) and
    the numbers of unmatched and matched contacts that have text at all.
    """
    if "text" not in contacts.columns:
        return pl.DataFrame(), 0, 0
    lf = with_text_lower(contacts.lazy(), ws)
    if "text_lower" not in lf.collect_schema().names():
        lf = lf.with_columns(pl.col("text").str.to_lowercase().alias("text_lower"))
    words = pl.col("text_lower").str.extract_all(WORD)
    base = lf.filter(pl.col("text").is_not_null()).select(
        pl.int_range(pl.len(), dtype=pl.UInt32).alias("_i"),
        _unmatched(ws, lf).alias("_u"),
        words.alias("_w"),
    )
    sizes = base.group_by("_u").len().collect()
    totals = {bool(u): int(n) for u, n in sizes.iter_rows()}
    grams = []
    for n in range(1, MAX_PHRASE_WORDS + 1):
        joined = pl.col("_w")
        if n > 1:
            joined = pl.col("_w").list.eval(
                pl.concat_str(
                    [pl.element().shift(-k) for k in range(n)], separator=" ", ignore_nulls=False
                )
            )
        grams.append(base.select("_i", "_u", joined.alias("_p")))
    table = (
        pl.concat(grams)
        .explode("_p")
        .drop_nulls("_p")
        .unique(["_i", "_p"])
        .group_by("_p")
        .agg(pl.col("_u").sum().alias("unmatched"), (~pl.col("_u")).sum().alias("matched"))
        .rename({"_p": "phrase"})
        .collect()
    )
    return table, totals.get(True, 0), totals.get(False, 0)


def phrase_costs(ws: Workspace, contacts: pl.DataFrame, phrases: list[str]) -> pl.DataFrame:
    """(phrase, period, channel, n, hs) of unmatched contacts whose text holds each phrase."""
    if not phrases:
        return pl.DataFrame()
    lf = with_text_lower(contacts.lazy(), ws)
    if "text_lower" not in lf.collect_schema().names():
        lf = lf.with_columns(pl.col("text").str.to_lowercase().alias("text_lower"))
    unmatched = lf.filter(_unmatched(ws, lf) & pl.col("text").is_not_null())
    words = pl.col("text_lower").str.extract_all(WORD).list.join(" ")
    padded = pl.concat_str([pl.lit(" "), words, pl.lit(" ")])
    parts = [
        unmatched.filter(padded.str.contains(f" {phrase} ", literal=True))
        .group_by("period", "channel")
        .agg(pl.len().alias("n"), pl.col("hs_us").cast(pl.Int128).sum().alias("hs"))
        .with_columns(pl.lit(phrase).alias("phrase"))
        for phrase in phrases
    ]
    return pl.concat(pl.collect_all(parts)).select("phrase", "period", "channel", "n", "hs")


def before_range(effective: date) -> tuple[date, date]:
    """[first, last] days leaky-rule looks at before a decision takes effect."""
    return shift_day(effective, -LEAK_LOOKBACK_DAYS), shift_day(effective, -1)
