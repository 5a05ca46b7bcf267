"""The summary table as plain text, laid out exactly as rich lays it out, without rich.

A cron run prints a table per month (24 at a time in a first run); rich measures
and renders every cell through its segment machinery, about 0.2 s of a 2.5 s
run. Without colour that work buys nothing, so for plain cells (every character
one column wide, no control character; terminal.py hands rich the user's words as
Text, never markup) this writes the same text:
terminal.py's box (rules under the header only, no edges), one space of padding
collapsed between columns, the table widened to its title's width as rich
widens it (spread over the columns in proportion to their widths, each share
rounded up, as rich spreads it). Anything else returns None and rich
draws it (tests/test_plain_table.py holds the two equal).
"""

from __future__ import annotations

from collections.abc import Sequence
from math import ceil

from rich.cells import cell_len


def simple(text: str) -> bool:
    """One column per character, nothing rich would read as a line break."""
    return all(" " <= ch != "\x7f" for ch in text) and (
        text.isascii() or cell_len(text) == len(text)
    )


def spread(extra: int, widths: Sequence[int]) -> list[int]:
    """`extra` columns shared in proportion to `widths`, each share rounded up, what is
    left going on: how rich widens a table to its minimum width (tests hold it)."""
    out = []
    left, weight = extra, sum(widths)
    for w in widths:
        share = ceil(w * left / weight) if weight > 0 else left
        out.append(share)
        weight -= w
        left -= share
    return out


def natural_width(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> int:
    """What rich's measure of the table gives when nothing is cut: widest cells, padding, gaps."""
    n = len(headers)
    return sum(_widths(headers, rows)) + n - 1 if n else 0


def _widths(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[int]:
    n = len(headers)
    return [
        max(len(headers[i]), *(len(row[i]) for row in rows)) + (0 if i == n - 1 else 1)
        for i in range(n)
    ]


def render(
    title: str,
    headers: Sequence[str],
    right: Sequence[bool],
    rows: Sequence[Sequence[str]],
    caption: str | None,
    width: int,
) -> list[str] | None:
    """The table's lines (trailing spaces as rich pads them), or None for rich to draw."""
    texts = [title, *headers, *(c for row in rows for c in row), caption or ""]
    if not headers or not all(simple(t) for t in texts):
        return None
    n = len(headers)
    widths = _widths(headers, rows)
    if sum(widths) + n - 1 > width:
        return None  # a cell would be cut: rich's ellipsis
    least = min(width, len(title)) - (n - 1)  # rich's min_width, less the gaps
    if sum(widths) < least:
        widths = [
            w + pad for w, pad in zip(widths, spread(least - sum(widths), widths), strict=True)
        ]
    table_width = sum(widths) + n - 1
    if len(title) > table_width or len(caption or "") > table_width:
        return None  # rich would wrap it

    def line(cells: Sequence[str]) -> str:
        out = []
        for i, (cell, w) in enumerate(zip(cells, widths, strict=True)):
            pad = 0 if i == n - 1 else 1
            # rich strips what ends a right-aligned cell (a net's room for " ▲" too)
            text = cell.rstrip().rjust(w - pad) if right[i] else cell.ljust(w - pad)
            out.append(text + " " * pad)
        return " ".join(out)

    lines = [title.ljust(table_width), line(headers), "─" * table_width]
    lines += [line(row) for row in rows]
    if caption:
        lines.append(caption.ljust(table_width))
    return lines
