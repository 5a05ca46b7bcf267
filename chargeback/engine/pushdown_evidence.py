"""A statement's evidence where the contacts are: only grouped rows leave (SPEC 10).

The statements' evidence (engine/evidence.py) reads from the contacts: rows
grouped by month, channel, reason and windowed rule masks; per decision and
month the contacts its rules matched, sorted by local time and id, and a few of
them picked across the month; per decision and local day the contacts its rules
match, window ignored; the data's first and last day. And the statements' notes
on leaky rules read check's rule activity. On duckdb, postgres and spark, once the
in-engine ledger's detector has passed every row, the pushdown's derive (with
its `local` wall-clock time; on Spark a cached view, its local time from polars'
offsets: pushdown_spark_review.spark_derive) goes into a temporary table, the rules are
matched on it as `check` does (on duckdb and postgres as bit words:
pushdown_check_words; on spark a condition per rule), and grouped queries return
those counts; a window function picks the examples, so only the picked contacts'
rows (id, local time, channel, reason, text) leave. evidence.py does the rest
exactly as for a read-out frame, so the documents are the same.

With control baselines the splits are keyed by each contact's control cell too (the
control rules its match picks up, windows ignored), as evidence.frame_counts keys them.
None (the run reads the contacts out for the evidence): a source the pushdown does
not plan, local times on Spark that are not whole-second offsets from UTC.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import reduce
from typing import Any

import polars as pl
from sqlglot import exp

from chargeback.engine.control_series import control_indexes
from chargeback.engine.evidence_counts import EXAMPLE_SCHEMA, EXAMPLES, EvidenceCounts
from chargeback.engine.polars_engine import MASK_BITS
from chargeback.engine.pushdown import Logged, plan
from chargeback.engine.pushdown_bits import word_masks, word_of
from chargeback.engine.pushdown_check import _activity, _flags, _windowed
from chargeback.engine.pushdown_check_words import as_date as _date
from chargeback.engine.pushdown_check_words import usable, word_flags
from chargeback.engine.pushdown_sql import Dialect
from chargeback.engine.review_counts import DataSpan, RuleActivity
from chargeback.engine.sql_aggregate import Connection, mask_columns
from chargeback.engine.sql_compile import Node, Primitives, bit_sum, col, flag
from chargeback.workspace.model import Workspace

TABLE, FLAGS = "cb_evidence", "cb_evidence_flags"
EPOCH = datetime(1970, 1, 1)


@dataclass
class EngineEvidence(EvidenceCounts):
    """The evidence's counts from the engine, every month's, and check's rule activity."""

    rules: dict[str, RuleActivity]
    span: DataSpan

    def activity(self) -> tuple[dict[str, RuleActivity], DataSpan]:
        """review_counts.MatchFrame.activity's answer (leaky_rules reads it)."""
        return self.rules, self.span


def engine_evidence(
    ws: Workspace,
    raw: Connection,
    relation: str,
    columns: dict[str, tuple[str, str]],
    prims: Primitives,
    dialect: str,
    log: list[str] | None,
) -> EngineEvidence | None:
    """The evidence's counts from the source (every row already passed the detector), or
    None: the run reads the contacts out for the evidence."""
    if dialect not in ("duckdb", "postgres", "spark"):
        return None
    p = plan(ws, relation, columns, dialect)
    if p is None:
        return None
    con = Logged(raw, log)  # Spark's connection logs its own statements (log is None)
    derive: str | None = p.derive
    if dialect == "spark":  # the local time as the ledger's scans take it
        from chargeback.engine.pushdown_spark_review import spark_derive

        derive = spark_derive(con, p)
    if derive is None or not derive.startswith("SELECT "):
        return None
    local = p.dialect.ident("local")
    derive = f"SELECT {local} AS {local}, {derive.removeprefix('SELECT ')}"
    schema = pl.Schema({**p.schema, "local": pl.Datetime("us")})
    # duckdb and postgres match as bit words (pushdown_check_words), reading the derive
    # once per column's distinct values: written out once (about 1 s of 3M contacts).
    # Else the derive is read once, into the flags, as a view; Spark's table is a view.
    words = usable(ws, schema, dialect)
    kind = "VIEW" if dialect in ("duckdb", "postgres") and not words else "TABLE"
    made: list[str] = []
    try:
        con.execute(f"CREATE TEMP {kind} {TABLE} AS {derive}")
        if words:
            names = (TABLE, FLAGS)
            rules, span = word_flags(con, ws, schema, prims, names, made, every=True)
        else:
            con.execute(f"CREATE TEMP TABLE {FLAGS} AS {_flags(ws, schema, prims, TABLE)}")
            rules, span = _activity(ws, con, prims.dialect, FLAGS)
        groups = _groups(ws, con, prims.dialect, words)
        picked = _picked(ws, con, prims.dialect, p.dialect, words)
        daily = _daily(ws, con, prims.dialect, words)
    except NotImplementedError:  # a match this engine cannot compile: read out
        return None
    finally:
        for name in (FLAGS, *made):
            con.execute(f"DROP TABLE IF EXISTS {name}")
        con.execute(f"DROP {kind} IF EXISTS {TABLE}")
    return EngineEvidence(groups, picked, daily, span.first, span.last, rules, span)


