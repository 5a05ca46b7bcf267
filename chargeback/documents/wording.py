"""How figures and rules are worded on every document: one place, so they agree.

Numbers are printed as ledger.csv prints them (half-up, no thousands
separators), and a rule reads as a sentence a department head can check.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from fractions import Fraction
from typing import Any

from chargeback.engine.dates import window_bounds
from chargeback.engine.ledger import LedgerLine, half_up
from chargeback.workspace.model import Decision, Match, Rule

RANGE_DASH = "\u2013"  # the en dash between a range's low and high, as the templates print it


@dataclass(frozen=True)
class Document:
    """One document to write: where, which template, and what it is given."""

    period: str
    name: str  # path under the output folder, without the extension
    template: str
    context: dict[str, Any]
    title: str
    subject: str  # one sentence on what the document is, for the PDF's metadata
    attachment: tuple[str, str] | None = None  # (file name, CSV text) for the PDF


def plural(n: int, word: str, many: str | None = None) -> str:
    """`1 period`, `2 periods`, `1,204 contacts`: messages never say `period(s)`."""
    return f"{n:,} {word if n == 1 else many or word + 's'}"


def pct(part: Fraction | Decimal, whole: Fraction | Decimal | int) -> str:
    if not whole:
        return "—"
    return f"{half_up(Fraction(part) / Fraction(whole) * 100, 1)}%"


def count(value: Fraction) -> str:
    """Contacts as the ledger prints them (weights make them fractional)."""
    return str(half_up(value, 3))


def minutes(value: Fraction) -> str:
    return str(half_up(value, 2))


def level_text(level: Decimal) -> str:
    """A range's level as printed beside it: 0.8 -> '80%', 0.975 -> '97.5%'."""
    return f"{(level * 100).normalize():f}%"


def range_words(line: LedgerLine) -> str:
    """A line's cost range (SPEC 4b) as e-mails print it, `80% range 1203.10 - 1588.42`
    (an en dash between), money as the ledger prints it; empty for a line without one."""
    if line.range is None:
        return ""
    level, _, (low, high) = line.range
    return f"{level_text(level)} range {half_up(low, 2):.2f} {RANGE_DASH} {half_up(high, 2):.2f}"


def rate(value: Decimal) -> str:
    """A rate as written, but never fewer than two decimals (0.055 stays 0.055)."""
    return f"{value:.2f}" if value == value.quantize(Decimal("0.01")) else str(value)


def statement_number(seed: str, period: str, department_id: str) -> str:
    """Same inputs, same number: derived from the inputs' digest, never a counter."""
    digest = hashlib.sha256(f"{seed}|{period}|{department_id}".encode()).hexdigest()
    return f"CB-{period.replace('-', '')}-{digest[:8].upper()}"


def describe_match(match: Match) -> list[str]:
    out = []
    for key in ("reason", "channel", "product", "region", "outcome", "tags"):
        values = getattr(match, key)
        if values is not None:
            out.append(f"{key} is {' or '.join(values)}")
    if match.text is not None:
        out.append("text contains " + " or ".join(f"“{v}”" for v in match.text))
    if match.text_regex is not None:
        out.append(f"text matches /{match.text_regex}/")
    for name, values in match.fields:
        out.append(f"{name} is {' or '.join(values)}")
    return out or ["every contact"]


def describe_window(rule: Rule, decision: Decision) -> str:
    first, last = window_bounds(rule, decision)
    text = f"from {first.isoformat()}"
    if rule.days is not None and last is not None and last != date.max:
        text += f" to {last.isoformat()}"
        if decision.ends is None or last < decision.ends:
            text += f" ({plural(rule.days, 'day')})"
    elif last is not None and last != date.max:
        text += f" to {last.isoformat()} (the decision ends)"
    else:
        text += ", open-ended"
    return text
