"""The DuckDB engine: the same aggregates as polars_engine, computed in SQL.

Groundwork for issue 15 (not wired into the CLI yet). The contacts frame the
data layer checked is handed to an in-memory DuckDB through the Arrow stream
interface; every rule's match is evaluated once into a flags table, and the
groups, baseline counts and control-baseline daily counts are SQL aggregates.
Only those aggregates come back. What DuckDB cannot yet do with exactly
polars' meaning raises NotImplementedError naming the feature.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import polars as pl
from sqlglot import exp

from chargeback.engine.aggregates import Aggregates, Group
from chargeback.engine.control_series import MAX_CONTROL_RULES, control_indexes, decode_cell
from chargeback.engine.duckdb_control import control_inputs_sql
from chargeback.engine.polars_engine import MASK_BITS, decode_masks
from chargeback.engine.sql_compile import (
    Compiler,
    Node,
    Primitives,
    bit_sum,
    col,
    lookback,
    window,
)
from chargeback.workspace.model import Match, Workspace

TEXT_TYPES = (pl.String, pl.Categorical, pl.Enum, pl.Null)
AS_TEXT_TYPES = (  # their text form is the same in both engines
    pl.Boolean, pl.Int8, pl.Int16, pl.Int32, pl.Int64, pl.UInt8, pl.UInt16, pl.UInt32, pl.UInt64,
)  # fmt: skip
SIGMAS = {"\u03c3", "\u03c2"}  # polars writes a word-final capital sigma as the final form


def _duckdb() -> Any:
    try:
        import duckdb
    except ImportError:  # pragma: no cover - the extra is missing
        raise NotImplementedError(
            "the duckdb engine needs its extra: pip install 'chargeback[duckdb]'"
        ) from None
    return duckdb


class _Stream:
    """A polars frame as an Arrow C stream, re-readable, with no pyarrow needed."""

    def __init__(self, frame: pl.DataFrame) -> None:
        self.frame = frame

    def __arrow_c_stream__(self, requested_schema: object = None) -> object:
        return self.frame.__arrow_c_stream__(requested_schema)


@cache
def lower_conformance() -> tuple[tuple[tuple[str, str], ...], str, str, frozenset[str]]:
    """Where DuckDB's lower() differs from polars' to_lowercase, found by asking both.

    Returns (multi-character replacements made before lower, translate's from and
    to, characters whose case the two engines disagree on). Raises when a
    difference cannot be repaired by rewriting characters before DuckDB's lower().
    """
    chars = [chr(c) for c in range(1, 0x110000) if not 0xD800 <= c <= 0xDFFF]
    frame = pl.DataFrame({"c": chars}).with_columns(p=pl.col("c").str.to_lowercase())
    con = _duckdb().connect()
    con.register("chars", _Stream(frame))
    rows = con.execute("SELECT c, p, lower(c), lower(p) FROM chars WHERE p <> lower(c)").fetchall()
    con.close()
    replace: list[tuple[str, str]] = []
    src, dst, differ = [], [], set()
    for c, p, _, p_lowered in rows:
        if p_lowered != p:
            raise NotImplementedError(f"text: DuckDB cannot lower-case {c!r} as polars does")
        if len(p) == 1:  # a Unicode-version gap (İ's full lower-casing is not one)
            differ.update({c, p})
            src.append(c)
            dst.append(p)
        else:
            replace.append((c, p))
    return tuple(replace), "".join(src), "".join(dst), frozenset(differ)


class DuckDBPrimitives(Primitives):
    """DuckDB's meanings, repaired to polars' where the conformance query found gaps."""

    dialect = "duckdb"

    def lower(self, column: Node) -> Node:
        replace, src, dst, _ = lower_conformance()
        for old, new in replace:  # İ -> i + combining dot, as Rust's full lower-casing
            column = exp.func("replace", column, exp.Literal.string(old), exp.Literal.string(new))
        if src:  # characters DuckDB's Unicode tables do not lower-case yet
            column = exp.func("translate", column, exp.Literal.string(src), exp.Literal.string(dst))
        return exp.Lower(this=column)

    def regex_search(self, column: Node, pattern: str) -> Node:
        """RE2 itself: the pattern as written, with RE2's case-insensitive option."""
        return exp.Anonymous(
            this="regexp_matches",
            expressions=[column, exp.Literal.string(pattern), exp.Literal.string("i")],
        )


