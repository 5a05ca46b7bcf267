"""Hostile inputs for tests/test_fuzz.py (issue 12, part 3): workspaces and contact tables.

Every case starts from a known-good workspace (base_docs: rules/org.yaml,
rules/main.yaml, chargeback.yaml; contacts.csv, orders.csv) and changes a few
things in it. Three families:

- hostile_workspaces: one to three YAML leaves or subtrees replaced by hostile
  values (odd types, extreme numbers, extreme and impossible dates, control
  characters, long and unusual text, deep nesting, alias bombs), keys deleted
  or unknown ones added, parts moved to the wrong place; now and then a file's
  text or bytes damaged (truncated, a line doubled or dropped, a BOM, UTF-16, a
  stray byte, a tab indent) or an odd file added under rules/.
- hostile_contact_workspaces: the good YAML; contact cells replaced by hostile
  values (numbers, timestamps with offsets, control characters, quotes,
  empties), duplicate ids, ragged rows, hostile headers, and byte damage (NUL,
  CR line ends, invalid UTF-8, an open quote, UTF-16).
- extreme_but_valid: values the contract allows at their extremes (rates and
  pools, windows and lookbacks, shares, priorities, timezones, offsets, handle
  times), so that most runs succeed and their ledgers can be checked.

Values a Python structure cannot say in YAML (an unquoted `2026-02-30`, `.nan`,
`1e999999`, a deep `[[[...]]]`) are `Raw` text, written verbatim in their place.
A case's `notes` say what was changed; they are what a failing example prints.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from hypothesis import strategies as st


@dataclass(frozen=True)
class Raw:
    """YAML text written verbatim in place of a value (or a key)."""

    text: str


# ------------------------------------------------------------------ the good workspace

BASE_ORG: dict[str, Any] = {
    "departments": [
        {
            "id": "billing",
            "name": "Billing & Payments",
            "cost_center": "CC-4100",
            "recipients": ["billing-lead@example.com"],
        },
        {"id": "product", "name": "Product", "cost_center": "04100"},
    ],
    "costs": {
        "currency": "USD",
        "method": "rates",
        "channels": {
            "phone": {"per_contact": Raw("0.40"), "per_minute": Raw("1.05")},
            "chat": {"per_contact": Raw("0.15"), "per_minute": Raw("0.55")},
            "email": {"per_contact": Raw("3.80")},
        },
        "default": {"per_contact": Raw("5.00"), "per_minute": Raw("0.0")},
    },
}

POOL_COSTS: dict[str, Any] = {
    "currency": "USD",
    "method": "pool",
    "pool": {"by_period": {Raw("2026-02"): Raw("900.00"), Raw("2026-03"): Raw("1250.01")}},
}

BASE_MAIN: dict[str, Any] = {
    "decisions": [
        {
            "id": "late-fee-2026",
            "title": "$15 late payment fee",
            "kind": "fee",
            "department": "billing",
            "effective": Raw("2026-03-01"),
            "ends": Raw("2026-12-31"),
            "revenue": {"monthly": Raw("85.00")},
        },
        {
            "id": "app-launch",
            "title": "New app",
            "kind": "launch",
            "department": "product",
            "effective": Raw("2026-03-15"),
            "revenue": {"by_period": {Raw("2026-03"): Raw("10.00"), Raw("2026-04"): Raw("20.50")}},
        },
    ],
    "rules": [
        {
            "id": "late-fee-disputes",
            "decision": "late-fee-2026",
            "match": {
                "reason": ["billing.fee_dispute", "billing.late_fee*"],
                "channel": ["phone", "chat"],
            },
            "window": {"start_offset_days": 0, "days": 90},
            "share": Raw("1.0"),
            "priority": 1,
            "baseline": {"lookback_days": 28},
        },
        {
            "id": "late-fee-text",
            "decision": "late-fee-2026",
            "match": {"text": ["late fee"], "text_regex": "late\\s+fees?"},
            "share": Raw("0.5"),
        },
        {
            "id": "app-tags",
            "decision": "app-launch",
            "match": {"tags": ["app", "login"], "fields": {"plan": ["basic", "plus*"]}},
            "window": {"start_offset_days": -3, "days": 30},
        },
    ],
}

CONTROL_RULE: dict[str, Any] = {
    "id": "app-control",
    "decision": "app-launch",
    "match": {"reason": ["tech.*"]},
    "baseline": {"method": "control", "lookback_days": 30, "interval": Raw("0.8")},
}

BASE_SETTINGS: dict[str, Any] = {
    "company": "Acme",
    "contacts": "contacts.csv",
    "orders": "orders.csv",
    "timezone": "America/New_York",
    "overlap": "split",
    "output": "reports",
    "columns": {"contact_id": "Ticket ID"},
    "tags_separator": "|",
    "value": {
        "sale_outcomes": ["sale"],
        "save_outcomes": ["saved"],
        "save_value": Raw("250.00"),
        "repeat_window_days": 7,
        "horizons_days": [30, 180],
    },
}

CONTACT_HEADER = [
    "Ticket ID", "started_at", "channel", "reason", "tags", "text", "handle_seconds",
    "customer_id", "outcome", "revenue", "plan",
]  # fmt: skip
CHANNELS = ["phone", "chat", "email", "sms", "social", "Phone Call", "Web", " chat "]
# SPEC 1's `values:`, channel names of an export mapped to the workspace's (chat -> email
# too: a value is mapped once, so a mapped "Web" is priced as chat, not as email)
VALUE_MAPS = {"channel": {"Phone Call": "phone", "Web": "chat", "chat": "email"}}
REASONS = ["billing.late_fee", "billing.fee_dispute", "tech.login", "tech.setup", "account.other"]
TEXTS = ["", "about the late fee", "Late  Fees again", "app will not start", "hello"]
ORDERS_CSV = (
    "customer_id,ordered_at,amount\n"
    "k1,2026-01-20T10:00:00,120.00\nk2,2026-03-10T10:00:00,35.5\nk1,2026-04-02,-10\n"
)


# ----------------------------------------------------------------- hostile values

HUGE = "9" * 400
DEEP = 3000  # deeper than PyYAML's recursion allows

ODD_SCALARS: list[Any] = [
    None, True, False, 0, 1, -1, 2**63, -(2**63), 10**30, "", " ", "0", "-0", "1",
    "true", "no", "NO", "null", "~nobody-here", "nan", "None", "unattributed", "*", "**", "x*",
    ".", "..",
    "/nonexistent", "/dev/null", "a/b", "con", "\x00", "a\x00b", "\t", "\r\n",
    "\x1b[31mred", "\u202egnp.exe", "\ud800", "é", "Ω≈ç√", "💥🔥", "\ufeffbom", "\u0085",
    "[", "{", "'", '"', "\\", "%s%n", "{0}", "{{x}}", "${HOME}", "<script>alert(1)</script>",
    "=HYPERLINK(\"http://x\")", "#comment", "a: b", "- x", "x" * 100_000, "é" * 20_000,
    "line\nbreak", "Europe/Berlin", "Factory", "right/UTC", "localtime", "Etc/GMT+14",
    "Etc/GMT-14", "UTC", "priority", "split", "pool", "rates", "control", "flat",
    "billing", "product", "late-fee-2026", "app-launch", "phone", "chat", "|", ";", ",",
    "contacts.csv", "orders.csv", "rules", "Ticket ID", "plan", "started_at",
    "_row", "_file", "local", "period", "hs_us",
]  # fmt: skip

RAW_SCALARS = [
    "1e308", "1e309", "-1e308", "1e26", "1.0e+26", "1e-400", "0.1e-30", "1e999999",
    "1e-999999", "1e999999999", "-0", "-0.0", "+0.0", "0.0", ".nan", ".NaN", ".inf",
    "-.inf", "+.inf", "0x10", "0o17", "017", "1_000", "1_0.5", "1:30", "0.1234567890123456789",
    "0." + "3" * 300, HUGE, "-" + HUGE, "1." + HUGE, "1.5", "0.000000001", "0.005", "0.015",
    "1e3", "1E3", "1e+3", "5e-3", "yes", "No", "on", "OFF", "~", "null", "!!binary aGVsbG8=",
    "!!python/object:os.system x", "!!set {a, b}", "!!omap [a: 1]", "!!timestamp 2026-01-01",
    "!!float 1", "!!int 1", "!!str 1", "!!bool yes", "!!null ''", "&x 1", "*nope", "? a",
    "0001-01-01", "9999-12-31", "0000-01-01", "10000-01-01", "2026-02-29", "2024-02-29",
    "2026-02-30", "2026-13-01", "2026-00-10", "2026-3-1", "2026-03-01T10:00:00",
    "2026-03-01 10:00:00+05:00", "2026-03", "2026-W10", "0001-01", "9999-12", "2026-13",
    "'2026-03-01'", "\"2026-03-01 \"", "[]", "{}", "[[]]", "[{}]", "[null]", "{a: 1}",
    "{? [a]: 1}", "[a, [b, [c]]]", "{null: 1}", "{1: 2, true: 3}", "|", ">", "-", "'",
    "\"unterminated", "[unclosed", "{unclosed: 1", "a: b: c", "\t1", "\x00", "\x07", "\x85",
    "'\ud800'", "\"\\ud800\"", "\"\\x00\"", "\"\\u202e\"",
]  # fmt: skip


def _alias_bomb(levels: int = 8, width: int = 9) -> str:
    """A billion laughs, small: 9**8 values once every alias is followed."""
    parts = ["&l0 [x, x, x, x, x, x, x, x, x]"]
    for i in range(1, levels):
        parts.append(f"&l{i} [" + ", ".join([f"*l{i - 1}"] * width) + "]")
    return "[" + ", ".join(parts) + "]"


NESTED_RAWS = [
    "[" * 200 + "]" * 200,
    "[" * DEEP + "]" * DEEP,
    "{a: " * 200 + "1" + "}" * 200,
    "{a: " * DEEP + "1" + "}" * DEEP,
    _alias_bomb(),
]


def odd_trees() -> st.SearchStrategy[Any]:
    leaves = st.one_of(
        st.sampled_from(ODD_SCALARS[:40]),
        st.integers(-(2**70), 2**70),
        st.text(max_size=8),
    )
    return st.recursive(
        leaves,
        lambda kids: st.one_of(
            st.lists(kids, max_size=3), st.dictionaries(st.text(max_size=5), kids, max_size=3)
        ),
        max_leaves=6,
    )


def hostile_values() -> st.SearchStrategy[Any]:
    """A value to put where the good workspace had something else."""
    return st.one_of(
        st.sampled_from(ODD_SCALARS),
        st.sampled_from(RAW_SCALARS).map(Raw),
        st.sampled_from(NESTED_RAWS).map(Raw),
        st.integers(),
        st.integers(-(10**40), 10**40),
        st.floats(),
        st.decimals(allow_nan=False, allow_infinity=False).map(lambda d: Raw(str(d))),
        st.dates().map(lambda d: Raw(d.isoformat())),
        st.tuples(st.integers(0, 10000), st.integers(0, 14), st.integers(0, 33)).map(
            lambda t: Raw(f"{t[0]:04d}-{t[1]:02d}-{t[2]:02d}")
        ),
        st.tuples(st.integers(0, 10000), st.integers(0, 14)).map(
            lambda t: Raw(f"{t[0]:04d}-{t[1]:02d}")
        ),
        st.text(max_size=20),
        st.text(st.characters(codec="utf-8"), min_size=1, max_size=5).map(lambda s: s * 400),
        odd_trees(),
    )


# --------------------------------------------------------------- mutating documents

Path_ = tuple[Any, ...]


def node_paths(doc: Any, prefix: Path_ = ()) -> list[Path_]:
    """Every value's path below doc (subtrees and leaves), the root excluded."""
    out: list[Path_] = []
    if isinstance(doc, dict):
        items: list[tuple[Any, Any]] = list(doc.items())
    elif isinstance(doc, list):
        items = list(enumerate(doc))
    else:
        return out
    for key, value in items:
        out.append((*prefix, key))
        out.extend(node_paths(value, (*prefix, key)))
    return out


