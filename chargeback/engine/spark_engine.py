"""The Spark engine: polars_engine.aggregate's Aggregates, computed by Spark SQL.

Issue 15. The checked contacts frame (only the columns the SQL reads) becomes a
Spark temp view through Arrow, the shared SQL of sql_aggregate.py runs on it
with `SparkPrimitives`, and only the aggregates come back, so the ledger is
the polars engine's to the cent. Spark runs locally (`local[2]`) or on a
cluster through Spark Connect (`remote="sc://host:15002"`). Two things Spark
means differently are checked or rewritten rather than trusted: lower-casing
is compared with polars' over every code point once per session (and
repaired, or refused), and regexes are translated to Java with RE2's meaning
(java_regex.py). What cannot be made exact raises NotImplementedError.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING

import polars as pl
from sqlglot import exp

from chargeback.data.spark_session import session
from chargeback.engine.aggregates import Aggregates
from chargeback.engine.java_regex import SURROGATES, to_java, write_set
from chargeback.engine.sql_aggregate import (
    Row,
    aggregate_flags,
    flags_select,
    match_blocks,
    needed_columns,
    refuse_types,
)
from chargeback.engine.sql_compile import Node, Primitives, col
from chargeback.workspace.model import Workspace

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

SIGMAS = {"\u03c3", "\u03c2"}  # small sigma and final sigma: lower() picks by the neighbours
ALPHA, SIGMA, FINAL = "\u0391", "\u03a3", "\u03c2"  # capital alpha, capital sigma, final
CODE_POINTS = f"""
SELECT CAST(id AS INT) AS n, format_string('%c', CAST(id AS INT)) AS c
FROM range(1, 1114112) WHERE id < {SURROGATES[0]} OR id > {SURROGATES[1]}"""


@dataclass(frozen=True)
class LowerRepair:
    """How to make this session's lower() write polars' `str.to_lowercase`."""

    replace: tuple[tuple[str, str], ...] = ()  # multi-character lower-casings, before lower()
    src: str = ""  # translate(src -> dst) before lower(): characters Spark's tables miss
    dst: str = ""
    # code points the two engines' final-sigma rules read differently (None: not checked)
    sigma: tuple[int, ...] | None = None


_REPAIRS: dict[int, tuple[object, LowerRepair]] = {}  # id(session) -> (session, repair)


@cache
def _code_points() -> pl.DataFrame:
    """Every code point but the surrogates, as `n` and the one-character string `c`."""
    codes = [c for c in range(1, 0x110000) if not SURROGATES[0] <= c <= SURROGATES[1]]
    return pl.DataFrame({"n": codes, "c": [chr(c) for c in codes]})


def lower_conformance(spark: SparkSession, sigma: bool = False) -> LowerRepair:
    """Where this session's lower() differs from polars', found by asking both, once.

    Spark enumerates every code point itself and returns the ones its lower()
    changes; polars does the same here; the two maps must agree or be
    repairable by rewriting characters before lower(). With `sigma`, also the
    final-sigma rule: the code points beside which the two engines write a capital
    sigma differently (Unicode versions of Cased and Case_Ignorable differ).
    """
    cached = _REPAIRS.get(id(spark))
    repair = cached[1] if cached is not None and cached[0] is spark else None
    if repair is None:
        _check_literals(spark)
        repair = _case_map_repair(spark)
    if sigma and repair.sigma is None:
        repair = LowerRepair(repair.replace, repair.src, repair.dst, _sigma_differ(spark))
    _REPAIRS[id(spark)] = (spark, repair)
    return repair


LITERAL_PROBE = "a\\b'c\"d\ne\t%_\\%\\_\\u0041\\x{41}\\\\n\u00e9\U0001f600"


def _check_literals(spark: SparkSession) -> None:
    """SQLGlot's string literals must read back unchanged (backslashes are escapes in Spark
    SQL unless spark.sql.parser.escapedStringLiterals is on): needles and patterns ride in
    them. And comparisons must be binary: a session's default collation could fold case."""
    literal = exp.Literal.string(LITERAL_PROBE).sql("spark")
    binary = "'a' = 'A' OR contains('A', 'a') OR startswith('A', 'a') OR 'A' IN ('a')"
    ((value, folded),) = spark.sql(f"SELECT {literal}, {binary}").collect()
    if value != LITERAL_PROBE:
        raise NotImplementedError(
            "string literals on this Spark session read back changed (is "
            "spark.sql.parser.escapedStringLiterals set?)"
        )
    if folded:
        raise NotImplementedError("string comparisons that ignore case (a default collation)")