def _blocks(ws: Workspace) -> list[Match]:
    blocks = [r.match for r in ws.rules]
    for r in ws.rules:
        if r.control is not None:
            blocks += [b for b in (r.control.evidence, r.control.control) if b is not None]
    return blocks


def refuse_unsupported(ws: Workspace, schema: pl.Schema) -> None:
    """NotImplementedError for what this engine cannot yet run exactly as polars."""
    blocks = _blocks(ws)
    for block in blocks:
        for needle in block.text or ():
            if SIGMAS & set(needle.removesuffix("*").lower()):
                raise NotImplementedError(
                    f"text {needle!r}: a Greek sigma in a text phrase (polars' word-final "
                    "sigma lower-casing is not reproduced on duckdb yet)"
                )
        if block.text_regex is not None:
            _refuse_regex(block.text_regex)
        for column in block.columns() - {"text", "tags"}:
            dtype = schema.get(column)
            if dtype is not None and not isinstance(dtype, (*TEXT_TYPES, *AS_TEXT_TYPES)):
                raise NotImplementedError(
                    f"matching column {column!r} of type {dtype} on duckdb (its text form may "
                    "differ from polars')"
                )
    if len(control_indexes(ws)) > MAX_CONTROL_RULES:
        raise ValueError(f"at most {MAX_CONTROL_RULES} rules may use a control baseline")


def _refuse_regex(pattern: str) -> None:
    """Where DuckDB's RE2 and polars' Rust regex would read a valid RE2 pattern apart."""
    differ = lower_conformance()[3]
    chars: list[str] = []
    i, in_class = 0, False
    while i < len(pattern):
        c = pattern[i]
        if c == "\\" and i + 1 < len(pattern):
            if pattern[i + 1] in "pP":
                raise NotImplementedError(
                    f"text_regex {pattern!r}: Unicode property classes (\\p) on duckdb "
                    "(its RE2 has older Unicode tables than polars)"
                )
            i += 2
            continue
        if c == "[":
            in_class = True
        elif c == "]":
            in_class = False
        elif in_class and c == "-" and chars and i + 1 < len(pattern):
            low, high = ord(chars[-1]), ord(pattern[i + 1])
            if any(low <= ord(d) <= high for d in differ):
                raise NotImplementedError(
                    f"text_regex {pattern!r}: a class range over characters whose case "
                    "DuckDB's and polars' Unicode tables disagree on"
                )
        chars.append(c)
        i += 1
    if differ & set(pattern):
        raise NotImplementedError(
            f"text_regex {pattern!r}: characters whose case DuckDB's and polars' Unicode "
            "tables disagree on"
        )


def _flags_sql(ws: Workspace, schema: pl.Schema) -> str:
    """contacts -> one row per contact with every rule's match (window ignored) as r<i>."""
    text_cols = {n for n, t in schema.items() if isinstance(t, TEXT_TYPES)}
    comp = Compiler(DuckDBPrimitives(), text_cols)
    source = exp.select("*").from_(exp.to_table("contacts"))
    if any(b.text is not None for b in _blocks(ws)):
        source = exp.select(
            exp.Star(), DuckDBPrimitives().lower(col("text")).as_("text_lower", quoted=True)
        ).from_(exp.to_table("contacts"))
    keep = [c for c in ("date", "period", "channel", "hs_us") if c in schema]
    family: Node = (
        exp.func("split_part", col("reason"), exp.Literal.string("."), exp.Literal.number(1))
        if "reason" in schema
        else exp.cast(exp.null(), "VARCHAR")
    )
    cols: list[Node] = [col(c) for c in keep]
    cols.append(family.as_("_family", quoted=True))
    cols += [comp.match(r.match).as_(f"r{i}", quoted=True) for i, r in enumerate(ws.rules)]
    for i, r in enumerate(ws.rules):
        if r.control is not None and r.control.evidence is not None:
            cols.append(comp.match(r.control.evidence).as_(f"e{i}", quoted=True))
        if r.control is not None and r.control.control is not None:
            cols.append(comp.match(r.control.control).as_(f"c{i}", quoted=True))
    return exp.select(*cols).from_(source.subquery("src")).sql("duckdb")


