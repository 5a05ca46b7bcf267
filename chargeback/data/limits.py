"""The limits every value read from a contacts or orders file is held to.

Input is parsed at the edge into typed values, and each type has bounds the
rest of the product can rely on: a local date the calendar arithmetic can move
around in, a handle time and an amount that sum exactly in 64-bit integers, text
short enough to print and free of control characters. A value outside them is a
bad row (file, row, column), never a crash later on. The numbers below are the
ones documented for users (docs/security.md).
"""

from __future__ import annotations

from datetime import datetime

# Dates: contact centres are younger than 1900; 2199 leaves room for synthetic and
# far-future test data while every window, lookback and horizon added to a date
# (a few years at most) stays well inside what Python's dates hold (years 1-9999).
MIN_YEAR = 1900
MAX_YEAR = 2199
EARLIEST = datetime(MIN_YEAR, 1, 1)
AFTER_LAST = datetime(MAX_YEAR + 1, 1, 1)

# Handle time: 30 days of talk, hold and wrap for one contact is already an export
# error (elapsed time instead of handle time, or milliseconds: an hour in ms is over it).
MAX_HANDLE_SECONDS = 30 * 86_400

# Money (a contact's revenue, an order's amount): under a trillion each, and under a
# quadrillion summed over a file set, so sums of whole cents stay exact in 64 bits.
MAX_MONEY = 10**12
MAX_MONEY_TOTAL = 10**15

# A number written with more characters than this is not an export's number.
MAX_NUMBER_CHARS = 32

# Text, in characters (after trimming): `text` is a subject or summary, `tags` the
# whole cell before splitting, everything else an id, a code or a category.
MAX_TEXT_CHARS = 32_768
MAX_TAGS_CHARS = 4_096
MAX_VALUE_CHARS = 1_024

# Control characters refused in values (tab is allowed; `text` may hold line breaks).
CONTROL = [chr(c) for c in (*range(0x00, 0x09), *range(0x0A, 0x20), 0x7F)]
CONTROL_IN_TEXT = [c for c in CONTROL if c not in "\n\r"]

SHOWN_CHARS = 60  # a value quoted in a message is cut after this many characters
SHOWN_NAMES = 30  # a file's headers listed in a message


def char_limit(column: str) -> int:
    if column == "text":
        return MAX_TEXT_CHARS
    if column == "tags":
        return MAX_TAGS_CHARS
    return MAX_VALUE_CHARS


def shown(value: object, limit: int = SHOWN_CHARS) -> str:
    """A value as a message quotes it: control characters escaped, a long one cut.

    Messages go to terminals and logs: an escape sequence or a megabyte from a
    hostile file must not reach them as it is.
    """
    text = str(value)
    cut = text[:limit]
    safe = "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in cut)
    if len(text) > limit:
        safe += f"... ({len(text):,} characters)"
    return safe


def shown_names(names: list[str]) -> str:
    """A file's column names for a message, the first few of them."""
    if not names:
        return "(no columns)"
    listed = ", ".join(shown(n, 40) for n in names[:SHOWN_NAMES])
    if len(names) > SHOWN_NAMES:
        listed += f", ... ({len(names)} columns)"
    return listed