def _case_map_repair(spark: SparkSession) -> LowerRepair:
    rows = spark.sql(f"SELECT n, lower(c) FROM ({CODE_POINTS}) WHERE lower(c) <> c").collect()
    theirs = {int(n): str(low) for n, low in rows}
    changed = _code_points().with_columns(low=pl.col("c").str.to_lowercase())
    ours = dict(changed.filter(pl.col("low") != pl.col("c")).select("n", "low").iter_rows())

    def spark_lower(text: str) -> str:
        return "".join(theirs.get(ord(ch), ch) for ch in text)

    replace: list[tuple[str, str]] = []
    src, dst = [], []
    for code in sorted(set(theirs) | set(ours)):
        want = ours.get(code, chr(code))
        if theirs.get(code, chr(code)) == want:
            continue
        if spark_lower(want) != want:
            raise NotImplementedError(
                f"text: Spark's lower() cannot lower-case {chr(code)!r} as polars does"
            )
        if len(want) == 1:
            src.append(chr(code))
            dst.append(want)
        else:
            replace.append((chr(code), want))
    return LowerRepair(tuple(replace), "".join(src), "".join(dst))


SIGMA_PROBES = {  # x beside a capital sigma: Final_Sigma writes the final form as x is ...
    "f1": ("", SIGMA),  # ... cased and not case-ignorable
    "f2": (ALPHA, SIGMA),  # ... cased or case-ignorable
    "f3": (ALPHA + SIGMA, ""),  # ... the same, seen from the other side
    "f4": (ALPHA + SIGMA, ALPHA),  # ... case-ignorable, looking past it
}


def _sigma_differ(spark: SparkSession) -> tuple[int, ...]:
    """The code points beside which the two lower() disagree on writing the final sigma.

    One pass each: per code point, whether each probe lower-cases to the final
    form; rows come back only where one of them is the rarer answer.
    """
    flags = {
        name: f"instr(lower(concat('{before}', c, '{after}')), '{FINAL}') > 0"
        for name, (before, after) in SIGMA_PROBES.items()
    }
    rare = "f1 OR f2 OR NOT f3 OR NOT f4"
    columns = ", ".join(f"{sql} AS {name}" for name, sql in flags.items())
    probes = f"SELECT n, {columns} FROM ({CODE_POINTS})"
    rows = spark.sql(f"SELECT * FROM ({probes}) WHERE {rare}").collect()
    theirs = {tuple(row) for row in rows}
    final = [
        (pl.lit(before) + pl.col("c") + pl.lit(after))
        .str.to_lowercase()
        .str.contains(FINAL, literal=True)
        .alias(name)
        for name, (before, after) in SIGMA_PROBES.items()
    ]
    ours = set(
        _code_points()
        .select("n", *final)
        .filter(pl.col("f1") | pl.col("f2") | ~pl.col("f3") | ~pl.col("f4"))
        .iter_rows()
    )
    return tuple(sorted({row[0] for row in ours ^ theirs}))


class SparkPrimitives(Primitives):
    """Spark SQL's meanings, made polars' (lower-casing) or RE2's (regexes)."""

    dialect = "spark"

    def __init__(self, repair: LowerRepair | None = None) -> None:
        self.repair = repair or LowerRepair()

    def lower(self, column: Node) -> Node:
        for old, new in self.repair.replace:
            column = exp.func("replace", column, exp.Literal.string(old), exp.Literal.string(new))
        if self.repair.src:
            column = exp.func(
                "translate",
                column,
                exp.Literal.string(self.repair.src),
                exp.Literal.string(self.repair.dst),
            )
        return exp.Lower(this=column)

    def regex_search(self, column: Node, pattern: str) -> Node:
        """`column RLIKE '<java>'`: Java's find() on the pattern translated with RE2's meaning."""
        return exp.RegexpLike(this=column, expression=exp.Literal.string(to_java(pattern)))

    def contains(self, column: Node, needle: str) -> Node:
        """Spark's contains(): a binary (code-unit) substring test under the default collation."""
        return exp.func("contains", column, exp.Literal.string(needle))

    def starts_with(self, column: Node, prefix: str) -> Node:
        return exp.StartsWith(this=column, expression=exp.Literal.string(prefix))