def map_paths(doc: Any, prefix: Path_ = ()) -> list[Path_]:
    """Paths of the mappings in doc, the root included."""
    out: list[Path_] = [prefix] if isinstance(doc, dict) else []
    children = (
        doc.items() if isinstance(doc, dict) else enumerate(doc) if isinstance(doc, list) else ()
    )
    for key, value in children:
        out.extend(map_paths(value, (*prefix, key)))
    return out


def _parent(doc: Any, path: Path_) -> Any:
    for key in path[:-1]:
        doc = doc[key]
    return doc


def short(value: Any, limit: int = 80) -> str:
    """A value's repr cut to `limit` characters, saying how long it was."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} chars)"


@st.composite
def mutated(draw: st.DrawFn, base: Any, notes: list[str], max_changes: int = 3) -> Any:
    """base with one to max_changes of its values replaced, deleted or added to.

    Each change is said in `notes` (path and value), which is what a failing case prints.
    """
    doc = copy.deepcopy(base)
    for _ in range(draw(st.integers(1, max_changes))):
        paths = node_paths(doc)
        how = draw(st.sampled_from(["replace", "replace", "replace", "swap", "delete", "add"]))
        if how == "add" or not paths:
            where = draw(st.sampled_from(map_paths(doc) or [()]))
            target = _parent(doc, (*where, None))
            if isinstance(target, dict):
                key = draw(
                    st.one_of(
                        st.sampled_from(["unknown", "id", "match", "costs", "x"]),
                        st.text(max_size=6),
                        st.sampled_from(RAW_SCALARS[:12]).map(Raw),
                    )
                )
                target[key] = draw(hostile_values())
                notes.append(f"add {where} {short(key)}: {short(target[key])}")
            continue
        path = draw(st.sampled_from(paths))
        parent = _parent(doc, path)
        if how == "delete":
            del parent[path[-1]]
            notes.append(f"delete {path}")
        elif how == "swap":  # another part of the same document, in the wrong place
            other = draw(st.sampled_from(paths))
            parent[path[-1]] = copy.deepcopy(_parent(doc, other)[other[-1]])
            notes.append(f"set {path} to the value at {other}")
        else:
            parent[path[-1]] = draw(hostile_values())
            notes.append(f"set {path} = {short(parent[path[-1]])}")
    return doc


def dump_yaml(doc: Any) -> str:
    """YAML text of doc, with every Raw written verbatim."""
    raws: list[str] = []

    def swap(node: Any) -> Any:
        if isinstance(node, Raw):
            raws.append(node.text)
            return f"RAWTOKEN{len(raws) - 1}X"
        if isinstance(node, dict):
            return {swap(k): swap(v) for k, v in node.items()}
        if isinstance(node, list):
            return [swap(v) for v in node]
        return node

    text = yaml.safe_dump(
        swap(doc), allow_unicode=True, sort_keys=False, width=10**9, default_flow_style=False
    )
    for i in reversed(range(len(raws))):  # RAWTOKEN12X before RAWTOKEN1X
        text = text.replace(f"RAWTOKEN{i}X", raws[i])
    return text


@st.composite
def damaged(draw: st.DrawFn, text: str, notes: list[str]) -> bytes:
    """The file's bytes, damaged as a file on a disk gets damaged (said in `notes`)."""
    how = draw(st.sampled_from([
        "truncate", "dup_line", "drop_line", "tab", "bom", "utf16", "latin1", "byte", "nul",
        "empty", "crlf", "cr", "docs", "list", "scalar",
    ]))  # fmt: skip
    notes.append(f"damage: {how}")
    data = text.encode("utf-8", "surrogatepass")
    lines = text.splitlines(keepends=True)
    if how == "truncate":
        return data[: draw(st.integers(0, max(0, len(data) - 1)))]
    if how in ("dup_line", "drop_line", "tab") and lines:
        i = draw(st.integers(0, len(lines) - 1))
        if how == "dup_line":
            lines.insert(i, lines[i])
        elif how == "drop_line":
            del lines[i]
        else:
            lines[i] = "\t" + lines[i].lstrip(" ")
        return "".join(lines).encode("utf-8", "surrogatepass")
    if how == "bom":
        return b"\xef\xbb\xbf" + data
    if how == "utf16":
        return text.encode("utf-16", "surrogatepass")
    if how == "latin1":
        return text.encode("latin-1", "replace") + "café: é\n".encode("latin-1")
    if how in ("byte", "nul"):
        i = draw(st.integers(0, len(data)))
        return data[:i] + (b"\xff\xfe" if how == "byte" else b"\x00") + data[i:]
    if how == "empty":
        return draw(st.sampled_from([b"", b"---\n", b"# nothing\n", b"~\n", b"\n\n"]))
    if how == "crlf":
        return data.replace(b"\n", b"\r\n")
    if how == "cr":
        return data.replace(b"\n", b"\r")
    if how == "docs":
        return data + b"---\n" + data
    if how == "list":
        return b"- " + data.replace(b"\n", b"\n  ")
    if how == "scalar":
        return b"just text\n"
    return data


