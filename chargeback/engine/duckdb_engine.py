"""The DuckDB engine: the same aggregates as polars_engine, computed in SQL.

Groundwork for issue 15 (not wired into the CLI yet). The contacts frame the
data layer checked is handed to an in-memory DuckDB through the Arrow stream
interface; the SQL itself (a flags table, then grouped counts) is
sql_aggregate's, shared with the other SQL engines, with DuckDB's Primitives.
Only those aggregates come back. What DuckDB cannot yet do with exactly
polars' meaning raises NotImplementedError naming the feature.
"""

from __future__ import annotations

import json
import os
from functools import cache
from pathlib import Path
from typing import Any

import polars as pl
from sqlglot import exp

from chargeback.engine.aggregates import Aggregates
from chargeback.engine.sql_aggregate import (
    aggregate_flags,
    flags_select,
    match_blocks,
    refuse_types,
)
from chargeback.engine.sql_compile import Node, Primitives
from chargeback.errors import driver
from chargeback.workspace.model import Workspace

SIGMAS = {"\u03c3", "\u03c2"}  # polars writes a word-final capital sigma as the final form


class _Stream:
    """A polars frame as an Arrow C stream, re-readable, with no pyarrow needed."""

    def __init__(self, frame: pl.DataFrame) -> None:
        self.frame = frame

    def __arrow_c_stream__(self, requested_schema: object = None) -> object:
        return self.frame.__arrow_c_stream__(requested_schema)


Conformance = tuple[tuple[tuple[str, str], ...], str, str, frozenset[str]]


def _cache_file() -> Path:
    """Where the conformance answer is kept between runs: it depends on the two
    libraries' Unicode tables alone, so their versions name the file."""
    import duckdb

    home = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return (
        Path(home) / "chargeback" / f"lower-duckdb{duckdb.__version__}-polars{pl.__version__}.json"
    )


@cache
def lower_conformance() -> Conformance:
    """Where DuckDB's lower() differs from polars' to_lowercase, found by asking both.

    Returns (multi-character replacements made before lower, translate's from and
    to, characters whose case the two engines disagree on). Raises when a
    difference cannot be repaired by rewriting characters before DuckDB's lower().
    Asking both takes half a second, so the answer is kept in the user's cache
    folder, named by the libraries' versions (a file that does not read back is
    asked again).
    """
    path = _cache_file()
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
        refused = saved.get("refused")
        if refused is not None:
            raise NotImplementedError(str(refused))
        found = (
            tuple((str(a), str(b)) for a, b in saved["replace"]),
            str(saved["src"]),
            str(saved["dst"]),
            frozenset(str(c) for c in saved["differ"]),
        )
        if len(found[1]) != len(found[2]):  # translate() pairs them: a damaged file
            raise ValueError("translate's two sides differ in length")
        return found
    except (OSError, ValueError, KeyError, TypeError):
        pass
    try:
        found = _ask_both()
    except NotImplementedError as exc:
        _save(path, {"refused": str(exc)})
        raise
    replace, src, dst, differ = found
    _save(path, {"replace": replace, "src": src, "dst": dst, "differ": sorted(differ)})
    return found


def _save(path: Path, value: dict[str, Any]) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(f".{os.getpid()}.tmp")
        partial.write_text(json.dumps(value), encoding="utf-8")
        partial.replace(path)
    except OSError:
        pass  # a read-only home: asked again next time


def _ask_both() -> Conformance:
    """The conformance query itself (lower_conformance keeps its answer)."""
    chars = [chr(c) for c in range(1, 0x110000) if not 0xD800 <= c <= 0xDFFF]
    frame = pl.DataFrame({"c": chars}).with_columns(p=pl.col("c").str.to_lowercase())
    con = driver("duckdb", "duckdb").connect()
    con.execute("SET enable_progress_bar = false")  # it would draw over our own
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


def re2_class(chars: str) -> str:
    """Characters as the body of an RE2 class, each written as \\x{..} (no escaping doubts)."""
    return "".join(f"\\x{{{ord(c):x}}}" for c in chars)


