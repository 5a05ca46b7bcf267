"""`check`'s rule activity and unmatched flag from bit words, as the ledger's scans match.

pushdown_check's first form compiled one condition per rule onto every row and kept
each answer as a column: at 300 rules and 3M contacts that table took 13 of the 28 s
`check --engine duckdb` took (polars' check: 7 s). Here, as in the ledger
(pushdown_bits), each column's distinct values are matched once, every rule a bit of
a BIGINT word; a row's words are the AND of its values' words, and each distinct day
carries the rules whose window, and whose 56 days before their decision, hold on it.
The activity is then one grouped count of the words, its bits summed here.

The same conditions (sql_compile's, through bits_for), so a bit means what a rule's
column meant. DuckDB and PostgreSQL; Spark keeps the per-rule form.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import numpy as np
import polars as pl

from chargeback.engine.dates import window_bounds
from chargeback.engine.polars_engine import MASK_BITS
from chargeback.engine.pushdown_bits import Bits, bits_for, table_words, word_of
from chargeback.engine.pushdown_sql import Dialect
from chargeback.engine.review_counts import DataSpan, RuleActivity, before_range
from chargeback.engine.sql_compile import Primitives, col
from chargeback.workspace.model import Workspace

KEPT = ("date", "period", "channel", "reason", "text", "hs_us")  # what the grouped queries read


def usable(ws: Workspace, schema: pl.Schema, dialect: str) -> bool:
    """Words on duckdb and postgres. The derive gives every matched column as text; the
    type test guards bits_for's conditions, which compare values as text."""
    if dialect not in ("duckdb", "postgres") or not ws.rules:
        return False
    tested = {c for r in ws.rules for c in r.match.columns()} - {"tags", "text"}
    return all(schema.get(c) == pl.String for c in tested if c in schema)


def word_flags(
    con: Any,
    ws: Workspace,
    schema: pl.Schema,
    prims: Primitives,
    names: tuple[str, str],
    made: list[str],
    every: bool = False,
) -> tuple[dict[str, RuleActivity], DataSpan]:
    """`flags` from `table` (`names`): the KEPT columns, cb_u (no rule matches inside its
    window) and the words; then the activity from one grouped count. Every temporary
    table it makes besides `flags` is listed in `made` before it is made, for the caller
    to drop. `every`: keep all of `table`'s columns and the words windows ignored
    (cb_w<k>), as the evidence reads them (pushdown_evidence)."""
    table, flags = names
    d = Dialect(prims.dialect)
    q = d.ident
    bits = bits_for(ws, prims, set(schema), controls=False)  # block i is rule i
    if bits.regex:  # a text table to fold the regexes into, whether or not text is tested
        bits.tests.setdefault("text", {})
    joins: list[str] = []
    word_of_tables: dict[int, list[str]] = {}
    for k, column in enumerate(sorted(bits.tests)):
        name = f"{flags}_v{k}"
        made.append(name)
        words = _value_table(con, d, bits, prims, table, column, name)
        # `=`, which PostgreSQL hash-joins (IS NOT DISTINCT FROM it loops over, N x N on
        # free text); a NULL value finds nothing and takes the table's own NULL row's word
        joins.append(f"LEFT JOIN {name} AS t{k} ON r.{q(column)} = t{k}.cb_k")
        for w in words:
            null = f"(SELECT cb_w{w} FROM {name} WHERE cb_k IS NULL)"
            word_of_tables.setdefault(w, []).append(f"COALESCE(t{k}.cb_w{w}, {null})")
    days = f"{flags}_d"
    made.append(days)
    con.execute(f"CREATE TEMP TABLE {days} AS {_days(con, ws, bits, d, table)}")
    joins.append(f"LEFT JOIN {days} AS dd ON r.{q('date')} = dd.{q('date')}")
    cols = ["r.*"] if every else [f"r.{q(c)}" for c in KEPT if c in schema]
    ins, befs = [], []
    for w in range(bits.words):
        word = " & ".join([f"CAST({bits.possible[w]} AS BIGINT)", *word_of_tables.get(w, [])])
        ins.append(f"({word}) & COALESCE(dd.cb_win{w}, 0)")  # no day: no window holds
        befs.append(f"({word}) & COALESCE(dd.cb_bef{w}, 0)")
        if every:
            cols.append(f"{word} AS cb_w{w}")
    cols += [f"{e} AS cb_in{w}" for w, e in enumerate(ins)]
    cols += [f"{e} AS cb_bef{w}" for w, e in enumerate(befs)]
    none = " AND ".join(f"({e}) = 0" for e in ins) or "TRUE"
    cols.append(f"{none} AS cb_u")
    con.execute(
        f"CREATE TEMP TABLE {flags} AS SELECT {', '.join(cols)} FROM {table} AS r {' '.join(joins)}"
    )
    return _activity(con, ws, bits, flags)