# ------------------------------------------------------------------------- contacts


@st.composite
def good_rows(draw: st.DrawFn) -> list[list[str]]:
    rows = []
    for i in range(draw(st.integers(1, 25))):
        month = draw(st.sampled_from([1, 2, 3, 3, 4, 5]))
        day = draw(st.integers(1, 28))
        hour = draw(st.integers(0, 23))
        offset = draw(st.sampled_from(["", "", "Z", "+01:00", "-05:00", "+14:00", "-12:00"]))
        sep = draw(st.sampled_from(["T", " "]))
        rows.append([
            f"t{i}",
            f"2026-{month:02d}-{day:02d}{sep}{hour:02d}:{draw(st.integers(0, 59)):02d}:00{offset}",
            draw(st.sampled_from(CHANNELS)),
            draw(st.sampled_from(REASONS)),
            draw(st.sampled_from(["", "app", "login|app", " fee | late ", "|"])),
            draw(st.sampled_from(TEXTS)),
            draw(st.sampled_from(["", "0", "59", "61.5", "3600", "0.25"])),
            draw(st.sampled_from(["", "k1", "k2", "k3"])),
            draw(st.sampled_from(["", "resolved", "sale", "saved"])),
            draw(st.sampled_from(["", "0", "19.99", "-5"])),
            draw(st.sampled_from(["", "basic", "plus", "plusplus", "pro"])),
        ])  # fmt: skip
    return rows


