"""The limits every workspace value is read within, in one place (docs/security.md).

A workspace is read at the edge into typed values, and each kind of value has
a bound: files have a size, YAML a depth and an expanded size, texts a length
and no control characters, money a magnitude and a number of decimals, dates a
range and day counts a length. Inside the bounds every later step (exact
fractions, date arithmetic, file names, CSV, PDF and e-mail headers) is safe
by construction, so no step downstream has to guard against a hostile value.

The helpers here are pure; fields.py turns a broken bound into a located error.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date
from decimal import Decimal
from email.errors import HeaderParseError
from email.headerregistry import Address
from email.utils import getaddresses
from typing import Any

# Files.
MAX_FILE_BYTES = 10 * 1024 * 1024  # one YAML file
MAX_TOTAL_BYTES = 20 * 1024 * 1024  # every YAML file of a workspace together
MAX_FILES = 1000  # YAML files under rules/
# YAML structure.
MAX_DEPTH = 50  # nesting of mappings and lists (a real workspace needs 8)
MAX_EXPANDED = 2 * MAX_FILE_BYTES  # nodes + characters, with every alias followed
MAX_NUMBER_CHARS = 100  # digits a number may be written with
# Values.
MAX_TEXT = 1000  # characters in a name, title, match value, path, ...
MAX_REGEX = 10_000  # characters in a text_regex
MAX_ID = 100  # characters in an id (department ids name files)
MONEY_LIMIT = Decimal(10) ** 15  # amounts and rates stay below one quadrillion
MONEY_PLACES = 12  # decimal places an amount or rate may have
MIN_DATE = date(1900, 1, 1)  # the same years as contact data (chargeback.data.limits)
MAX_DATE = date(2199, 12, 31)
MAX_DAYS = 36_525  # a window, lookback, offset or horizon: at most 100 years
MAX_PRIORITY = 1_000_000  # |priority|
MAX_ITEMS = 10_000  # departments, decisions or rules in a workspace, each
MAX_HORIZONS = 10  # the value report's after-contact horizons
MAX_PROBLEMS = 200  # problems reported at once; the rest are counted
SHOWN = 60  # characters of a bad value quoted back in a message

# C0 and C1 controls (tab, CR and LF too), the line and paragraph separators,
# and the bidirectional embedding, override and isolate marks that make text
# read differently from what it says: none belongs in a name, an id, a cost
# center or a setting, which reach CSV cells, PDFs and e-mail headers.
_BIDI = {chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A), 0x200E, 0x200F, 0x061C)}


def invisible(ch: str) -> bool:
    """A control, separator or direction mark: a character a reader cannot see as written."""
    return ch in _BIDI or unicodedata.category(ch) in ("Cc", "Zl", "Zp", "Cs")


def bad_char(text: str) -> str | None:
    """The first character not allowed in a one-line text, described (None when clean)."""
    if text.isprintable():  # no Cc, Zl, Zp, Cs nor format (bidi) character: clean
        return None
    for ch in text:
        if invisible(ch):
            return char_name(ch)
    return None


def char_name(ch: str) -> str:
    """U+001B (ESCAPE): how a character a user cannot see is named in a message."""
    code = ord(ch)
    names = {0: "NUL", 9: "tab", 10: "line break", 13: "carriage return", 0x1B: "escape"}
    name = names.get(code) or unicodedata.name(ch, "") or "a control character"
    return f"U+{code:04X}" + (f" ({name.lower()})" if name else "")


def shown(value: Any, limit: int = SHOWN) -> str:
    """A value quoted back to the user: short, one line, with control characters escaped."""
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list | tuple | set):
        return "a list"
    text = value if isinstance(value, str) else str(value)
    cut = text[:limit]
    out = "".join(_escaped(ch) for ch in cut)
    return out + ("…" if len(text) > limit else "")


def _escaped(ch: str) -> str:
    if invisible(ch):
        code = ord(ch)
        return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"
    return ch


_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def clean_message(message: str) -> str:
    """A message safe to print: no escape sequences or line breaks smuggled in by a value."""
    return _CONTROL.sub(lambda m: _escaped(m.group()), message)


def money_problem(amount: Decimal) -> str | None:
    """Why an amount is out of bounds: too large, or too many decimal places (None if fine)."""
    if amount.is_zero():
        return None
    if amount.adjusted() >= 15 or abs(amount) >= MONEY_LIMIT:  # adjusted() first: no overflow
        return "is too large: amounts and rates must be below 1,000,000,000,000,000 (10^15)"
    if amount.adjusted() < -MONEY_PLACES:
        return f"has more than {MONEY_PLACES} decimal places"
    _, digits, exponent = amount.as_tuple()
    assert isinstance(exponent, int)  # finite: checked by the caller
    trailing = 0  # 0.400 has two decimal places, not three
    for digit in reversed(digits):
        if digit:
            break
        trailing += 1
    if -(exponent + trailing) > MONEY_PLACES:
        return f"has more than {MONEY_PLACES} decimal places"
    return None


def address_problem(text: str) -> str | None:
    """Why text is not exactly one plain e-mail address (local@domain), or None.

    A recipient goes into a To header and the SMTP envelope as it is, so only a
    bare addr-spec is taken: no display name, no second address, no blanks.
    """
    bad = bad_char(text)
    if bad:
        return f"holds {bad}, which an e-mail address cannot"
    if not text or text != text.strip() or any(ch.isspace() for ch in text):
        return "must be one e-mail address without blanks, such as billing-lead@example.com"
    if text.count("@") != 1 or any(ch in text for ch in ',;<>()[]\\"'):
        return "must be exactly one plain e-mail address, such as billing-lead@example.com"
    if not text.isascii():  # SMTPUTF8 and IDNA are not spoken here: refused, not half-sent
        return "must be written in ASCII (internationalised addresses are not supported)"
    local, domain = text.split("@")
    if len(local) > 64 or any(len(label) > 63 for label in domain.split(".")):
        return "has a part too long for an e-mail address (64 before the @, 63 per domain label)"
    if not local or not domain or domain.startswith(".") or domain.endswith(".") or ".." in domain:
        return "must be an e-mail address with a name and a domain, such as lead@example.com"
    try:
        parsed = Address(addr_spec=text)
    except (ValueError, IndexError, HeaderParseError):
        return "is not a valid e-mail address"
    if parsed.addr_spec != text:
        return "is not a plain e-mail address"
    return None


def mailbox_problem(text: str) -> str | None:
    """Why text is not one sender, `addr@example.com` or `Name <addr@example.com>` (or None)."""
    bad = bad_char(text)
    if bad:
        return f"holds {bad}, which an e-mail address cannot"
    if "<" not in text:
        return address_problem(text)
    found = getaddresses([text])
    if len(found) != 1 or not found[0][1] or text.count("<") != 1 or not text.endswith(">"):
        return "must be one address, such as Chargeback <chargeback@example.com>"
    return address_problem(found[0][1])


def host_problem(text: str) -> str | None:
    """Why text cannot be a mail server's host name or address (None when it can)."""
    if not text or len(text) > 253 or bad_char(text) or any(ch.isspace() for ch in text):
        return "must be a host name or address without blanks or control characters"
    if any(len(label) > 63 for label in text.split(".")):
        return "has a label longer than 63 characters, which no host name has"
    if not re.fullmatch(r"[A-Za-z0-9._:\[\]-]+", text):
        return "must be a host name or address (letters, digits, '.', '-', ':')"
    return None
