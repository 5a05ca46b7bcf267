"""The PostgreSQL engine: polars_engine's Aggregates computed by a PostgreSQL server.

Issue 15 (not wired into the CLI yet). The checked contacts frame is loaded
into a TEMP table with COPY (only the columns the SQL reads), and
sql_aggregate's shared SQL runs on it with PostgreSQL's Primitives; only the
grouped counts come back. Every statement run can be logged (`sql_log`) for
`--show-sql`.

Meaning, kept equal to polars': lower() is ICU's (`und-x-icu`, else the
database's ctype), checked against polars over every code point once per
server and repaired with replace()/translate() or refused; regexes are
translated by pg_regex into exact code-point sets; substring and prefix tests
are byte-exact (deterministic collations compare bytes). Requirements: a UTF8
database (refused otherwise); ICU support (Debian's build has it) or a ctype
such as C.UTF-8 whose lower() the conformance check accepts. Text holding a
NUL character cannot be stored in PostgreSQL text and is refused. Dates and
months are the frame's local ones, stored as DATE and text: no time zone
conversion happens on the server. The password comes only from libpq's
environment (PGPASSWORD, a password file); it is never read here.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

import polars as pl
from sqlglot import exp

from chargeback.engine.aggregates import Aggregates
from chargeback.engine.pg_regex import to_postgres, universe
from chargeback.engine.sql_aggregate import (
    aggregate_flags,
    flags_select,
    match_blocks,
    needed_columns,
    refuse_types,
)
from chargeback.engine.sql_compile import Node, Primitives, col
from chargeback.errors import driver
from chargeback.workspace.model import Workspace

SIGMAS = {"\u03c3", "\u03c2"}
ICU_ROOT = "und-x-icu"
GREEK = {"A": "\u0391", "O": "\u039f", "S": "\u03a3"}  # capital alpha, omicron, sigma
SIGMA_PROBES = tuple(  # polars lower-cases a word-final capital sigma as the final form
    "".join(GREEK.get(c, c) for c in t)
    for t in ("OSOS", "OSO S", "S", "AS.", "ASA", "A'S", "AS'", "1S", "S1", "xS y", "AS\u0301",
              "AS\u0301A", "AS\u00ad", "SAS SA", "SS", "AS\u0301 ", "\u1f08S")
)  # fmt: skip
PG_TYPES: dict[type[pl.DataType], str] = {
    pl.String: "text", pl.Categorical: "text", pl.Enum: "text", pl.Null: "text",
    pl.Boolean: "boolean", pl.Date: "date", pl.Int8: "smallint", pl.Int16: "smallint",
    pl.Int32: "integer", pl.Int64: "bigint", pl.UInt8: "smallint", pl.UInt16: "integer",
    pl.UInt32: "bigint", pl.UInt64: "numeric(20, 0)",
}  # fmt: skip


@dataclass(frozen=True)
class LowerRepair:
    """How PostgreSQL's lower() is made polars' to_lowercase (found by lower_conformance)."""

    collation: str | None = ICU_ROOT  # lower() under this collation; None: the database's
    replace: tuple[tuple[str, str], ...] = ()  # multi-character lower-casings, made first
    src: str = ""  # translate(): characters whose lower-casing differs, to polars' one
    dst: str = ""
    sigma: bool = True  # the word-final sigma comes out as polars'


class PostgresPrimitives(Primitives):
    """PostgreSQL's meanings, repaired to polars' where the conformance check found gaps."""

    dialect = "postgres"

    def __init__(self, repair: LowerRepair | None = None) -> None:
        self.repair = repair or LowerRepair()

    def lower(self, column: Node) -> Node:
        rep = self.repair
        for old, new in rep.replace:
            column = exp.func("replace", column, exp.Literal.string(old), exp.Literal.string(new))
        if rep.src:
            column = exp.func(
                "translate", column, exp.Literal.string(rep.src), exp.Literal.string(rep.dst)
            )
        if rep.collation is not None:
            column = exp.Collate(this=column, expression=exp.column(rep.collation, quoted=True))
        lowered: Node = exp.Lower(this=column)
        if rep.collation is not None:  # the result compares and searches by bytes again
            lowered = exp.Collate(this=lowered, expression=exp.column("C", quoted=True))
        return lowered

    def regex_search(self, column: Node, pattern: str) -> Node:
        """pg_regex's exact translation, run case-sensitively (the folding is in the sets)."""
        return exp.RegexpLike(this=column, expression=exp.Literal.string(to_postgres(pattern)))

    def contains(self, column: Node, needle: str) -> Node:
        return exp.GT(
            this=exp.func("strpos", column, exp.Literal.string(needle)),
            expression=exp.Literal.number(0),
        )

    def starts_with(self, column: Node, prefix: str) -> Node:
        return exp.func("starts_with", column, exp.Literal.string(prefix))

    def as_text(self, column: Node) -> Node:
        return exp.cast(column, "TEXT")


