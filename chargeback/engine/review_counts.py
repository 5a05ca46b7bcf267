"""The counts `check` reads from the contacts, computed by the embedded engine.

Every rule's match is evaluated once per contact, window ignored, into bit
masks (`_k0`, `_k1`, ...); everything else is integer and date arithmetic on
those bits: the windowed matches and the aggregates attribution needs, each
rule's matches inside its window and in the 56 days before its decision, the
contacts no rule matches, their reasons and the phrases of their text. Only
counts leave polars; the review layer turns them into findings with exact costs.
On duckdb, postgres and spark, engine/pushdown_check.py answers the same `Counts` from
grouped rows computed where the contacts are, with the phrase steps here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Protocol

import polars as pl

from chargeback.engine.aggregates import Aggregates
from chargeback.engine.compile import window_expr
from chargeback.engine.dates import shift_day
from chargeback.engine.polars_engine import MatchBits, bit

LEAK_LOOKBACK_DAYS = 56  # SPEC 9: the days before a decision that leaky-rule compares
MAX_PHRASE_WORDS = 3
PHRASE_SAMPLE = 200_000  # distinct texts per side read for phrases; counts stay exact
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


def before_range(effective: date) -> tuple[date, date]:
    """[first, last] days leaky-rule looks at before a decision takes effect."""
    return shift_day(effective, -LEAK_LOOKBACK_DAYS), shift_day(effective, -1)


def _in(first: date, last: date | None) -> pl.Expr:
    expr = pl.col("date") >= first
    return expr if last is None else expr & (pl.col("date") <= last)


class MatchFrame(MatchBits):
    """The one-pass bits, read for `check`'s counts."""

    def activity(self) -> tuple[dict[str, RuleActivity], DataSpan]:
        """Every rule's in-window and before-effective counts, and the data's dates."""
        ws = self.ws
        exprs = [pl.col("date").min().alias("_first"), pl.col("date").max().alias("_last")]
        for i, rule in enumerate(ws.rules):
            decision = ws.decision(rule.decision)
            window = window_expr(rule, decision)
            exprs.append((bit(i) & window).sum().alias(f"_w{i}"))
            exprs.append((bit(i) & _in(*before_range(decision.effective))).sum().alias(f"_b{i}"))
        row = self.frame.select(exprs).row(0, named=True)
        activity = {
            rule.id: RuleActivity(int(row[f"_w{i}"] or 0), int(row[f"_b{i}"] or 0))
            for i, rule in enumerate(ws.rules)
        }
        return activity, DataSpan(row["_first"], row["_last"])

    def unmatched_reasons(self) -> pl.DataFrame:
        """(reason, period, channel, n, hs) of contacts no rule matches."""
        if "reason" not in self.frame.columns:
            return pl.DataFrame()
        return (
            self.frame.lazy()
            .filter(self.unmatched() & pl.col("reason").is_not_null())
            .group_by("reason", "period", "channel")
            .agg(pl.len().alias("n"), pl.col("hs_us").cast(pl.Int128).sum().alias("hs"))
            .sort("reason", "period", "channel")
            .collect()
        )

    def texts(self) -> pl.DataFrame:
        """Distinct (lower-cased text, unmatched) with how many contacts have each."""
        if "text" not in self.frame.columns:
            return pl.DataFrame()
        return (
            self.frame.lazy()
            .filter(pl.col("text").is_not_null())
            .group_by(pl.col("text").str.to_lowercase().alias("t"), self.unmatched().alias("u"))
            .agg(pl.len().alias("n"))
            .collect()
        )

    def phrase_counts(self) -> tuple[pl.DataFrame, int, int]:
        """Per word phrase (1 to 3 words): how many unmatched and matched contacts use it."""
        return phrase_table(self.texts())

    def phrase_costs(self, phrases: list[str]) -> pl.DataFrame:
        """(phrase, period, channel, n, hs) of unmatched contacts whose text holds each phrase."""
        if not phrases or "text" not in self.frame.columns:
            return pl.DataFrame()
        grouped = (
            self.frame.lazy()
            .filter(self.unmatched() & pl.col("text").is_not_null())
            .group_by(pl.col("text").str.to_lowercase().alias("t"), "period", "channel")
            .agg(pl.len().alias("n"), pl.col("hs_us").cast(pl.Int128).sum().alias("hs"))
            .collect()
        )
        return phrase_costs(grouped, phrases)


