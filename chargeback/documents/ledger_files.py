"""ledger.csv, ledger.json, cs_value.json, attributions.parquet and rejected.csv: the data files.

Written together with the rendered documents through files.staged, so a
failed run leaves none of them half-written. ledger.json and ledger.csv are the
output folder's book (book.py): every month in it, not only the run's.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from chargeback import __version__
from chargeback.csvwrite import csv_text, frame_csv
from chargeback.documents.book import (
    BOOK,
    BOOK_CSV,
    DOCUMENT_SUFFIXES,
    LEDGER_COLUMNS,
    Book,
    Month,
    book_csv,
    book_lines,
    month_documents,
    read_book,
    stray_months,
    stray_warning,
)
from chargeback.documents.index_page import INDEX, index_page
from chargeback.engine.ledger import LedgerLine, PeriodSummary, half_up
from chargeback.errors import display_path
from chargeback.files import sha256_file, staged
from chargeback.report import ReportOptions, RunResult
from chargeback.workspace.model import Workspace

if TYPE_CHECKING:  # the CS-value report's modules load when it is computed
    from chargeback.engine.value import ValueReport

JOURNAL_FILE = "journal.csv"  # `chargeback journal` writes it into the month's folder


def line_values(line: LedgerLine) -> dict[str, str]:
    """A ledger line as SPEC 5 prints it."""
    return {
        "period": line.period,
        "department_id": line.department_id,
        "cost_center": line.cost_center,
        "decision_id": line.decision_id,
        "contacts": str(half_up(line.contacts, 3)),
        "handle_minutes": str(half_up(line.handle_minutes, 2)),
        "cost": f"{line.cost:.2f}",
        "revenue": f"{line.revenue:.2f}",
        "net": f"{line.net:.2f}",
    }


def lines_csv(lines: Iterable[LedgerLine]) -> str:
    """Ledger lines in ledger.csv's columns (also the statements' attachments)."""
    rows = (line_values(line) for line in lines)
    return csv_text(LEDGER_COLUMNS, ([row[c] for c in LEDGER_COLUMNS] for row in rows))


def _shown(labels: dict[Path, str], path: Path) -> str:
    """An input as the user named it: a database source by its address, a file by its path."""
    return labels.get(path) or display_path(path)


def run_metadata(result: RunResult, opts: ReportOptions) -> dict[str, Any]:
    """Enough to tell whether two ledgers came from the same inputs and settings."""
    ws = result.workspace
    orders = result.orders.files if result.orders else []
    order_labels = result.orders.labels if result.orders else {}
    inputs = (
        [
            {"kind": "contacts", "path": _shown(result.loaded.labels, p), "sha256": sha256_file(p)}
            for p in result.loaded.files
        ]
        + [
            {"kind": "orders", "path": _shown(order_labels, p), "sha256": sha256_file(p)}
            for p in orders
        ]
        + [
            {
                "kind": "settings"
                if p.name == "chargeback.yaml" and p.parent == ws.root
                else "rules",
                "path": display_path(p),
                "sha256": sha256_file(p),
            }
            for p in ws.files
        ]
    )
    settings = {
        "workspace": display_path(ws.root),
        "timezone": ws.settings.timezone,
        "overlap": ws.settings.overlap,
        "cost_method": ws.costs.method,
        "currency": ws.costs.currency,
        "columns": dict(ws.settings.columns),
        "periods": result.periods,
        "on_bad_rows": opts.on_bad_rows,
    }
    # how the export was read (a preset's words and layout included, which the
    # workspace's files alone do not pin down); only when set, so a workspace
    # that sets none keeps the fingerprint it had
    read_as = {
        "values": {v.column: dict(v.pairs) for v in ws.settings.values},
        "timestamp_format": ws.settings.timestamp_format,
        "tags_separator": ws.settings.tags_separator if ws.settings.tags_separator != "|" else None,
        "optional_columns": sorted(ws.settings.optional_columns),
    }
    settings.update({key: value for key, value in read_as.items() if value})
    # Same inputs and settings -> same fingerprint, wherever and whenever it runs:
    # file contents only (no paths), no timestamps, and not which months were
    # asked for (a month's figures do not depend on its neighbours being reported,
    # so its statements carry the same fingerprint either way).
    stable = {k: v for k, v in settings.items() if k not in ("workspace", "periods")}
    fingerprint = hashlib.sha256(
        json.dumps(
            {"inputs": sorted(i["sha256"] for i in inputs), "settings": stable}, sort_keys=True
        ).encode()
    ).hexdigest()
    return {
        "tool": "chargeback",
        "version": __version__,
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "fingerprint": fingerprint,
        "inputs": inputs,
        "settings": settings,
        "contacts_loaded": result.loaded.contacts,
        "contacts_rejected": result.loaded.rejected_count,
    }


def range_json(line: LedgerLine) -> dict[str, Any]:
    """SPEC 5: `range` on a line a control baseline weighs on, figures as the line prints them."""
    if line.range is None:
        return {}
    level, contacts, cost = line.range
    return {
        "range": {
            "level": float(level),
            "contacts": [f"{half_up(c, 3):.3f}" for c in contacts],
            "cost": [f"{half_up(c, 2):.2f}" for c in cost],
        }
    }


def period_json(summary: PeriodSummary, fingerprint: str) -> dict[str, Any]:
    """A month's entry in ledger.json's `periods`: its totals and the inputs' fingerprint."""
    return {
        "contacts": summary.contacts,
        "handle_minutes": str(half_up(summary.handle_minutes, 2)),
        "cost": f"{summary.cost:.2f}",
        "attributed_cost": f"{summary.attributed_cost:.2f}",
        "unattributed_cost": f"{summary.unattributed_cost:.2f}",
        "attributed_share": str(half_up(summary.attributed_share, 4)),
        "revenue": f"{summary.revenue:.2f}",
        "net": f"{summary.net:.2f}",
        "fingerprint": fingerprint,
    }


