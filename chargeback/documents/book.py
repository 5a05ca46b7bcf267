"""The output folder's book: ledger.json's months, kept from run to run (SPEC 5).

A run rewrites the months it reports and keeps every other month exactly as the
book has it, so the book is read, and checked, before anything is written. A
ledger.json chargeback cannot vouch for (unreadable, another tool's, another
currency, figures that do not add up) stops the run instead of being silently
replaced: it may be the only record of months the data no longer holds.
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from chargeback.csvwrite import csv_text
from chargeback.engine.dates import MONTH
from chargeback.errors import ChargebackError, Problem, display_path

BOOK = "ledger.json"
BOOK_CSV = "ledger.csv"
LEDGER_COLUMNS = (
    "period",
    "department_id",
    "cost_center",
    "decision_id",
    "contacts",
    "handle_minutes",
    "cost",
    "revenue",
    "net",
)
TOTALS = (
    "handle_minutes",
    "cost",
    "attributed_cost",
    "unattributed_cost",
    "attributed_share",
    "revenue",
    "net",
)
FINGERPRINT = re.compile(r"^[0-9a-f]{16,128}$")
# a figure as chargeback writes it: Decimal() alone would take "Infinity", "NaN" and "1e99"
FIGURE = re.compile(r"-?[0-9]{1,16}(\.[0-9]{1,6})?")
LINE_FIGURES = ("contacts", "handle_minutes", "cost", "revenue", "net")
DOCUMENT_SUFFIXES = (".pdf", ".html")


@dataclass
class Month:
    """One month of the book: its `periods` entry (with `fingerprint`) and its lines,
    as ledger.json holds them, so a kept month is written back byte for byte."""

    totals: dict[str, Any]
    lines: list[dict[str, Any]]

    def figures(self) -> tuple[dict[str, Any], list[list[str]]]:
        """What the month says, without where it came from: for "is it the same month?"."""
        totals = {k: v for k, v in self.totals.items() if k != "fingerprint"}
        return totals, [[str(ln[c]) for c in LEDGER_COLUMNS] for ln in self.lines]


@dataclass
class Book:
    """The months already in the output folder, before this run."""

    folder: Path
    months: dict[str, Month] = field(default_factory=dict)
    # months of a ledger.csv with no ledger.json beside it (an earlier version's
    # `--format csv`): they carry no totals or fingerprint, so they cannot be kept
    csv_only: list[str] = field(default_factory=list)


def refusal(path: Path, why: str) -> ChargebackError:
    return ChargebackError(
        Problem(
            f"{why}; it is this output folder's book (the months earlier runs reported), so "
            "chargeback will not write over it: move it away to start a new book here, "
            "or report into another --out",
            path,
        )
    )


def read_book(folder: Path, currency: str) -> Book:
    """The book in `folder` (empty when there is none), or an error naming ledger.json."""
    path = folder / BOOK
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return Book(folder, {}, _csv_months(folder / BOOK_CSV))
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise refusal(path, f"cannot be read ({reason})") from None
    try:
        doc = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise refusal(path, f"is not valid JSON ({exc})") from None
    meta = doc.get("meta") if isinstance(doc, dict) else None
    if not isinstance(meta, dict) or meta.get("tool") != "chargeback":
        raise refusal(path, "was not written by chargeback (no meta.tool 'chargeback')")
    if doc.get("currency") != currency:
        raise refusal(
            path,
            f"is a book in {doc.get('currency')!r} and this workspace charges in {currency!r}",
        )
    try:
        return Book(folder, _months(doc, meta))
    except KeyError as exc:
        raise refusal(path, f"is damaged (no {exc})") from None
    except (TypeError, ValueError, InvalidOperation) as exc:
        raise refusal(path, f"is damaged ({exc})") from None


def _months(doc: dict[str, Any], meta: dict[str, Any]) -> dict[str, Month]:
    """ledger.json's periods and lines by month, checked; raises on anything amiss.

    A book from before per-month fingerprints (0.1.0's first ledger.json) is
    upgraded: one run wrote all its months, so each gets that run's fingerprint.
    """
    periods, lines = doc["periods"], doc["lines"]
    if not isinstance(periods, dict) or not isinstance(lines, list):
        raise TypeError("'periods' is not an object or 'lines' not a list")
    months: dict[str, Month] = {}
    for period, totals in periods.items():
        if not MONTH.fullmatch(period) or not isinstance(totals, dict):
            raise ValueError(f"'periods' has {period!r}, not a month's totals")
        contacts = totals.get("contacts")
        if not isinstance(contacts, int) or isinstance(contacts, bool):
            raise ValueError(f"{period}: 'contacts' is not a whole number")
        for key in TOTALS:
            _figure(totals, key, period)
        if "fingerprint" not in totals:  # an earlier book: the one run that wrote it all
            totals = {**totals, "fingerprint": meta["fingerprint"]}
        if not FINGERPRINT.match(_text(totals, "fingerprint", period)):
            raise ValueError(f"{period}: 'fingerprint' is not a hex digest")
        months[period] = Month(totals, [])
    seen: set[tuple[str, str, str]] = set()
    for line in lines:
        if not isinstance(line, dict):
            raise TypeError("a line is not an object")
        for column in LEDGER_COLUMNS:
            _text(line, column, str(line.get("period")))
        for column in LINE_FIGURES:
            _figure(line, column, str(line.get("period")))
        place = (line["period"], line["department_id"], line["decision_id"])
        month = months.get(place[0])
        if month is None:
            raise ValueError(f"a line of {place[0]!r}, which 'periods' does not have")
        if place in seen:
            raise ValueError(f"two lines for {' '.join(place)}")
        seen.add(place)
        month.lines.append(line)
    for period, month in months.items():
        cost = sum((Decimal(ln["cost"]) for ln in month.lines), Decimal(0))
        if not month.lines or cost != Decimal(month.totals["cost"]):
            raise ValueError(
                f"{period}'s lines add up to {cost}, its total is {month.totals['cost']}"
            )
    return months


def _text(obj: dict[str, Any], key: str, period: str) -> str:
    value = obj[key]
    if not isinstance(value, str):
        raise TypeError(f"{period}: {key!r} is not a string")
    return value


def _figure(obj: dict[str, Any], key: str, period: str) -> Decimal:
    text = _text(obj, key, period)
    if not FIGURE.fullmatch(text):
        raise ValueError(f"{period}: {key!r} is {text!r}, not an amount")
    return Decimal(text)


def _csv_months(path: Path) -> list[str]:
    """The months a lone ledger.csv holds (read only to warn that they go)."""
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            found = {row.get("period", "") for row in csv.DictReader(handle)}
    except (OSError, UnicodeDecodeError, csv.Error):
        return []
    return sorted(p for p in found if MONTH.fullmatch(p))


def book_csv(months: dict[str, Month]) -> str:
    """ledger.csv for the whole book, its columns as ledger.json's lines print them."""
    rows = ([ln[c] for c in LEDGER_COLUMNS] for ln in book_lines(months))
    return csv_text(LEDGER_COLUMNS, rows)


def book_lines(months: dict[str, Month]) -> list[dict[str, Any]]:
    """Every month's lines in SPEC 5's order: period, department_id, decision_id."""
    lines = (ln for month in months.values() for ln in month.lines)
    return sorted(lines, key=lambda ln: (ln["period"], ln["department_id"], ln["decision_id"]))


def month_documents(folder: Path, period: str, suffixes: set[str]) -> list[Path]:
    """A month's rendered documents on disk (summary, CS value, statements) in `suffixes`."""
    month = folder / period
    found = [month / f"{name}{s}" for name in ("summary", "cs-value") for s in suffixes]
    departments = month / "departments"
    if departments.is_dir():
        found += sorted(p for p in departments.iterdir() if p.suffix in suffixes)
    return [p for p in found if p.is_file()]


def stray_months(folder: Path, months: dict[str, Month]) -> list[str]:
    """Month folders with a summary or statement on disk but no lines in the book."""
    if not folder.is_dir():
        return []
    stray = []
    for month in sorted(p for p in folder.iterdir() if p.is_dir() and MONTH.fullmatch(p.name)):
        if month.name in months:
            continue
        statements = month_documents(folder, month.name, set(DOCUMENT_SUFFIXES))
        if any(p.name != f"cs-value{p.suffix}" for p in statements):
            stray.append(month.name)
    return stray


def stray_warning(folder: Path, stray: list[str]) -> str:
    """What to do about months an earlier version left outside the book."""
    which = ", ".join(stray)
    again = (
        f"chargeback report --period {stray[0]}"
        if len(stray) == 1
        else f"chargeback report --from {stray[0]} --to {stray[-1]}"
    )
    return (
        f"the book ({display_path(folder / BOOK)}) has no lines for {which}, which an earlier "
        f"run left statements or ledger.csv rows for: report {'it' if len(stray) == 1 else 'them'} "
        f"again to put {'it' if len(stray) == 1 else 'them'} in the book ({again})"
    )
