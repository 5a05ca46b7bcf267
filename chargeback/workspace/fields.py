"""The small typed checks every workspace item is built from.

A converter takes one YAML value and returns it typed, or raises BadValue with
a message that completes "'key' ..."; Item.get turns that into a Problem at the
key's line, so one bad value never stops the rest of the checks. Items,
settings and the loader all share these, so a field reads the same wherever it
appears.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from chargeback.errors import Problem
from chargeback.workspace.limits import (
    MAX_DATE,
    MAX_DAYS,
    MAX_ID,
    MAX_PRIORITY,
    MAX_REGEX,
    MAX_TEXT,
    MIN_DATE,
    address_problem,
    bad_char,
    clean_message,
    money_problem,
    shown,
)
from chargeback.workspace.model import Place
from chargeback.workspace.yamlio import DateText, YList, YMap

ID_PATTERN = re.compile(r"[a-z0-9_-]+")  # always fullmatch: "$" would let a final newline in
DATE_PATTERN = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
MONTH_PATTERN = re.compile(r"[0-9]{4}-(0[1-9]|1[0-2])")

T = TypeVar("T")


def suggest(word: str, choices: Iterable[str]) -> str:
    """A ` (did you mean 'x'?)` hint for typos, or ''."""
    if len(str(word)) > 100:  # no word a user meant is that long
        return ""
    close = difflib.get_close_matches(str(word), list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


class Collector:
    """Gathers problems; every check records and carries on instead of raising."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def add(self, path: Path | None, line: int | None, message: str) -> None:
        """Record one problem; the loader sorts them by file and line at the end."""
        self.problems.append(Problem(clean_message(message), path, line))


@dataclass
class Item:
    """One mapping (a department, a rule, ...) being checked, with its label for messages."""

    ck: Collector
    node: YMap
    label: str

    @property
    def path(self) -> Path | None:
        """The file the mapping came from (None for text not read from a file)."""
        return self.node.path

    def place(self, key: str | None = None) -> Place:
        """Where the item (or one of its keys) stands, for the model and later messages."""
        line = self.node.line_of(key) if key is not None else self.node.line
        return Place(self.node.path or Path("?"), line)

    def error(self, key: str | None, message: str) -> None:
        """A problem at `key`'s line (the item's own line for None), prefixed by the label."""
        line = self.node.line_of(key) if key is not None else self.node.line
        prefix = f"{self.label}: " if self.label else ""
        self.ck.add(self.node.path, line, prefix + message)

    def check_keys(self, allowed: Iterable[str]) -> None:
        """Flag unknown keys, with a did-you-mean hint, since a typo would be silently ignored."""
        allowed = tuple(allowed)
        for key in self.node:
            if key not in allowed:
                self.error(key, f"unknown key '{shown(key)}'{suggest(str(key), allowed)}")

    def get(self, key: str, conv: Callable[[Any], T], default: T, required: bool = False) -> T:
        """`key` converted by `conv`, or `default` (recording why) so checking carries on."""
        if key not in self.node or self.node[key] is None:
            if required:
                self.error(None, f"missing required key '{key}'")
            return default
        try:
            return conv(self.node[key])
        except BadValue as exc:
            self.error(key, f"{key}: {exc}")
        except (ArithmeticError, ValueError, TypeError, OverflowError):
            # a converter's own limit missed a case: still a located refusal, never a crash
            self.error(key, f"{key}: '{shown(self.node[key])}' cannot be read here")
        return default

    def sub(self, key: str, label: str | None = None) -> Item | None:
        """The nested mapping at `key` as an Item, or None when absent or not a mapping."""
        value = self.node.get(key)
        if value is None:
            return None
        if not isinstance(value, YMap):
            self.error(key, f"'{key}' must be a mapping")
            return None
        return Item(self.ck, value, label if label is not None else self.label)


class BadValue(Exception):
    """A value failed its type check; the message completes "'key' ..."."""


def as_text(value: Any, limit: int = MAX_TEXT) -> str:
    """Any scalar as one line of text within `limit` characters; a mapping, list or yes/no is
    refused as a likely mistake, and so is a control character (tab, line break, escape, ...),
    since texts reach CSV cells, PDFs and e-mail headers."""
    if isinstance(value, bool | YMap | YList) or not isinstance(value, str | int | Decimal):
        raise BadValue(
            "must be text" + (f", not {shown(value)}" if isinstance(value, bool) else "")
        )
    text = str(value)
    if len(text) > limit:
        raise BadValue(f"is {len(text):,} characters long; at most {limit:,} are read")
    bad = bad_char(text)
    if bad:
        raise BadValue(
            f"'{shown(text)}' holds {bad}: write it on one line without control characters"
        )
    return text


