"""Rules as bit words for the in-engine ledger (engine/pushdown_groups.py): pure, no I/O.

Why: a `CASE` per rule per row makes the engine's cost grow with the rules. Here
every match block (a rule's match, a control's evidence or control) is one bit,
62 to a BIGINT word as polars_engine's masks. A column's tests run once per
distinct value of that column (its value table holds the value's bits; a column
of about one value per row, on the row: pushdown_rows), the windows once per
day, and a row's bits are the AND of what it looks up. The
conditions are sql_compile's own (`Compiler.any_of`, `tags_any_of`,
`text_any_of`, `regex_search`), so a bit means what the per-row SQL meant.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta

from sqlglot import exp

from chargeback.engine.aggregates import set_bits
from chargeback.engine.dates import shift_day, window_bounds
from chargeback.engine.polars_engine import MASK_BITS
from chargeback.engine.pushdown_sql import added
from chargeback.engine.sql_compile import MATCH_KEYS, Compiler, Node, Primitives, text_needles
from chargeback.workspace.model import Match, Workspace


def word_of(block: int) -> tuple[int, int]:
    """(word, bit value) of block `block`."""
    return block // MASK_BITS, 1 << (block % MASK_BITS)


@dataclass
class Bits:
    """Every block's tests, by where they are evaluated."""

    names: list[str]  # r<i> (rules), then e<i>, c<i> (control evidence, control)
    words: int
    possible: list[int]  # per word: blocks that can hold (no test on an absent column)
    # column -> block -> its conditions on that column, as SQL
    tests: dict[str, dict[int, list[str]]] = field(default_factory=dict)
    regex: dict[str, list[int]] = field(default_factory=dict)  # pattern -> blocks
    needles: set[str] = field(default_factory=set)  # every text phrase, as text_any_of's
    # column -> block -> (exact values, prefixes' tests as SQL): a block whose one test
    # on the column is any_of's, so table_words may look its values up (DuckDB)
    anys: dict[str, dict[int, tuple[tuple[str, ...], list[str]]]] = field(default_factory=dict)
    subjects: dict[str, str] = field(default_factory=dict)  # column -> what any_of compares

    def users(self, blocks: list[int]) -> list[int]:
        """The blocks as one mask per word."""
        return word_masks(blocks, self.words)


def word_masks(blocks: Iterable[int], words: int) -> list[int]:
    """Blocks as one mask per word (word_of's packing, polars_engine's masks')."""
    out = [0] * words
    for b in blocks:
        w, bit = word_of(b)
        out[w] |= bit
    return out


def blocks_of(ws: Workspace, controls: bool) -> list[tuple[str, Match]]:
    """Rules' matches as r<i>; with controls, their evidence e<i> and control c<i> after."""
    out = [(f"r{i}", r.match) for i, r in enumerate(ws.rules)]
    if controls:
        for i, r in enumerate(ws.rules):
            if r.control is not None and r.control.evidence is not None:
                out.append((f"e{i}", r.control.evidence))
            if r.control is not None and r.control.control is not None:
                out.append((f"c{i}", r.control.control))
    return out


def column_tests(match: Match) -> list[tuple[str, str, tuple[str, ...]]]:
    """(column, kind, values) for each value test of a block; `text` phrases on text_lower."""
    out: list[tuple[str, str, tuple[str, ...]]] = []
    for key in MATCH_KEYS:
        values = getattr(match, key)
        if values is not None:
            out.append((key, "any", values))
    if match.tags is not None:
        out.append(("tags", "tags", match.tags))
    for column, values in match.fields:
        out.append((column, "tags" if column == "tags" else "any", values))
    if match.text is not None:
        out.append(("text", "text", match.text))
    return out


class _Conditions:
    """Each distinct test's SQL, made once: rules share their vocabularies, and SQLGlot
    takes about a millisecond a condition."""

    def __init__(self, prims: Primitives, present: set[str]) -> None:
        self.comp = Compiler(prims, set(present) | {"text_lower"})
        self.dialect = prims.dialect
        self.made: dict[tuple[str, str, tuple[str, ...]], str] = {}
        self.subjects: dict[str, str] = {}

    def any_parts(self, column: str, values: tuple[str, ...]) -> tuple[str, list[str]]:
        """any_of's pieces: the expression it compares (made once per column), and each
        prefix's test."""
        c = self.comp.text_of(column)
        prefixes = [
            self.comp.prims.starts_with(c.copy(), v[:-1]).sql(self.dialect)
            for v in values
            if v.endswith("*")
        ]
        if column not in self.subjects:
            self.subjects[column] = c.sql(self.dialect)
        return self.subjects[column], prefixes

    def sql(self, column: str, kind: str, values: tuple[str, ...]) -> str:
        key = (column, kind, values)
        if key not in self.made:
            node: Node
            if kind == "tags":
                node = self.comp.tags_any_of(values)
            elif kind == "text":
                node = self.comp.text_any_of(values)
            else:
                node = self.comp.any_of(column, values)
            self.made[key] = node.sql(self.dialect)
        return self.made[key]