class Counts(Protocol):
    """What `check` reads: MatchFrame's answers, or the same computed in the engine."""

    def aggregates(self, periods: set[str] | None = None) -> Aggregates: ...
    def activity(self) -> tuple[dict[str, RuleActivity], DataSpan]: ...
    def unmatched_reasons(self) -> pl.DataFrame: ...
    def phrase_counts(self) -> tuple[pl.DataFrame, int, int]: ...
    def phrase_costs(self, phrases: list[str]) -> pl.DataFrame: ...


def phrase_table(texts: pl.DataFrame) -> tuple[pl.DataFrame, int, int]:
    """Per word phrase (1 to 3 words): how many unmatched and matched contacts use it,
    from the distinct (lower-cased text `t`, unmatched `u`) and their contacts `n`.

    Counted once per contact, on the distinct texts (help-desk subjects repeat).
    Where one side has more than PHRASE_SAMPLE distinct texts, a fixed sample
    of them (by a hash of the text, so the same data gives the same phrases)
    finds the phrases; the contacts and cost reported for a chosen phrase
    are then counted exactly (phrase_costs).
    """
    if not texts.height:
        return pl.DataFrame(), 0, 0
    totals = {bool(u): int(n) for u, n in texts.group_by("u").agg(pl.col("n").sum()).rows()}
    sample = texts
    if texts.height > PHRASE_SAMPLE:
        sample = texts.sort(pl.col("t").hash(seed=0)).filter(
            pl.int_range(pl.len()).over("u") < PHRASE_SAMPLE
        )
    words = sample.select(
        pl.int_range(pl.len()).alias("_i"),
        "u",
        "n",
        pl.col("t").str.extract_all(WORD).alias("_w"),
    )
    grams = []
    for size in range(1, MAX_PHRASE_WORDS + 1):
        joined = pl.col("_w")
        if size > 1:
            joined = pl.col("_w").list.eval(
                pl.concat_str([pl.element().shift(-k) for k in range(size)], separator=" ")
            )
        grams.append(words.lazy().select("_i", "u", "n", joined.alias("p")))
    table = (
        pl.concat(grams)
        .explode("p")
        .drop_nulls("p")
        .unique(["_i", "p"])
        .group_by("p")
        .agg(
            pl.col("n").filter(pl.col("u")).sum().alias("unmatched"),
            pl.col("n").filter(~pl.col("u")).sum().alias("matched"),
        )
        .rename({"p": "phrase"})
        .collect()
    )
    return table, totals.get(True, 0), totals.get(False, 0)


def phrase_costs(grouped: pl.DataFrame, phrases: list[str]) -> pl.DataFrame:
    """(phrase, period, channel, n, hs) from unmatched contacts' (lower-cased text `t`,
    period, channel, n, hs): the contacts whose text holds each phrase."""
    words = pl.col("t").str.extract_all(WORD).list.join(" ")
    padded = grouped.with_columns(pl.concat_str([pl.lit(" "), words, pl.lit(" ")]).alias("_padded"))
    parts = [
        padded.filter(pl.col("_padded").str.contains(f" {phrase} ", literal=True))
        .group_by("period", "channel")
        .agg(pl.col("n").sum(), pl.col("hs").sum())
        .with_columns(pl.lit(phrase).alias("phrase"))
        for phrase in phrases
    ]
    return pl.concat(parts).select("phrase", "period", "channel", "n", "hs")


def value_counts(contacts: pl.DataFrame, columns: list[str]) -> dict[str, dict[str, int]]:
    """How many contacts hold each value of each column (tags split into single tags)."""
    out: dict[str, dict[str, int]] = {}
    for column in columns:
        if column not in contacts.columns:
            continue
        values = contacts.select(_values(column))
        if column == "tags":
            values = values.explode("v")
        counted = values.drop_nulls().group_by("v").len()
        out[column] = {str(v): int(n) for v, n in counted.iter_rows()}
    return out


def counted_values(column: str, counted: pl.DataFrame) -> dict[str, int]:
    """value_counts of one column from its distinct values (`column`) and their contacts
    (`n`), as an engine groups them."""
    values = counted.select(_values(column), "n")
    if column == "tags":
        values = values.explode("v")
    summed = values.drop_nulls("v").group_by("v").agg(pl.col("n").sum())
    return {str(v): int(n) for v, n in summed.iter_rows()}


def _values(column: str) -> pl.Expr:
    col = pl.col(column).cast(pl.String)
    if column == "tags":
        return col.str.strip_chars("|").str.split("|").alias("v")
    return col.alias("v")
