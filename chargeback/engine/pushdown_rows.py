"""The grouped scan's per-contact SELECT (engine/pushdown_groups.py), and which columns
are checked and matched per row rather than through a value table.

Why: a value table pays off when values repeat (20,000 texts in 3M contacts); when
nearly every contact has its own value (free text, a unique reason), building it
costs a DISTINCT and a join over every row, for nothing. `route` samples the
source and sends such columns down the scan itself: their checks are the value
table's conditions on the row's value, and their rule tests are table_words'
conditions, run only where the rest of the block still holds (a CASE, as
sql_compile.Compiler.match does), so a bit means what the table's bit meant.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from chargeback.data.limits import MAX_YEAR, MIN_YEAR, char_limit
from chargeback.engine.pushdown_bits import (
    Bits,
    cond_words,
    day_words,
    regex_flag,
    table_free,
    word_of,
)
from chargeback.engine.pushdown_sql import (
    CONTROL,
    CONTROL_IN_TEXT,
    SAFE,
    WHITESPACE,
    Column,
    Dialect,
    added,
    base_query,
)
from chargeback.engine.pushdown_tables import (
    CROSS,
    DAYS,
    Source,
    Span,
    coded_channel,
    join_on,
    joined_tables,
    not_found,
    table_name,
)
from chargeback.engine.pushdown_tz import local_from_offsets
from chargeback.engine.sql_aggregate import Connection
from chargeback.engine.sql_compile import Primitives, col

SAMPLE = 100_000  # rows read to judge the columns' cardinality
MANY = 0.75  # distinct values per non-null value above which a column goes per row


def route(con: Connection, s: Source, needed: set[str]) -> Source:
    """The source with its high-cardinality columns taken out of the value tables: those
    the scan needs (`needed`: matched, channel, a reason's family) checked and matched
    there, the others checked in the first scan. Judged on the first SAMPLE rows; a wrong
    guess costs time only."""
    if not s.tables:
        return s
    d = s.d
    inner = ", ".join(f"{s.built[n].first[f'v_{n}']} AS {d.ident(f'v_{n}')}" for n in s.tables)
    parts = [f"COUNT({d.ident(f'v_{n}')}), COUNT(DISTINCT {d.ident(f'v_{n}')})" for n in s.tables]
    (counts,) = con.execute(
        f"SELECT {', '.join(parts)} FROM (SELECT {inner} FROM {s.relation} LIMIT {SAMPLE}) AS cb_s"
    )
    many = {
        n
        for i, n in enumerate(s.tables)
        if int(counts[2 * i] or 0) and int(counts[2 * i + 1] or 0) > MANY * int(counts[2 * i])
    }
    if not many:
        return s
    tables = [n for n in s.tables if n not in many]
    rows = tuple(n for n in s.tables if n in many and n in needed)
    return replace(s, tables=tables, rows=rows)


def one_search(d: Dialect, name: str, column: Column) -> dict[str, str]:
    """On DuckDB, a text column's padding and control-character checks as one regex
    search (each search costs a pass over every row): the same rows, by the same sets;
    and the length counted only where the bytes exceed the limit (bytes >= characters)."""
    checks = dict(column.checks)
    m = d.ident(f"m_{name}")
    if not d.pg and "too long" in checks:
        checks["too long"] = f"({d.octets(m)} > {char_limit(name)} AND {checks['too long']})"
    v = d.ident(f"v_{name}")
    pad, ctrl = "padded or blank", "control character"
    if d.pg or pad not in checks or ctrl not in checks or column.second.get(f"m_{name}") != v:
        return checks
    space = d.char_class([(ord(c), ord(c)) for c in WHITESPACE])
    control = d.char_class(CONTROL_IN_TEXT if name == "text" else CONTROL)
    del checks[pad], checks[ctrl]
    either = d.search(v, f"^{space}|{space}$|{control}")
    checks[f"{pad} or {ctrl}"] = f"({v} = '' OR {either})"
    return checks


@dataclass(frozen=True)
class RowsSql:
    """One row per contact: its day, month, channel, handle time, words and check bits."""

    select: str
    words: list[str]  # per word, the expression of the row's blocks (regexes applied)
    checks: list[str]  # the check-bit columns
    packs: list[tuple[str, list[str]]]  # their SQL and bit names
    coded: str | None = None  # DuckDB: the table of the channel's codes (coded_channel)


def _fast_time(s: Source, offsets: list[tuple[int, int]] | None) -> Column:
    """started_at's Column with `local` as instant + polars' offset (pushdown_tz), on DuckDB:
    integer arithmetic instead of ICU's conversion per row, the same guard and checks."""
    built = s.built["started_at"]
    if offsets is None:
        return built
    d, ts = s.d, s.d.ident("v_ts")
    lo, hi = d.instant(f"{MIN_YEAR - 1}-12-30"), d.instant(f"{MAX_YEAR + 1}-01-02")
    local = d.timestamp_us(local_from_offsets(d.epoch_us(ts), offsets))
    if not s.settled:
        local = f"CASE WHEN {ts} >= {lo} AND {ts} < {hi} THEN {local} END"
    return Column(built.first, {**built.second, "local": local}, built.third, built.checks)


def settle(s: Source, span: Span) -> Source:
    """On DuckDB, the grouped scan without the stamps' row checks when the first scan's
    aggregates answer them, nor their guards (0.03 s of its 0.55 s at 3M contacts):
    every stamp present and within 1970-2037 is none missing, none outside the years
    (a zone moves a local time by less than a day) nor outside the zone rules' years."""
    if s.d.name != "duckdb":
        return s
    if not (span.stamped == span.rows and SAFE[0] <= span.first and span.last < SAFE[1]):
        return s
    t, local = s.built["started_at"], s.d.ident("local")
    third = {**t.third, "date": f"CAST({local} AS DATE)", "period": s.d.period(local)}
    built = {**s.built, "started_at": Column(t.first, t.second, third, {})}
    return replace(s, built=built, settled=True)


def _row_tests(
    s: Source, bits: Bits, prims: Primitives, n: str, i: int, select: str, w: list[str]
) -> tuple[str, list[str]]:
    """Column n's rule tests on the row's value (named n; text's as text_lower), each run
    only where its block still holds: the value table's words (table_words) ANDed in.
    (A layer of their own: DuckDB may copy a column's expression into every use of it
    in the layer above, so text_lower is made below the joins, once.)"""
    q = s.d.ident
    tests = bits.tests[n]
    zero = "CAST(0 AS BIGINT)"
    out, parts = list(w), []
    for k in range(bits.words):
        mine = {b: c for b, c in tests.items() if word_of(b)[0] == k}
        if not mine:
            continue
        flags = [f"CAST({table_free(bits, n, k)} AS BIGINT)"]
        for b, conds in sorted(mine.items()):
            bit = f"CAST({word_of(b)[1]} AS BIGINT)"
            cond = " AND ".join(f"({c})" for c in conds)
            flags.append(
                f"CASE WHEN ({w[k]} & {bit}) <> 0 THEN CASE WHEN {cond} THEN {bit} ELSE {zero} "
                f"END ELSE {zero} END"
            )
        out[k] = q(f"cb_w{k}_{i}")
        parts.append(f"({w[k]}) & ({added(flags)}) AS {out[k]}")
    return f"SELECT *, {', '.join(parts)} FROM ({select}) AS cb_r{i}", out


def rows_select(
    s: Source,
    bits: Bits,
    prims: Primitives,
    controls: bool,
    offsets: list[tuple[int, int]] | None = None,
) -> RowsSql:
    """The per-contact SELECT: values and days looked up, per-row columns tested, words
    ANDed, regexes run."""
    d = s.d
    q = d.ident
    joined = joined_tables(s, bits, controls)
    whole = list(dict.fromkeys([*s.rows, *(["text"] if bits.regex else [])]))
    own = [_fast_time(s, offsets)]
    if "handle_seconds" in s.built:
        own.append(s.built["handle_seconds"])
    own += [s.built[n] for n in whole]
    own += [Column(first={f"v_{n}": s.built[n].first[f"v_{n}"]}) for n in joined if n not in whole]
    checked = [n for n in ("started_at", "handle_seconds") if n in s.built and s.built[n].checks]
    checks = {f"{n}: {what}": c for n in checked for what, c in s.built[n].checks.items()}
    checks |= {
        f"{n}: {what}": c for n in s.rows for what, c in one_search(d, n, s.built[n]).items()
    }
    row_pack = cond_words(list(checks), list(checks.values()))
    clear = [s.built[n].clear for n in checked]
    if d.name == "duckdb" and checked and not s.rows and None not in clear:
        # the checks only on the rows a cheap test does not clear (3M contacts: 0.03 s)
        row_pack = [
            (
                f"CASE WHEN {' AND '.join(map(str, clear))} THEN CAST(0 AS BIGINT) ELSE {sql} END",
                names,
            )
            for sql, names in row_pack
        ]
    hs = f"COALESCE({q('hs_us')}, 0)" if "handle_seconds" in s.built else "CAST(0 AS BIGINT)"
    keep = [q("date"), f"{hs} AS {q('cb_hs')}"] + [q(f"v_{n}") for n in joined]
    keep += [f"{q(f'm_{n}')} AS {q(f'cb_row{i}')}" for i, n in enumerate(s.rows)]
    if "text" in s.rows and "text" in bits.tests:
        lower = prims.lower(col("m_text")).sql(prims.dialect)
        keep.append(f"{lower} AS {q('cb_lower')}")
    if "reason" in s.rows and controls:
        fam = prims.first_part(col("m_reason"), ".").sql(prims.dialect)
        keep.append(f"{fam} AS {q('cb_fam')}")
    if bits.regex:
        keep.append(f"{q('m_text')} AS {q('cb_text')}")
    keep += [f"{sql} AS {q(f'cb_rchk{k}')}" for k, (sql, _) in enumerate(row_pack)]
    base = f"SELECT {', '.join(keep)} FROM ({base_query(d, s.relation, own)}) AS b0"
    alias = {n: f"t{i}" for i, n in enumerate(joined)}
    alias |= {n: "tx" for n in s.crossed}  # one join finds them all (cross_tables)
    single = [n for n in joined if n not in s.crossed]
    # without control series only the bits within a rule's window or lookback are summed
    # (grouped): the others are dropped here, so no test or regex runs for them
    wins, lbs = day_words(s.ws, bits.words) if not controls else ({}, {})
    words = []
    for k in range(bits.words):
        parts = [f"CAST({bits.possible[k]} AS BIGINT)"]
        if k in wins:
            lb = f" | dt.{q(f'cb_lb{k}')}" if k in lbs else ""
            parts.append(f"dt.{q(f'cb_win{k}')}{lb}")
        if any(word_of(b)[0] == k for n in s.crossed for b in bits.tests.get(n, {})):
            parts.append(f"tx.{q(f'cb_w{k}')}")
        for n in single:
            if any(word_of(b)[0] == k for b in bits.tests.get(n, {})):
                word = f"{alias[n]}.{q(f'cb_w{k}')}"
                if d.pg:  # a NULL key joins nothing there; DuckDB's table has hash(NULL)
                    word = f"COALESCE({word}, CAST({table_free(bits, n, k)} AS BIGINT))"
                parts.append(word)
        words.append(" & ".join(f"({p})" for p in parts))
    lost = [not_found(s, n, f"b.{q(f'v_{n}')}", alias[n]) for n in single]
    lost_names = [f"{n}: value not looked up" for n in single]
    if s.crossed:
        lost.append(f"(tx.{q('cb_hit')} IS NULL)")
        lost_names.append(f"{', '.join(s.crossed)}: value not looked up")
    lost.append(f"(b.{q('date')} IS NOT NULL AND dt.{q('date')} IS NULL)")
    lost_names.append("started_at: day not looked up")
    join_pack = cond_words(lost_names, lost)
    if "reason" in alias:
        fam = f"{alias['reason']}.{q('cb_fam')}"
    else:
        fam = f"b.{q('cb_fam')}" if "reason" in s.rows and controls else d.null_text()
    if "channel" in s.rows:
        channel = "b." + q(f"cb_row{s.rows.index('channel')}")
    else:
        channel = f"{alias['channel']}.{q('cb_m')}"
    cols = [
        f"dt.{q('date')} AS {q('cb_date')}",
        f"dt.{q('period')} AS {q('cb_period')}",
        f"{channel} AS {q('cb_channel')}",
        f"b.{q('cb_hs')} AS {q('cb_hs')}",
        f"{fam} AS {q('cb_fam')}",
    ]
    coded = None if controls else coded_channel(s)
    if coded:  # month and channel as integers for the grouped scan's key (coded)
        cols += [
            f"dt.{q('cb_pi')} AS {q('cb_pi')}",
            f"{alias['channel']}.{q('cb_ci')} AS {q('cb_ci')}",
        ]
    cols += [f"{w} AS {q(f'cb_w{k}')}" for k, w in enumerate(words)]
    cols += [f"b.{q(f'cb_row{i}')} AS {q(n)}" for i, n in enumerate(s.rows)]
    if "text" in s.rows and "text" in bits.tests:
        cols.append(f"b.{q('cb_lower')} AS {q('text_lower')}")
    if not controls:
        cols += [f"dt.{q(f'cb_win{k}')}" for k in sorted(wins)]
        cols += [f"dt.{q(f'cb_lb{k}')}" for k in sorted(lbs)]
    if bits.regex:
        cols.append(f"b.{q('cb_text')} AS {q('cb_text')}")
    cols += [f"b.{q(f'cb_rchk{k}')}" for k in range(len(row_pack))]
    cols += [f"{sql} AS {q(f'cb_jchk{k}')}" for k, (sql, _) in enumerate(join_pack)]
    joins = ""
    if s.crossed:
        on = " AND ".join(join_on(s, n, "b." + q(f"v_{n}"), "tx", f"cb_k_{n}") for n in s.crossed)
        joins += f" LEFT JOIN {CROSS} AS tx ON {on}"
    for n in single:
        on = join_on(s, n, "b." + q(f"v_{n}"), alias[n])
        joins += f" LEFT JOIN {table_name(s, n)} AS {alias[n]} ON {on}"
    days = f" LEFT JOIN {DAYS} AS dt ON b.{q('date')} = dt.{q('date')}"
    select = f"SELECT {', '.join(cols)} FROM ({base}) AS b{joins}{days}"
    w = [q(f"cb_w{k}") for k in range(bits.words)]
    # the per-row columns' tests where the tables' words still hold, the text last
    tested = sorted((n for n in s.rows if n in bits.tests), key=lambda n: n == "text")
    for i, n in enumerate(tested):
        select, w = _row_tests(s, bits, prims, n, i, select, w)
    if bits.regex:  # each pattern once per row, where one of its blocks still holds
        rx = [
            f"{regex_flag(prims, pattern, 'cb_text', bits.users(blocks), w)} AS {q(f'cb_rx{i}')}"
            for i, (pattern, blocks) in enumerate(bits.regex.items())
        ]
        select = f"SELECT *, {', '.join(rx)} FROM ({select}) AS j"
        adjusted = []
        for k in range(bits.words):
            parts = [w[k]]
            for i, blocks in enumerate(bits.regex.values()):
                users = bits.users(blocks)[k]
                if users:
                    parts.append(
                        f"CASE WHEN {q(f'cb_rx{i}')} THEN CAST(-1 AS BIGINT) "
                        f"ELSE CAST({~users} AS BIGINT) END"
                    )
            adjusted.append(" & ".join(f"({p})" for p in parts))
        w = adjusted
    checks_out = [q(f"cb_rchk{k}") for k in range(len(row_pack))]
    checks_out += [q(f"cb_jchk{k}") for k in range(len(join_pack))]
    return RowsSql(select, w, checks_out, row_pack + join_pack, coded)
