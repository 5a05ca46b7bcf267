"""Snowflake, BigQuery and Databricks SQL: the shared SQL compiled for each (issue 15).

These dialects compile, and golden-SQL tests hold what they compile to
(tests/test_warehouse_dialects.py); no run happens here, because running needs
credentials this project's CI does not have. What each dialect means
differently is written here, as for the engines that run:

- BigQuery's regexes are RE2, so a pattern goes as written with `(?i)`;
  substring tests are STRPOS.
- Databricks SQL is Spark SQL: Spark's primitives, regexes in Java with RE2's
  meaning (java_regex.py).
- Snowflake's REGEXP functions are POSIX with extensions and match the whole
  text unless told otherwise: no translation is written yet, so `text_regex`
  is refused there, at the rule.

`lower()` of each is its own until a connection runs the conformance query the
running engines run (engine/duckdb_engine.py, postgres_engine.py, spark_engine.py);
what the SQL says is what a live run would send before that repair.
"""

from __future__ import annotations

from contextlib import suppress
from typing import Any

import polars as pl
from sqlglot import exp

from chargeback.engine.spark_engine import SparkPrimitives
from chargeback.engine.sql_aggregate import aggregate_flags, flags_select, refuse_types
from chargeback.engine.sql_compile import Node, Primitives
from chargeback.workspace.model import Workspace

DIALECTS = ("snowflake", "bigquery", "databricks")


class BigQueryPrimitives(Primitives):
    dialect = "bigquery"

    def lower(self, column: Node) -> Node:
        return exp.Lower(this=column)

    def regex_search(self, column: Node, pattern: str) -> Node:
        """RE2 itself, case-insensitive: BigQuery's REGEXP_CONTAINS is RE2's search."""
        return exp.Anonymous(
            this="REGEXP_CONTAINS", expressions=[column, exp.Literal.string(f"(?i){pattern}")]
        )

    def contains(self, column: Node, needle: str) -> Node:
        return exp.GT(
            this=exp.func("STRPOS", column, exp.Literal.string(needle)),
            expression=exp.Literal.number(0),
        )

    def as_text(self, column: Node) -> Node:
        return exp.cast(column, "STRING")

    def first_part(self, column: Node, separator: str) -> Node:
        """BigQuery has no SPLIT_PART: SPLIT's first element (the whole when no separator)."""
        parts = exp.func("SPLIT", column, exp.Literal.string(separator))
        return exp.Bracket(this=parts, expressions=[exp.func("SAFE_OFFSET", exp.Literal.number(0))])


class SnowflakePrimitives(Primitives):
    dialect = "snowflake"

    def lower(self, column: Node) -> Node:
        return exp.Lower(this=column)

    def regex_search(self, column: Node, pattern: str) -> Node:
        raise NotImplementedError(
            f"text_regex {pattern!r} on snowflake (its POSIX regexes have no translation "
            "with RE2's meaning yet)"
        )

    def contains(self, column: Node, needle: str) -> Node:
        return exp.func("CONTAINS", column, exp.Literal.string(needle))


class DatabricksPrimitives(SparkPrimitives):
    dialect = "databricks"


PRIMITIVES: dict[str, type[Primitives]] = {
    "bigquery": BigQueryPrimitives,
    "snowflake": SnowflakePrimitives,
    "databricks": DatabricksPrimitives,
}


class _Recorder:
    """A connection that runs nothing: it keeps each statement and answers with no rows."""

    def __init__(self) -> None:
        self.statements: list[str] = []

    def execute(self, sql: str) -> list[tuple[Any, ...]]:
        self.statements.append(sql)
        return []


def compile_sql(ws: Workspace, schema: pl.Schema, dialect: str) -> list[str]:
    """The statements a run on `dialect` would send, for review: flags, then the sums.

    A workspace with baselines or control baselines compiles its flags; the
    statements after the first grouped query depend on what it returns.
    """
    prims = PRIMITIVES[dialect]()
    refuse_types(ws, schema, dialect)
    recorder = _Recorder()
    flags = flags_select(ws, schema, prims)
    recorder.statements.append(f"CREATE TEMPORARY TABLE flags AS {flags}")
    # a query whose rows the next one needs: what follows is not known without a run
    with suppress(ValueError, IndexError, TypeError):
        aggregate_flags(ws, recorder, dialect)
    return recorder.statements