class DuckDBPrimitives(Primitives):
    """DuckDB's meanings, repaired to polars' where the conformance query found gaps."""

    dialect = "duckdb"

    def lower(self, column: Node) -> Node:
        replace, src, dst, _ = lower_conformance()
        repaired = self._repaired(column, replace, src, dst)
        touched = src + "".join(old for old, _ in replace)
        if not touched or any(c.isascii() for c in touched):
            return repaired  # nothing repaired, or ASCII itself is
        # ASCII text (as many bytes as characters) needs no repair, nor its searches
        plain = exp.EQ(
            this=exp.Anonymous(this="strlen", expressions=[column.copy()]),
            expression=exp.Anonymous(this="length", expressions=[column.copy()]),
        )
        return exp.Case().when(plain, exp.Lower(this=column.copy())).else_(repaired)

    def _repaired(
        self, column: Node, replace: tuple[tuple[str, str], ...], src: str, dst: str
    ) -> Node:
        for old, new in replace:  # İ -> i + combining dot, as Rust's full lower-casing
            column = exp.func("replace", column, exp.Literal.string(old), exp.Literal.string(new))
        if not src:
            return exp.Lower(this=column)
        # characters DuckDB's Unicode tables do not lower-case yet: translate() costs
        # 2 s per million texts, a class test a tenth of that, so only texts with one pay
        rare = exp.Anonymous(
            this="regexp_matches",
            expressions=[column.copy(), exp.Literal.string(f"[{re2_class(src)}]")],
        )
        fixed = exp.func(
            "translate", column.copy(), exp.Literal.string(src), exp.Literal.string(dst)
        )
        return exp.Case().when(rare, exp.Lower(this=fixed)).else_(exp.Lower(this=column))

    def regex_search(self, column: Node, pattern: str) -> Node:
        """RE2 itself: the pattern as written, with RE2's case-insensitive option."""
        return exp.Anonymous(
            this="regexp_matches",
            expressions=[column, exp.Literal.string(pattern), exp.Literal.string("i")],
        )


def refuse_unsupported(ws: Workspace, schema: pl.Schema) -> None:
    """NotImplementedError for what this engine cannot yet run exactly as polars."""
    for block in match_blocks(ws):
        for needle in block.text or ():
            if SIGMAS & set(needle.removesuffix("*").lower()):
                raise NotImplementedError(
                    f"text {needle!r}: a Greek sigma in a text phrase (polars' word-final "
                    "sigma lower-casing is not reproduced on duckdb yet)"
                )
        if block.text_regex is not None:
            _refuse_regex(block.text_regex)
    refuse_types(ws, schema, "duckdb")


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


class _Con:
    """sql_aggregate's Connection over a DuckDB connection, logging what it runs."""

    def __init__(self, con: Any, log: list[str] | None = None) -> None:
        self.con = con
        self.log = log

    def execute(self, sql: str) -> list[tuple[Any, ...]]:
        if self.log is not None:
            self.log.append(sql)
        return list(self.con.execute(sql).fetchall())


def aggregate(
    ws: Workspace,
    contacts: pl.DataFrame,
    periods: set[str] | None = None,
    sql_log: list[str] | None = None,
) -> Aggregates:
    """polars_engine.aggregate's contract: the same groups, in the same order, and counts."""
    refuse_unsupported(ws, contacts.schema)
    con = driver("duckdb", "duckdb").connect()
    con.execute("SET enable_progress_bar = false")  # it would draw over our own
    try:
        con.register("contacts", _Stream(contacts))
        logged = _Con(con, sql_log)
        flags = flags_select(ws, contacts.schema, DuckDBPrimitives())
        # grouped as it is made: each later query reads groups, not contacts (weight=)
        logged.execute(
            "CREATE TEMP TABLE flags AS SELECT * EXCLUDE (hs_us), CAST(COUNT(*) AS BIGINT) "
            f"AS cb_n, SUM(hs_us) AS hs_us FROM ({flags}) AS f GROUP BY ALL"
        )
        return aggregate_flags(ws, logged, "duckdb", periods, weight="cb_n")
    finally:
        con.close()
