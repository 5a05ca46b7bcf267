"""A rule's `text_regex`, read with RE2's meaning (SPEC 4) and written for Rust's regex.

The embedded engine runs regexes with Rust's `regex` crate (through polars),
whose syntax looks like RE2's but means more: `\\d`, `\\w`, `\\s` and `\\b` are
Unicode classes there (`\\d` matches Arabic-Indic digits), `[` opens a nested class, `&&`,
`--` and `~~` are set operations, `\\<` is a word start, and `{start}` after
`\\b` is a special assertion. A rule must mean the same on every engine, so the
pattern is tokenised with RE2's grammar and each token is written out in a form
Rust reads the RE2 way; what RE2 would not accept (look-around, back-references,
`\\C`, the flags RE2 lacks, repeats over 1000) is refused with a reason.
"""

from __future__ import annotations

ASCII_CLASSES = {  # RE2's Perl classes, ASCII only, as class contents
    "d": "0-9",
    "w": "0-9A-Za-z_",
    "s": "\\t\\n\\f\\r ",
}
RE2_FLAGS = set("imsU")
MAX_REPEAT = 1000  # RE2's limit on {n,m}
SIMPLE_ESCAPES = set("afnrtv")  # control characters, the same in both
POSIX = {
    "alnum", "alpha", "ascii", "blank", "cntrl", "digit", "graph",
    "lower", "print", "punct", "space", "upper", "word", "xdigit",
}  # fmt: skip


class Re2Error(ValueError):
    """A pattern RE2 would not accept, or one that cannot keep RE2's meaning."""


class Reader:
    def __init__(self, pattern: str) -> None:
        self.p = pattern
        self.i = 0

    def peek(self, k: int = 0) -> str:
        j = self.i + k
        return self.p[j] if j < len(self.p) else ""

    def take(self) -> str:
        c = self.peek()
        if not c:
            raise Re2Error("the pattern ends too early")
        self.i += 1
        return c

    def braced(self) -> str:
        """The text between the `{` at the reader and its `}` (both taken): `\\p{Greek}`."""
        text = ""
        self.take()
        while self.peek() != "}":
            text += self.take()
        self.take()
        return text

    def done(self) -> bool:
        return self.i >= len(self.p)


def escaped_literal(c: str) -> str:
    """One literal character, escaped where Rust would read it as syntax."""
    if c.isascii() and not c.isalnum() and c not in " _<>\n\t":
        return "\\" + c  # Rust reads \< and \> as word boundaries
    return c


def read_escape(r: Reader, in_class: bool) -> str:
    """The token after a backslash, written for Rust."""
    c = r.take()
    if c in ASCII_CLASSES:
        body = ASCII_CLASSES[c]
        return body if in_class else f"[{body}]"
    if c.lower() in ASCII_CLASSES:
        return f"[^{ASCII_CLASSES[c.lower()]}]"
    if c in "bB":
        if in_class:
            raise Re2Error(f"\\{c} is not allowed in a character class")
        return f"(?-u:\\{c})"
    if c in "Az" and not in_class:
        return "\\" + c
    if c in SIMPLE_ESCAPES:
        return "\\" + c
    if c in "pP":
        if r.peek() == "{":
            return f"\\{c}{{{r.braced()}}}"
        return f"\\{c}{r.take()}"
    if c == "x":
        digits = r.braced() if r.peek() == "{" else r.take() + r.take()
        try:
            code = int(digits, 16)
            if 0xD800 <= code <= 0xDFFF:
                raise ValueError(digits)
            return escaped_literal(chr(code))
        except (ValueError, OverflowError):
            raise Re2Error(f"\\x{digits} is not a character code") from None
    if c == "Q":
        end = r.p.find("\\E", r.i)
        text = r.p[r.i :] if end < 0 else r.p[r.i : end]
        r.i = len(r.p) if end < 0 else end + 2
        return "".join(escaped_literal(ch) for ch in text)
    if c == "C":
        raise Re2Error("\\C (any byte) cannot be run on text")
    if c.isdigit():
        raise Re2Error(f"\\{c}: back-references and octal escapes are not supported")
    if c.isascii() and not c.isalnum():
        return escaped_literal(c)  # \< is a literal < in RE2, a word start in Rust
    raise Re2Error(f"\\{c} is not an escape RE2 knows")