def line_json(line: LedgerLine) -> dict[str, Any]:
    """A line of ledger.json: the CSV columns, title, kind, the flag and any range."""
    return {
        **line_values(line),
        "title": line.title,
        "kind": line.kind,
        "net_negative": line.net_negative,
        **range_json(line),
    }


def month_of(summary: PeriodSummary, lines: Iterable[LedgerLine], fingerprint: str) -> Month:
    return Month(period_json(summary, fingerprint), [line_json(ln) for ln in lines])


def book_months(result: RunResult, book: Book | None) -> dict[str, Month]:
    """The book after this run: its months as they were, the run's months replaced.

    A closed month is the frozen one (section 8), reported or not; when the book
    already says exactly what closed/ says, the book's own bytes stay (they keep
    the `range` a closed month's manifest does not). Every month carries the
    fingerprint of the inputs that produced it: this run's, or the close's.
    """
    assert result.meta is not None  # run_report sets it before writing
    months = dict(book.months) if book is not None else {}
    fresh: dict[str, Month] = {}
    for period, frozen in result.served.closed.items():
        fingerprint = frozen.fingerprint or result.meta["fingerprint"]  # a manifest without one
        fresh[period] = month_of(frozen.summary, frozen.lines, fingerprint)
    summaries = {p.period: p for p in result.ledger.periods}
    for period in result.periods:
        if period not in result.served.frozen:
            fresh[period] = month_of(
                summaries[period], result.ledger.lines_for(period), result.meta["fingerprint"]
            )
    for period, month in fresh.items():
        kept = months.get(period)
        closed = period in result.served.closed
        if not (closed and kept is not None and kept.figures() == month.figures()):
            months[period] = month
    return dict(sorted(months.items()))


def book_json(result: RunResult, months: dict[str, Month]) -> str:
    """ledger.json: the whole book, with this run's metadata."""
    doc = {
        "currency": result.ledger.currency,
        "meta": result.meta,
        "periods": {period: month.totals for period, month in months.items()},
        "lines": book_lines(months),
    }
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def attributions_parquet(result: RunResult) -> bytes:
    """SPEC 5's drill-down: every reported contact's weight and cost per decision."""
    rows = result.attributions  # computed in the engine, when it could
    if rows is None:
        assert result.contacts is not None  # read out when the engine gave none (run.py)
        from chargeback.engine.drilldown import contact_attributions  # only when asked for

        rows = contact_attributions(
            result.workspace, result.contacts, result.attribution, result.periods
        )
    buf = io.BytesIO()
    rows.write_parquet(buf)
    return buf.getvalue()