def _as_id_text(value: Any) -> str:
    """An id: text as written, so never a YAML number (1_000 is read 1000) or unquoted date."""
    if isinstance(value, int | Decimal) and not isinstance(value, bool):
        raise BadValue(
            f'{shown(value)} is read as a number; write an id as text, in quotes: "{shown(value)}"'
        )
    if isinstance(value, DateText):
        raise BadValue(
            f'{shown(value)} is read as a date; write an id as text, in quotes: "{shown(value)}"'
        )
    return as_text(value, MAX_ID)


def as_ident(value: Any) -> str:
    """Department ids name output files and folders, so a-z, 0-9, '_' and '-' only."""
    text = _as_id_text(value)
    if not ID_PATTERN.fullmatch(text):
        raise BadValue(f"'{shown(text)}' must use only a-z, 0-9, '_' and '-'")
    return not_reserved(text)


def not_reserved(text: str) -> str:
    """'unattributed' names the ledger's line for what no decision explains (SPEC 5)."""
    if text == "unattributed":
        raise BadValue(
            "'unattributed' is reserved for the ledger's unattributed line; pick another id"
        )
    return text


def as_date(value: Any) -> date:
    """A YYYY-MM-DD date between MIN_DATE and MAX_DATE, so no window or lookback leaves the
    calendar; the shape is checked first so 2026-3-1 is not guessed at."""
    text = as_text(value)
    if not DATE_PATTERN.fullmatch(text):
        raise BadValue(f"'{shown(text)}' is not a date (YYYY-MM-DD)")
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise BadValue(f"'{text}' is an impossible date") from None
    if not MIN_DATE <= day <= MAX_DATE:
        raise BadValue(f"{text} is outside the dates chargeback reads ({MIN_DATE} to {MAX_DATE})")
    return day


def as_name(value: Any) -> str:
    """Decision and rule ids: any text without surrounding blanks (SPEC limits only departments)."""
    text = _as_id_text(value)
    if not text.strip() or text != text.strip():
        raise BadValue(f"'{shown(text)}' must be non-empty text without leading or trailing blanks")
    return text


def as_month(value: Any) -> str:
    """A YYYY-MM period in the years dates may have, kept as text (compared and joined as text)."""
    text = as_text(value)
    if not MONTH_PATTERN.fullmatch(text):
        raise BadValue(f"'{shown(text)}' is not a month (YYYY-MM)")
    if not MIN_DATE.year <= int(text[:4]) <= MAX_DATE.year:
        raise BadValue(
            f"{text} is outside the months chargeback reads "
            f"({MIN_DATE.year}-01 to {MAX_DATE.year}-12)"
        )
    return text


_NOT_FINITE = ("nan", "inf", "infinity")


def as_money(value: Any) -> Decimal:
    """An exact Decimal amount (never float), so charges add up to the cent; within the money
    limits (below 10^15, at most 12 decimal places), so exact fractions stay small and fast."""
    if isinstance(value, bool | YMap | YList) or value is None:
        raise BadValue("must be a number")
    if isinstance(value, str) and value.strip().lower().lstrip("+-.") in _NOT_FINITE:
        raise BadValue(f"'{shown(value)}' is not a finite number")
    try:
        # no thousands separators: "0,40" may be a decimal comma, refused rather than misread
        amount = Decimal(value.strip()) if isinstance(value, str) else Decimal(value)
    except (InvalidOperation, TypeError, ValueError):
        raise BadValue(f"'{shown(value)}' is not a number") from None
    if not amount.is_finite():
        raise BadValue(f"'{shown(value)}' is not a finite number")
    problem = money_problem(amount)
    if problem:
        raise BadValue(f"{shown(value)} {problem}")
    return amount


def as_non_negative(value: Any) -> Decimal:
    """Rates and pools: a negative cost would pay departments for contacts."""
    amount = as_money(value)
    if amount < 0:
        raise BadValue(f"must not be negative (got {shown(value)})")
    return amount


