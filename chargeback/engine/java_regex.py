"""A rule's `text_regex` (RE2 syntax and meaning, SPEC 4) written as a Java regex.

Spark runs regexes with java.util.regex, whose syntax looks like RE2's but
means other things: `(?i)` is ASCII-only (and with `u` folds the dotted and dotless I into i,
which RE2 does not), `.` also stops at \\r, \\u0085, \\u2028 and \\u2029, `$`
matches before a final newline, `\\v` is a class, `\\b` is Unicode-aware on
Java 17, `[` nests and `&&` intersects. So nothing is left to Java's reading:
the pattern is tokenised with RE2's grammar (workspace/re2.py's reader) and
every character set is written out as explicit code-point ranges. Case
folding is done here, with the simple-folding orbits read from polars' own
regex (the reference engine), and Unicode properties (`\\p{Greek}`) become
the ranges polars' regex gives them. Anchors become `\\A`, `\\z` and
look-arounds on \\n only. Greediness (`U`, `*?`) does not change whether a
search finds a match, so it is kept as written. What cannot be written with
exactly this meaning raises NotImplementedError.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from functools import cache

import polars as pl

from chargeback.workspace.re2 import POSIX, Re2Error, Reader, read_repeat

Ranges = tuple[tuple[int, int], ...]  # sorted, disjoint, inclusive code-point ranges
MAX_CODE = 0x10FFFF
SURROGATES = (0xD800, 0xDFFF)
ESCAPES = {"a": 7, "f": 12, "n": 10, "r": 13, "t": 9, "v": 11}
WORD = "[0-9A-Z_a-z]"  # RE2's \b is an ASCII word boundary, whatever the case flag
ASSERTIONS = {
    "b": f"(?:(?<={WORD})(?!{WORD})|(?<!{WORD})(?={WORD}))",
    "B": f"(?:(?<={WORD})(?={WORD})|(?<!{WORD})(?!{WORD}))",
    "A": "(?:\\A)",
    "z": "(?:\\z)",
}
POSIX_SETS = {  # RE2's (and Rust's) ASCII classes
    "alnum": "0-9A-Za-z", "alpha": "A-Za-z", "ascii": "\x00-\x7f", "blank": "\t ",
    "cntrl": "\x00-\x1f\x7f", "digit": "0-9", "graph": "!-~", "lower": "a-z",
    "print": " -~", "punct": "!-/:-@[-`{-~", "space": "\t\n\x0b\x0c\r ",
    "upper": "A-Z", "word": "0-9A-Za-z_", "xdigit": "0-9A-Fa-f",
}  # fmt: skip
PERL_SETS = {"d": "0-9", "w": "0-9A-Za-z_", "s": "\t\n\x0c\r "}  # RE2's \s has no \v


class Untranslatable(NotImplementedError):
    """A pattern Spark's Java regex cannot run with RE2's meaning (the engine refuses it)."""


def _norm(pairs: list[tuple[int, int]]) -> Ranges:
    out: list[tuple[int, int]] = []
    for lo, hi in sorted(pairs):
        if out and lo <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(hi, out[-1][1]))
        else:
            out.append((lo, hi))
    return tuple(out)


def _spec(spec: str) -> Ranges:
    """'0-9A-Z_' (single characters and a-b ranges) as Ranges."""
    pairs, i = [], 0
    while i < len(spec):
        if i + 2 < len(spec) and spec[i + 1] == "-":
            pairs.append((ord(spec[i]), ord(spec[i + 2])))
            i += 3
        else:
            pairs.append((ord(spec[i]), ord(spec[i])))
            i += 1
    return _norm(pairs)


def _complement(ranges: Ranges) -> Ranges:
    """Every code point outside `ranges` (surrogates never occur in text)."""
    out, start = [], 0
    for lo, hi in ranges:
        if lo > start:
            out.append((start, lo - 1))
        start = hi + 1
    if start <= MAX_CODE:
        out.append((start, MAX_CODE))
    low, high = SURROGATES
    cut = [(a, min(b, low - 1)) for a, b in out if a < low]
    cut += [(max(a, high + 1), b) for a, b in out if b > high]
    return _norm(cut)


@cache
def fold_orbits() -> dict[int, tuple[int, ...]]:
    """Code point -> its simple case-folding orbit, as polars' `(?i)` regex matches.

    The candidates are the characters either engine's case mappings move; each
    one's orbit is what `(?i)^c$` matches among them in polars, so the folding
    follows the Unicode tables of the reference engine, not the JVM's.
    """
    codes = [c for c in range(1, MAX_CODE + 1) if not SURROGATES[0] <= c <= SURROGATES[1]]
    frame = pl.DataFrame({"c": [chr(c) for c in codes]}).with_columns(
        lo=pl.col("c").str.to_lowercase(), up=pl.col("c").str.to_uppercase()
    )
    moved = frame.filter((pl.col("lo") != pl.col("c")) | (pl.col("up") != pl.col("c")))
    found = set(moved["c"].to_list())
    for column in ("lo", "up"):
        found |= {s for s in moved[column].to_list() if len(s) == 1}
    found |= {chr(c) for c in range(0x80) if chr(c).isalpha()}
    found |= {ch for ch in map(chr, codes) if ch.casefold() != ch and len(ch.casefold()) == 1}
    candidates = pl.Series(sorted(found))
    orbits: dict[int, tuple[int, ...]] = {}
    for ch in candidates.to_list():
        same = candidates.filter(candidates.str.contains("(?i)^" + re.escape(ch) + "$"))
        if len(same) > 1:
            orbits[ord(ch)] = tuple(sorted(ord(s) for s in same.to_list()))
    return orbits


@cache
def _fold_keys() -> list[int]:
    return sorted(fold_orbits())


def fold(ranges: Ranges) -> Ranges:
    """`ranges` with every case variant of its members (RE2's (?i) on a class)."""
    keys, orbits = _fold_keys(), fold_orbits()
    extra = []
    for lo, hi in ranges:
        for key in keys[bisect_left(keys, lo) : bisect_right(keys, hi)]:
            extra += [(c, c) for c in orbits[key]]
    return _norm([*ranges, *extra]) if extra else ranges


@cache
def unicode_property(escape: str) -> Ranges:
    """`\\p{Greek}` and the like as the code points polars' regex gives it."""
    codes = [c for c in range(MAX_CODE + 1) if not SURROGATES[0] <= c <= SURROGATES[1]]
    try:
        hits = pl.Series([chr(c) for c in codes]).str.contains(f"^{escape}$")
    except pl.exceptions.PolarsError:
        raise Untranslatable(f"the property {escape} is not one polars' regex knows") from None
    pairs: list[tuple[int, int]] = []
    for code, hit in zip(codes, hits.to_list(), strict=True):
        if hit:
            pairs.append((code, code))
    return _norm(pairs)


def _char(code: int) -> str:
    """One code point, written so that no Java (or Spark literal) syntax can read it."""
    ch = chr(code)
    return ch if ch.isascii() and ch.isalnum() else f"\\x{{{code:x}}}"


def write_set(ranges: Ranges) -> str:
    """A Java character class of exactly these code points."""
    if len(ranges) == 1 and ranges[0][0] == ranges[0][1]:
        return _char(ranges[0][0])
    if not ranges:
        return "[^\\x{0}-\\x{10ffff}]"  # matches nothing, as RE2's empty class
    body = "".join(_char(lo) if lo == hi else f"{_char(lo)}-{_char(hi)}" for lo, hi in ranges)
    return f"[{body}]"


class _Flags:
    def __init__(self, i: bool = True, m: bool = False, s: bool = False) -> None:
        self.i, self.m, self.s = i, m, s

    def copy(self) -> _Flags:
        return _Flags(self.i, self.m, self.s)


class _Translator:
    """One pass over an RE2 pattern, writing the Java pattern as it goes."""

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern
        self.r = Reader(pattern)
        self.flags = _Flags()  # polars runs every rule's regex under (?i)
        self.saved: list[_Flags] = []

    def refuse(self, what: str) -> Untranslatable:
        return Untranslatable(f"text_regex {self.pattern!r}: {what} on spark")

    def charset(self, ranges: Ranges, negated: bool = False) -> Ranges:
        """A set as RE2 reads it under the current flags: folded first, then negated."""
        ranges = fold(ranges) if self.flags.i else ranges
        return _complement(ranges) if negated else ranges

    def translate(self) -> str:
        out: list[str] = []
        r = self.r
        while not r.done():
            c = r.take()
            if c == "\\":
                out.append(self.escape())
            elif c == "[":
                out.append(write_set(self.bracket()))
            elif c == "(":
                out.append(self.group())
            elif c == ")":
                if not self.saved:
                    raise self.refuse("an unopened )")
                self.flags = self.saved.pop()
                out.append(")")
            elif c in "*+?":
                out.append(self.quantifier(c))
            elif c == "{":
                r.i -= 1
                counted = read_repeat(r)  # RE2 reads a `{` that opens no repeat literally
                if counted is None:
                    r.i += 1
                out.append(
                    self.quantifier(counted) if counted else write_set(self.charset(((123, 123),)))
                )
            elif c == "|":
                out.append("|")
            elif c == "^":
                out.append("(?:\\A|(?<=\\n))" if self.flags.m else "(?:\\A)")
            elif c == "$":
                out.append("(?:\\z|(?=\\n))" if self.flags.m else "(?:\\z)")
            elif c == ".":
                out.append("(?s:.)" if self.flags.s else "[^\\n]")
            else:
                out.append(write_set(self.charset(((ord(c), ord(c)),))))
        if self.saved:
            raise self.refuse("an unclosed (")
        return "".join(out)

    def quantifier(self, text: str) -> str:
        """A repeat as written (Java reads `*`, `+`, `?`, `{n,m}` and a lazy `?` alike)."""
        r = self.r
        if r.peek() == "?":
            text += r.take()  # lazy: the same matches for a search
        if r.peek() != "" and r.peek() in "*+?{":
            raise self.refuse("a repeat of a repeat (possessive in Java)")
        return text

    def escape(self) -> str:
        c = self.r.peek()
        if c in ASSERTIONS:
            self.r.take()
            return ASSERTIONS[c]
        if c == "Q":
            self.r.take()
            r = self.r
            end = r.p.find("\\E", r.i)
            text = r.p[r.i :] if end < 0 else r.p[r.i : end]
            r.i = len(r.p) if end < 0 else end + 2
            return "".join(write_set(self.charset(((ord(t), ord(t)),))) for t in text)
        return write_set(self.class_escape())

    def class_escape(self) -> Ranges:
        """After a backslash: a Perl class, a property or one character, as a set."""
        r = self.r
        c = r.take()
        if c in PERL_SETS:
            return self.charset(_spec(PERL_SETS[c]))
        if c.lower() in PERL_SETS:
            return self.charset(_spec(PERL_SETS[c.lower()]), negated=True)
        if c in "pP":
            body = r.braced() if r.peek() == "{" else r.take()
            negated = (c == "P") != body.startswith("^")
            ranges = unicode_property("\\p{" + body.removeprefix("^") + "}")
            return self.charset(ranges, negated)
        return self.charset(((code := self.escaped_char(c), code),))

    def escaped_char(self, c: str) -> int:
        r = self.r
        if c in ESCAPES:
            return ESCAPES[c]
        if c == "x":
            digits = r.braced() if r.peek() == "{" else r.take() + r.take()
            try:
                code = int(digits, 16)
            except ValueError:
                raise self.refuse(f"\\x{digits}") from None
            if code > MAX_CODE or SURROGATES[0] <= code <= SURROGATES[1]:
                raise self.refuse(f"\\x{digits}")
            return code
        if c.isascii() and not c.isalnum() and c:
            return ord(c)
        raise self.refuse(f"the escape \\{c}")

    def bracket(self) -> Ranges:
        """From after `[` to its `]`: the set RE2 reads, folded and negated as RE2 does."""
        r = self.r
        negated = r.peek() == "^"
        if negated:
            r.take()
        pairs: list[tuple[int, int]] = []
        first = True
        while True:
            c = r.take()
            if c == "]" and not first:
                break
            first = False
            item = self.class_atom(c)
            if r.peek() == "-" and r.peek(1) not in ("]", ""):
                r.take()
                high = self.class_atom(r.take())
                if len(item) != 1 or len(high) != 1 or item[0][0] != item[0][1]:
                    raise self.refuse("a class range whose ends are not single characters")
                if high[0][0] != high[0][1] or high[0][0] < item[0][0]:
                    raise self.refuse("a class range that runs backwards")
                item = ((item[0][0], high[0][0]),)
            pairs += item
        return self.charset(_norm(pairs), negated)

    def class_atom(self, c: str) -> Ranges:
        """One item inside [...], unfolded (bracket() folds the whole class)."""
        r = self.r
        if c == "\\":
            if r.peek() != "" and r.peek() in "bBAzQ":
                raise self.refuse(f"\\{r.peek()} inside a character class")
            # folding each item now is folding the union later; negated items
            # (\W, \P, [:^alpha:]) must be folded before their negation, as RE2 does
            return self.class_escape()
        if c == "[" and r.peek() == ":":
            end = r.p.find(":]", r.i + 1)
            name = r.p[r.i + 1 : end] if end > 0 else ""
            if name.lstrip("^") in POSIX:
                r.i = end + 2
                ranges = _spec(POSIX_SETS[name.lstrip("^")])
                if name.startswith("^"):  # negated items are folded before negation
                    return _complement(fold(ranges) if self.flags.i else ranges)
                return ranges
        return ((ord(c), ord(c)),)

    def group(self) -> str:
        """After `(`: a capture, named or flag group; flags last until the group closes."""
        r = self.r
        if r.peek() != "?":
            self.saved.append(self.flags.copy())
            return "("
        r.take()
        if (r.peek() == "P" and r.peek(1) == "<") or (r.peek() == "<" and r.peek(1) not in "=!"):
            end = r.p.find(">", r.i)
            if end < 0:
                raise self.refuse("a group name without its closing >")
            r.i = end + 1
            self.saved.append(self.flags.copy())
            return "("
        flags = ""
        while r.peek() not in (")", ":", ""):
            flags += r.take()
        on, _, off = flags.partition("-")
        bad = set(on + off) - set("imsU") or "-" in off or r.peek() == ""
        if bad or (not flags and r.peek() != ":"):
            raise self.refuse(f"the group (?{flags}")
        new = self.flags.copy()
        for letter, value in [(x, True) for x in on] + [(x, False) for x in off]:
            if letter in "ims":
                setattr(new, letter, value)
        if r.take() == ")":
            self.flags = new
            return ""
        self.saved.append(self.flags)
        self.flags = new
        return "(?:"


def to_java(pattern: str) -> str:
    """`pattern` (RE2 syntax, searched case-insensitively as SPEC 4 says) as a Java regex."""
    try:
        return _Translator(pattern).translate()
    except Re2Error as exc:
        raise Untranslatable(f"text_regex {pattern!r}: {exc}") from None