def refuse_unsupported(ws: Workspace, schema: pl.Schema) -> bool:
    """NotImplementedError for what cannot run exactly; True when a phrase has a sigma."""
    refuse_types(ws, schema, "spark")
    sigma = False
    for block in match_blocks(ws):
        if block.text_regex is not None:
            to_java(block.text_regex)  # refused here, before any Spark starts
        sigma |= any(SIGMAS & set(v.removesuffix("*").lower()) for v in block.text or ())
    return sigma


SPARK_TYPES = {pl.String: "STRING", pl.Date: "DATE", pl.Int64: "BIGINT", pl.Boolean: "BOOLEAN"}


def sendable(frame: pl.DataFrame) -> tuple[pl.DataFrame, str]:
    """The frame in types Spark takes, with the same text forms, and its Spark schema (DDL).

    An explicit schema: Spark Connect cannot infer one from no rows, and the
    column types stay what the SQL expects.
    """
    casts = []
    for name, dtype in frame.schema.items():
        if isinstance(dtype, (pl.Categorical, pl.Enum, pl.Null, pl.UInt64)):
            casts.append(pl.col(name).cast(pl.String))
        elif dtype.is_integer() and dtype != pl.Int64:
            casts.append(pl.col(name).cast(pl.Int64))
    frame = frame.with_columns(casts) if casts else frame
    fields = []
    for name, dtype in frame.schema.items():
        spark_type = SPARK_TYPES.get(dtype.base_type())
        if spark_type is None:
            raise NotImplementedError(f"column {name!r} of type {dtype} on spark")
        fields.append(f"`{name.replace('`', '``')}` {spark_type}")
    return frame, ", ".join(fields)


def refuse_sigma_texts(con: SparkConnection, contacts: str, differ: tuple[int, ...]) -> None:
    """NotImplementedError when a text has a capital sigma and a character whose case
    properties the engines' Unicode versions disagree on (its sigma may lower apart)."""
    text = col("text")
    query = (
        exp.select(exp.Count(this=exp.Star()))
        .from_(exp.to_table(contacts))
        .where(
            exp.and_(
                exp.GT(
                    this=exp.func("instr", text, exp.Literal.string(SIGMA)),
                    expression=exp.Literal.number(0),
                ),
                exp.RegexpLike(
                    this=text.copy(),
                    expression=exp.Literal.string(write_set(tuple((c, c) for c in differ))),
                ),
            )
        )
    )
    ((count,),) = con.execute(query.sql("spark"))
    if count:
        shown = ", ".join(f"U+{c:04X}" for c in differ[:5])
        raise NotImplementedError(
            f"text: a Greek sigma in a text phrase, and {count} texts with a capital sigma "
            f"beside characters ({shown}, ...) whose case Spark's Unicode tables read "
            "differently from polars' (the sigma may lower-case apart)"
        )


class SparkConnection:
    """sql_aggregate's Connection over a SparkSession; every statement goes to `log`."""

    def __init__(self, spark: SparkSession, log: list[str] | None = None) -> None:
        self.spark = spark
        self.log = log

    def execute(self, sql: str) -> list[Row]:
        if self.log is not None:
            self.log.append(sql)
        return [tuple(row) for row in self.spark.sql(sql).collect()]


def aggregate(
    ws: Workspace,
    frame: pl.DataFrame,
    periods: set[str] | None = None,
    *,
    remote: str | None = None,
    sql_log: list[str] | None = None,
) -> Aggregates:
    """polars_engine.aggregate's contract on Spark: the same groups, in the same order."""
    sigma = refuse_unsupported(ws, frame.schema)
    spark = session(remote)
    repair = lower_conformance(spark, sigma)
    data, schema = sendable(frame.select(needed_columns(ws, frame.schema)))
    tag = uuid.uuid4().hex[:12]
    contacts, flags = f"chargeback_contacts_{tag}", f"chargeback_flags_{tag}"
    con = SparkConnection(spark, sql_log)
    spark.createDataFrame(data.to_arrow(), schema).createOrReplaceTempView(contacts)
    try:
        if sigma and repair.sigma:
            refuse_sigma_texts(con, contacts, repair.sigma)
        select = flags_select(ws, data.schema, SparkPrimitives(repair), source=contacts)
        con.execute(f"CACHE TABLE {flags} AS {select}")
        return aggregate_flags(ws, con, "spark", periods, flags=flags)
    finally:
        con.execute(f"UNCACHE TABLE IF EXISTS {flags}")
        con.execute(f"DROP VIEW IF EXISTS {flags}")
        con.execute(f"DROP VIEW IF EXISTS {contacts}")