def _groups(ws: Workspace, con: Connection, dialect: str, words: bool) -> list[tuple[Any, ...]]:
    """(period, channel, reason, *windowed masks[, control cell], n, hs): evidence's
    splits, every month (polars_engine.decode_group reads the masks and the cell). As
    words, a rule's bit is where mask_columns puts it: rule i, word i // 62, bit i % 62."""
    masks: list[Node]
    if words:
        masks = [col(f"cb_in{k}") for k in range(-(-len(ws.rules) // MASK_BITS))]
    else:
        masks = mask_columns(ws)
    keys: list[Node] = [col("period"), col("channel"), col("reason"), *masks]
    indexes = control_indexes(ws)
    if indexes:  # as sql_aggregate's control cell
        keys.append(bit_sum([_rule(i, words) for i in indexes]))
    hs = exp.Sum(this=exp.cast(col("hs_us"), "DECIMAL(38, 0)"))
    query = exp.select(
        *keys,
        exp.cast(exp.Count(this=exp.Star()), "BIGINT").as_("n"),
        exp.Coalesce(this=hs, expressions=[exp.Literal.number(0)]).as_("hs"),
    ).from_(exp.to_table(FLAGS))
    query = query.group_by(*[exp.Literal.number(k + 1) for k in range(len(keys))])
    rows = con.execute(query.sql(dialect))
    return [(*r[:3], *(int(v) for v in r[3:-2]), int(r[-2]), int(r[-1] or 0)) for r in rows]


def _rule(i: int, words: bool) -> Node:
    """Rule i matches (window ignored): its column, or its bit of the raw word."""
    if not words:
        return col(f"r{i}")
    w, bit = word_of(i)
    return _holds(col(f"cb_w{w}"), bit)


def _holds(word: Node, bits: int) -> Node:
    """Some of `bits` is set in `word`."""
    anded = exp.BitwiseAnd(this=word, expression=exp.cast(exp.Literal.number(bits), "BIGINT"))
    return exp.NEQ(this=exp.paren(anded), expression=exp.Literal.number(0))


def _mine(ws: Workspace, decision_id: str, windowed: bool, words: bool = False) -> Node | None:
    """A contact one of the decision's rules matches (inside its window or not); as words,
    one test per word of the decision's rules' bits."""
    mine = [i for i, rule in enumerate(ws.rules) if rule.decision == decision_id]
    if not words:
        own = [_windowed(ws, i) if windowed else col(f"r{i}") for i in mine]
        return reduce(lambda a, b: exp.or_(a, b), own) if own else None
    name = "cb_in" if windowed else "cb_w"
    per_word = word_masks(mine, -(-len(ws.rules) // MASK_BITS))
    tests = [_holds(col(f"{name}{k}"), b) for k, b in enumerate(per_word) if b]
    return reduce(lambda a, b: exp.or_(a, b), tests) if tests else None


def _picked(
    ws: Workspace, con: Connection, dialect: str, d: Dialect, words: bool = False
) -> dict[tuple[str, str], tuple[int, pl.DataFrame]]:
    """Per (month, decision): the contacts its rules matched and the EXAMPLES picked among
    them in (local, contact_id) order, at round(i * (n - 1) / 3): the row number r such
    that 3r - 1 <= i * (n - 1) <= 3r + 1 (a third never rounds to a half). One statement
    for every decision (a query per decision grew with decisions x contacts): each row
    unnests the indexes of the decisions it matches (_pairs), one window ranks the pairs,
    and the picked ids (unique: every row passed the detector) join back for their rows. Ids
    compare by their bytes, as polars sorts them: the derive's text is already so
    (Dialect.text), and PostgreSQL is told again. Spark gives the local time as
    microseconds: its timestamps come back through the Python process's zone."""
    own = [(dec.id, _mine(ws, dec.id, windowed=True, words=words)) for dec in ws.decisions]
    mine = [(decision_id, m) for decision_id, m in own if m is not None]
    if not mine:
        return {}
    period, cid, local = d.ident("period"), d.ident("contact_id"), d.ident("local")
    order = f'{local}, {cid} COLLATE "C"' if dialect == "postgres" else f"{local}, {cid}"
    shown = [d.ident(name) for name in EXAMPLE_SCHEMA]
    got = [f"unix_micros(f.{n})" if n == local and dialect == "spark" else f"f.{n}" for n in shown]
    steps = EXAMPLES - 1
    picks = " OR ".join(
        f"({i} * (cb_n - 1) BETWEEN {steps} * cb_r - 1 AND {steps} * cb_r + 1)"
        for i in range(EXAMPLES)
    )
    pairs = _pairs([m.sql(dialect) for _, m in mine], [period, local, cid], dialect)
    by = f"PARTITION BY cb_k, {period}"
    ranked = (
        f"SELECT cb_k, {period}, {cid}, ROW_NUMBER() OVER ({by} ORDER BY {order}) - 1 AS cb_r, "
        f"COUNT(*) OVER ({by}) AS cb_n FROM ({pairs}) AS cb_pairs"
    )
    sql = (  # the picked ids' own rows, joined back: the sort carries no text
        f"SELECT p.cb_k, p.{period}, p.cb_n, {', '.join(got)} FROM (SELECT * FROM ({ranked}) "
        f"AS cb_ranked WHERE {picks}) AS p JOIN {FLAGS} AS f ON f.{cid} = p.{cid} "
        f"ORDER BY p.cb_k, p.{period}, p.cb_r"
    )
    rows: dict[tuple[str, str], list[tuple[Any, ...]]] = {}
    counts: dict[tuple[str, str], int] = {}
    for k, month, n, *values in con.execute(sql):
        if isinstance(values[1], int):  # Spark's microseconds
            values[1] = EPOCH + timedelta(microseconds=values[1])
        key = (month, mine[int(k)][0])
        rows.setdefault(key, []).append(tuple(values))
        counts[key] = int(n)
    return {
        key: (counts[key], pl.DataFrame(found, schema=EXAMPLE_SCHEMA, orient="row"))
        for key, found in rows.items()
    }


def _pairs(conditions: list[str], names: list[str], dialect: str) -> str:
    """(cb_k, *names) for every row and every k whose condition it meets, from one scan:
    each row's list of the decision indexes it matches (NULL where not, dropped), unnested."""
    cases = ", ".join(f"CASE WHEN {c} THEN {k} END" for k, c in enumerate(conditions))
    cols = ", ".join(names)
    if dialect == "postgres":
        found = f"array_remove(ARRAY[{cases}]::INTEGER[], NULL)"
        return f"SELECT cb_k, {cols} FROM {FLAGS} CROSS JOIN LATERAL unnest({found}) AS cb_u(cb_k)"
    if dialect == "spark":
        found = f"filter(array({cases}), x -> x IS NOT NULL)"
        return f"SELECT explode({found}) AS cb_k, {cols} FROM {FLAGS}"
    found = f"list_filter([{cases}], lambda x: x IS NOT NULL)"
    return f"SELECT unnest({found}) AS cb_k, {cols} FROM {FLAGS}"


def _daily(
    ws: Workspace, con: Connection, dialect: str, words: bool = False
) -> dict[str, dict[date, int]]:
    """Per decision with rules: contacts per local day its rules match, window ignored."""
    named = [(d.id, _mine(ws, d.id, windowed=False, words=words)) for d in ws.decisions]
    own = [(decision_id, mine) for decision_id, mine in named if mine is not None]
    if not own:
        return {}
    sums = [
        exp.cast(exp.Sum(this=flag(mine, 1)), "BIGINT").as_(f"cb_d{k}")
        for k, (_, mine) in enumerate(own)
    ]
    query = exp.select(col("date"), *sums).from_(exp.to_table(FLAGS)).group_by(col("date"))
    rows = sorted((_date(r[0]), r[1:]) for r in con.execute(query.sql(dialect)))
    out: dict[str, dict[date, int]] = {}
    for k, (decision_id, _) in enumerate(own):
        out[decision_id] = {day: int(n[k]) for day, n in rows if day is not None and n[k]}
    return out
