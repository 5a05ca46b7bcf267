"""index.html, the output folder's page (docs/index.md): its context and its links.

The workspace (shared with test_index_browser.py): timezone UTC; phone 3.00 a
contact, chat 1.00, anything else 2.00. fee (billing, revenue 10.00 a month
from January) matches reason fee; app (product, no revenue) reason app; promo
(marketing, revenue 1.00 a month from March) reason promo.

By hand, March (the latest month): billing 2 phone = 6.00, net 10.00 - 6.00 =
4.00; product 1 phone = 3.00, net -3.00; marketing 2 chat = 2.00, net 1.00 -
2.00 = -1.00; one e-mail unattributed = 2.00. Month cost 13.00, so the shares
are 46.2%, 23.1%, 15.4% and 15.4%. By cost: billing, product, marketing; by
net (worst first): product, marketing, billing. The book (January to March):
billing costs 3.00 + 0.00 + 6.00 = 9.00 and nets 7.00 + 10.00 + 4.00 = 21.00;
product 1.00 + 3.00 + 3.00 = 7.00, net -7.00; marketing 2.00, net -1.00;
unattributed 0.00 + 2.00 + 2.00 = 4.00.
"""

from __future__ import annotations

import json
from decimal import Decimal
from html.parser import HTMLParser
from pathlib import Path

from typer.testing import CliRunner

from chargeback.documents.book import Month
from chargeback.documents.index_page import index_context
from chargeback.documents.render import environment, render_html
from chargeback.resources import templates_dir
from cli import app

RULES = """\
departments:
  - {id: billing, name: Billing, cost_center: CC-1}
  - {id: product, name: Product, cost_center: CC-2}
  - {id: marketing, name: Marketing & Growth, cost_center: CC-3}
decisions:
  - {id: fee, title: Fee, kind: fee, department: billing, effective: 2026-01-01,
     revenue: {monthly: 10.00}}
  - {id: app, title: App, kind: launch, department: product, effective: 2026-01-01}
  - {id: promo, title: Promo, kind: campaign, department: marketing, effective: 2026-03-01,
     revenue: {monthly: 1.00}}
rules:
  - {id: f, decision: fee, match: {reason: [fee]}}
  - {id: a, decision: app, match: {reason: [app]}}
  - {id: p, decision: promo, match: {reason: [promo]}}
costs:
  currency: USD
  method: rates
  channels:
    phone: {per_contact: 3.00}
    chat: {per_contact: 1.00}
  default: {per_contact: 2.00}
"""
CONTACTS = """\
contact_id,started_at,channel,reason,handle_seconds
c1,2026-01-05T10:00:00,phone,fee,60
c2,2026-01-06T10:00:00,chat,app,
c3,2026-02-03T10:00:00,phone,app,60
c4,2026-02-04T10:00:00,email,other,
c5,2026-03-02T10:00:00,phone,fee,60
c6,2026-03-03T10:00:00,phone,fee,60
c7,2026-03-04T10:00:00,phone,app,60
c8,2026-03-05T10:00:00,chat,promo,
c9,2026-03-06T10:00:00,chat,promo,
c10,2026-03-09T10:00:00,email,other,
"""
MONTHS = ["2026-01", "2026-02", "2026-03"]
BY_COST = ["billing", "product", "marketing"]
BY_NET = ["product", "marketing", "billing"]
runner = CliRunner()


def workspace(root: Path, rules: str = RULES) -> Path:
    """The workspace above; the company name has markup in it, which must stay text."""
    (root / "rules").mkdir(parents=True, exist_ok=True)
    (root / "rules" / "all.yaml").write_text(rules)
    (root / "contacts.csv").write_text(CONTACTS)
    (root / "chargeback.yaml").write_text(
        'timezone: UTC\ncontacts: contacts.csv\ncompany: "Tiny <b>Co</b> & Sons"\n'
    )
    return root


def report(root: Path, out: Path, *args: str) -> str:
    result = runner.invoke(app, ["report", "--workspace", str(root), "--out", str(out), *args])
    assert result.exit_code == 0, result.output
    return result.output