def _mask_columns(ws: Workspace) -> list[Node]:
    rules = ws.rules
    masks: list[Node] = []
    for start in range(0, len(rules), MASK_BITS):
        conds: list[Node] = [
            exp.and_(col(f"r{start + k}"), window(r, ws.decision(r.decision)))
            for k, r in enumerate(rules[start : start + MASK_BITS])
        ]
        masks.append(bit_sum(conds).as_(f"_m{start // MASK_BITS}", quoted=True))
    return masks


def aggregate(ws: Workspace, contacts: pl.DataFrame, periods: set[str] | None = None) -> Aggregates:
    """polars_engine.aggregate's contract: the same groups, in the same order, and counts."""
    refuse_unsupported(ws, contacts.schema)
    con = _duckdb().connect()
    try:
        con.register("contacts", _Stream(contacts))
        con.execute(f"CREATE TEMP TABLE flags AS {_flags_sql(ws, contacts.schema)}")
        return _aggregates(ws, con, periods)
    finally:
        con.close()


def _aggregates(ws: Workspace, con: Any, periods: set[str] | None) -> Aggregates:
    masks = _mask_columns(ws)
    indexes = control_indexes(ws)
    keys: list[Node] = [col("period"), col("channel"), *masks]
    if indexes:
        keys.append(bit_sum([col(f"r{i}") for i in indexes]).as_("_cell", quoted=True))
    query = exp.select(
        *keys,
        exp.Count(this=exp.Star()).as_("n"),
        exp.Coalesce(this=exp.Sum(this=col("hs_us")), expressions=[exp.Literal.number(0)]).as_(
            "hs"
        ),
    ).from_(exp.to_table("flags"))
    if periods is not None:
        query = query.where(
            col("period").isin(*[exp.Literal.string(p) for p in sorted(periods)])
            if periods
            else exp.false()
        )
    query = query.group_by(*[exp.Literal.number(k + 1) for k in range(len(keys))])
    rows = con.execute(query.sql("duckdb")).fetchall()
    rows.sort(key=lambda row: tuple(row[:-2]))  # polars' order: bytes of UTF-8 = code points
    n_masks = len(masks)
    groups = tuple(
        Group(
            period,
            channel,
            decode_masks(values[:n_masks]),
            int(n),
            int(hs),
            decode_cell(ws, int(values[n_masks])) if indexes else frozenset(),
        )
        for period, channel, *values, n, hs in rows
    )
    baseline = [(i, r) for i, r in enumerate(ws.rules) if r.baseline_lookback_days is not None]
    counts: dict[str, int] = {}
    if baseline:
        sums = [
            exp.Sum(
                this=bit_sum([exp.and_(col(f"r{i}"), lookback(r, ws.decision(r.decision)))])
            ).as_(f"_b{i}", quoted=True)
            for i, r in baseline
        ]
        row = con.execute(exp.select(*sums).from_(exp.to_table("flags")).sql("duckdb")).fetchone()
        counts = {r.id: int(c or 0) for (_, r), c in zip(baseline, row, strict=True)}
    cells, sharing = control_inputs_sql(ws, con) if indexes else ({}, {})
    return Aggregates(groups=groups, baseline_counts=counts, cells=cells, sharing=sharing)