def read_class(r: Reader) -> str:
    """From after `[` to its `]`: RE2 has no nested classes or set operations."""
    out = ["["]
    if r.peek() == "^":
        out.append(r.take())
    first = True
    while True:
        c = r.take()
        if c == "]" and not first:
            break
        first = False
        item = _class_atom(r, c)
        if r.peek() == "-" and r.peek(1) not in ("]", ""):
            r.take()
            high = _class_atom(r, r.take())
            item = f"{item}-{high}"
        out.append(item)
    out.append("]")
    return "".join(out)


def _class_atom(r: Reader, c: str) -> str:
    if c == "\\":
        return read_escape(r, in_class=True)
    if c == "[" and r.peek() == ":":
        end = r.p.find(":]", r.i + 1)
        name = r.p[r.i + 1 : end].lstrip("^") if end > 0 else ""
        if name in POSIX:
            text = r.p[r.i - 1 : end + 2]
            r.i = end + 2
            return text
    return escaped_literal(c) if c in "[]&~-^\\" or c in "\n\t" else c


def read_repeat(r: Reader) -> str | None:
    """`{n}`, `{n,}` or `{n,m}` when the text there is one; RE2 reads any other `{` literally."""
    j = r.p.find("}", r.i)
    if j < 0:
        return None
    body = r.p[r.i + 1 : j]
    low, _, high = body.partition(",")
    if not low.isdigit() or (high and not high.isdigit()):
        return None
    if int(low) > MAX_REPEAT or (high and int(high) > MAX_REPEAT):
        raise Re2Error(f"a repeat count over {MAX_REPEAT} ({{{body}}})")
    if high and int(high) < int(low):
        raise Re2Error(f"a repeat range that runs backwards ({{{body}}})")
    r.i = j + 1
    return "{" + body + "}"


def read_group(r: Reader) -> str:
    """After `(`: a plain, named or flag group."""
    if r.peek() != "?":
        return "("
    r.take()
    if (r.peek() == "P" and r.peek(1) == "<") or (r.peek() == "<" and r.peek(1) not in "=!"):
        name_start = r.i
        end = r.p.find(">", r.i)
        if end < 0:
            raise Re2Error("a group name without its closing >")
        r.i = end + 1
        return "(?" + r.p[name_start : end + 1]
    flags = ""
    while r.peek() not in (")", ":", ""):
        flags += r.take()
    if not flags.replace("-", "") and flags != "":
        raise Re2Error("an empty flag group")
    bad = set(flags.replace("-", "")) - RE2_FLAGS
    if bad or (not flags and r.peek() != ":") or flags.count("-") > 1:
        raise Re2Error(_group_refusal(flags))
    return "(?" + flags + r.take()


def _group_refusal(flags: str) -> str:
    kinds = {"=": "look-ahead", "!": "look-ahead", "<": "look-behind", "#": "a comment group"}
    kind = kinds.get(flags[:1], f"the flags (?{flags}) (RE2 has i, m, s and U)")
    return f"{kind} is not supported (RE2 syntax)"


def to_rust(pattern: str) -> str:
    """`pattern` (RE2 syntax and meaning) as a Rust-regex pattern with the same meaning."""
    r = Reader(pattern)
    out: list[str] = []
    while not r.done():
        c = r.take()
        if c == "\\":
            out.append(read_escape(r, in_class=False))
        elif c == "[":
            out.append(read_class(r))
        elif c == "(":
            out.append(read_group(r))
        elif c == "{":
            r.i -= 1
            rep = read_repeat(r)
            if rep is None:
                r.i += 1
                out.append("\\{")
            else:
                out.append(rep)
        elif c == "}":
            out.append("\\}")
        elif c in "\n\t" or c.isalnum() or c in ").|*+?^$ ":
            out.append(c)
        else:
            out.append(escaped_literal(c))
    return "".join(out)
