"""The in-engine ledger's small tables (engine/pushdown_groups.py): values and days.

Why: a column's checks and a rule's tests on it hold on a value or not, whatever
the row, so each distinct value is checked and matched once, in a table the scan
joins (`cb_pd_v_<n>`: the value's check bits and its blocks' words); likewise the
windows and lookbacks per day (`cb_pd_days`). The tables are built from the same
source as the scan, and a row whose value or day is not found is flagged.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta

from chargeback.engine.pushdown_bits import (
    Bits,
    cond_words,
    day_segments,
    names_set,
    table_free,
    table_words,
    word_of,
)
from chargeback.engine.pushdown_sql import Column, Dialect, base_query
from chargeback.engine.sql_aggregate import Connection
from chargeback.engine.sql_compile import Primitives, col
from chargeback.workspace.model import Workspace

TABLE, DAYS, CROSS = "cb_pd_v_", "cb_pd_days", "cb_pd_x"
QUOTED = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"")  # SQL's literals and quoted names
CROSS_ROWS = 4096  # the most rows a crossed table may have (see cross_tables)
SPLIT_TEXTS = 2048  # from here fold_regexes searches the texts in two halves
FIRST_DAY, LAST_DAY = date(1900, 1, 1), date(2199, 12, 31)


@dataclass(frozen=True)
class Source:
    """What pushdown.plan built for one source: its columns' SQL and where they run."""

    ws: Workspace
    relation: str
    built: dict[str, Column]
    families: dict[str, str]  # canonical column -> its type family
    tables: list[str]  # columns checked and matched once per distinct value
    d: Dialect
    zone: bool
    revenue: bool
    rows: tuple[str, ...] = ()  # columns checked and matched per row in the scan (route)
    settled: bool = False  # every stamp present and within 1970-2037 (pushdown_rows.settle)
    crossed: tuple[str, ...] = ()  # value tables the scan finds in CROSS (cross_tables)


@dataclass(frozen=True)
class Span:
    rows: int
    first: int  # epoch seconds of the earliest and latest timestamps
    last: int
    stamped: int | None = None  # rows with a timestamp (DuckDB's first scan counts them)


def value_tables(con: Connection, s: Source, bits: Bits, prims: Primitives) -> dict[str, int]:
    """One table per column of few values: its checks as bits and its words; what held."""
    d = s.d
    held: dict[str, int] = {}
    packs: dict[str, list[tuple[str, list[str]]]] = {}
    for name in s.tables:
        column = s.built[name]
        v, m = (f"v_{name}", f"m_{name}")
        # distinct values of the first step's expression: its byte-exact text (a source
        # column's collation would fold 'PHONE' and 'phone' into one)
        distinct = f"(SELECT DISTINCT {column.first[v]} AS {d.ident(v)} FROM {s.relation}) AS dv"
        on_values = Column({v: d.ident(v)}, column.second, column.third, column.checks)
        inner = base_query(d, distinct, [on_values])
        packed = cond_words([f"{name}: {w}" for w in column.checks], list(column.checks.values()))
        packs[name] = packed
        chk = [f"{sql} AS {d.ident(f'cb_chk{k}')}" for k, (sql, _) in enumerate(packed)]
        key = d.ident(v) if by_value(s, name) else key_of(d, d.ident(v))
        level2 = (
            f"SELECT {key} AS {d.ident('cb_k')}, {d.ident(m)} AS {d.ident(name)}"
            f"{''.join(', ' + c for c in chk)} FROM ({inner}) AS l1"
        )
        words = table_words(bits, name, prims.dialect)
        if name == "text" and "text" in bits.tests:
            lower = prims.lower(col("text")).as_("text_lower", quoted=True).sql(prims.dialect)
            level2 = f"SELECT *, {lower} FROM ({level2}) AS l2"
            phrases, words = phrases_once(d, prims, bits, words)
            if phrases:
                level2 = f"SELECT *, {', '.join(phrases)} FROM ({level2}) AS l2p"
        extra = [f"{d.ident(name)} AS {d.ident('cb_m')}"]
        extra += [f"TRUE AS {d.ident('cb_hit')}"] if by_value(s, name) else []
        extra += [f"{e} AS {d.ident(f'cb_w{k}')}" for k, e in words.items()]
        if name == "reason":
            fam = prims.first_part(col("reason"), ".").sql(prims.dialect)
            extra.append(f"{fam} AS {d.ident('cb_fam')}")
        if name == "channel" and d.name == "duckdb":  # one code per text (coded_channel):
            # per mapped text, not per raw value (`values:` may map two values to one)
            rank = f"dense_rank() OVER (ORDER BY {d.ident(name)})"
            extra.append(f"CAST({rank} AS INTEGER) AS {d.ident('cb_ci')}")
        chk_names = ", ".join(d.ident(f"cb_chk{k}") for k in range(len(packed)))
        select = ", ".join([d.ident("cb_k"), *extra] + ([chk_names] if chk_names else []))
        con.execute(
            f"CREATE TEMP TABLE {table_name(s, name)} AS SELECT {select} FROM ({level2}) AS l3"
        )
    ors = [
        f"(SELECT bit_or({d.ident(f'cb_chk{k}')}) FROM {table_name(s, name)})"
        for name in s.tables
        for k in range(len(packs[name]))
    ]
    key = d.ident("cb_k")
    hashed = [name for name in s.tables if not by_value(s, name)]
    ors += [  # a hashed key must name one value (key_of)
        f"(SELECT COUNT({key}) - COUNT(DISTINCT {key}) FROM {table_name(s, name)})"
        for name in hashed
    ]
    if ors:
        (*values,) = con.execute(f"SELECT {', '.join(ors)}")[0]
        for name, same in zip(hashed, values[len(values) - len(hashed) :], strict=True):
            if same:
                held[f"{name}: two values hash alike"] = int(same)
        flat = [(name, k) for name in s.tables for k in range(len(packs[name]))]
        for (name, k), value in zip(flat, values[: len(flat)], strict=True):
            for n in names_set([packs[name][k]], [int(value or 0)]):
                held[n] = 1
    return held