class Page(HTMLParser):
    """What a test reads off index.html: links, the department rows' order, the text."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.hrefs: list[str] = []
        self.rows: list[str] = []  # data-id of the department rows, in order
        self.text: list[str] = []
        self.tags: list[str] = []
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        self.tags.append(tag)
        if tag == "a" and found.get("href") is not None:
            self.hrefs.append(str(found["href"]))
        if tag == "tr" and found.get("data-id"):
            self.rows.append(str(found["data-id"]))

    def handle_data(self, data: str) -> None:
        if data.strip():
            self.text.append(data.strip())


def page(out: Path) -> Page:
    return Page((out / "index.html").read_text(encoding="utf-8"))


def documents(hrefs: list[str]) -> list[str]:
    return sorted(h for h in hrefs if h.endswith((".pdf", ".html")))


def test_a_csv_run_links_the_data_and_no_document(tmp_path: Path) -> None:
    root = workspace(tmp_path / "ws")
    out = tmp_path / "out"
    report(root, out, "--from", "2026-01", "--to", "2026-03", "--format", "csv")
    found = page(out)
    assert found.hrefs == ["ledger.json", "ledger.csv"]
    assert "No documents have been drawn into this folder yet" in " ".join(found.text)
    assert found.rows == BY_COST  # without script, by cost
    assert "Tiny <b>Co</b> & Sons" in found.text  # escaped: text, not a bold tag
    assert "b" not in found.tags


def test_every_drawn_document_is_linked_and_exists(tmp_path: Path) -> None:
    root = workspace(tmp_path / "ws")
    out = tmp_path / "out"
    report(root, out, "--from", "2026-01", "--to", "2026-03", "--format", "html,json")
    hrefs = page(out).hrefs
    expected = [
        f"{m}/{name}.html"
        for m in MONTHS
        for name in ("summary", "cs-value", "departments/billing", "departments/product")
    ] + ["2026-03/departments/marketing.html"]
    assert documents(hrefs) == sorted(expected)
    assert [h for h in hrefs if not h.endswith(".html")] == ["ledger.json", "cs_value.json"]
    assert all((out / h).is_file() for h in hrefs)


def test_a_rewritten_months_removed_documents_are_not_linked(tmp_path: Path) -> None:
    root = workspace(tmp_path / "ws")
    out = tmp_path / "out"
    report(root, out, "--from", "2026-01", "--to", "2026-03", "--format", "html")
    # March again with other rules and without HTML: its HTML documents no longer
    # describe the book and are removed; January's and February's stay linked
    workspace(root, RULES.replace("reason: [app]", "reason: [app, other]"))
    report(root, out, "--period", "2026-03", "--format", "csv")
    assert not (out / "2026-03" / "summary.html").exists()
    hrefs = page(out).hrefs
    assert not [h for h in hrefs if h.startswith("2026-03/")]
    assert [h for h in documents(hrefs) if h.startswith("2026-02/")] == [
        "2026-02/cs-value.html",
        "2026-02/departments/billing.html",
        "2026-02/departments/product.html",
        "2026-02/summary.html",
    ]
    assert all((out / h).is_file() for h in hrefs)


def test_a_department_without_lines_loses_its_statement_link(tmp_path: Path) -> None:
    root = workspace(tmp_path / "ws")
    out = tmp_path / "out"
    report(root, out, "--period", "2026-03", "--format", "html")
    assert (out / "2026-03/departments/marketing.html").exists()
    workspace(root, RULES.replace("department: marketing", "department: billing"))
    report(root, out, "--period", "2026-03", "--format", "html")
    assert not (out / "2026-03/departments/marketing.html").exists()  # removed as stale
    hrefs = page(out).hrefs
    assert "2026-03/departments/marketing.html" not in hrefs
    assert "2026-03/departments/billing.html" in hrefs


def test_the_department_table_by_hand(tmp_path: Path) -> None:
    root = workspace(tmp_path / "ws")
    out = tmp_path / "out"
    report(root, out, "--from", "2026-01", "--to", "2026-03", "--format", "csv")
    months = book_months(out)
    context = index_context(months, set(), **ARGS)
    rows = {d["id"]: d for d in context["departments"]}
    assert [d["id"] for d in context["departments"]] == BY_COST
    assert (rows["billing"]["cost"], rows["billing"]["net"]) == (Decimal("6.00"), Decimal("4.00"))
    assert (rows["product"]["cost"], rows["product"]["net"]) == (Decimal(3), Decimal(-3))
    assert (rows["marketing"]["revenue"], rows["marketing"]["net"]) == (Decimal(1), Decimal(-1))
    assert [rows[d]["share"] for d in BY_COST] == ["46.2%", "23.1%", "15.4%"]
    assert [(rows[d]["book_cost"], rows[d]["book_net"]) for d in BY_COST] == [
        (Decimal(9), Decimal(21)),
        (Decimal(7), Decimal(-7)),
        (Decimal(2), Decimal(-1)),
    ]
    # red as the documents print it: marketing declares revenue and costs more; product
    # has no revenue, so its -3.00 is a cost, not a bad bargain; March nets -2.00
    assert [rows[d]["net_negative"] for d in BY_COST] == [False, False, True]
    assert [rows[d]["book_net_negative"] for d in BY_COST] == [False, False, True]
    assert [m["net_negative"] for m in context["months"]] == [True, False, False]
    assert context["unattributed"]["cost"] == Decimal(2)
    assert context["unattributed"]["book_cost"] == Decimal(4)
    assert context["unattributed"]["share"] == "15.4%"
    assert (context["totals"]["cost"], context["totals"]["net"]) == (Decimal(13), Decimal(-2))
    assert (context["totals"]["book_cost"], context["totals"]["book_net"]) == (22, 9)
    assert [m["period"] for m in context["months"]] == MONTHS[::-1]  # newest first
    assert context["latest"] == {"period": "2026-03", "label": "Mar 2026"}


ARGS = {
    "company": "Tiny Co",
    "currency": "USD",
    "names": {"billing": "Billing", "product": "Product", "marketing": "Marketing & Growth"},
    "closed": {},
    "chart": None,
    "data_files": ["ledger.json"],
    "generated_on": "2026-04-01",
}


def book_months(out: Path) -> dict[str, Month]:
    doc = json.loads((out / "ledger.json").read_text())
    return {
        p: Month(totals, [ln for ln in doc["lines"] if ln["period"] == p])
        for p, totals in doc["periods"].items()
    }


def test_links_follow_the_files_and_closed_months_say_so(tmp_path: Path) -> None:
    root = workspace(tmp_path / "ws")
    out = tmp_path / "out"
    report(root, out, "--from", "2026-01", "--to", "2026-03", "--format", "csv")
    present = {
        "2026-03/summary.pdf",
        "2026-03/summary.html",
        "2026-03/departments/product.pdf",
        "2026-02/cs-value.html",
        "2026-02/departments/gone.html",  # a department no longer in the workspace
    }
    context = index_context(book_months(out), present, **{**ARGS, "closed": {"2026-02": "x"}})
    march, february, january = context["months"]
    assert march["summary"] == [
        {"format": "PDF", "href": "2026-03/summary.pdf"},
        {"format": "HTML", "href": "2026-03/summary.html"},
    ]
    assert march["cs_value"] == [] and february["summary"] == []
    assert [c["id"] for c in context["statement_columns"]] == ["product", "gone"]
    assert march["statements"] == [
        [{"format": "PDF", "href": "2026-03/departments/product.pdf"}],
        [],
    ]
    assert february["statements"] == [
        [],
        [{"format": "HTML", "href": "2026-02/departments/gone.html"}],
    ]
    assert january["statements"] == [[], []]
    assert context["documents"] == 5
    assert [m["closed_on"] for m in context["months"]] == [None, "x", None]


def test_an_empty_book_renders_a_page_that_says_so() -> None:
    context = index_context({}, set(), **ARGS)
    assert (context["months"], context["departments"], context["latest"]) == ([], [], None)
    assert context["unattributed"] is None and context["documents"] == 0
    html = render_html(environment([templates_dir()]), "index.html.j2", context)
    found = Page(html)
    assert found.hrefs == ["ledger.json"]
    assert "The book is empty" in " ".join(found.text)


def test_a_closed_month_is_marked_closed(tmp_path: Path) -> None:
    root = workspace(tmp_path / "ws")
    out = tmp_path / "out"
    closed = runner.invoke(
        app, ["close", "--workspace", str(root), "--out", str(out), "--period", "2026-01"]
    )
    assert closed.exit_code == 0, closed.output
    right_after = (out / "index.html").read_text(encoding="utf-8")
    row = [r for r in right_after.split("<tr") if 'class="sub">2026-01<' in r]
    assert len(row) == 1 and '<span class="badge"' in row[0]  # close itself marks it
    report(root, out, "--period", "2026-02", "--format", "csv")
    text = (out / "index.html").read_text(encoding="utf-8")
    rows = {m: [r for r in text.split("<tr") if f'class="sub">{m}<' in r] for m in MONTHS[:2]}
    (january,), (february,) = rows["2026-01"], rows["2026-02"]  # one row each
    assert '<span class="badge"' in january and "closed" in january
    assert "badge" not in february
    hrefs = page(out).hrefs
    assert "2026-01/summary.pdf" in hrefs and "2026-01/departments/billing.html" in hrefs
    assert not [h for h in hrefs if h.startswith("2026-02/")]
    assert all((out / h).is_file() for h in hrefs)
