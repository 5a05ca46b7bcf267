"""ledger.csv, ledger.json, cs_value.json, attributions.parquet and rejected.csv: the data files.

Written together with the rendered documents through files.staged, so a
failed run leaves none of them half-written.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from chargeback import __version__
from chargeback.csvwrite import csv_text, frame_csv
from chargeback.engine.drilldown import contact_attributions
from chargeback.engine.ledger import Ledger, LedgerLine, half_up
from chargeback.engine.value import ValueReport
from chargeback.errors import display_path
from chargeback.files import sha256_file, staged
from chargeback.report import ReportOptions, RunResult
from chargeback.workspace.model import Workspace

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


def ledger_csv(ledger: Ledger) -> str:
    return lines_csv(ledger.lines)


def run_metadata(result: RunResult, opts: ReportOptions) -> dict[str, Any]:
    """Enough to tell whether two ledgers came from the same inputs and settings."""
    ws = result.workspace
    orders = result.orders.files if result.orders else []
    inputs = (
        [
            {"kind": "contacts", "path": display_path(p), "sha256": sha256_file(p)}
            for p in result.loaded.files
        ]
        + [{"kind": "orders", "path": display_path(p), "sha256": sha256_file(p)} for p in orders]
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
        "contacts_loaded": result.loaded.frame.height,
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


def ledger_json(result: RunResult, meta: dict[str, Any]) -> str:
    ledger = result.ledger
    periods = {
        p.period: {
            "contacts": p.contacts,
            "handle_minutes": str(half_up(p.handle_minutes, 2)),
            "cost": f"{p.cost:.2f}",
            "attributed_cost": f"{p.attributed_cost:.2f}",
            "unattributed_cost": f"{p.unattributed_cost:.2f}",
            "attributed_share": str(half_up(p.attributed_share, 4)),
            "revenue": f"{p.revenue:.2f}",
            "net": f"{p.net:.2f}",
        }
        for p in ledger.periods
    }
    lines = [
        {
            **line_values(line),
            "title": line.title,
            "kind": line.kind,
            "net_negative": line.net_negative,
            **range_json(line),
        }
        for line in ledger.lines
    ]
    doc = {
        "currency": ledger.currency,
        "meta": meta,
        "periods": periods,
        "lines": lines,
    }
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def attributions_parquet(result: RunResult) -> bytes:
    """SPEC 5's drill-down: every reported contact's weight and cost per decision."""
    rows = contact_attributions(
        result.workspace, result.loaded.frame, result.attribution, result.periods
    )
    buf = io.BytesIO()
    rows.write_parquet(buf)
    return buf.getvalue()


def write_outputs(
    result: RunResult, opts: ReportOptions, documents: dict[str, str | bytes] | None = None
) -> list[Path]:
    """The ledger files plus any rendered documents, all-or-nothing."""
    out = result.out_dir
    meta = result.meta
    assert meta is not None  # run_report sets it before writing
    with staged(out) as files:
        if "csv" in opts.formats and not opts.value_only:
            files["ledger.csv"] = ledger_csv(result.ledger)
        if "json" in opts.formats and not opts.value_only:
            files["ledger.json"] = ledger_json(result, meta)
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
    for name, loaded in (("rejected.csv", result.loaded), ("rejected_orders.csv", result.orders)):
        stale = out / name
        if (loaded is None or loaded.rejected is None) and stale.exists() and name not in files:
            stale.unlink()  # a previous run's rejects no longer describe these inputs
    suffixes = {f".{f}" for f in opts.formats if f in ("pdf", "html") and not opts.value_only}
    _remove_stale_statements(out, result.periods, set(files), suffixes)
    return [out / name for name in files]


def _remove_stale_statements(
    out: Path, periods: list[str], written: set[str], suffixes: set[str]
) -> None:
    """A department with no line this time must not keep last run's statement."""
    for period in periods:
        folder = out / period / "departments"
        if not folder.is_dir():
            continue
        for path in folder.iterdir():
            name = f"{period}/departments/{path.name}"
            if path.suffix in suffixes and name not in written:
                path.unlink()


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
