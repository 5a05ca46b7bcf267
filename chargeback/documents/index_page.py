"""index.html: the output folder's book on one page, linking every document it holds.

Rewritten by every run that writes the book (ledger_files.write_outputs), in the
same all-or-nothing write as ledger.json, so its links name exactly the files
the run leaves behind: what it drew, plus what earlier runs drew and it keeps
(not what it removes). Links are relative, so the folder can be zipped, copied
or served as it is. The figures are the book's, as ledger.json has them.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from chargeback import __version__
from chargeback.documents.book import BOOK, BOOK_CSV, DOCUMENT_SUFFIXES, Month, month_documents
from chargeback.documents.charts import month_label
from chargeback.documents.render import environment, render_html
from chargeback.documents.trend import trend
from chargeback.documents.wording import pct
from chargeback.engine.ledger import UNATTRIBUTED, flags_net
from chargeback.report import ReportOptions, RunResult
from chargeback.resources import templates_dir

INDEX = "index.html"
TEMPLATE = "index.html.j2"
DATA_FILES = (BOOK, BOOK_CSV, "cs_value.json")
FORMATS = ((".pdf", "PDF"), (".html", "HTML"))
ZERO = Decimal("0.00")


def index_page(
    result: RunResult,
    opts: ReportOptions,
    months: Mapping[str, Month],
    written: Collection[str],
    removed: Iterable[Path],
) -> str:
    """The page for the book after this run (`written`: its files; `removed`: its deletions)."""
    ws = result.workspace
    out = result.out_dir
    present = present_documents(out, months, written, removed)
    data = [n for n in DATA_FILES if n in written or (out / n).is_file()]
    assert result.meta is not None  # run_report sets it before writing
    stamp = datetime.fromisoformat(result.meta["generated_at"])
    context = index_context(
        months,
        present,
        company=ws.settings.company or ws.root.name,
        currency=ws.costs.currency,
        names={d.id: d.name for d in ws.departments},
        closed={p: f.closed_at[:10] for p, f in result.served.closed.items()},
        chart=trend(ws, result.attribution, months, max(months)) if months else None,
        data_files=data,
        generated_on=stamp.astimezone(ZoneInfo(ws.settings.timezone)).date().isoformat(),
    )
    folders = [opts.templates, templates_dir()] if opts.templates else [templates_dir()]
    return render_html(environment([f for f in folders if f is not None]), TEMPLATE, context)


def present_documents(
    out: Path, months: Iterable[str], written: Iterable[str], removed: Iterable[Path]
) -> set[str]:
    """The months' documents (relative names) once the run is done: kept or drawn, not removed."""
    gone = {p.relative_to(out).as_posix() for p in removed}
    found = {
        p.relative_to(out).as_posix()
        for period in months
        for p in month_documents(out, period, set(DOCUMENT_SUFFIXES))
    }
    drawn = {name for name in written if name.endswith(DOCUMENT_SUFFIXES)}
    return (found - gone) | drawn


def _links(present: Collection[str], stem: str) -> list[dict[str, str]]:
    """PDF and HTML links to one document, those that exist."""
    return [
        {"format": label, "href": quote(f"{stem}{suffix}")}
        for suffix, label in FORMATS
        if f"{stem}{suffix}" in present
    ]


def index_context(
    months: Mapping[str, Month],
    present: Collection[str],
    *,
    company: str,
    currency: str,
    names: Mapping[str, str],
    closed: Mapping[str, str],
    chart: dict[str, Any] | None,
    data_files: Iterable[str],
    generated_on: str,
) -> dict[str, Any]:
    """What index.html.j2 gets (docs/index.md): months newest first, departments, trend."""
    order = list(names)  # the workspace's order; a department since removed goes last
    statements = sorted(
        {
            Path(n).stem
            for n in present
            if n.count("/") == 2 and n.split("/")[0] in months and "/departments/" in n
        },
        key=lambda d: (order.index(d) if d in names else len(order), d),
    )
    rows: list[dict[str, Any]] = []
    for period in sorted(months, reverse=True):
        totals = months[period].totals
        rows.append(
            {
                "period": period,
                "label": month_label(period),
                "closed_on": closed.get(period),
                "cost": Decimal(totals["cost"]),
                "net": Decimal(totals["net"]),
                "net_negative": flags_net(Decimal(totals["revenue"]), Decimal(totals["cost"])),
                "attributed_share": pct(
                    Decimal(totals["attributed_cost"]), Decimal(totals["cost"])
                ),
                "summary": _links(present, f"{period}/summary"),
                "cs_value": _links(present, f"{period}/cs-value"),
                "statements": [_links(present, f"{period}/departments/{d}") for d in statements],
            }
        )
    latest = max(months) if months else None
    return {
        "company": company,
        "currency": currency,
        "generated_on": generated_on,
        "version": __version__,
        "months": rows,
        "documents": sum(
            len(r["summary"]) + len(r["cs_value"]) + sum(map(len, r["statements"])) for r in rows
        ),
        "statement_columns": [{"id": d, "name": names.get(d, d)} for d in statements],
        "latest": {"period": latest, "label": month_label(latest)} if latest else None,
        **_departments(months, latest, names),
        "trend": chart,
        "data_files": [{"name": n, "href": quote(n)} for n in data_files],
    }


def _departments(
    months: Mapping[str, Month], latest: str | None, names: Mapping[str, str]
) -> dict[str, Any]:
    """The department table: the latest month's figures and the book's, by cost (largest first).

    `unattributed` is the latest month's cost no decision explains (a row of its
    own, never sorted among the departments); `totals` the latest month's and
    the book's sums, which the rows and that row add up to.
    """
    keys = ("cost", "revenue", "net", "book_cost", "book_revenue", "book_net")
    sums: dict[str, dict[str, Decimal]] = {}
    for period, month in months.items():
        for line in month.lines:
            dept = sums.setdefault(line["department_id"], dict.fromkeys(keys, ZERO))
            for key in ("cost", "revenue", "net"):
                if period == latest:
                    dept[key] += Decimal(line[key])
                dept[f"book_{key}"] += Decimal(line[key])
    whole = Decimal(months[latest].totals["cost"]) if latest else ZERO
    rows: list[dict[str, Any]] = [
        {
            "id": d,
            "name": names.get(d, d),
            **figures,
            "share": pct(figures["cost"], whole),
            # red as the documents print it: revenue, and less of it than the cost
            "net_negative": flags_net(figures["revenue"], figures["cost"]),
            "book_net_negative": flags_net(figures["book_revenue"], figures["book_cost"]),
        }
        for d, figures in sums.items()
        if d != UNATTRIBUTED
    ]
    rows.sort(key=lambda r: (-r["cost"], -r["book_cost"], r["id"]))
    rest = sums.get(UNATTRIBUTED)
    totals = {key: sum((figures[key] for figures in sums.values()), ZERO) for key in keys}
    return {
        "departments": rows,
        "unattributed": {**rest, "share": pct(rest["cost"], whole)} if rest else None,
        "totals": totals,
    }
