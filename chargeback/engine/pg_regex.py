"""A rule's `text_regex` (RE2 syntax and meaning, SPEC 4) as a PostgreSQL ARE.

PostgreSQL's regex engine reads the same characters differently: `\\b` is a
backspace, `.` matches a newline, `\\w` and `\\y` follow the database's locale,
and its case-insensitive mode compares a character with its lower and upper
case only (so `(?i)k` misses the Kelvin sign that RE2 and polars match). So
nothing is left to PostgreSQL's reading: the pattern is tokenised with
re2.py's reader, and every atom that matches one character (a literal, `\\d`,
`\\p{Greek}`, `[a-z]`) is replaced by the exact set of code points polars
matches with it, case folding included, asked of polars over every code point
and written as code-point ranges (`[\\u0041-\\u005a]`). The ARE is then run
case-sensitively. Anchors and boundaries become ARE assertions (`\\b` is a
look-around over ASCII word characters), repeats keep their counts (at most
255 in PostgreSQL), and laziness is dropped (a search only asks whether there
is a match). What cannot be written so is refused with NotImplementedError.
"""

from __future__ import annotations

from functools import cache

import polars as pl

from chargeback.workspace.re2 import (
    Reader,
    escaped_literal,
    read_class,
    read_escape,
    read_group,
    read_repeat,
)

PG_MAX_REPEAT = 255  # PostgreSQL's RE_DUP_MAX
SURROGATES = (0xD800, 0xDFFF)
WORD = "[0-9A-Za-z_]"  # RE2's \b reads ASCII word characters, never folded
BOUNDARY = f"(?:(?<={WORD})(?!{WORD})|(?<!{WORD})(?={WORD}))"
NOT_BOUNDARY = f"(?:(?<={WORD})(?={WORD})|(?<!{WORD})(?!{WORD}))"


@cache
def universe() -> pl.DataFrame:
    """Every character PostgreSQL text can hold (no NUL, no surrogates), one per row."""
    codes = [c for c in range(1, 0x110000) if not SURROGATES[0] <= c <= SURROGATES[1]]
    return pl.DataFrame({"code": pl.Series(codes, dtype=pl.Int64), "c": [chr(c) for c in codes]})


@cache
def char_set(rust_atom: str, fold: bool) -> tuple[tuple[int, int], ...]:
    """The code-point ranges polars' regex matches with one atom (folded when `fold`)."""
    flags = "(?is)" if fold else "(?s)"
    hits = (
        universe()
        .lazy()
        .filter(pl.col("c").str.contains(f"{flags}^(?:{rust_atom})$"))
        .select(pl.col("code"))
        .with_columns(run=(pl.col("code").diff() != 1).fill_null(True).cum_sum())
        .group_by("run")
        .agg(pl.col("code").min().alias("lo"), pl.col("code").max().alias("hi"))
        .sort("lo")
        .collect()
    )
    ranges: list[tuple[int, int]] = []
    for lo, hi in hits.select("lo", "hi").iter_rows():
        if ranges and ranges[-1][1] == SURROGATES[0] - 1 and lo == SURROGATES[1] + 1:
            ranges[-1] = (ranges[-1][0], hi)  # no text holds a surrogate: join across them
        else:
            ranges.append((lo, hi))
    return tuple(ranges)


def _code(c: int) -> str:
    return f"\\u{c:04x}" if c <= 0xFFFF else f"\\U{c:08x}"


def _bracket(ranges: tuple[tuple[int, int], ...], negate: bool) -> str:
    body = "".join(_code(lo) if lo == hi else f"{_code(lo)}-{_code(hi)}" for lo, hi in ranges)
    return f"[{'^' if negate else ''}{body}]"


def _complement(ranges: tuple[tuple[int, int], ...]) -> tuple[tuple[int, int], ...]:
    """The characters of the universe (1..U+10FFFF) outside `ranges`."""
    out: list[tuple[int, int]] = []
    start = 1
    for lo, hi in ranges:
        if lo > start:
            out.append((start, lo - 1))
        start = hi + 1
    if start <= 0x10FFFF:
        out.append((start, 0x10FFFF))
    return tuple(out)