def write_outputs(
    result: RunResult,
    opts: ReportOptions,
    documents: dict[str, str | bytes] | None = None,
    book: Book | None = None,
) -> list[Path]:
    """The book (ledger.json, ledger.csv) plus the run's other files, all-or-nothing.

    `book` is the output folder's book as read before rendering (None: a
    `value` run, which writes no ledger files). ledger.json is written whatever
    --format says (SPEC 5); ledger.csv when `csv` is asked for, or when one is
    already there, so the two never tell different stories.
    """
    out = result.out_dir
    meta = result.meta
    assert meta is not None  # run_report sets it before writing
    months = book_months(result, book) if book is not None else None
    suffixes = {f".{f}" for f in opts.formats if f in ("pdf", "html") and not opts.value_only}
    # what the run removes, known before writing so index.html links only what stays
    outdated, journals = (
        _outdated_documents(result, book, months, suffixes) if book and months else ({}, [])
    )
    doomed = _stale_statements(out, result.periods, set(documents or {}), suffixes)
    doomed += [path for paths in outdated.values() for path in paths] + journals
    with staged(out) as files:
        if months is not None:
            files[BOOK] = book_json(result, months)
            if "csv" in opts.formats or (out / BOOK_CSV).exists():
                files[BOOK_CSV] = book_csv(months)
        if "attributions" in opts.formats and not opts.value_only:
            files["attributions.parquet"] = attributions_parquet(result)
        if "json" in opts.formats and result.value is not None:
            doc = value_json(result.value, result.workspace, meta)
            files["cs_value.json"] = json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
        if result.loaded.rejected is not None:
            files["rejected.csv"] = frame_csv(result.loaded.rejected)
        if result.orders is not None and result.orders.rejected is not None:
            files["rejected_orders.csv"] = frame_csv(result.orders.rejected)
        files.update(documents or {})
        if months is not None:
            files[INDEX] = index_page(result, opts, months, set(files), doomed)
    for name, loaded in (("rejected.csv", result.loaded), ("rejected_orders.csv", result.orders)):
        stale = out / name
        if (loaded is None or loaded.rejected is None) and stale.exists() and name not in files:
            stale.unlink()  # a previous run's rejects no longer describe these inputs
    for path in doomed:
        path.unlink(missing_ok=True)
    if book is not None and months is not None:
        if journals:
            periods = ", ".join(p.parent.name for p in journals)
            result.warnings.append(
                f"{periods}: journal.csv was made from figures this run changed, so it was "
                f"removed; run chargeback journal --period {journals[0].parent.name} again"
                + (" (and for each month named)" if len(journals) > 1 else "")
            )
        if outdated:
            gone = {p.suffix.lstrip(".") for paths in outdated.values() for p in paths}
            formats = ",".join(sorted(gone))
            result.warnings.append(
                f"{', '.join(outdated)}: the {formats} documents on disk were not drawn from "
                "the figures this run put in the book, so they were removed; run again with "
                f"--format {formats} to draw them"
            )
        stray = sorted(set(stray_months(out, months)) | (set(book.csv_only) - set(months)))
        if stray:
            result.warnings.append(stray_warning(out, stray))
    return [out / name for name in files]


def refresh_index(result: RunResult, opts: ReportOptions) -> None:
    """index.html drawn again from the book on disk, after `close` froze a month the
    page had just shown as open (the caller adds it to result.served.closed)."""
    book = read_book(result.out_dir, result.ledger.currency)
    if book.months:
        with staged(result.out_dir) as files:
            files[INDEX] = index_page(result, opts, book.months, set(), [])


def _outdated_documents(
    result: RunResult, book: Book, months: dict[str, Month], drawn: set[str]
) -> tuple[dict[str, list[Path]], list[Path]]:
    """A month's documents and journal agree with its lines in the book, or they go.

    A run that rewrites a month without drawing its PDF (or HTML) leaves the
    earlier ones only when the month is unchanged: same figures, same inputs.
    A journal (`chargeback journal`) is never redrawn by `report`, so a month
    whose figures changed drops it. Closed months are served as they were and never
    count as rewritten.
    """
    undrawn = set(DOCUMENT_SUFFIXES) - drawn
    outdated: dict[str, list[Path]] = {}
    journals: list[Path] = []
    for period in result.periods:
        if period in result.served.frozen:
            continue
        before, now = book.months.get(period), months[period]
        if before is not None and before.totals == now.totals and before.lines == now.lines:
            continue
        stale = month_documents(result.out_dir, period, undrawn) if undrawn else []
        if stale:
            outdated[period] = stale
        journal = result.out_dir / period / JOURNAL_FILE
        # the journal prints figures, not the inputs' fingerprint: new inputs with the
        # same figures leave it true; a month new to the book (`journal` writes no book)
        # gives nothing to compare with, so its journal stays
        if journal.is_file() and before is not None and before.figures() != now.figures():
            journals.append(journal)
    return outdated, journals


def _stale_statements(
    out: Path, periods: list[str], written: set[str], suffixes: set[str]
) -> list[Path]:
    """A department with no line this time must not keep last run's statement."""
    stale: list[Path] = []
    for period in periods:
        folder = out / period / "departments"
        if not folder.is_dir():
            continue
        for path in sorted(folder.iterdir()):
            name = f"{period}/departments/{path.name}"
            if path.suffix in suffixes and name not in written:
                stale.append(path)
    return stale


def value_json(report: ValueReport, ws: Workspace, meta: dict[str, Any]) -> dict[str, Any]:
    """cs_value.json: SPEC 7's `periods` (the months asked for) plus notes and trailing views."""
    settings = ws.settings.value
    return {
        "currency": ws.costs.currency,
        "periods": {p: report.periods[p] for p in report.reported},
        "trailing_12_months": {p: report.trailing(p) for p in report.reported},
        "notes": report.notes,
        "last_order_date": report.last_order,
        "settings": {
            "sale_outcomes": list(settings.sale_outcomes),
            "save_outcomes": list(settings.save_outcomes),
            "save_value": f"{settings.save_value:.2f}",
            "repeat_window_days": settings.repeat_window_days,
            "horizons_days": list(settings.horizons_days),
        },
        "meta": {k: meta[k] for k in ("tool", "version", "generated_at", "fingerprint")},
    }
