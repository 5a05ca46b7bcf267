"""What a `journal:` setting may name: the template fields and the delimiters.

The journal is written by chargeback.operations.journal, but its column
templates and delimiter are checked when the workspace loads, so a bad template
is reported with every other workspace problem instead of failing mid-run.
Both sides read these definitions from here, so they cannot drift apart.
"""

from __future__ import annotations

import re
import string

FIELDS = (
    "period",
    "date",
    "journal_id",
    "line",
    "account",
    "cost_center",
    "department_id",
    "department_name",
    "debit",
    "credit",
    "amount",
    "currency",
    "memo",
)
DELIMITERS = {",": ",", ";": ";", "tab": "\t", "|": "|"}
MAX_WIDTH = 999  # a field's padded width in a column template


def placeholder_problems(template: str) -> list[str]:
    """Why a column template cannot be filled ([] when it can).

    Every field is text (figures arrive formatted: 1234.56), so a format spec
    such as {amount:.2f} cannot apply; trying the template on sample text
    finds that here rather than mid-run.
    """
    try:
        parts = [(name, spec or "") for _, name, spec, _ in string.Formatter().parse(template)]
    except ValueError as exc:
        return [f"'{template}' is not a valid template ({exc}); write braces as {{{{ and }}}}"]
    names = [name for name, _ in parts if name is not None]
    for name, spec in parts:
        if "{" in spec or re.search(r"\d{4,}", spec):  # {debit:>9999999999} is gigabytes
            return [
                f"'{{{name}:{spec}}}' asks for a width or a nested field; a column is at most "
                f"{MAX_WIDTH} characters wide, such as {{{name}:>12}}"
            ]
    unknown = [
        f"unknown field '{{{name}}}' (known: {', '.join(FIELDS)})"
        for name in names
        if name not in FIELDS
    ]
    if unknown:
        return unknown
    try:
        template.format(**{name: "text" for name in FIELDS})
    except (ValueError, KeyError, IndexError, AttributeError) as exc:
        return [
            f"'{template}' cannot be filled ({exc}); fields are text, already formatted: "
            "write {amount}, not {amount:.2f}"
        ]
    return []