class _Con:
    """sql_aggregate's Connection over psycopg, logging every statement."""

    def __init__(self, con: Any, log: list[str] | None) -> None:
        self.con = con
        self.log = log

    def run(self, sql: str, params: tuple[Any, ...] | None = None) -> Any:
        if self.log is not None:
            self.log.append(sql)
        return self.con.execute(sql, params)

    def execute(self, sql: str) -> list[tuple[Any, ...]]:
        cur = self.run(sql)
        return list(cur.fetchall()) if cur.description is not None else []

    def close(self) -> None:
        self.con.close()


def _ident(name: str) -> str:
    return exp.to_identifier(name, quoted=True).sql("postgres")


def load_sql(ws: Workspace, schema: pl.Schema) -> tuple[list[str], str]:
    """(CREATE TEMP TABLE contacts ..., the COPY statement) for the columns the SQL reads."""
    cols = needed_columns(ws, schema)
    defs = []
    for name in cols:
        pg_type = PG_TYPES.get(type(schema[name]))
        if pg_type is None:
            raise NotImplementedError(f"column {name!r} of type {schema[name]} on postgres")
        defs.append(f"{_ident(name)} {pg_type}")
    names = ", ".join(_ident(c) for c in cols)
    create = f"CREATE TEMP TABLE contacts ({', '.join(defs)})"
    return [create], f"COPY contacts ({names}) FROM STDIN (FORMAT csv)"


def prepare_sql(ws: Workspace, schema: pl.Schema, repair: LowerRepair | None = None) -> list[str]:
    """The statements that load and flag the contacts, for showing without a server.

    (The grouped queries follow from sql_aggregate; they are logged when run.)
    """
    create, copy = load_sql(ws, schema)
    flags = flags_select(ws, schema, PostgresPrimitives(repair))
    return [*create, copy, f"CREATE TEMP TABLE flags AS {flags}", "ANALYZE flags"]


def refuse_unsupported(ws: Workspace, schema: pl.Schema, repair: LowerRepair) -> None:
    """NotImplementedError for what PostgreSQL cannot run with exactly polars' meaning."""
    for block in match_blocks(ws):
        for needle in block.text or ():
            if not repair.sigma and SIGMAS & set(needle.removesuffix("*").lower()):
                raise NotImplementedError(
                    f"text {needle!r}: a Greek sigma in a text phrase (this server's lower() "
                    "does not write the word-final sigma as polars does)"
                )
            if "\x00" in needle:
                raise NotImplementedError(f"text {needle!r}: a NUL character on postgres")
        if block.text_regex is not None:
            to_postgres(block.text_regex)
    refuse_types(ws, schema, "postgres")


def _refuse_nul(frame: pl.DataFrame, cols: list[str]) -> None:
    text = [c for c in cols if frame.schema[c] in (pl.String, pl.Categorical, pl.Enum)]
    if not text:
        return
    row = frame.select(
        [pl.col(c).cast(pl.String).str.contains("\x00", literal=True).any() for c in text]
    ).row(0)
    for name, bad in zip(text, row, strict=True):
        if bad:
            raise NotImplementedError(
                f"column {name!r} holds a NUL character, which PostgreSQL text cannot store"
            )


def aggregate(
    ws: Workspace,
    frame: pl.DataFrame,
    periods: set[str] | None = None,
    *,
    conninfo: str,
    sql_log: list[str] | None = None,
) -> Aggregates:
    """polars_engine.aggregate's contract, computed on the server `conninfo` names."""
    con = connect(conninfo, sql_log)
    try:
        prims = primitives_for(ws, con, frame.schema)
        create, copy = load_sql(ws, frame.schema)
        cols = needed_columns(ws, frame.schema)
        _refuse_nul(frame, cols)
        for statement in create:
            con.run(statement)
        _copy(con, copy, frame.select(cols))
        flags = flags_select(ws, frame.schema, prims)
        con.run(f"CREATE TEMP TABLE flags AS {flags}")
        con.run("ANALYZE flags")
        return aggregate_flags(ws, con, "postgres", periods)
    finally:
        con.close()


def connect(conninfo: str, sql_log: list[str] | None = None) -> _Con:
    """A session on the server `conninfo` names (its password from the environment only)."""
    con = _Con(driver("psycopg", "postgres").connect(conninfo, autocommit=True), sql_log)
    try:
        _session(con)
    except BaseException:
        con.close()
        raise
    return con