def _value_table(
    con: Any, d: Dialect, bits: Bits, prims: Primitives, table: str, column: str, name: str
) -> list[int]:
    """The column's distinct values (NULL too) with their words: which words it made."""
    q = d.ident
    words = table_words(bits, column, prims.dialect)
    source = f"SELECT DISTINCT {q(column)} FROM {table}"
    if column == "text":
        lower = prims.lower(col("text")).as_("text_lower", quoted=True).sql(prims.dialect)
        source = f"SELECT *, {lower} FROM ({source}) AS dv"
        for pattern, users in bits.regex.items():
            mask = bits.users(users)
            search = prims.regex_search(col("text"), pattern).sql(prims.dialect)
            for w, u in enumerate(mask):
                if not u:
                    continue
                free = f"CAST({bits.possible[w] & ~u} AS BIGINT)"  # what the regex leaves alone
                held = f"CASE WHEN COALESCE({search}, FALSE) THEN CAST({u} AS BIGINT) ELSE 0 END"
                cut = f"({free} | {held})"
                words[w] = f"({words[w]}) & {cut}" if w in words else cut
    items = [f"{q(column)} AS cb_k", *(f"{e} AS cb_w{w}" for w, e in sorted(words.items()))]
    con.execute(f"CREATE TEMP TABLE {name} AS SELECT {', '.join(items)} FROM ({source}) AS s")
    return sorted(words)


def _days(con: Any, ws: Workspace, bits: Bits, d: Dialect, table: str) -> str:
    """Per distinct day: the rules whose window holds (cb_win<k>) and whose decision's 56
    days before hold (cb_bef<k>), as review_counts' activity counts them; worked out here
    for the few hundred days the contacts fall on, and given to the engine as literals."""
    q = d.ident
    found = (as_date(r[0]) for r in con.execute(f"SELECT DISTINCT {q('date')} FROM {table}"))
    known = sorted(x for x in found if x is not None)
    win = {x: [0] * bits.words for x in known}
    bef = {x: [0] * bits.words for x in known}
    for i, rule in enumerate(ws.rules):
        w, bit = word_of(i)
        decision = ws.decision(rule.decision)
        first, last = window_bounds(rule, decision)
        before_first, before_last = before_range(decision.effective)
        for x in known:
            if first <= x and (last is None or x <= last):
                win[x][w] |= bit
            if before_first <= x <= before_last:
                bef[x][w] |= bit
    names = [q("date")]
    names += [f"cb_win{w}" for w in range(bits.words)] + [f"cb_bef{w}" for w in range(bits.words)]
    rows = [
        "(" + ", ".join([f"CAST('{x.isoformat()}' AS DATE)", *map(str, win[x] + bef[x])]) + ")"
        for x in known
    ]
    if not rows:  # no contacts: an empty table of the same columns
        empty = [f"CAST(NULL AS DATE) AS {names[0]}"]
        empty += [f"CAST(NULL AS BIGINT) AS {n}" for n in names[1:]]
        return f"SELECT {', '.join(empty)} WHERE FALSE"
    typed = [f"CAST({n} AS BIGINT) AS {n}" for n in names[1:]]
    values = f"(VALUES {', '.join(rows)}) AS v({', '.join(names)})"
    return f"SELECT {names[0]}, {', '.join(typed)} FROM {values}"


def _activity(
    con: Any, ws: Workspace, bits: Bits, flags: str
) -> tuple[dict[str, RuleActivity], DataSpan]:
    """Each rule's matches in its window and in the 56 days before, from the words'
    counts: every word's bits summed over the groups at once (numpy), not row by row."""
    ((first, last),) = con.execute(f'SELECT MIN("date"), MAX("date") FROM {flags}')
    keys = [f"cb_in{w}" for w in range(bits.words)] + [f"cb_bef{w}" for w in range(bits.words)]
    inside = np.zeros(len(bits.names), dtype=np.int64)
    before = np.zeros(len(bits.names), dtype=np.int64)
    if keys:
        listed = ", ".join(keys)
        schema = {**{k: pl.Int64 for k in keys}, "n": pl.Int64}
        grouped = con.typed(f"SELECT {listed}, COUNT(*) FROM {flags} GROUP BY {listed}", schema)
        n = grouped.get_column("n").to_numpy()
        for w in range(bits.words):
            for out, key in ((inside, f"cb_in{w}"), (before, f"cb_bef{w}")):
                words = grouped.get_column(key).fill_null(0).to_numpy()
                for b in range(min(len(bits.names) - w * MASK_BITS, MASK_BITS)):
                    # a bit at a time: memory follows the groups, not groups x 62 bits
                    out[w * MASK_BITS + b] = n[(words >> b) & 1 == 1].sum()
    activity = {
        rule.id: RuleActivity(int(inside[i]), int(before[i])) for i, rule in enumerate(ws.rules)
    }
    return activity, DataSpan(as_date(first), as_date(last))


def as_date(value: Any) -> date | None:
    """A day as the driver gives it (a date, or its text on some drivers)."""
    return value if value is None or type(value) is date else date.fromisoformat(str(value)[:10])