def atom(rust_atom: str, fold: bool, pattern: str) -> str:
    """One character matcher, written as the exact set of code points it matches."""
    ranges = char_set(rust_atom, fold)
    if not ranges:
        raise NotImplementedError(
            f"text_regex {pattern!r}: a character class that matches nothing, on postgres"
        )
    if len(ranges) == 1 and ranges[0][0] == ranges[0][1]:
        return _code(ranges[0][0])
    outside = _complement(ranges)
    if len(outside) < len(ranges):
        return _bracket(outside, negate=True)
    return _bracket(ranges, negate=False)


class _Flags:
    """RE2's flags in one group's scope: case folding (on for rules), multi-line, dot-all."""

    def __init__(self, fold: bool = True, multi: bool = False, dotall: bool = False) -> None:
        self.fold, self.multi, self.dotall = fold, multi, dotall

    def copy(self) -> _Flags:
        return _Flags(self.fold, self.multi, self.dotall)

    def apply(self, spec: str) -> None:
        """`im-s`: set before the minus, clear after; U (ungreedy) changes no search result."""
        on, _, off = spec.partition("-")
        for chars, value in ((on, True), (off, False)):
            for c in chars:
                if c == "i":
                    self.fold = value
                elif c == "m":
                    self.multi = value
                elif c == "s":
                    self.dotall = value


def to_postgres(pattern: str) -> str:
    """`pattern` (RE2 syntax and meaning, searched case-insensitively) as a PostgreSQL ARE."""
    r = Reader(pattern)
    out: list[str] = []
    flags = _Flags()
    scopes: list[_Flags] = []
    while not r.done():
        c = r.take()
        if c == "\\":
            nxt = r.peek()
            if nxt in ("b", "B"):
                r.take()
                out.append(BOUNDARY if nxt == "b" else NOT_BOUNDARY)
            elif nxt in ("A", "z"):
                r.take()
                out.append("^" if nxt == "A" else "$")
            elif nxt == "Q":
                r.take()
                end = r.p.find("\\E", r.i)
                text = r.p[r.i :] if end < 0 else r.p[r.i : end]
                r.i = len(r.p) if end < 0 else end + 2
                out.extend(atom(escaped_literal(ch), flags.fold, pattern) for ch in text)
            else:
                out.append(atom(read_escape(r, in_class=False), flags.fold, pattern))
        elif c == "[":
            out.append(atom(read_class(r), flags.fold, pattern))
        elif c == "(":
            group = read_group(r)
            if group.endswith(")"):  # (?flags): the rest of this group
                flags.apply(group[2:-1])
                continue
            scopes.append(flags.copy())
            if group.startswith("(?") and group.endswith(":"):
                flags.apply(group[2:-1])
            out.append("(?:")
        elif c == ")":
            if not scopes:
                raise NotImplementedError(f"text_regex {pattern!r}: an unmatched ')'")
            flags = scopes.pop()
            out.append(")")
        elif c == "{":
            r.i -= 1
            rep = read_repeat(r)
            if rep is None:
                r.i += 1
                out.append(atom("\\{", flags.fold, pattern))
            else:
                out.append(_pg_repeat(rep, pattern))
                _skip_lazy(r)
        elif c in "*+?":
            out.append(c)
            _skip_lazy(r)
        elif c == ".":
            out.append("." if flags.dotall else "[^\\n]")
        elif c == "^":
            out.append("(?:^|(?<=\\n))" if flags.multi else "^")
        elif c == "$":
            out.append("(?:$|(?=\\n))" if flags.multi else "$")
        elif c == "|":
            out.append("|")
        else:
            out.append(atom(escaped_literal(c), flags.fold, pattern))
    return "".join(out)


def _pg_repeat(rep: str, pattern: str) -> str:
    counts = [int(n) for n in rep.strip("{}").split(",") if n]
    if any(n > PG_MAX_REPEAT for n in counts):
        raise NotImplementedError(
            f"text_regex {pattern!r}: a repeat count over {PG_MAX_REPEAT} ({rep}) on postgres"
        )
    return rep


def _skip_lazy(r: Reader) -> None:
    """`*?` finds a match exactly when `*` does: laziness only moves where it ends."""
    if r.peek() == "?":
        r.take()