HOSTILE_CELLS = [
    "", " ", "  \t ", "\x00", "a\x00b", "\r", "\n", "\r\n", '"', '""', "'", "a,b", "a\"b",
    "x" * 100_000, "é", "💥", "\u202e", "\ufeff", "\x1c", "\x85", "\u00a0", "NULL", "null",
    "None", "NaN", "nan", "-nan", "inf", "-inf", "Infinity", "1e308", "1e309", "-1e308",
    "1e26", "1e-400", "-0", "-0.0", "0", "+5", ".5", "5.", "1e3", "1_000", "1,5", "0x10",
    " 60 ", "\u0663", "\uff11\uff12", "31622400", "31622401", "31622400.0000001", "0.1234567890123",
    "0.0000005", "0.0000015", HUGE, "-1", "-1e-9", "9" * 20, "true", "=1+1", "-",
    "2026-03-01", "2026-03-01T00:00:00", "2026-03-01T00:00", "2026-03-01 23:59:59.999999999",
    "2026-03-01T10:00:00Z", "2026-03-01T10:00:00z", "2026-03-01T10:00:00+01:00",
    "2026-03-01T10:00:00+0100", "2026-03-01T10:00:00+01", "2026-03-01T10:00:00+14:00",
    "2026-03-01T10:00:00-12:00", "2026-03-01T10:00:00+23:59", "2026-03-01T10:00:00+24:00",
    "2026-03-01T10:00:00+99:99", "2026-03-01T10:00:00 +01:00", "2026-03-01T10:00:00UTC",
    "2026-03-01T10:00:00[Europe/Berlin]", "2026-02-29T10:00:00", "2024-02-29T10:00:00",
    "2026-02-30T10:00:00", "2026-13-01T10:00:00", "2026-03-01T24:00:00",
    "2026-03-01T23:59:60", "2026-03-01T25:00:00", "2026-3-1T1:2:3", "20260301T100000",
    "2026-W10-1", "2026-060", "0001-01-01T00:00:00", "0001-01-01T00:00:00+01:00",
    "0001-01-01T00:30:00+14:00", "0001-01-01", "9999-12-31T23:59:59",
    "9999-12-31T23:59:59-01:00", "9999-12-31T20:00:00-12:00", "9999-12-31", "0000-01-01",
    "10000-01-01T00:00:00", "-2026-03-01", "+2026-03-01", "1700000000", "1e9",
    "2026-03-01T10:00:00.123456789123+01:00", " 2026-03-01T10:00:00 ", "2026-03-01\tT10:00",
    "2026-11-01T01:30:00", "2026-03-08T02:30:00",
]  # fmt: skip

