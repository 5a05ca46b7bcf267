"""The one CSV writer: every CSV the product writes goes through here, formula-safe.

A cell that a spreadsheet would read as a formula (CWE-1236; OWASP's "CSV
injection") is written with a leading apostrophe, so `=HYPERLINK(...)` from a
contact export shows as text when finance opens ledger.csv, rejected.csv, a
statement's attachment or journal.csv, and never runs. The rule:

- a cell whose first character, after any leading spaces, is one of
  `= + - @`, a tab, a carriage return, a line feed or NUL (or the full-width
  U+FF1D, U+FF0B, U+FF0D, U+FF20 some spreadsheets also accept) gets an apostrophe in front;
- unless the whole cell is a plain number (`-3080.24`, `+1.5e3`): figures stay
  figures, so a credit in a journal or a negative net still adds up.

Reading such a cell back: drop one leading apostrophe when the character after
it (past any spaces) is one of the trigger characters. `read_cell` does that.
Cells holding the delimiter, a quote or a line break are quoted per RFC 4180.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

import polars as pl

_TRIGGER_CLASS = "[=+\\-@\\t\\r\\n\\x00\\uFF1D\\uFF0B\\uFF0D\\uFF20]"
_STARTS_LIKE_FORMULA = re.compile(f"^ *{_TRIGGER_CLASS}")
_NUMBER = r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
_PLAIN_NUMBER = re.compile(_NUMBER)


def safe_cell(value: object) -> str:
    """The cell as text a spreadsheet shows and never evaluates."""
    text = "" if value is None else str(value)
    if _STARTS_LIKE_FORMULA.match(text) and not _PLAIN_NUMBER.fullmatch(text):
        return "'" + text
    return text


def read_cell(text: str) -> str:
    """A cell as it was before safe_cell guarded it."""
    if text.startswith("'") and _STARTS_LIKE_FORMULA.match(text[1:]):
        return text[1:]
    return text


def _quoted(cell: str, delimiter: str) -> str:
    """RFC 4180 quoting. (Python 3.11's csv module leaves a lone CR unquoted when
    lines end in LF, which splits a row for every reader: hence our own.)"""
    if delimiter in cell or any(ch in cell for ch in '"\r\n'):
        return '"' + cell.replace('"', '""') + '"'
    return cell


def csv_text(header: Sequence[str], rows: Iterable[Sequence[object]], delimiter: str = ",") -> str:
    """A whole CSV file's text: header and rows, every cell through safe_cell."""
    lines = [header, *rows]
    return "".join(
        delimiter.join(_quoted(safe_cell(v), delimiter) for v in row) + "\n" for row in lines
    )


def frame_csv(frame: pl.DataFrame) -> str:
    """A polars frame as CSV text, under the same rule (rejected rows are raw user data)."""
    guarded = re.compile(f"^ *{_TRIGGER_CLASS}")
    number = f"^{_NUMBER}$"
    columns = []
    for name, dtype in frame.schema.items():
        col = pl.col(name)
        if isinstance(dtype, pl.List | pl.Array):  # tags: written as the default separator
            col = col.cast(pl.List(pl.String)).list.join("|")
        elif isinstance(dtype, pl.Struct):
            col = col.struct.json_encode()
        elif dtype != pl.String:
            col = col.cast(pl.String)
        columns.append(
            pl.when(col.str.contains(guarded.pattern) & ~col.str.contains(number))
            .then(pl.lit("'") + col)
            .otherwise(col)
            .alias(safe_cell(name))
        )
    return frame.select(columns).write_csv() if columns else ""