def phrases_once(
    d: Dialect, prims: Primitives, bits: Bits, words: dict[int, str]
) -> tuple[list[str], dict[int, str]]:
    """Each text phrase searched once per distinct text, as a column the words read.

    Why: rules share phrases (at 300 rules, 340 searches of 41 phrases), and the
    engine ran each search as often as it was written (0.02 s of 0.11 s at 3M
    contacts). A phrase's search is text_any_of's own SQL for it, found whole in the
    words and outside any quoted literal or name.
    """
    searches = {
        n: prims.contains(col("text_lower"), n).sql(prims.dialect) for n in sorted(bits.needles)
    }
    used = {n: s for n, s in searches.items() if any(s in w for w in words.values())}
    if not used:
        return [], words
    names = {used[n]: d.ident(f"cb_p{k}") for k, n in enumerate(used)}
    found = re.compile("|".join(re.escape(s) for s in sorted(names, key=len, reverse=True)))

    def rewrite(sql: str) -> str:
        """Each whole search replaced by its column; text that only spells one inside a
        quoted literal or name (another test's values) is left as it is."""
        spans = [m.span() for m in QUOTED.finditer(sql)]
        starts = [a for a, _ in spans]

        def one(m: re.Match[str]) -> str:
            i = bisect_right(starts, m.start()) - 1
            inside = i >= 0 and spans[i][0] <= m.start() < spans[i][1]
            return m.group(0) if inside else names[m.group(0)]

        return found.sub(one, sql)

    return [f"{s} AS {names[s]}" for s in used.values()], {k: rewrite(w) for k, w in words.items()}


def key_of(d: Dialect, expr: str) -> str:
    """A value table's join key: on DuckDB the value's 64-bit hash (hashing a long text or a
    list once beats comparing it), checked to be unique in the table; else the value.
    DuckDB hashes NULL, [] and [NULL] alike: whether it is NULL is hashed with it. [] and
    [NULL] still share a key, but a NULL tag always fails the tags check, so that clash is
    never what sends a run out (tests/test_pushdown_lists.py); no length is hashed per row."""
    return expr if d.pg else d.hash(f"{expr}, {expr} IS NULL")


def by_value(s: Source, name: str) -> bool:
    """DuckDB joins a text column's table on the text itself (NULL-safe): its hash join
    hashes it once, where a 64-bit key of our own is hashed twice (~25% less CPU in the
    joins at 3M contacts); `cb_hit` then says a row found its value. Lists keep key_of."""
    return s.d.name == "duckdb" and s.families.get(name) == "text"


def join_on(s: Source, name: str, value: str, table: str, key: str = "cb_k") -> str:
    """The scan's join condition from the row's value to the column's table (`table`'s alias;
    `key`, the key's column there)."""
    if by_value(s, name):
        return f"{value} IS NOT DISTINCT FROM {table}.{s.d.ident(key)}"
    return f"{key_of(s.d, value)} = {table}.{s.d.ident(key)}"


def not_found(s: Source, name: str, value: str, table: str) -> str:
    """SQL true where the row's value was not found in the column's table (a flag)."""
    q = s.d.ident
    if by_value(s, name):
        return f"({table}.{q('cb_hit')} IS NULL)"
    if s.d.pg:  # a NULL key joins nothing there
        return f"({value} IS NOT NULL AND {table}.{q('cb_k')} IS NULL)"
    return f"({table}.{q('cb_k')} IS NULL)"  # DuckDB's and Spark's tables hash NULL too