HOSTILE_HEADERS = [
    "", " ", "Ticket ID", "contact_id", "started_at", "channel", "handle_seconds", "tags",
    "_row", "_file", "local", "date", "period", "hs_us", "text_lower", "_bad", "_ts_text",
    "_raw_started_at", "_raw_handle_seconds", "\ufeffTicket ID", "Ticket ID ", "channel\x00",
    "é", "x" * 5000, "plan", "reason", "1", "",
]  # fmt: skip


@dataclass
class ContactTable:
    """A contacts file as rows of cells (what the oracle reads) and its bytes."""

    header: list[str]
    rows: list[list[str]]
    data: bytes
    clean: bool = True  # written by csv.writer without byte damage
    notes: list[str] = field(default_factory=list)


def write_csv(header: list[str], rows: list[list[str]], newline: str = "\n") -> bytes:
    """RFC 4180: a cell holding a comma, a quote or a line break (CR too) is quoted.

    (Python's csv module leaves a lone CR unquoted under LF line ends.)
    """

    def cell(text: str) -> str:
        if any(ch in text for ch in ',"\r\n'):
            return '"' + text.replace('"', '""') + '"'
        return text

    lines = [",".join(cell(c) for c in row) + newline for row in [header, *rows]]
    return "".join(lines).encode("utf-8", "surrogatepass")


def good_table(rows: list[list[str]]) -> ContactTable:
    return ContactTable(list(CONTACT_HEADER), rows, write_csv(CONTACT_HEADER, rows))


def put(row: list[str], index: int, value: str) -> None:
    """Set a cell, if the (maybe ragged) row has it."""
    if index < len(row):
        row[index] = value