def bits_for(ws: Workspace, prims: Primitives, present: set[str], controls: bool) -> Bits:
    """The blocks' tests per column; a block testing a column the source lacks never holds."""
    blocks = blocks_of(ws, controls)
    words = max(1, -(-len(blocks) // MASK_BITS)) if blocks else 0
    conditions = _Conditions(prims, present)
    out = Bits([n for n, _ in blocks], words, [0] * words)
    for b, (_, match) in enumerate(blocks):
        tests = column_tests(match)
        if any(c not in present for c, _, _ in tests) or (
            match.text_regex is not None and "text" not in present
        ):
            continue  # the derive gives NULL for an absent column: the block never holds
        w, bit = word_of(b)
        out.possible[w] |= bit
        per_column = [c for c, _, _ in tests]
        for column, kind, values in tests:
            cond = conditions.sql(column, kind, values)
            if kind == "text":
                out.needles.update(text_needles(values))
            if kind == "any" and per_column.count(column) == 1:
                subject, prefixes = conditions.any_parts(column, values)
                out.subjects[column] = subject
                exact = tuple(v for v in values if not v.endswith("*"))
                out.anys.setdefault(column, {})[b] = (exact, prefixes)
            out.tests.setdefault(column, {}).setdefault(b, []).append(cond)
        if match.text_regex is not None:
            out.regex.setdefault(match.text_regex, []).append(b)
    return out


def table_words(bits: Bits, column: str, dialect: str) -> dict[int, str]:
    """Word k of a value table: the blocks whose tests on `column` hold on the value,
    plus every block without a test on it (NULL fails a test: then only those)."""
    tests = bits.tests.get(column, {})
    out: dict[int, str] = {}
    for k in range(bits.words):
        mine = {b: c for b, c in tests.items() if word_of(b)[0] == k}
        if not mine:
            continue
        free = bits.possible[k] & ~sum(word_of(b)[1] for b in mine)
        parts = [f"CAST({free} AS BIGINT)"]
        anys = bits.anys.get(column, {}) if dialect == "duckdb" else {}
        looked_up = {b: anys[b] for b in mine if b in anys}
        for b, conds in sorted(mine.items()):
            if b not in looked_up:
                cond = " AND ".join(f"({c})" for c in conds)
                parts.append(_flag(cond, word_of(b)[1]))
        if looked_up:
            parts.append(_value_map(bits.subjects[column], looked_up))
        out[k] = added(parts)
    return out


def _value_map(subject: str, blocks: dict[int, tuple[tuple[str, ...], list[str]]]) -> str:
    """The blocks' any_of tests as one lookup of the value (each exact value's blocks'
    bits ORed) and one test per prefix, ORed: a block may hold by both.

    Why: a CASE per block over IN lists made DuckDB plan hundreds of expressions per
    word (the reason table at 300 rules: 0.045 s of planning); one CASE on the value
    plans and runs in a fraction of that. A NULL value finds nothing, as NULL IN does.
    """
    exact: dict[str, int] = {}
    prefixed: dict[str, int] = {}
    for b, (values, prefixes) in blocks.items():
        bit = word_of(b)[1]
        for v in values:
            exact[v] = exact.get(v, 0) | bit
        for p in prefixes:
            prefixed[p] = prefixed.get(p, 0) | bit
    pieces = []
    if exact:
        whens = " ".join(
            f"WHEN {exp.Literal.string(v).sql('duckdb')} THEN CAST({m} AS BIGINT)"
            for v, m in sorted(exact.items())
        )
        pieces.append(f"CASE {subject} {whens} ELSE CAST(0 AS BIGINT) END")
    pieces += [_flag(p, m) for p, m in sorted(prefixed.items())]
    return pieces[0] if len(pieces) == 1 else "(" + " | ".join(f"({p})" for p in pieces) + ")"


def table_free(bits: Bits, column: str, k: int) -> int:
    """Word k for a NULL value (or none looked up): the blocks without a test on `column`."""
    tests = bits.tests.get(column, {})
    return bits.possible[k] & ~sum(word_of(b)[1] for b in tests if word_of(b)[0] == k)


def regex_flag(prims: Primitives, pattern: str, text: str, users: list[int], w: list[str]) -> str:
    """The pattern's search, run only where one of its blocks still holds (else FALSE)."""
    alive = " OR ".join(f"({w[k]} & CAST({u} AS BIGINT)) <> 0" for k, u in enumerate(users) if u)
    search = prims.regex_search(exp.column(text, quoted=True), pattern).sql(prims.dialect)
    return f"CASE WHEN {alive} THEN COALESCE({search}, FALSE) ELSE FALSE END"


def _flag(cond: str, bit: int) -> str:
    """sql_compile.flag as text: `bit` where the condition holds, else 0 (NULL: 0)."""
    return f"CASE WHEN {cond} THEN CAST({bit} AS BIGINT) ELSE CAST(0 AS BIGINT) END"


def _day(value: date) -> str:
    return f"CAST('{value.isoformat()}' AS DATE)"


def day_words(ws: Workspace, words: int) -> tuple[dict[int, str], dict[int, str]]:
    """Per word, on a table of days: the rules whose window holds (sql_compile.window),
    and whose lookback does (sql_compile.lookback), on the column `date`."""
    wins: dict[int, list[str]] = {}
    lbs: dict[int, list[str]] = {}
    day = '"date"'
    for i, r in enumerate(ws.rules):
        k, bit = word_of(i)
        decision = ws.decision(r.decision)
        first, last = window_bounds(r, decision)
        inside = f"{day} >= {_day(first)}" + (f" AND {day} <= {_day(last)}" if last else "")
        wins.setdefault(k, []).append(_flag(inside, bit))
        if r.baseline_lookback_days is not None:
            start = shift_day(decision.effective, -r.baseline_lookback_days)
            back = f"{day} >= {_day(start)} AND {day} < {_day(decision.effective)}"
            lbs.setdefault(k, []).append(_flag(back, bit))
    return (
        {k: added(v) for k, v in wins.items() if k < words},
        {k: added(v) for k, v in lbs.items() if k < words},
    )


def day_segments(
    ws: Workspace, words: int, lo: date, hi: date
) -> tuple[list[int], list[int], list[tuple[date, date, list[int], list[int]]]]:
    """day_words' values worked out here, for the days lo..hi: runs of days alike, as
    (first, last, window words, lookback words), and which words each kind has.

    Why: at 300 rules the days table's SQL is hundreds of CASEs the engine takes
    longer to plan than to run; the bits only change where a window or lookback
    starts or ends, so a few runs of days say the same, with plain date arithmetic.
    """
    if lo > hi:
        return [], [], []
    changes: dict[date, list[tuple[int, int, int]]] = {}  # day -> (kind, word, bit) toggled
    start_state = [[0] * words, [0] * words]
    win_keys: set[int] = set()
    lb_keys: set[int] = set()

    def span(kind: int, k: int, bit: int, first: date, last: date | None) -> None:
        """Days first..last (None: open) hold the bit: toggled on and off in lo..hi."""
        if first > hi or (last is not None and (last < lo or last < first)):
            return
        if first <= lo:
            start_state[kind][k] |= bit
        else:
            changes.setdefault(first, []).append((kind, k, bit))
        if last is not None and last < hi:
            changes.setdefault(last + timedelta(days=1), []).append((kind, k, bit))

    for i, r in enumerate(ws.rules):
        k, bit = word_of(i)
        if k >= words:
            continue
        decision = ws.decision(r.decision)
        win_keys.add(k)
        span(0, k, bit, *window_bounds(r, decision))
        if r.baseline_lookback_days is not None:
            lb_keys.add(k)
            begin = shift_day(decision.effective, -r.baseline_lookback_days)
            if decision.effective > date.min:
                span(1, k, bit, begin, decision.effective - timedelta(days=1))
    state = start_state
    runs: list[tuple[date, date, list[int], list[int]]] = []
    first = lo
    for day in sorted(changes):
        runs.append((first, day - timedelta(days=1), list(state[0]), list(state[1])))
        for kind, k, bit in changes[day]:
            state[kind][k] ^= bit
        first = day
    runs.append((first, hi, list(state[0]), list(state[1])))
    return sorted(win_keys), sorted(lb_keys), runs


def cond_words(names: list[str], conds: list[str]) -> list[tuple[str, list[str]]]:
    """Conditions packed 62 to a word: (the word's SQL, the names of its bits)."""
    out: list[tuple[str, list[str]]] = []
    for start in range(0, len(conds), MASK_BITS):
        chunk = conds[start : start + MASK_BITS]
        sql = added(
            [
                f"CASE WHEN {c} THEN CAST({1 << k} AS BIGINT) ELSE CAST(0 AS BIGINT) END"
                for k, c in enumerate(chunk)
            ]
        )
        out.append((sql, names[start : start + MASK_BITS]))
    return out


def names_set(packed: list[tuple[str, list[str]]], values: list[int]) -> list[str]:
    """The names of the set bits of each packed word's value."""
    return [packed[k][1][b] for k, v in enumerate(values) for b in set_bits(int(v or 0))]