def fold_regexes(con: Connection, s: Source, bits: Bits, prims: Primitives, span: Span) -> None:
    """Run the text_regex searches on the distinct texts when they are few (at most one
    search per contact in all): their blocks' bits join the text table's words and no
    row searches. Many distinct texts keep the per-row search, run only where the rest
    of a block holds (pushdown_rows.rows_select)."""
    if not bits.regex or "text" not in s.tables:
        return
    q, table = s.d.ident, table_name(s, "text")
    ((texts,),) = con.execute(f"SELECT COUNT(*) FROM {table}")
    if int(texts) * len(bits.regex) > span.rows:
        return
    before = {k: table_free(bits, "text", k) for k in range(bits.words)}
    tested = {word_of(b)[0] for b in bits.tests.get("text", {})}
    for blocks in bits.regex.values():
        for b in blocks:
            bits.tests.setdefault("text", {}).setdefault(b, [])
    words = []
    for k in range(bits.words):
        own = q(f"cb_w{k}")
        parts = [own if k in tested else f"CAST({before[k]} AS BIGINT)"]
        for pattern, blocks in bits.regex.items():
            users = bits.users(blocks)[k]
            if users:
                found = prims.regex_search(col("cb_m"), pattern).sql(prims.dialect)
                parts.append(
                    f"CASE WHEN COALESCE({found}, FALSE) THEN CAST(-1 AS BIGINT) "
                    f"ELSE CAST({~users} AS BIGINT) END"
                )
        words.append(f"{' & '.join(f'({p})' for p in parts)} AS {own}")
    hit = f"{q('cb_hit')}, " if by_value(s, "text") else ""
    select = f"SELECT {q('cb_k')}, {q('cb_m')}, {hit}{', '.join(words)} FROM {table}"
    if s.d.name == "duckdb" and int(texts) >= SPLIT_TEXTS:
        # the table is one row group, which DuckDB scans on one thread: in halves, on two
        # (at 300 rules, 20,000 texts: 0.096 -> 0.070 s)
        select = " UNION ALL ".join(
            f"{select} WHERE hash({q('cb_k')}) % 2 = {half}" for half in (0, 1)
        )
    con.execute(f"CREATE TEMP TABLE {table}_rx AS {select}")
    con.execute(f"DROP TABLE {table}")
    con.execute(f"ALTER TABLE {table}_rx RENAME TO {table}")
    bits.regex = {}


def joined_tables(s: Source, bits: Bits, controls: bool) -> list[str]:
    """The value tables the grouped scan joins: those of a matched column, channel's (its
    text is a group's key), reason's with control series (its family is a cell's)."""
    joined = [n for n in s.tables if n in bits.tests or n == "channel"]
    if controls and "reason" in s.tables and "reason" not in joined:
        joined.append("reason")
    return joined


def cross_tables(con: Connection, s: Source, bits: Bits, controls: bool) -> Source:
    """On DuckDB, the joined tables of fewest values crossed into one table (CROSS), at
    most CROSS_ROWS rows: every combination of their values, its words ANDed once. The
    scan then probes one hash table and gathers one set of words, not one per column:
    at 3M contacts that took the scan's joins from 0.61 to 0.46 s at 300 rules (five
    words per table) and from 0.46 to 0.37 s at 30. A larger crossed table stops
    paying: its hash table leaves the cache (reason's 121 values crossed in: 0.57 s)."""
    joined = [n for n in joined_tables(s, bits, controls) if by_value(s, n)]
    if s.d.name != "duckdb" or len(joined) < 2:
        return s
    counts = ", ".join(f"(SELECT COUNT(*) FROM {table_name(s, n)})" for n in joined)
    ((*sizes,),) = con.execute(f"SELECT {counts}")
    crossed, rows = [], 1
    for size, name in sorted(zip((int(n) for n in sizes), joined, strict=True)):
        if rows * max(size, 1) > CROSS_ROWS:
            break
        crossed.append(name)
        rows *= max(size, 1)
    if len(crossed) < 2:
        return s
    crossed.sort(key=s.tables.index)
    q = s.d.ident
    alias = {n: f"t{i}" for i, n in enumerate(crossed)}
    cols = [f"{alias[n]}.{q('cb_k')} AS {q(f'cb_k_{n}')}" for n in crossed]
    cols.append(f"TRUE AS {q('cb_hit')}")
    if "channel" in alias:
        cols.append(f"{alias['channel']}.{q('cb_m')} AS {q('cb_m')}")
        cols.append(f"{alias['channel']}.{q('cb_ci')} AS {q('cb_ci')}")
    if "reason" in alias:
        cols.append(f"{alias['reason']}.{q('cb_fam')} AS {q('cb_fam')}")
    for k in range(bits.words):
        tested = [n for n in crossed if any(word_of(b)[0] == k for b in bits.tests.get(n, {}))]
        if tested:
            word = " & ".join(f"{alias[n]}.{q(f'cb_w{k}')}" for n in tested)
            cols.append(f"{word} AS {q(f'cb_w{k}')}")
    tables = ", ".join(f"{table_name(s, n)} AS {alias[n]}" for n in crossed)
    con.execute(f"CREATE TEMP TABLE {CROSS} AS SELECT {', '.join(cols)} FROM {tables}")
    return replace(s, crossed=tuple(crossed))


