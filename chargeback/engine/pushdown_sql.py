"""The SQL of the in-engine ledger (engine/pushdown.py): a detector and a derive per column.

For each canonical column the source holds, this builds three things in the
engine's dialect: the raw value (`v_*`), the value chargeback's data layer
(chargeback.data.checks) would give it (`m_*`: `values:` mapped, tags as
`|a|b|`, local time, `hs_us`) and the conditions under which that layer could
refuse the row or would change the value in a way the derive does not copy
(trimming, blanks, rounding ties). The derive is exact only where no condition
holds, so a condition errs on the side of flagging: a false alarm costs a local
read, a miss would cost a wrong ledger. Every derive expression is total (guarded
by the same bounds), so running it can never fail on a value the detector flags.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from chargeback.data.limits import (
    MAX_HANDLE_SECONDS,
    MAX_MONEY,
    MAX_YEAR,
    MIN_YEAR,
    char_limit,
)

# Unicode White_Space: what polars' str.strip_chars() removes (tests/test_pushdown.py
# checks this against polars over every code point). U+200B and U+FEFF are not in it.
WHITESPACE = (
    "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007"
    "\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)
CONTROL = [(0x00, 0x08), (0x0A, 0x1F), (0x7F, 0x7F)]  # chargeback.data.limits.CONTROL
CONTROL_IN_TEXT = [(0x00, 0x08), (0x0B, 0x0C), (0x0E, 0x1F), (0x7F, 0x7F)]  # \n, \r allowed
HS_TEXT = r"^[0-9]{1,7}(\.[0-9]{1,6})?$"  # handle time as text: plain, at most 6 decimals
MONEY_TEXT = r"^-?[0-9]{1,12}(\.[0-9]{1,9})?$"  # revenue as text: under 10**12, 9 decimals
TEXT_FAMILIES = ("text", "integer", "boolean")  # columns read as text (their text form)
NUMBER_FAMILIES = ("integer", "decimal", "float", "float4", "text")
TIME_FAMILIES = ("timestamptz", "timestamp", "date")
UTC_NAMES = ("UTC", "Etc/UTC", "Etc/UCT", "UCT", "Etc/Universal", "Universal", "Zulu", "Etc/Zulu")
SAFE_FIRST, SAFE_AFTER = "1970-01-01", "2038-01-01"  # instants whose zone rules engines share
SAFE = (0, 2145916800)  # their epoch seconds

T = TypeVar("T")


def balanced(parts: Sequence[T], pair: Callable[[T, T], T]) -> T:
    """parts[0] op parts[1] op ... as a balanced tree of `pair`s: DuckDB's planner takes
    time that grows with the depth of a left-deep chain (a value table's word of 50
    flags at 300 rules planned in 0.07 s, balanced in 0.03 s)."""
    level = list(parts)
    while len(level) > 1:
        pairs = [pair(a, b) for a, b in zip(level[::2], level[1::2], strict=False)]
        level = pairs + level[len(pairs) * 2 :]
    return level[0]


def added(parts: list[str]) -> str:
    """`a + b + ...` as SQL text, balanced: every engine adds integers alike."""
    if not parts:
        return "CAST(0 AS BIGINT)"
    return balanced(parts, lambda a, b: f"({a} + {b})")


def literal(text: str) -> str:
    """A standard SQL string literal (both dialects: no backslash escapes)."""
    return "'" + text.replace("'", "''") + "'"


@dataclass(frozen=True)
class Dialect:
    """What DuckDB and PostgreSQL spell differently; meanings are the same."""

    name: str  # duckdb | postgres

    @property
    def pg(self) -> bool:
        return self.name == "postgres"

    def ident(self, name: str) -> str:
        return '"' + name.replace('"', '""') + '"'

    def text(self, expr: str) -> str:
        """A value as text compared by bytes (a source column's collation dropped)."""
        if self.pg:
            return f'(CAST({expr} AS TEXT) COLLATE "C")'
        return f'(CAST({expr} AS VARCHAR) COLLATE "binary")'

    def null_text(self) -> str:
        return "CAST(NULL AS TEXT)" if self.pg else "CAST(NULL AS VARCHAR)"

    def char(self, code: int) -> str:
        """One code point as a regex escape."""
        if self.pg:
            return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"
        return f"\\x{{{code:x}}}"

    def char_class(self, ranges: list[tuple[int, int]]) -> str:
        parts = []
        for low, high in ranges:
            if self.pg and low == 0:
                low = 1  # PostgreSQL text cannot hold NUL (nor its regexes name it)
            parts.append(self.char(low) if low == high else f"{self.char(low)}-{self.char(high)}")
        return "[" + "".join(parts) + "]"

    def search(self, expr: str, pattern: str) -> str:
        if self.pg:
            return f"({expr} ~ {literal(pattern)})"
        return f"regexp_matches({expr}, {literal(pattern)})"

    def whitespace(self) -> str:
        """The White_Space set as an expression of chr() calls (readable in --show-sql)."""
        return " || ".join(f"chr({ord(c)})" for c in WHITESPACE)

    def trimmed_differs(self, expr: str) -> str:
        """The value is empty or starts or ends with White_Space (polars would trim it).

        The first and last characters' code points against the set: a tenth of the
        time of trim() with 25 characters on a column of distinct values.
        """
        code = "ascii" if self.pg else "ord"
        points = ", ".join(str(ord(c)) for c in WHITESPACE)
        first, last = f"{code}(left({expr}, 1))", f"{code}(right({expr}, 1))"
        return f"({expr} = '' OR {first} IN ({points}) OR {last} IN ({points}))"

    def double(self, expr: str, family: str) -> str:
        if self.pg and family == "float4":  # the export writes real as text, read as a double
            return f"CAST(CAST({expr} AS TEXT) AS DOUBLE PRECISION)"
        if self.pg and family == "float":  # the export's text of a double (extra_float_digits)
            return f"CAST(CAST({expr} AS TEXT) AS DOUBLE PRECISION)"
        return f"CAST({expr} AS DOUBLE PRECISION)" if self.pg else f"CAST({expr} AS DOUBLE)"

    def decimal(self, expr: str, digits: str = "20, 6") -> str:
        kind = "NUMERIC" if self.pg else "DECIMAL"
        return f"CAST({expr} AS {kind}({digits}))"

    def text_number(self, expr: str, pattern: str, digits: str) -> str:
        """Text that matches `pattern` as an exact decimal; NULL otherwise (never an error)."""
        cast = "CAST" if self.pg else "TRY_CAST"
        kind = "NUMERIC" if self.pg else "DECIMAL"
        return f"CASE WHEN {self.search(expr, pattern)} THEN {cast}({expr} AS {kind}({digits})) END"

    def not_finite(self, expr: str) -> str:
        if self.pg:
            return f"({expr} IN ('NaN', 'Infinity', '-Infinity'))"
        return f"(isnan({expr}) OR isinf({expr}))"

    def local(self, expr: str, family: str, tz: str) -> str:
        """Wall-clock time in `tz`, as chargeback's `local` (guarded to the years held)."""
        if family != "timestamptz":
            return f"CAST({expr} AS TIMESTAMP)"
        conv = (
            f"({expr} AT TIME ZONE {literal(tz)})"
            if self.pg
            else f"timezone({literal(tz)}, {expr})"
        )
        lo, hi = self.instant(f"{MIN_YEAR - 1}-12-30"), self.instant(f"{MAX_YEAR + 1}-01-02")
        return f"CASE WHEN {expr} >= {lo} AND {expr} < {hi} THEN {conv} END"

    def period(self, local: str) -> str:
        if self.pg:
            return f"to_char({local}, 'YYYY-MM')"
        return f"strftime({local}, '%Y-%m')"

    def instant(self, text: str) -> str:
        return f"CAST('{text} 00:00:00+00' AS TIMESTAMPTZ)"

    def epoch(self, expr: str) -> str:
        if self.pg:
            return f"CAST(floor(extract(epoch FROM {expr})) AS BIGINT)"
        return f"CAST(floor(epoch({expr})) AS BIGINT)"

    # DuckDB's spellings below (PostgreSQL never runs them); Spark's: pushdown_spark_sql.py
    def hash(self, exprs: str) -> str:
        """A 64-bit hash of the comma-separated expressions (a value table's key)."""
        return f"hash({exprs})"

    def octets(self, expr: str) -> str:
        return f"strlen({expr})"

    def unreserved(self, expr: str) -> str:
        """The text is only URL-unreserved ASCII (A-Z a-z 0-9 - . _ ~) or empty: url_encode
        leaves exactly these as they are (tests/test_pushdown_lists.py, every code point).
        None is White_Space or a control character; a third of a regex search's time."""
        return f"(url_encode({expr}) = {expr})"

    def epoch_us(self, expr: str) -> str:
        return f"epoch_us({expr})"

    def timestamp_us(self, expr: str) -> str:
        """Microseconds since 1970 as a wall-clock timestamp."""
        return f"make_timestamp({expr})"

    def day_series(self, first: str, last: str) -> str:
        """A FROM item: every day from `first` to `last` (ISO dates) as column `d`."""
        return (
            f"generate_series(CAST('{first}' AS TIMESTAMP), "
            f"CAST('{last}' AS TIMESTAMP), INTERVAL '1 day') AS t(d)"
        )


@dataclass
class Column:
    """One source column: its base expressions, in three steps, and the checks on them.

    `first` reads the source's columns; `second` reads `first`'s names, `third`
    `second`'s (one SELECT cannot name its own outputs in PostgreSQL). The checks
    read any of these names.
    """

    first: dict[str, str] = field(default_factory=dict)
    second: dict[str, str] = field(default_factory=dict)
    third: dict[str, str] = field(default_factory=dict)
    checks: dict[str, str] = field(default_factory=dict)  # check name -> condition
    # true only where none of the checks holds: one cheap test that spares the engine
    # the checks on the rows it passes (most of them); None: no such test
    clear: str | None = None


def mapped(d: Dialect, expr: str, pairs: Mapping[str, str]) -> str:
    """`values:` for one column: exact keys replaced, anything else kept (polars' replace)."""
    if not pairs:
        return expr
    whens = " ".join(f"WHEN {literal(k)} THEN {literal(v)}" for k, v in pairs.items())
    return f"CASE {expr} {whens} ELSE {expr} END"


def text_column(
    d: Dialect, name: str, source: str, family: str, pairs: Mapping[str, str], required: bool
) -> Column:
    """A text column: flagged when blank, padded, holding control characters or too long."""
    v, m = f"v_{name}", f"m_{name}"
    out = Column()
    out.first[v] = d.text(d.ident(source))
    out.second[m] = mapped(d, d.ident(v), pairs)
    checks = out.checks
    if required:
        checks["missing"] = f"{d.ident(v)} IS NULL"
    checks["padded or blank"] = d.trimmed_differs(d.ident(v))
    control = CONTROL_IN_TEXT if name == "text" else CONTROL
    checks["control character"] = d.search(d.ident(m), d.char_class(control))
    checks["too long"] = f"length({d.ident(m)}) > {char_limit(name)}"
    return out


def tags_column(
    d: Dialect, source: str, family: str, separator: str, pairs: Mapping[str, str]
) -> Column:
    """Tags (text split on the separator, or a list) joined as `|a|b|`, tags mapped each.

    Flagged: no tag at all (empty text or list), an empty part, a part with
    surrounding White_Space, a NULL in a list; the joined text like any value.
    """
    out = Column()
    v = d.ident("v_tags")
    ws = d.char_class([(ord(c), ord(c)) for c in WHITESPACE])
    if family == "text_list":  # DuckDB only (a PostgreSQL array is exported as '{a,b}' text)
        out.first["v_tags"] = d.ident(source)
        each = mapped(d, '(x COLLATE "binary")', pairs)
        joined = f"array_to_string(list_transform({v}, lambda x: {each}), '|')"
        bad_part = f"x IS NULL OR {d.trimmed_differs('x')}"
        # an empty list is no tag at all: NULL below, as polars makes it
        out.checks["empty or padded tag"] = f"(len(list_filter({v}, lambda x: {bad_part})) > 0)"
    else:
        out.first["v_tags"] = d.text(d.ident(source))
        sep = literal(separator)
        if not pairs:
            joined = v if separator == "|" else f"replace({v}, {sep}, '|')"
        elif d.pg:
            each = mapped(d, "p", pairs)
            joined = (
                f"array_to_string(ARRAY(SELECT {each} FROM unnest(string_to_array({v}, {sep})) "
                "WITH ORDINALITY AS u(p, o) ORDER BY o), '|')"
            )
        else:
            each = mapped(d, '(x COLLATE "binary")', pairs)
            joined = (
                f"array_to_string(list_transform(string_split({v}, {sep}), lambda x: {each}), '|')"
            )
        s = d.char(ord(separator))
        pattern = f"(^|{s}){ws}|{ws}({s}|$)|(^|{s})({s}|$)"
        out.checks["empty or padded tag"] = d.search(v, pattern)
    given = f"len({v}) > 0" if family == "text_list" else f"{v} IS NOT NULL"
    out.second["m_tags"] = f"CASE WHEN {given} THEN '|' || {joined} || '|' END"
    m = d.ident("m_tags")
    out.checks["control character"] = d.search(m, d.char_class(CONTROL))
    out.checks["too long"] = f"length({m}) > {char_limit('tags')}"
    return out


def handle_column(d: Dialect, source: str, family: str) -> Column:
    """handle_seconds -> `hs_us`, exact: decimals via exact arithmetic, doubles as polars.

    polars multiplies the double by 1e6 and rounds half to even; a tie (a scaled
    fraction of exactly .5) is flagged rather than trusted to the engine's round().
    """
    out = Column()
    raw = d.ident(source)
    x = d.ident("x_hs")
    most = MAX_HANDLE_SECONDS
    in_range = f"{x} >= 0 AND {x} <= {most}"
    if family in ("float", "float4"):
        out.first["x_hs"] = d.double(raw, family)
        scaled = f"({x} * {d.double('1000000', 'float8')})"
        out.second["hs_us"] = f"CASE WHEN {in_range} THEN CAST(round({scaled}) AS BIGINT) END"
        out.checks["not finite"] = d.not_finite(x)
        fraction = f"{scaled} - floor({scaled})"
        out.checks["rounding tie"] = f"({in_range} AND {fraction} = 0.5)"
        # NaN orders above every number in DuckDB, PostgreSQL and Spark: out of range
        out.clear = f"({in_range} AND {fraction} <> 0.5)"
    elif family == "text":
        out.first["v_hs"] = d.text(raw)
        out.first["x_hs"] = d.text_number(d.text(raw), HS_TEXT, "20, 6")
        out.second["hs_us"] = f"CASE WHEN {in_range} THEN CAST({x} * 1000000 AS BIGINT) END"
        out.checks["not a plain number"] = f"({d.ident('v_hs')} IS NOT NULL AND {x} IS NULL)"
        out.clear = f"({in_range})"
    else:  # integer, decimal
        out.first["x_hs"] = raw
        # an integer in range scales as a BIGINT (2.6e12 at most): through DECIMAL(20, 6),
        # a 128-bit multiply, it was half of DuckDB's grouped scan at 3M contacts
        exact = f"CAST({x} AS BIGINT)" if family == "integer" else d.decimal(x)
        out.second["hs_us"] = f"CASE WHEN {in_range} THEN CAST({exact} * 1000000 AS BIGINT) END"
        if family == "decimal":
            if d.pg:
                out.checks["not finite"] = d.not_finite(x)
            out.checks["over 6 decimals"] = f"({in_range} AND {x} <> round({x}, 6))"
            out.clear = f"({in_range} AND {x} = round({x}, 6))"
        else:
            out.clear = f"({in_range})"
    out.checks["negative"] = f"{x} < 0"
    out.checks["over 30 days"] = f"{x} > {most}"
    return out


def revenue_column(d: Dialect, source: str, family: str) -> Column:
    """Revenue is not summed by the ledger, but a bad one stops the run: its checks only."""
    out = Column()
    raw = d.ident(source)
    x = d.ident("x_revenue")
    if family in ("float", "float4"):
        out.first["x_revenue"] = d.double(raw, family)
        out.checks["not finite"] = d.not_finite(x)
    elif family == "text":
        out.first["v_revenue"] = d.text(raw)
        out.first["x_revenue"] = d.text_number(d.text(raw), MONEY_TEXT, "38, 9")
        out.checks["not a plain number"] = f"({d.ident('v_revenue')} IS NOT NULL AND {x} IS NULL)"
    else:
        out.first["x_revenue"] = raw
        if family == "decimal" and d.pg:
            out.checks["not finite"] = d.not_finite(x)
    out.checks["out of range"] = f"abs({x}) >= {MAX_MONEY}"
    return out


def time_column(d: Dialect, source: str, family: str, tz: str) -> Column:
    """started_at -> `local`, `date`, `period` in the workspace's time zone.

    A naive timestamp is already local and a date is local midnight (as the data
    layer reads them); an instant is converted, and outside 1970-2037 flagged
    unless the zone is UTC: zone rules before and far after that are where
    time zone databases (polars', DuckDB's ICU, the server's) disagree.
    """
    out = Column()
    ts, local = d.ident("v_ts"), d.ident("local")
    out.first["v_ts"] = d.ident(source)
    out.second["local"] = d.local(ts, family, tz)
    first = f"CAST('{MIN_YEAR}-01-01' AS TIMESTAMP)"
    after = f"CAST('{MAX_YEAR + 1}-01-01' AS TIMESTAMP)"
    in_years = f"{local} >= {first} AND {local} < {after}"
    out.third["date"] = f"CASE WHEN {in_years} THEN CAST({local} AS DATE) END"
    out.third["period"] = f"CASE WHEN {in_years} THEN {d.period(local)} END"
    out.checks["missing"] = f"{ts} IS NULL"
    # `local` is NULL outside the years (and for 'infinity'): NULL is outside, not unknown
    out.checks["outside the years"] = f"({ts} IS NOT NULL AND NOT COALESCE({in_years}, FALSE))"
    if family == "timestamptz" and tz not in UTC_NAMES:
        safe = f"{ts} >= {d.instant(SAFE_FIRST)} AND {ts} < {d.instant(SAFE_AFTER)}"
        out.checks["outside 1970-2037 (zone rules)"] = f"({ts} IS NOT NULL AND NOT ({safe}))"
    return out


def base_query(d: Dialect, relation: str, built: list[Column]) -> str:
    """The three steps of the columns' expressions as one query on the relation."""

    def items(step: str) -> list[str]:
        return [f"{e} AS {d.ident(n)}" for col in built for n, e in getattr(col, step).items()]

    query = f"SELECT {', '.join(items('first'))} FROM {relation}"
    for step in ("second", "third"):
        if items(step):  # a step no column has is no query (PostgreSQL refuses `*, FROM`)
            query = f"SELECT *, {', '.join(items(step))} FROM ({query}) AS {step}_step"
    return query
