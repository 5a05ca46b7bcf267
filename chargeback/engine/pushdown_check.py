"""`check`'s counts where the contacts are: only grouped counts leave the engine (SPEC 10).

`check` reads, besides the ledger's aggregates, each rule's matches inside its
window and in the 56 days before its decision, the data's first and last day,
the reasons and texts of the contacts no rule matches, and each value column's
values (engine/review_counts.py computes them from a polars frame). On duckdb,
postgres and spark, once the in-engine ledger's detector has passed every row (so the
pushdown's derive equals what the data layer would give: engine/pushdown.py),
the derive goes into a temporary table (on Spark a cached view, its local day
from polars' offsets: pushdown_spark_review.spark_derive), the rules are matched on it (on
duckdb and postgres as bit words, each distinct value once: pushdown_check_words; on
spark a condition per rule, as sql_compile compiles it), and grouped queries return
those counts.
What is worded as the user sees it (lower-casing, the words of a phrase, tags
split) is done here on the grouped rows, with review_counts' own expressions, so
the findings are exactly the read-out path's.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import reduce
from typing import Any

import polars as pl
from sqlglot import exp

from chargeback.engine.aggregates import Aggregates
from chargeback.engine.pushdown import Logged, plan
from chargeback.engine.pushdown_check_words import as_date as _date
from chargeback.engine.pushdown_check_words import usable, word_flags
from chargeback.engine.review_counts import (
    DataSpan,
    RuleActivity,
    before_range,
    counted_values,
    phrase_costs,
    phrase_table,
)
from chargeback.engine.sql_aggregate import Connection, match_blocks
from chargeback.engine.sql_compile import Compiler, Node, Primitives, col, day, flag, window
from chargeback.workspace.model import Workspace

TABLE, FLAGS = "cb_review", "cb_review_flags"


@dataclass
class EngineCounts:
    """review_counts.Counts from the engine's grouped rows (and the pushdown's aggregates)."""

    rules: dict[str, RuleActivity]
    span: DataSpan
    reasons: pl.DataFrame  # (reason, period, channel, n, hs) of unmatched contacts
    texts: pl.DataFrame  # (text, u, period, channel, n, hs): contacts with a text
    values: dict[str, dict[str, int]]  # value_counts' answer
    summed: Aggregates | None = None  # the in-engine ledger's, set by the caller

    def aggregates(self, periods: set[str] | None = None) -> Aggregates:
        assert self.summed is not None and periods is None
        return self.summed

    def activity(self) -> tuple[dict[str, RuleActivity], DataSpan]:
        return self.rules, self.span

    def unmatched_reasons(self) -> pl.DataFrame:
        return self.reasons

    def phrase_counts(self) -> tuple[pl.DataFrame, int, int]:
        """review_counts.phrase_table on the distinct (lower-cased text, unmatched)."""
        if not self.texts.height:
            return phrase_table(pl.DataFrame())
        lowered = self.texts.group_by(pl.col("text").str.to_lowercase().alias("t"), "u").agg(
            pl.col("n").sum()
        )
        return phrase_table(lowered)

    def phrase_costs(self, phrases: list[str]) -> pl.DataFrame:
        if not phrases or not self.texts.height:
            return pl.DataFrame()
        grouped = (
            self.texts.filter(pl.col("u"))
            .group_by(pl.col("text").str.to_lowercase().alias("t"), "period", "channel")
            .agg(pl.col("n").sum(), pl.col("hs").sum())
        )
        return phrase_costs(grouped, phrases)


def engine_counts(
    ws: Workspace,
    value_columns: list[str],
    raw: Connection,
    relation: str,
    columns: dict[str, tuple[str, str]],
    prims: Primitives,
    dialect: str,
    log: list[str] | None,
) -> EngineCounts | None:
    """check's counts from the source (every row already passed the detector), or None.

    `value_columns`: those whose values the read-out frame holds (value_counts')."""
    if dialect not in ("duckdb", "postgres", "spark"):
        return None
    con = Logged(raw, log)  # Spark's connection logs its own statements (log is None)
    p = plan(ws, relation, columns, dialect)
    if p is None:
        return None
    d = p.dialect
    derive: str | None = p.derive
    if dialect == "spark":
        from chargeback.engine.pushdown_spark_review import spark_derive

        derive = spark_derive(con, p)
    if derive is None:
        return None
    made: list[str] = []  # word_flags' tables
    try:
        con.execute(f"CREATE TEMP TABLE {TABLE} AS {derive}")
        if usable(ws, p.schema, dialect):  # each value matched once, rules as bit words
            rules, span = word_flags(con, ws, p.schema, prims, (TABLE, FLAGS), made)
        else:
            con.execute(f"CREATE TEMP TABLE {FLAGS} AS {_flags(ws, p.schema, prims)}")
            rules, span = _activity(ws, con, prims.dialect)
        reasons = _grouped(
            con,
            f"SELECT {d.ident('reason')}, {d.ident('period')}, {d.ident('channel')}, "
            f"COUNT(*), SUM({d.ident('hs_us')}) FROM {FLAGS} WHERE cb_u AND "
            f"{d.ident('reason')} IS NOT NULL GROUP BY 1, 2, 3",
            {"reason": pl.String, "period": pl.String, "channel": pl.String},
        )
        texts = _grouped(
            con,
            f"SELECT {d.ident('text')}, cb_u, {d.ident('period')}, {d.ident('channel')}, "
            f"COUNT(*), SUM({d.ident('hs_us')}) FROM {FLAGS} WHERE {d.ident('text')} IS NOT NULL "
            "GROUP BY 1, 2, 3, 4",
            {"text": pl.String, "u": pl.Boolean, "period": pl.String, "channel": pl.String},
        )
        values: dict[str, dict[str, int]] = {}
        for name in value_columns:
            q = d.ident(name)
            rows = con.execute(f"SELECT {q}, COUNT(*) FROM {TABLE} GROUP BY 1")
            frame = pl.DataFrame(rows, schema={name: pl.String, "n": pl.Int64}, orient="row")
            values[name] = counted_values(name, frame)
    finally:
        for name in (FLAGS, *made, TABLE):
            con.execute(f"DROP TABLE IF EXISTS {name}")
    reasons = reasons.sort("reason", "period", "channel")  # MatchFrame's order
    return EngineCounts(rules, span, reasons, texts, values)


def _flags(ws: Workspace, schema: pl.Schema, prims: Primitives, table: str = TABLE) -> str:
    """The derive's rows with every rule's match (window ignored) as r<i>, and cb_u: no rule
    matches inside its window (review_counts' `unmatched`)."""
    comp = Compiler(prims, {n for n, t in schema.items() if t == pl.String})
    base: exp.Select = exp.select("*").from_(exp.to_table(table))
    if any(b.text is not None for b in match_blocks(ws)):
        base = exp.select(
            exp.Star(), prims.lower(col("text")).as_("text_lower", quoted=True)
        ).from_(exp.to_table(table))
    cols: list[Node] = [exp.Star()]
    cols += [comp.match(r.match).as_(f"r{i}", quoted=True) for i, r in enumerate(ws.rules)]
    windowed = [flag(_windowed(ws, i), 1) for i in range(len(ws.rules))]
    zero: Node = exp.Literal.number(0)
    matched: Node = reduce(lambda a, b: exp.Add(this=a, expression=b), windowed, zero)
    inner = exp.select(*cols).from_(base.subquery("src"))
    unmatched = exp.EQ(this=matched, expression=exp.Literal.number(0)).as_("cb_u")
    outer = exp.select(exp.Star(), unmatched)
    return outer.from_(inner.subquery("cb_rules")).sql(prims.dialect)


def _windowed(ws: Workspace, i: int) -> Node:
    rule = ws.rules[i]
    return exp.and_(col(f"r{i}"), window(rule, ws.decision(rule.decision)))


def _activity(
    ws: Workspace, con: Connection, dialect: str, flags: str = FLAGS
) -> tuple[dict[str, RuleActivity], DataSpan]:
    """MatchFrame.activity: in-window and before-effective matches, the first and last day."""
    items: list[Node] = [exp.Min(this=col("date")), exp.Max(this=col("date"))]
    for i, rule in enumerate(ws.rules):
        first, last = before_range(ws.decision(rule.decision).effective)
        before = exp.and_(col(f"r{i}"), col("date") >= day(first), col("date") <= day(last))
        items += [_sum(_windowed(ws, i)), _sum(before)]
    (row,) = con.execute(exp.select(*items).from_(exp.to_table(flags)).sql(dialect))
    rules = {
        rule.id: RuleActivity(int(row[2 + 2 * i] or 0), int(row[3 + 2 * i] or 0))
        for i, rule in enumerate(ws.rules)
    }
    return rules, DataSpan(_date(row[0]), _date(row[1]))


def _sum(condition: Node) -> Node:
    return exp.cast(exp.Sum(this=flag(condition, 1)), "BIGINT")


def _grouped(con: Logged, sql: str, keys: dict[str, Any]) -> pl.DataFrame:
    """Grouped rows as MatchFrame types them: n as polars counts them, hs as Int128 (as
    Arrow where the driver gives it: a row per distinct text, about one per contact)."""
    schema = {**keys, "n": pl.UInt32, "hs": pl.Int128}
    return con.typed(sql, schema).with_columns(pl.col("hs").fill_null(0))