@st.composite
def hostile_tables(draw: st.DrawFn) -> ContactTable:
    """The good rows with a few cells, rows, header names or bytes broken."""
    rows = draw(good_rows())
    header = list(CONTACT_HEADER)
    notes = []
    for _ in range(draw(st.integers(1, 4))):
        how = draw(st.sampled_from([
            *["cell"] * 6, "number", "stamp", "dup_id", "ragged", "header", "drop_col", "empty_row"
        ]))  # fmt: skip
        r = draw(st.integers(0, len(rows) - 1))
        notes.append(how)
        if how == "cell":
            c = draw(st.integers(0, len(header) - 1))
            if c < len(rows[r]):
                rows[r][c] = draw(st.one_of(st.sampled_from(HOSTILE_CELLS), st.text(max_size=12)))
        elif how == "number":
            value = draw(st.one_of(
                st.floats().map(repr),
                st.decimals(allow_nan=False).map(str),
                st.integers(-(10**30), 10**30).map(str),
                st.sampled_from(HOSTILE_CELLS[25:62]),
            ))  # fmt: skip
            put(rows[r], header.index("handle_seconds") if "handle_seconds" in header else 0, value)
        elif how == "stamp":
            value = draw(st.one_of(
                st.sampled_from(HOSTILE_CELLS[62:]),
                st.datetimes().map(lambda d: d.isoformat()),
                st.tuples(st.datetimes(), st.integers(-1439, 1439)).map(
                    lambda t: t[0].isoformat() + f"{'+' if t[1] >= 0 else '-'}"
                    f"{abs(t[1]) // 60:02d}:{abs(t[1]) % 60:02d}"
                ),
            ))  # fmt: skip
            put(rows[r], header.index("started_at") if "started_at" in header else 1, value)
        elif how == "dup_id":
            target = rows[draw(st.integers(0, len(rows) - 1))]
            if rows[r] and target:
                target[0] = rows[r][0]
        elif how == "ragged":
            rows[r] = rows[r][: draw(st.integers(0, len(rows[r])))] + draw(
                st.lists(st.sampled_from(["", "x", "1"]), max_size=3)
            )
        elif how == "header":
            header[draw(st.integers(0, len(header) - 1))] = draw(st.sampled_from(HOSTILE_HEADERS))
        elif how == "drop_col":
            c = draw(st.integers(0, len(header) - 1))
            del header[c]
            for row in rows:
                if c < len(row):
                    del row[c]
        else:
            rows.insert(r, [])
    data = write_csv(header, rows, draw(st.sampled_from(["\n", "\n", "\r\n"])))
    table = ContactTable(header, rows, data, notes=notes)
    how = draw(st.sampled_from(["none"] * 5 + [
        "bom", "nul", "latin1", "byte", "cr", "open_quote", "truncate", "no_newline", "header_only",
        "empty", "blank_lines", "utf16",
    ]))  # fmt: skip
    if how != "none":
        table.clean = False
        table.notes.append(how)
    if how == "bom":
        table.data = b"\xef\xbb\xbf" + data
    elif how in ("nul", "byte", "open_quote"):
        i = draw(st.integers(0, len(data)))
        table.data = (
            data[:i] + {"nul": b"\x00", "byte": b"\xff", "open_quote": b'"'}[how] + data[i:]
        )
    elif how == "latin1":
        table.data = data.replace(b"late", "lâte".encode("latin-1"))
    elif how == "cr":
        table.data = data.replace(b"\n", b"\r")
    elif how == "truncate":
        table.data = data[: draw(st.integers(0, len(data)))]
    elif how == "no_newline":
        table.data = data.rstrip(b"\r\n")
    elif how == "header_only":
        table.data = data.split(b"\n")[0] + b"\n"
    elif how == "empty":
        table.data = b""
    elif how == "blank_lines":
        table.data = data.replace(b"\n", b"\n\n")
    elif how == "utf16":
        table.data = data.decode("utf-8", "surrogatepass").encode("utf-16", "surrogatepass")
    return table


# ----------------------------------------------------------------------- workspaces


@dataclass
class Case:
    """A workspace to write (file name -> bytes), and what was done to the good one."""

    files: dict[str, bytes]
    table: ContactTable
    notes: list[str]
    extras: list[str] = field(default_factory=list)  # "<kind>:<file name>", see write_case
    existing_out: bool = False  # a previous run's output is in the folder

    def __repr__(self) -> str:
        data = re.sub(rb"(.)\1{40,}", lambda m: b"<%r x %d>" % (m[1], len(m[0])), self.table.data)
        lines = [*self.notes, f"contacts ({', '.join(self.table.notes) or 'good'}): {data!r}"]
        lines += [f"extra file: {e}" for e in self.extras]
        lines.append(f"existing output folder: {self.existing_out}")
        return "Case(\n  " + "\n  ".join(lines) + "\n)"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        """What hypothesis prints for a failing example: the changes, not every byte."""
        printer.text(repr(self))