def int_between(low: int, high: int, what: str = "") -> Callable[[Any], int]:
    """A converter for a whole number in [low, high]; yes/no and 1.5 are refused, not truncated."""

    def conv(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise BadValue(f"'{shown(value)}' must be a whole number{what}")
        if not low <= value <= high:
            raise BadValue(f"must be from {low:,} to {high:,}{what} (got {shown(value)})")
        return value

    return conv


as_priority = int_between(-MAX_PRIORITY, MAX_PRIORITY)  # larger wins under overlap: priority
as_offset_days = int_between(-MAX_DAYS, MAX_DAYS, " days")  # a window's start offset
as_positive_int = int_between(1, MAX_DAYS, " days")  # day counts: zero would make an empty window


def as_share(value: Any) -> Decimal:
    """A rule's share of a contact: above 0 (else it does nothing) and at most 1."""
    share = as_money(value)
    if not Decimal(0) < share <= Decimal(1):
        raise BadValue(f"must be more than 0 and at most 1 (got {shown(value)})")
    return share


def as_level(value: Any) -> Decimal:
    """A range's confidence level: strictly between 0 and 1 (0.8 for an 80% range)."""
    level = as_money(value)
    if not Decimal(0) < level < Decimal(1):
        raise BadValue(f"must be more than 0 and less than 1, such as 0.8 (got {shown(value)})")
    return level


def one_of(choices: tuple[str, ...]) -> Callable[[Any], str]:
    """A converter for a fixed set of words, naming them all when the value is not one."""

    def conv(value: Any) -> str:
        text = as_text(value)
        if text not in choices:
            raise BadValue(
                f"'{shown(text)}' is not one of {', '.join(choices)}{suggest(text, choices)}"
            )
        return text

    return conv


def any_of(value: Any) -> tuple[str, ...]:
    """A scalar or a list of scalars; an empty list would match nothing, so it is refused."""
    items = value if isinstance(value, YList) else [value]
    if isinstance(value, YMap):
        raise BadValue("must be a value or a list of values")
    out = []
    for item in items:
        if item is None or isinstance(item, YMap | YList):
            raise BadValue("must list plain values")
        out.append(str(item).lower() if isinstance(item, bool) else as_text(item))
    if not out:
        raise BadValue("is an empty list and would match nothing")
    return tuple(out)


def as_strings(value: Any) -> tuple[str, ...]:
    """One text or a list of texts (outcomes): a single value needs no list."""
    items = value if isinstance(value, YList) else [value]
    return tuple(as_text(item) for item in items)


def as_address(value: Any) -> str:
    """One plain e-mail address: it goes into a To header and the SMTP envelope as written."""
    if not isinstance(value, str):
        raise BadValue(f"{shown(value)} must be an e-mail address such as lead@example.com")
    text = as_text(value, 254)
    problem = address_problem(text)
    if problem:
        raise BadValue(f"'{shown(text)}' {problem}")
    return text


def as_addresses(value: Any) -> tuple[str, ...]:
    """One address or a list of them (recipients); each is checked, and named when wrong."""
    items = value if isinstance(value, YList) else [value]
    out: list[str] = []
    for index, item in enumerate(items):
        try:
            out.append(as_address(item))
        except BadValue as exc:
            where = f"item {index + 1}: " if isinstance(value, YList) else ""
            raise BadValue(f"{where}{exc}") from None
    return tuple(out)


def as_path(value: Any) -> str:
    """A file, glob or folder name (contacts, orders, output): text, not empty, and no
    password inside a URL, since credentials come from the environment (SPEC 10)."""
    text = as_text(value)
    if not text.strip():
        raise BadValue("must name a file or folder, not be empty")
    if "://" in text:
        try:
            password = urlsplit(text).password
        except ValueError:
            raise BadValue(f"'{shown(text)}' is not a valid address") from None
        if password is not None:
            raise BadValue(
                "holds a password: credentials are never kept in a file; give them in the "
                "environment (for PostgreSQL, PGPASSWORD) and leave them out of the address"
            )
    return text


def as_timezone(value: Any) -> str:
    """An IANA zone name both Python and polars know, checked now so a typo fails here."""
    name = as_text(value, 100)
    try:
        ZoneInfo(name)
        known = True
    except (ZoneInfoNotFoundError, ValueError, OSError):
        known = False
    if known:
        import polars as pl

        try:
            pl.Series([date(2026, 1, 1)]).cast(pl.Datetime("us")).dt.replace_time_zone(name)
        except (pl.exceptions.PolarsError, pl.exceptions.PanicException):
            known = False
    if not known:
        raise BadValue(
            f"'{shown(name)}' is not an IANA time zone (e.g. Europe/Berlin, UTC)"
        ) from None
    return name


def as_regex(value: Any) -> str:
    """A pattern the matching engine accepts, so a bad one fails at load, not mid-run."""
    pattern = as_text(value, MAX_REGEX)
    problem = regex_problem(pattern)
    if problem:
        raise BadValue(f"is not a valid regular expression: {problem}")
    return pattern


def regex_problem(pattern: str) -> str | None:
    """RE2's grammar first (SPEC 4), then the engine that will run it (Rust regex)."""
    import polars as pl

    from chargeback.workspace.re2 import Re2Error, to_rust

    try:
        translated = to_rust(pattern)
    except Re2Error as exc:
        return str(exc)
    try:
        pl.Series([""], dtype=pl.String).str.contains("(?i)" + translated)
    except (pl.exceptions.PolarsError, pl.exceptions.PanicException) as exc:
        lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip().startswith("error:")]
        return lines[0].removeprefix("error:").strip() if lines else "rejected by the regex engine"
    return None