def coded_channel(s: Source) -> str | None:
    """On DuckDB, where the channel is looked up in a table: that table. The grouped scan
    then groups by integers standing for the month and channel (cb_pi from the days,
    cb_ci from the channel's table), 0.025 s less at 3M contacts than by their texts,
    and the texts come back by joining the codes' tables to the groups (few rows)."""
    if s.d.name != "duckdb" or "channel" in s.rows or "channel" not in s.tables:
        return None
    return CROSS if "channel" in s.crossed else table_name(s, "channel")


def table_name(s: Source, name: str) -> str:
    return f"{TABLE}{s.tables.index(name)}"


def days_table(con: Connection, s: Source, span: Span, words: int) -> None:
    """Every day the contacts can fall on (a day either side of the UTC span), with its
    month, and per word the rules whose window and lookback hold (day_segments: runs of
    days alike, joined to the days)."""
    d = s.d
    lo = max(FIRST_DAY, _day(span.first) - timedelta(days=1))
    hi = min(LAST_DAY, _day(span.last) + timedelta(days=1))
    lo, hi = (lo, hi) if lo <= hi else (hi, lo)
    series = d.day_series(lo.isoformat(), hi.isoformat())
    wins, lbs, runs = day_segments(s.ws, words, lo, hi)
    names = ["cb_first", "cb_last"] + [f"cb_win{k}" for k in wins] + [f"cb_lb{k}" for k in lbs]
    values = [
        [first.isoformat(), last.isoformat(), *(str(w[k]) for k in wins), *(str(b[k]) for k in lbs)]
        for first, last, w, b in runs
    ]
    types = ["DATE", "DATE"] + ["BIGINT"] * (len(names) - 2)
    if d.name == "duckdb":  # one text split in the engine: a 50 KB VALUES list at 300 rules
        blob = ";".join(",".join(row) for row in values)  # (a run a day) took 0.025 s to plan
        typed = [
            f"CAST(p[{i + 1}] AS {t}) AS {n}"
            for i, (n, t) in enumerate(zip(names, types, strict=True))
        ]
        split = f"SELECT string_split(unnest(string_split('{blob}', ';')), ',') AS p"
        spans = f"(SELECT {', '.join(typed)} FROM ({split}) AS v) AS r"
    else:  # plain literals (few characters to parse), typed once
        rows = ", ".join(
            "(" + ", ".join([f"'{row[0]}'", f"'{row[1]}'", *row[2:]]) + ")" for row in values
        )
        typed = [f"CAST({n} AS {t}) AS {n}" for n, t in zip(names, types, strict=True)]
        spans = f"(SELECT {', '.join(typed)} FROM (VALUES {rows}) AS v({', '.join(names)})) AS r"
    date = d.ident("date")
    cols = [f"t.{date}", f"{d.period('t.' + date)} AS {d.ident('period')}"]
    if d.name == "duckdb":  # the month as an integer (coded_channel)
        cols.append(f"CAST(year(t.{date}) * 12 + month(t.{date}) AS INTEGER) AS {d.ident('cb_pi')}")
    cols += [f"r.{d.ident(n)}" for n in names[2:]]
    days = f"SELECT CAST(d AS DATE) AS {date} FROM {series}"
    con.execute(
        f"CREATE TEMP TABLE {DAYS} AS SELECT {', '.join(cols)} FROM ({days}) AS t "
        f"JOIN {spans} ON t.{date} >= r.cb_first AND t.{date} <= r.cb_last"
    )


def _day(epoch: int) -> date:
    """The UTC day of an epoch second, held within the years a contact may have (a stamp
    beyond them is flagged by the scan; here it must not overflow)."""
    lowest = int(datetime(FIRST_DAY.year, 1, 1, tzinfo=UTC).timestamp())
    highest = int(datetime(LAST_DAY.year, 12, 31, tzinfo=UTC).timestamp())
    epoch = min(max(epoch, lowest), highest)
    return (datetime(1970, 1, 1, tzinfo=UTC) + timedelta(seconds=epoch)).date()