def base_docs(
    pool: bool = False, control: bool = False, overlap: str = "split", values: bool = False
) -> dict[str, Any]:
    """The good workspace's three YAML documents, by file name."""
    org = copy.deepcopy(BASE_ORG)
    main = copy.deepcopy(BASE_MAIN)
    if pool:
        org["costs"] = copy.deepcopy(POOL_COSTS)
    if control:
        main["rules"].append(copy.deepcopy(CONTROL_RULE))
    settings = copy.deepcopy(BASE_SETTINGS)
    settings["overlap"] = overlap
    if values:
        settings["values"] = copy.deepcopy(VALUE_MAPS)
    return {"rules/org.yaml": org, "rules/main.yaml": main, "chargeback.yaml": settings}


@st.composite
def good_docs(draw: st.DrawFn, notes: list[str]) -> dict[str, Any]:
    pool = draw(st.booleans())
    control = draw(st.integers(0, 3)) == 0
    overlap = draw(st.sampled_from(["split", "priority"]))
    values = draw(st.booleans())
    notes.append(
        f"base: {'pool' if pool else 'rates'}, control rule {control}, overlap {overlap}, "
        f"values: {values}"
    )
    return base_docs(pool, control, overlap, values)


def render(docs: dict[str, Any], table: ContactTable) -> dict[str, bytes]:
    files = {name: dump_yaml(doc).encode("utf-8", "surrogatepass") for name, doc in docs.items()}
    files["contacts.csv"] = table.data
    files["orders.csv"] = ORDERS_CSV.encode()
    return files


@st.composite
def hostile_workspaces(draw: st.DrawFn) -> Case:
    """Good contacts, one or more YAML files of the good workspace broken."""
    notes: list[str] = []
    docs = draw(good_docs(notes))
    table = good_table(draw(good_rows()))
    broken = draw(st.lists(st.sampled_from(sorted(docs)), min_size=1, max_size=2, unique=True))
    for name in broken:
        notes.append(f"{name}:")
        docs[name] = draw(mutated(docs[name], notes))
    files = render(docs, table)
    if draw(st.integers(0, 4)) == 0:
        name = draw(st.sampled_from(broken))
        notes.append(f"{name}:")
        files[name] = draw(damaged(files[name].decode("utf-8", "surrogatepass"), notes))
    extras = []
    if draw(st.integers(0, 6)) == 0:
        extra = draw(st.sampled_from([
            "dir:rules/folder.yaml", "dangling:rules/gone.yaml", "empty:rules/empty.yml",
            "copy:rules/sub/again.yaml", "costs:rules/costs2.yaml", "comment:rules/c.yaml",
        ]))  # fmt: skip
        extras.append(extra)
    return Case(files, table, notes, extras, draw(st.booleans()))


@st.composite
def hostile_contact_workspaces(draw: st.DrawFn) -> Case:
    """The good YAML, the contacts broken."""
    notes: list[str] = []
    docs = draw(good_docs(notes))
    table = draw(hostile_tables())
    return Case(render(docs, table), table, notes, [], draw(st.booleans()))