def primitives_for(ws: Workspace, con: _Con, schema: pl.Schema | None = None) -> PostgresPrimitives:
    """This server's primitives, repaired to polars' meaning; refuses what cannot be."""
    repair = lower_conformance(con)
    refuse_unsupported(ws, schema if schema is not None else pl.Schema(), repair)
    _check_patterns(ws, con)
    return PostgresPrimitives(repair)


def _session(con: _Con) -> None:
    """Settings the SQL relies on; refuses a database that is not UTF8."""
    ((encoding,),) = con.execute("SHOW server_encoding")
    if encoding != "UTF8":
        raise NotImplementedError(f"a {encoding} database on postgres (UTF8 is needed)")
    for setting in ("standard_conforming_strings = on", "jit = off", "DateStyle = 'ISO, YMD'"):
        con.run(f"SET {setting}")


def _copy(con: _Con, statement: str, frame: pl.DataFrame) -> None:
    """COPY FROM STDIN as CSV written by polars: null is unquoted-empty, every text quoted
    (so "" is an empty string and a value `\\.` is not read as the end of the data)."""
    if con.log is not None:
        con.log.append(statement)
    with con.con.cursor() as cur, cur.copy(statement) as copy:
        for start in range(0, max(frame.height, 1), 200_000):
            chunk = frame.slice(start, 200_000)
            copy.write(chunk.write_csv(include_header=False, quote_style="non_numeric").encode())


def _check_patterns(ws: Workspace, con: _Con) -> None:
    """Every translated regex compiles on this server, or the rule is refused naming it."""
    psycopg = driver("psycopg", "postgres")
    for block in match_blocks(ws):
        if block.text_regex is None:
            continue
        try:
            con.con.execute("SELECT '' ~ %s", (to_postgres(block.text_regex),))
        except psycopg.errors.DataError as err:
            raise NotImplementedError(
                f"text_regex {block.text_regex!r}: PostgreSQL cannot run its translation "
                f"({str(err).strip()})"
            ) from None


def lower_conformance(con: _Con) -> LowerRepair:
    """Where this server's lower() differs from polars' to_lowercase, found by asking both."""
    rows = con.execute(
        "SELECT current_setting('server_version'), current_setting('lc_ctype'), "
        f"EXISTS (SELECT 1 FROM pg_collation WHERE collname = '{ICU_ROOT}'), "
        "inet_server_addr()::text, inet_server_port(), current_database()"
    )
    return _conformance(con, rows[0])


@cache
def _polars_lower() -> pl.DataFrame:
    chars = universe().select(pl.col("c"))
    return chars.with_columns(p=pl.col("c").str.to_lowercase())


_repairs: dict[tuple[Any, ...], LowerRepair] = {}


def _conformance(con: _Con, key: tuple[Any, ...]) -> LowerRepair:
    """Once per server and database: load every code point, compare, build the repair."""
    if key in _repairs:
        return _repairs[key]
    collation = ICU_ROOT if key[2] else None
    prims = PostgresPrimitives(LowerRepair(collation=collation))
    con.run("CREATE TEMP TABLE _chars (c text, p text)")
    _copy(con, "COPY _chars (c, p) FROM STDIN (FORMAT csv)", _polars_lower())
    lower_c, lower_p = (prims.lower(col(name)).sql("postgres") for name in ("c", "p"))
    rows = con.execute(f'SELECT c, p, {lower_p} FROM _chars WHERE {lower_c} <> p COLLATE "C"')
    con.run("DROP TABLE _chars")
    replace: list[tuple[str, str]] = []
    src, dst = [], []
    for c, p, p_lowered in rows:
        if p_lowered != p:
            raise NotImplementedError(f"text: PostgreSQL cannot lower-case {c!r} as polars does")
        if len(p) == 1:  # a Unicode-version gap
            src.append(c)
            dst.append(p)
        else:
            replace.append((c, p))
    repair = LowerRepair(collation, tuple(replace), "".join(src), "".join(dst))
    probes = [PostgresPrimitives(repair).lower(_literal(s)) for s in SIGMA_PROBES]
    got = list(con.execute(exp.select(*probes).sql("postgres"))[0])
    sigma = got == pl.Series(SIGMA_PROBES).str.to_lowercase().to_list()
    repair = LowerRepair(collation, repair.replace, repair.src, repair.dst, sigma)
    _repairs[key] = repair
    return repair


def _literal(text: str) -> Node:
    return exp.Literal.string(text)
