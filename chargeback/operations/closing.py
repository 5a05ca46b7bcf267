"""Period close: figures that stay put once finance has filed them.

`chargeback close --period P` copies P's ledger lines, totals and documents
into `<out>/closed/P/` with a manifest of their sha256. From then on every run
on that output folder serves P from there, byte for byte. When the current
data would give P different figures (late contacts, a changed rule), the
difference is posted as prior-period adjustment lines in the first open month
of the run, where statements show it, and the run says so. Adjustments
already posted in later closed months are taken off first, so a change is
never posted twice. Reopening needs --force; both are recorded in
`<out>/closed/history.jsonl`.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import os
import shutil
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

from chargeback.documents.ledger_files import line_values, lines_csv
from chargeback.documents.wording import plural
from chargeback.engine.dates import MONTH, shift_month
from chargeback.engine.ledger import (
    UNATTRIBUTED,
    Ledger,
    LedgerLine,
    PeriodSummary,
    build_ledger,
    half_up,
)
from chargeback.errors import ChargebackError, Problem
from chargeback.files import sha256_file
from chargeback.operations.seal import check_seal, recorded_seals, write_seal
from chargeback.report import Frozen, RunResult, Served

CLOSED = "closed"
ADJUSTMENT = "adjustment"


def adjustment_id(period: str, decision_id: str) -> str:
    return f"{ADJUSTMENT}-{period}:{decision_id}"


def _fraction(text: str) -> Fraction:
    return Fraction(Decimal(text))


def _line_from(row: dict[str, Any]) -> LedgerLine:
    return LedgerLine(
        period=row["period"],
        department_id=row["department_id"],
        cost_center=row["cost_center"],
        decision_id=row["decision_id"],
        contacts=_fraction(row["contacts_exact"]),
        handle_minutes=_fraction(row["handle_minutes_exact"]),
        cost=Decimal(row["cost"]),
        revenue=Decimal(row["revenue"]),
        title=row.get("title", ""),
        kind=row.get("kind", ""),
        # manifests closed before 0.1.0's single flag carry "collects": not needed any
        # more (the flag reads revenue and net), so it is ignored, not refused
    )


def _exact(value: Fraction) -> str:
    """A fraction as a decimal string exact enough to rebuild the printed figures."""
    return str(half_up(value, 9))


def _stored(value: Fraction) -> Fraction:
    """A figure as a closed month keeps it (9 decimals), for comparing with one."""
    return _fraction(_exact(value))


def _row(line: LedgerLine) -> dict[str, Any]:
    return {
        **line_values(line),
        "contacts_exact": _exact(line.contacts),
        "handle_minutes_exact": _exact(line.handle_minutes),
        "title": line.title,
        "kind": line.kind,
    }


def closed_periods(
    out_dir: Path, notes: list[str] | None = None, *, verify: bool = True
) -> dict[str, Frozen]:
    """The closed months under out_dir, each checked against its seal (seal.py).

    `notes` collects warnings (a month closed before seals existed); reopen
    reads without verifying, since reopening is how a damaged month is mended.
    """
    found: dict[str, Frozen] = {}
    root = out_dir / CLOSED
    if not root.is_dir():
        return found
    seals = recorded_seals(root) if verify else {}
    for manifest in sorted(root.glob("*/manifest.json")):
        if manifest.parent.name.startswith("."):
            continue  # a close that was cut short: its staging folder, never served
        if not MONTH.fullmatch(manifest.parent.name):
            raise ChargebackError(
                Problem(
                    "not a closed month: closed/ holds only folders named YYYY-MM (and "
                    "reopened/); move this one away",
                    manifest.parent,
                )
            )
        if verify:
            note = check_seal(
                manifest.parent, manifest.parent.name, seals.get(manifest.parent.name)
            )
            if note and notes is not None:
                notes.append(note)
        try:
            data = json.loads(manifest.read_text(encoding="utf-8"))
            if data["period"] != manifest.parent.name:
                raise ValueError(f"it says period {str(data['period'])[:20]!r}")
            s = data["summary"]
            summary = PeriodSummary(
                period=data["period"],
                contacts=int(s["contacts"]),
                handle_minutes=_fraction(s["handle_minutes_exact"]),
                cost=Decimal(s["cost"]),
                attributed_cost=Decimal(s["attributed_cost"]),
                unattributed_cost=Decimal(s["unattributed_cost"]),
                revenue=Decimal(s["revenue"]),
            )
            found[data["period"]] = Frozen(
                period=data["period"],
                closed_at=data["closed_at"],
                folder=manifest.parent,
                lines=tuple(_line_from(r) for r in data["lines"]),
                summary=summary,
                files=dict(data["files"]),
                cs_value=data.get("cs_value"),
                fingerprint=str(data.get("fingerprint") or ""),
            )
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ChargebackError(
                Problem(f"unreadable closed-period manifest ({exc})", manifest)
            ) from None
    return found


def _history(out_dir: Path, entry: dict[str, Any]) -> None:
    path = out_dir / CLOSED / "history.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        user = getpass.getuser()
    except (OSError, KeyError):
        user = "unknown"
    entry = {"at": datetime.now(UTC).isoformat(timespec="seconds"), "by": user, **entry}
    with path.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(entry, sort_keys=True) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def freeze(result: RunResult) -> Frozen:
    """Copy the run's one period (ledger lines, totals, documents) into closed/P/."""
    period = result.periods[0]
    out = result.out_dir
    target = out / CLOSED / period
    if target.exists():
        raise ChargebackError(Problem(f"{period} is already closed", target))
    source = out / period
    staging = out / CLOSED / f".{period}.tmp-{os.getpid()}"
    if staging.exists():
        shutil.rmtree(staging)
    files: dict[str, str] = {}
    documents = staging / "documents"
    for path in sorted(source.rglob("*")):
        if path.is_file() and path.suffix in (".pdf", ".html") and "outbox" not in path.parts:
            rel = path.relative_to(source).as_posix()
            dest = documents / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, dest)
            files[rel] = sha256_file(dest)
    summary = next(p for p in result.ledger.periods if p.period == period)
    lines = result.ledger.lines_for(period)
    cs_value = result.value.periods.get(period) if result.value is not None else None
    manifest = {
        "period": period,
        "closed_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "fingerprint": result.meta["fingerprint"] if result.meta else "",
        "lines": [_row(ln) for ln in lines],
        "summary": {
            "contacts": summary.contacts,
            "handle_minutes_exact": _exact(summary.handle_minutes),
            "cost": f"{summary.cost:.2f}",
            "attributed_cost": f"{summary.attributed_cost:.2f}",
            "unattributed_cost": f"{summary.unattributed_cost:.2f}",
            "revenue": f"{summary.revenue:.2f}",
        },
        "files": files,
        "cs_value": cs_value,
    }
    staging.mkdir(parents=True, exist_ok=True)
    (staging / "ledger.csv").write_text(lines_csv(lines), encoding="utf-8")
    (staging / "manifest.json").write_text(
        json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    seal = write_seal(staging)
    os.replace(staging, target)
    _history(
        out,
        {"action": "close", "period": period, "fingerprint": manifest["fingerprint"], "seal": seal},
    )
    return closed_periods(out)[period]


def reopen(out_dir: Path, period: str) -> Path:
    """Move closed/P aside (kept for the record) and log who reopened it."""
    folder = out_dir / CLOSED / period
    if not folder.is_dir():
        raise ChargebackError(Problem(f"{period} is not closed", out_dir / CLOSED))
    carriers = [
        p
        for p, frozen in closed_periods(out_dir, verify=False).items()
        if p > period
        and any(ln.decision_id.startswith(f"{ADJUSTMENT}-{period}:") for ln in frozen.lines)
    ]
    if carriers:
        raise ChargebackError(
            Problem(
                f"closed {', '.join(carriers)} carries adjustments for {period}; reopening "
                f"{period} alone would count them twice: reopen {carriers[-1]} first",
                folder,
            )
        )
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    kept = out_dir / CLOSED / "reopened" / f"{period}-{stamp}"
    kept.parent.mkdir(parents=True, exist_ok=True)
    os.replace(folder, kept)
    _history(out_dir, {"action": "reopen", "period": period, "kept": kept.name})
    return kept


# --------------------------------------------------------------------------- serving


def serve_closed(result: RunResult, open_periods_default: bool) -> Served:
    """Put frozen figures in place of P's, and post any difference as adjustments."""
    served = Served(frozen={}, documents={}, warnings=[])
    closed = closed_periods(result.out_dir, served.warnings)
    served.closed = closed  # the book keeps them all, reported or not (ledger_files.py)
    if not closed:
        return served
    ws = result.workspace
    ledger = result.ledger
    periods = list(result.periods)
    lines = [ln for ln in ledger.lines if ln.period not in closed]
    summaries = {p.period: p for p in ledger.periods if p.period not in closed}
    for period in periods:
        if period in closed:
            frozen = closed[period]
            served.frozen[period] = frozen
            lines += list(frozen.lines)
            summaries[period] = frozen.summary
            for rel, digest in frozen.files.items():
                path = frozen.folder / "documents" / rel
                try:
                    data = path.read_bytes()
                except OSError as exc:
                    raise ChargebackError(
                        Problem(
                            f"a closed document is missing or unreadable ({exc.strerror})", path
                        )
                    ) from None
                if hashlib.sha256(data).hexdigest() != digest:
                    raise ChargebackError(
                        Problem("a closed document does not match its recorded sha256", path)
                    )
                served.documents[f"{period}/{rel}"] = data
            served.warnings.append(
                f"{period} is closed (since {frozen.closed_at[:10]}): its figures and "
                "documents are served as they were closed"
            )

    # differences between the current data and what was closed
    current = build_ledger(ws, result.attribution, sorted(closed))
    for period in sorted(closed):
        frozen = closed[period]
        later_closed = [p for p in closed if p > period]
        posted: dict[tuple[str, str], list[Any]] = {}
        for p in later_closed:
            for ln in closed[p].lines:
                if ln.kind == ADJUSTMENT and ln.decision_id.startswith(f"{ADJUSTMENT}-{period}:"):
                    key = (ln.department_id, ln.decision_id.split(":", 1)[1])
                    acc = posted.setdefault(key, [Fraction(0), Fraction(0), Decimal(0), Decimal(0)])
                    acc[0] += ln.contacts
                    acc[1] += ln.handle_minutes
                    acc[2] += ln.cost
                    acc[3] += ln.revenue
        # adjustments a closed month carries are not its own data: compare the rest
        before = {
            (ln.department_id, ln.decision_id): ln for ln in frozen.lines if ln.kind != ADJUSTMENT
        }
        now = {(ln.department_id, ln.decision_id): ln for ln in current.lines_for(period)}
        deltas: list[LedgerLine] = []
        for key in sorted(set(before) | set(now)):
            old, new = before.get(key), now.get(key)
            got = posted.get(key, [Fraction(0), Fraction(0), Decimal(0), Decimal(0)])
            # the frozen figures were kept to 9 decimals (_exact): compare like with like,
            # or a weight of 1/3 would post a phantom adjustment of 0.000000000333
            d_contacts = (
                (_stored(new.contacts) if new else 0) - (old.contacts if old else 0) - got[0]
            )
            d_minutes = (
                (_stored(new.handle_minutes) if new else 0)
                - (old.handle_minutes if old else 0)
                - got[1]
            )
            d_cost = (new.cost if new else Decimal(0)) - (old.cost if old else Decimal(0)) - got[2]
            d_revenue = (
                (new.revenue if new else Decimal(0)) - (old.revenue if old else Decimal(0)) - got[3]
            )
            if d_cost == 0 and d_revenue == 0 and d_contacts == 0 and d_minutes == 0:
                continue
            ref = new or old
            assert ref is not None
            deltas.append(
                LedgerLine(
                    period="",
                    department_id=ref.department_id,
                    cost_center=ref.cost_center,
                    decision_id=adjustment_id(period, ref.decision_id),
                    contacts=Fraction(d_contacts),
                    handle_minutes=Fraction(d_minutes),
                    cost=d_cost,
                    revenue=d_revenue,
                    title=f"Prior-period adjustment for {period}: "
                    + (ref.title or ref.decision_id),
                    kind=ADJUSTMENT,
                )
            )
        if not deltas:
            continue
        # posted in one month only, whatever the run: the first open month after it
        target = shift_month(period, 1)
        while target in closed:
            target = shift_month(target, 1)
        cost = sum((d.cost for d in deltas), Decimal(0))
        if target not in periods:
            if open_periods_default and target > max(periods, default=""):
                # the run's months end before it: report that month too
                extra = build_ledger(ws, result.attribution, [target])
                periods.append(target)
                lines += list(extra.lines)
                summaries[target] = extra.periods[0]
            else:
                served.warnings.append(
                    f"the current data would change closed {period} by {cost:.2f} "
                    f"{ledger.currency}; the adjustment belongs to {target}, which this run "
                    "does not report"
                )
                continue
        posted_lines = [replace(d, period=target) for d in deltas]
        lines += posted_lines
        summary = summaries[target]
        unattributed = sum(
            (d.cost for d in posted_lines if d.department_id == UNATTRIBUTED), Decimal(0)
        )
        summaries[target] = replace(
            summary,
            handle_minutes=summary.handle_minutes
            + sum((d.handle_minutes for d in posted_lines), Fraction(0)),
            cost=summary.cost + cost,
            attributed_cost=summary.attributed_cost + cost - unattributed,
            unattributed_cost=summary.unattributed_cost + unattributed,
            revenue=summary.revenue + sum((d.revenue for d in posted_lines), Decimal(0)),
        )
        served.warnings.append(
            f"the current data would change closed {period} by {cost:.2f} {ledger.currency}: "
            f"posted as prior-period adjustments in {target} "
            f"({plural(len(posted_lines), 'line')})"
        )
    lines.sort(key=lambda ln: (ln.period, ln.department_id, ln.decision_id))
    result.periods = sorted(periods)
    result.ledger = Ledger(
        currency=ledger.currency,
        periods=tuple(summaries[p] for p in sorted(periods)),
        lines=tuple(ln for ln in lines if ln.period in periods),
    )
    return served