EXTREME_MONEY = [
    "0", "0.0", "-0", "0.001", "0.005", "0.0149999", "0.000000000001", "1e-12", "1e14",
    "999999999999999.999999999999", "123456789012345.678901234567", "0.333333333333",
    "4999999999.995", "0.004999999999", "1_000.5",
    "1e26", "1e-30", "0." + "3" * 40,  # past the workspace's limits: refused, cleanly
]  # fmt: skip
EXTREME_HANDLE = [
    "1e-3", "0.000001", "0.0000005", "0.0000015", "0.4999996", "2592000", "2592000.000001",
    "31622400", "0.1234567", "1E3", " 7 ", "2.5e1", "0.333333", "86399.999999", "+12", "-0",
]  # fmt: skip
EXTREME_STAMPS = [
    "2026-03-01T00:00:00+14:00", "2026-02-28T23:59:59-12:00", "2026-03-31T23:30:00Z",
    "2026-04-01T00:00:00.000001+00:01", "2026-03-01", "2026-03-08T02:30:00",
    "2026-11-01T01:30:00", "2026-03-15 12:00", "2026-01-31T23:59:59.999999-03:30",
    "1900-01-01T00:00:00", "1900-01-01T00:30:00+14:00", "1900-01-01", "2199-12-31",
    "2199-12-31T23:59:59-12:00", "2199-12-31T23:59:59.999999", "2024-02-29T12:00:00",
    "2026-03-31T23:59:60", "2026-03-01T10:00:00 +01:00", "2026-3-1T9:5:0",
]  # fmt: skip
EXTREME_RULES: list[tuple[tuple[Any, ...], Any]] = [
    (("decisions", 0, "effective"), Raw("1900-01-01")),
    (("decisions", 1, "effective"), Raw("2199-12-31")),
    (("decisions", 0, "ends"), Raw("2026-03-01")),
    (("decisions", 1, "effective"), Raw("2026-01-01")),
    (("decisions", 1, "ends"), Raw("2199-12-31")),
    (("decisions", 0, "revenue"), {"monthly": Raw("999999999999999.99")}),
    (("decisions", 1, "revenue"), {"by_period": {Raw("2026-03"): Raw("-0.005")}}),
    (("rules", 0, "window"), {"start_offset_days": -36525, "days": 36525}),
    (("rules", 0, "window"), {"start_offset_days": 36525, "days": 1}),
    (("rules", 0, "baseline"), {"lookback_days": 36525}),
    (("rules", 0, "baseline"), {"lookback_days": 1}),
    (("rules", 0, "share"), Raw("0.000000000001")),
    (("rules", 1, "share"), Raw("0.999999999999")),
    (("rules", 1, "priority"), -1_000_000),
    (("rules", 2, "priority"), 1_000_000),
    (("rules", 2, "match"), {}),
    (("rules", 1, "match"), {"text_regex": "(?s).*"}),
]


@st.composite
def extreme_but_valid(draw: st.DrawFn) -> Case:
    """Values the contract allows, at their extremes: most of these runs succeed."""
    notes: list[str] = []
    docs = draw(good_docs(notes))
    costs = docs["rules/org.yaml"]["costs"]
    money = st.sampled_from(EXTREME_MONEY).map(Raw)
    if costs["method"] == "rates":
        for rate in [*costs["channels"].values(), costs["default"]]:
            for key in ("per_contact", "per_minute"):
                if draw(st.booleans()):
                    rate[key] = draw(money)
    else:
        costs["pool"] = {"monthly": draw(money)}
    notes.append(f"costs: {short(costs, 400)}")
    main = docs["rules/main.yaml"]
    for path, value in draw(st.lists(st.sampled_from(EXTREME_RULES), max_size=3)):
        _parent(main, path)[path[-1]] = copy.deepcopy(value)
        notes.append(f"rules/main.yaml: set {path} = {value!r}")
    settings = docs["chargeback.yaml"]
    settings["timezone"] = draw(st.sampled_from([
        "UTC", "Pacific/Kiritimati", "Pacific/Pago_Pago", "Asia/Kathmandu", "America/St_Johns",
        "Europe/Berlin", "Etc/GMT-14", "Australia/Lord_Howe", "America/New_York",
    ]))  # fmt: skip
    notes.append(f"timezone: {settings['timezone']}")
    rows = draw(good_rows())
    hs = CONTACT_HEADER.index("handle_seconds")
    ts = CONTACT_HEADER.index("started_at")
    for row in rows:
        if draw(st.integers(0, 2)) == 0:
            row[hs] = draw(st.sampled_from(EXTREME_HANDLE))
        if draw(st.integers(0, 2)) == 0:
            row[ts] = draw(st.one_of(
                st.sampled_from(EXTREME_STAMPS),
                st.tuples(st.integers(-1439, 1439), st.integers(1, 28)).map(
                    lambda t: f"2026-03-{t[1]:02d}T12:00:00{'+' if t[0] >= 0 else '-'}"
                    f"{abs(t[0]) // 60:02d}:{abs(t[0]) % 60:02d}"
                ),
            ))  # fmt: skip
    table = good_table(rows)
    return Case(render(docs, table), table, notes, [], draw(st.booleans()))


def write_case(root: Path, case: Case) -> None:
    """The case's workspace, in the folder root."""
    for name, data in case.files.items():
        target = root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    for extra in case.extras:
        kind, name = extra.split(":", 1)
        target = root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if kind == "dir":
            target.mkdir()
        elif kind == "dangling":
            target.symlink_to(root / "nowhere.yaml")
        elif kind == "empty":
            target.write_bytes(b"")
        elif kind == "copy":  # every id again, in another file
            target.write_bytes(case.files["rules/main.yaml"])
        elif kind == "costs":  # a second costs block
            target.write_bytes(b"costs:\n  method: rates\n  default: {per_contact: 1}\n")
        else:
            target.write_bytes(b"# only a comment\n")
