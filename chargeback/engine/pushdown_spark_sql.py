"""Spark SQL's spelling of the in-engine ledger's primitives (engine/pushdown_sql.py's Dialect).

The detector and derive are pushdown_sql's; only the words differ. Why each one:
Spark's string literals take backslash escapes (a regex rides in SQLGlot's
Spark literal, checked to read back by spark_engine._check_literals), its
regexes are Java's (every pattern goes through java_regex.to_java, with RE2's
meaning), its `hash` is 32 bits (xxhash64 instead: a clash only costs a
fallback, but 32 bits clash at scale), its double quotes are strings, and a
source column may carry a collation (UTF8_BINARY is cast on, so values compare
by bytes). Timestamps rely on the session's UTC time zone
(data/spark_session.SESSION_CONF): a wall-clock time is held as that instant.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlglot import exp

from chargeback.data.limits import MAX_YEAR, MIN_YEAR, char_limit
from chargeback.engine.java_regex import to_java, write_set
from chargeback.engine.pushdown_sql import (
    CONTROL,
    WHITESPACE,
    Column,
    Dialect,
    mapped,
    tags_column,
)

SPARK_FAMILIES = {
    "string": "text", "boolean": "boolean", "tinyint": "integer", "smallint": "integer",
    "int": "integer", "bigint": "integer", "double": "float", "float": "float4",
    "timestamp": "timestamptz", "timestamp_ntz": "timestamp", "date": "date",
}  # fmt: skip


NOT_UTF8 = "'chargeback: text that is not UTF-8'"


def spark_literal(text: str) -> str:
    """A Spark SQL string literal (backslashes escaped), as SQLGlot writes it."""
    return str(exp.Literal.string(text).sql("spark"))


def family_of_spark(simple: str) -> str:
    """A Spark type's simpleString() -> its family ('other' for anything not reproduced).

    A collated string (`string collate UTF8_LCASE`) is text: the SQL casts it to
    UTF8_BINARY. Decimals are exact; other arrays, maps, structs and binary are 'other'.
    """
    name = simple.strip().lower()
    if name.startswith("string"):
        return "text"
    if name.startswith("decimal"):
        return "decimal"
    if name == "array<string>":
        return "text_list"  # binary strings only: a collated list would group case-blind
    return SPARK_FAMILIES.get(name, "other")


@dataclass(frozen=True)
class SparkDialect(Dialect):
    """Spark SQL 4 (ANSI mode or not: every cast here is guarded or cannot fail)."""

    name: str = "spark"

    def ident(self, name: str) -> str:
        return "`" + name.replace("`", "``") + "`"

    def text(self, expr: str) -> str:
        """By bytes; text that is not UTF-8 (polars refuses its file, Spark reads it) stops
        the statement, and a Spark error sends the run down the usual path."""
        text = f"CAST({expr} AS STRING)"
        stop = f"raise_error({NOT_UTF8})"
        checked = f"CASE WHEN NOT is_valid_utf8({text}) THEN {stop} ELSE {text} END"
        return f"({checked} COLLATE UTF8_BINARY)"

    def null_text(self) -> str:
        return "CAST(NULL AS STRING)"

    def search(self, expr: str, pattern: str) -> str:
        """RE2 `pattern` (as the other dialects write it) searched with RE2's meaning."""
        return f"({expr} RLIKE {spark_literal(to_java(pattern))})"

    def trimmed_differs(self, expr: str) -> str:
        """As DuckDB's: ascii() is the first character's code point on Spark."""
        points = ", ".join(str(ord(c)) for c in WHITESPACE)
        first, last = f"ascii(left({expr}, 1))", f"ascii(right({expr}, 1))"
        return f"({expr} = '' OR {first} IN ({points}) OR {last} IN ({points}))"

    def double(self, expr: str, family: str) -> str:
        return f"CAST({expr} AS DOUBLE)"

    def not_finite(self, expr: str) -> str:
        return f"(isnan({expr}) OR abs({expr}) = CAST('Infinity' AS DOUBLE))"

    def local(self, expr: str, family: str, tz: str) -> str:
        """Wall-clock time as a UTC timestamp. An instant's conversion here is Java's zone
        rules: the scans never use it (polars' offsets, pushdown_rows._fast_time), only
        Plan.derive does."""
        if family != "timestamptz":
            return f"CAST({expr} AS TIMESTAMP)"
        lo, hi = self.instant(f"{MIN_YEAR - 1}-12-30"), self.instant(f"{MAX_YEAR + 1}-01-02")
        conv = f"from_utc_timestamp({expr}, {spark_literal(tz)})"
        return f"CASE WHEN {expr} >= {lo} AND {expr} < {hi} THEN {conv} END"

    def period(self, local: str) -> str:
        return f"date_format({local}, 'yyyy-MM')"

    def instant(self, text: str) -> str:
        seconds = int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp())
        return f"timestamp_seconds({seconds})"

    def epoch(self, expr: str) -> str:
        """Whole seconds, floored (unix_seconds floors); a wall clock or date read as UTC."""
        return f"unix_seconds(CAST({expr} AS TIMESTAMP))"

    def hash(self, exprs: str) -> str:
        return f"xxhash64({exprs})"

    def octets(self, expr: str) -> str:
        return f"octet_length({expr})"

    def epoch_us(self, expr: str) -> str:
        return f"unix_micros({expr})"

    def timestamp_us(self, expr: str) -> str:
        return f"timestamp_micros({expr})"

    def day_series(self, first: str, last: str) -> str:
        days = f"sequence(DATE'{first}', DATE'{last}', INTERVAL 1 DAY)"
        return f"(SELECT explode({days}) AS d) AS t"


def spark_tags_column(
    d: Dialect, source: str, family: str, separator: str, pairs: dict[str, str]
) -> Column:
    """pushdown_sql.tags_column, with `values:` pairs mapped tag by tag in Spark's words
    (split on the separator as a Java regex, transform, join) where it writes DuckDB's."""
    if family == "text_list":
        return _list_tags(d, source, pairs)
    out = tags_column(d, source, family, separator, {})
    if pairs:
        v = d.ident("v_tags")
        sep = ord(separator)
        parts = f"split({v}, {spark_literal(write_set(((sep, sep),)))}, -1)"
        joined = f"array_join(transform({parts}, x -> {mapped(d, 'x', pairs)}), '|')"
        out.second["m_tags"] = f"CASE WHEN {v} IS NOT NULL THEN '|' || {joined} || '|' END"
    return out


def _list_tags(d: Dialect, source: str, pairs: dict[str, str]) -> Column:
    """An array<string> of tags as pushdown_sql's DuckDB list: joined `|a|b|` with each tag
    mapped; no tag at all (an empty list) is NULL; a NULL, padded, empty or not UTF-8 tag
    flagged."""
    out = Column()
    v = d.ident("v_tags")
    out.first["v_tags"] = d.ident(source)
    joined = f"array_join(transform({v}, x -> {mapped(d, 'x', pairs)}), '|')"
    bad = f"x IS NULL OR NOT is_valid_utf8(x) OR {d.trimmed_differs('x')}"
    out.checks["empty or padded tag"] = f"(size(filter({v}, x -> {bad})) > 0)"
    out.second["m_tags"] = f"CASE WHEN size({v}) > 0 THEN '|' || {joined} || '|' END"
    m = d.ident("m_tags")
    out.checks["control character"] = d.search(m, d.char_class(CONTROL))
    out.checks["too long"] = f"length({m}) > {char_limit('tags')}"
    return out
