"""Statements and the executive summary (issue 3), read back as a reader would.

One hand-made workspace is rendered once (all formats) through the CLI; the
tests extract the PDFs' text and find the ledger's figures on them.

  timezone UTC; rates: phone 0.40 + 1.05/min, chat 0.15, anything else 1.00
  c0 2026-02-25 phone billing.late_fee 60s  1.45  before late-fee -> unattributed
  c1 2026-03-02 phone billing.late_fee 60s  1.45  late-fee
  c2 2026-03-05 chat  billing.late_fee 120s 0.15  late-fee
  c3 2026-03-12 phone app.crash        120s 2.50  app-launch
  c4 2026-03-20 email other            0s   1.00  unattributed

  2026-03: late-fee 2.000 contacts, 3.00 min, cost 1.60, revenue 1.00, net -0.60 (flagged)
           app-launch 1.000, 2.00 min, 2.50, revenue 0.00, net -2.50 (no revenue: not flagged)
           paper-fee 0.000, 0.00, 0.00, revenue 100.00, net 100.00 (revenue only)
           unattributed 1.00; total 5.10; billing 1.60 / 101.00 / 99.40; product 2.50
  2026-02: only unattributed 1.45 -> a summary and no statements.
"""

from __future__ import annotations

import csv
import html.parser
import http.server
import io
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest
from pypdf import PdfReader
from typer.testing import CliRunner

from cli import app

runner = CliRunner()

RULES = """\
decisions:
  - id: late-fee
    title: '<b>Late</b> fee & "charges"'
    kind: fee
    department: billing
    effective: 2026-03-01
    revenue: {monthly: 1.00}
  - id: app-launch
    title: '<img src="http://127.0.0.1:{port}/title.png"> App 5'
    kind: launch
    department: product
    effective: 2026-03-10
  - id: paper-fee
    title: Paper bill fee
    kind: fee
    department: billing
    effective: 2026-03-01
    revenue: {by_period: {2026-03: 100.00}}
rules:
  - id: late-fee-contacts
    decision: late-fee
    match: {reason: ["billing.late_fee"]}
  - id: app-crashes
    decision: app-launch
    match: {reason: [app.crash]}
    window: {days: 30}
"""

CONTACTS = """\
contact_id,started_at,channel,reason,handle_seconds,text
c0,2026-02-25T10:00:00,phone,billing.late_fee,60,before
c1,2026-03-02T10:00:00,phone,billing.late_fee,60,<script>alert(1)</script> late fee
c2,2026-03-05T10:00:00,chat,billing.late_fee,120,why a fee
c3,2026-03-12T10:00:00,phone,app.crash,120,"<img src=""http://127.0.0.1:{port}/text.png""> crash"
c4,2026-03-20T10:00:00,email,other,0,hello
"""

DEPARTMENTS = """
departments:
  - {id: billing, name: Billing & Payments, cost_center: CC-100}
  - {id: product, name: Product, cost_center: CC-200}
  - {id: ops, name: Operations, cost_center: CC-300}
"""


class Recorder(http.server.BaseHTTPRequestHandler):
    hits: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        Recorder.hits.append(self.path)
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def server() -> Iterator[int]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd.server_address[1]
    httpd.shutdown()


def make_workspace(root: Path, port: int) -> Path:
    from conftest import RATES, write_workspace

    return write_workspace(
        root,
        RULES.replace("{port}", str(port)),
        CONTACTS.replace("{port}", str(port)),
        settings="timezone: UTC\ncompany: Test & Co\n",
        departments=DEPARTMENTS,
        costs=RATES,
    )


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory, server: int) -> Path:
    root = make_workspace(tmp_path_factory.mktemp("statements") / "ws", server)
    out = root / "out"
    result = runner.invoke(app, ["report", "--workspace", str(root), "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out


class _Text(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self.skip = 0

    def handle_starttag(self, tag: str, attrs: object) -> None:
        self.skip += tag in ("style", "script")

    def handle_endtag(self, tag: str) -> None:
        self.skip -= tag in ("style", "script")

    def handle_data(self, data: str) -> None:
        if not self.skip:
            self.parts.append(data)


def strip_html(markup: str) -> str:
    """The text a browser shows (entities decoded), without the CSS."""
    parser = _Text()
    parser.feed(markup)
    return " ".join(parser.parts)


def pdf_text(path: Path) -> str:
    return "\n".join(page.extract_text() or "" for page in PdfReader(path).pages)


def tokens(text: str) -> set[str]:
    return set(re.split(r"[\s()]+", text))


def ledger_rows(out: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO((out / "ledger.csv").read_text())))


def test_every_document_is_written(rendered: Path) -> None:
    names = sorted(str(p.relative_to(rendered)) for p in rendered.rglob("[!.]*.*"))
    assert names == [
        "2026-02/cs-value.html",
        "2026-02/cs-value.pdf",
        "2026-02/summary.html",
        "2026-02/summary.pdf",
        "2026-03/cs-value.html",
        "2026-03/cs-value.pdf",
        "2026-03/departments/billing.html",
        "2026-03/departments/billing.pdf",
        "2026-03/departments/product.html",
        "2026-03/departments/product.pdf",
        "2026-03/summary.html",
        "2026-03/summary.pdf",
        "cs_value.json",
        "index.html",
        "ledger.csv",
        "ledger.json",
    ]


def test_statements_carry_every_ledger_figure(rendered: Path) -> None:
    rows = [r for r in ledger_rows(rendered) if r["department_id"] != "unattributed"]
    assert {r["decision_id"] for r in rows} == {"late-fee", "app-launch", "paper-fee"}
    for fmt in ("pdf", "html"):
        for row in rows:
            path = rendered / row["period"] / "departments" / f"{row['department_id']}.{fmt}"
            text = pdf_text(path) if fmt == "pdf" else strip_html(path.read_text())
            found = tokens(text)
            for column in ("contacts", "handle_minutes", "cost", "revenue", "net"):
                assert row[column] in found, (path.name, row["decision_id"], column, row[column])


def test_summary_carries_every_ledger_line_of_its_month(rendered: Path) -> None:
    for row in ledger_rows(rendered):
        for fmt in ("pdf", "html"):
            path = rendered / row["period"] / f"summary.{fmt}"
            text = pdf_text(path) if fmt == "pdf" else strip_html(path.read_text())
            found = tokens(text)
            for column in ("contacts", "handle_minutes", "cost", "revenue", "net"):
                assert row[column] in found, (path.name, row["decision_id"], column, row[column])


def test_hand_computed_statement_figures(rendered: Path) -> None:
    text = pdf_text(rendered / "2026-03/departments/billing.pdf")
    found = tokens(text)
    # the lines, then the department's totals box (1.60 cost, 101.00 revenue, 99.40 net)
    assert {"1.60", "1.00", "-0.60", "2.000", "3.00", "100.00", "101.00", "99.40"} <= found
    assert "Billing & Payments" in text and "CC-100" in text
    assert "Page 1 of" in text
    assert "costs more than it collects" in text  # late-fee collects 1.00 and costs 1.60
    product = pdf_text(rendered / "2026-03/departments/product.pdf")
    assert "-2.50" in tokens(product)
    assert "costs more than it collects" not in product  # collects nothing: a cost, not a flag


def test_summary_carries_totals_departments_and_unattributed(rendered: Path) -> None:
    text = pdf_text(rendered / "2026-03/summary.pdf")
    found = tokens(text)
    # total 5.10; attributed 4.10 (80.4%); unattributed 1.00 with its reason 'other'
    assert {"5.10", "4.10", "1.00", "1.60", "2.50", "99.40", "80.4%"} <= found
    assert "other" in found
    assert "Test & Co" in text
    feb = tokens(pdf_text(rendered / "2026-02/summary.pdf"))
    assert "1.45" in feb


def test_data_that_looks_like_html_stays_text_and_nothing_is_fetched(rendered: Path) -> None:
    assert Recorder.hits == []
    html = (rendered / "2026-03/departments/product.html").read_text()
    assert "<img src=" not in html
    assert "&lt;img src=" in html
    billing = (rendered / "2026-03/departments/billing.html").read_text()
    assert "<script>" not in billing and "&lt;script&gt;" in billing
    assert "&lt;b&gt;Late&lt;/b&gt; fee &amp; &#34;charges&#34;" in billing
    assert '<img src="http://127.0.0.1' in pdf_text(rendered / "2026-03/departments/product.pdf")


def test_pdf_metadata_and_the_ledger_attachment(rendered: Path) -> None:
    reader = PdfReader(rendered / "2026-03/departments/billing.pdf")
    meta = reader.metadata
    assert meta is not None
    assert meta.title is not None and "Billing & Payments" in meta.title
    assert meta.author == "Test & Co"
    assert meta.subject and "CC-100" in meta.subject and "2026-03" in meta.subject
    attachments = reader.attachments
    assert list(attachments) == ["chargeback-2026-03-billing.csv"]
    attached = attachments["chargeback-2026-03-billing.csv"][0].decode()
    expected = [
        r
        for r in ledger_rows(rendered)
        if r["period"] == "2026-03" and r["department_id"] == "billing"
    ]
    assert list(csv.DictReader(io.StringIO(attached))) == expected


def test_statement_number_is_stable_and_names_the_inputs(
    rendered: Path, tmp_path: Path, server: int
) -> None:
    again = make_workspace(tmp_path / "copy", server)  # same contents, another folder
    out = tmp_path / "out2"
    result = runner.invoke(
        app, ["report", "--workspace", str(again), "--out", str(out), "--format", "html"]
    )
    assert result.exit_code == 0, result.output

    def number(path: Path) -> str:
        match = re.search(r"CB-\d{6}-[0-9A-F]{8}", path.read_text())
        assert match
        return match.group(0)

    first = number(rendered / "2026-03/departments/billing.html")
    assert first == number(out / "2026-03/departments/billing.html")
    assert first != number(rendered / "2026-03/departments/product.html")
    fingerprint = re.search(
        r'"fingerprint": "([0-9a-f]{64})"', (rendered / "ledger.json").read_text()
    )
    assert fingerprint and fingerprint.group(1) in (rendered / "2026-03/summary.html").read_text()


def test_same_inputs_same_day_give_identical_pdf_bytes(rendered: Path, tmp_path: Path) -> None:
    """Byte for byte, even when the run asks for one month instead of all."""
    root = rendered.parent
    out = tmp_path / "again"
    args = ["report", "--workspace", str(root), "--out", str(out), "--period", "2026-03"]
    assert runner.invoke(app, [*args, "--format", "pdf"]).exit_code == 0
    for name in ("summary.pdf", "departments/billing.pdf", "departments/product.pdf"):
        assert (out / "2026-03" / name).read_bytes() == (rendered / "2026-03" / name).read_bytes()


def run(root: Path, *extra: str) -> tuple[int, str]:
    result = runner.invoke(
        app, ["report", "--workspace", str(root), "--out", str(root / "out"), *extra]
    )
    return result.exit_code, result.output


def test_format_selects_what_is_written(tmp_path: Path, server: int) -> None:
    root = make_workspace(tmp_path / "ws", server)
    code, output = run(root, "--format", "html", "--period", "2026-03")
    assert code == 0, output
    written = sorted(p.name for p in (root / "out").rglob("[!.]*.*"))
    # and the book, ledger.json and its index.html, whatever --format says (SPEC 5)
    assert written == [
        "billing.html",
        "cs-value.html",
        "index.html",
        "ledger.json",
        "product.html",
        "summary.html",
    ]


def test_pdf_a_3b_variant(tmp_path: Path, server: int) -> None:
    root = make_workspace(tmp_path / "ws", server)
    code, output = run(root, "--format", "pdf", "--period", "2026-03", "--pdf-variant", "pdf/a-3b")
    assert code == 0, output
    reader = PdfReader(root / "out/2026-03/departments/billing.pdf")
    catalog = reader.trailer["/Root"]
    assert "/OutputIntents" in catalog and "/Metadata" in catalog  # PDF/A's ICC intent and XMP
    xmp = catalog["/Metadata"].get_object().get_data().decode()
    assert 'pdfaid:part="3"' in xmp and 'pdfaid:conformance="B"' in xmp
    assert list(reader.attachments) == ["chargeback-2026-03-billing.csv"]

    code, output = run(root, "--pdf-variant", "pdf/x-9")
    assert code == 2 and "pdf/a-3b" in output


def test_a_department_without_lines_loses_its_old_statement(tmp_path: Path, server: int) -> None:
    root = make_workspace(tmp_path / "ws", server)
    assert run(root, "--period", "2026-03", "--format", "html")[0] == 0
    stale = root / "out/2026-03/departments/product.html"
    assert stale.exists()
    contacts = root / "contacts.csv"
    contacts.write_text(
        "\n".join(line for line in contacts.read_text().splitlines() if "app.crash" not in line)
    )
    assert run(root, "--period", "2026-03", "--format", "html")[0] == 0
    assert not stale.exists()
    assert (root / "out/2026-03/departments/billing.html").exists()


def test_a_csv_run_leaves_documents_that_still_agree_with_the_book(
    tmp_path: Path, server: int
) -> None:
    """Documents a run does not draw stay while the month is unchanged, and go (with a
    warning) once the run puts other figures for it in the book (SPEC 5: the book and
    the files agree)."""
    root = make_workspace(tmp_path / "ws", server)
    assert run(root, "--period", "2026-03", "--format", "html")[0] == 0
    statement = root / "out/2026-03/departments/product.html"
    code, output = run(root, "--period", "2026-03", "--format", "csv")
    assert code == 0, output
    assert statement.exists()  # same inputs, same figures: still the book's month
    contacts = root / "contacts.csv"
    contacts.write_text(
        "\n".join(line for line in contacts.read_text().splitlines() if "app.crash" not in line)
    )
    code, output = run(root, "--period", "2026-03", "--format", "csv")
    assert code == 0, output
    assert not list((root / "out/2026-03").rglob("*.html"))
    assert "2026-03: the html documents on disk were not drawn from the figures" in " ".join(
        output.split()
    )


def test_long_tables_summarise_and_the_attachment_has_every_line(tmp_path: Path) -> None:
    """50 decisions: 40 rows, the cheapest one still shown because it costs more than it
    collects, the other 9 folded into one row; every line in the attachment."""
    from conftest import write_workspace

    decisions = "\n".join(
        f"  - {{id: d{i:02d}, title: Decision {i}, kind: fee, department: billing,"
        f" effective: 2026-03-01{', revenue: {monthly: 0.01}' if i == 0 else ''}}}"
        for i in range(50)
    )
    rules = "\n".join(
        f"  - {{id: r{i:02d}, decision: d{i:02d}, match: {{reason: [r{i:02d}]}}}}"
        for i in range(50)
    )
    contacts = "contact_id,started_at,channel,reason,handle_seconds\n" + "\n".join(
        f"c{i},2026-03-{1 + i % 28:02d}T10:00:00,phone,r{i:02d},{60 * (i + 1)}" for i in range(50)
    )
    root = write_workspace(
        tmp_path / "ws", f"decisions:\n{decisions}\nrules:\n{rules}\n", contacts, "timezone: UTC\n"
    )
    code, output = run(root, "--format", "pdf")
    assert code == 0, output
    path = root / "out/2026-03/departments/billing.pdf"
    text = pdf_text(path)
    assert "9 other decisions" in text
    # d00 is the cheapest (1.45, collects 0.01): named in the callout and kept in the table
    assert "Decision 0 (d00): net -1.44" in " ".join(text.split())
    assert "-1.44" in tokens(text) and "1.45" in tokens(text)
    assert len(PdfReader(path).pages) <= 12
    attached = PdfReader(path).attachments["chargeback-2026-03-billing.csv"][0].decode()
    assert len(attached.strip().splitlines()) == 51  # header + all 50 lines


TEMPLATE_WITH_A_REMOTE_LOGO = """\
{% extends "_layout.html.j2" %}
{% block content %}
<img src="http://127.0.0.1:PORT/logo.png">
<img src="logo.svg">
<h1>{{ department.name }}</h1><p>{{ totals.cost | money }}</p>
{% endblock %}
"""


def test_own_templates_override_one_file_and_never_reach_the_network(
    tmp_path: Path, server: int
) -> None:
    root = make_workspace(tmp_path / "ws", server)
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "statement.html.j2").write_text(
        TEMPLATE_WITH_A_REMOTE_LOGO.replace("PORT", str(server))
    )
    (mine / "logo.svg").write_text(
        '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"></svg>'
    )
    before = len(Recorder.hits)
    code, output = run(root, "--period", "2026-03", "--templates", str(mine))
    assert code == 0, output
    assert len(Recorder.hits) == before  # refused, not fetched
    assert "refused" in output and "logo.png" in output  # and the user is told
    assert "logo.svg" not in output  # a file in the template folder is fine
    assert "1.60" in tokens(pdf_text(root / "out/2026-03/departments/billing.pdf"))
    summary = (root / "out/2026-03/summary.html").read_text()
    assert "Executive summary" in summary  # not overridden: the built-in one


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{% block content %}{{ totals.cost | money }{% endblock %}", "statement.html.j2:1"),
        ("<p>{{ totals.costs | money }}</p>", "statement.html.j2:1"),
        ("<p>\n{{ no_such_name }}</p>", "statement.html.j2:2"),
    ],
)
def test_a_broken_template_names_its_file_and_line(
    tmp_path: Path, server: int, template: str, expected: str
) -> None:
    root = make_workspace(tmp_path / "ws", server)
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "statement.html.j2").write_text(template)
    code, output = run(root, "--period", "2026-03", "--templates", str(mine))
    assert code == 1
    assert expected in output
    assert "Traceback" not in output


def test_templates_folder_must_exist(tmp_path: Path, server: int) -> None:
    root = make_workspace(tmp_path / "ws", server)
    code, output = run(root, "--templates", str(tmp_path / "nope"))
    assert code == 2 and "nope" in output


@pytest.mark.parametrize(
    "template",
    [
        "{{ totals | dictsort(by='cost') }}",  # a filter given a bad argument
        '{% include "statement.html.j2" %}',  # includes itself without end
    ],
)
def test_template_runtime_errors_are_messages_not_tracebacks(
    tmp_path: Path, server: int, template: str
) -> None:
    root = make_workspace(tmp_path / "ws", server)
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "statement.html.j2").write_text(template)
    code, output = run(root, "--period", "2026-03", "--templates", str(mine))
    assert code == 1, output
    assert "statement.html.j2" in output and "Traceback" not in output


def test_a_template_that_is_not_utf8_is_named(tmp_path: Path, server: int) -> None:
    root = make_workspace(tmp_path / "ws", server)
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "statement.html.j2").write_bytes("<p>caf\xe9</p>".encode("latin-1"))
    code, output = run(root, "--period", "2026-03", "--templates", str(mine))
    assert code == 1 and "statement.html.j2" in output and "UTF-8" in output


@pytest.mark.parametrize("where", ["department", "decision"])
def test_unattributed_is_a_reserved_id(tmp_path: Path, where: str) -> None:
    from conftest import write_workspace

    departments = "departments:\n  - {id: unattributed, name: U}\n  - {id: billing}\n"
    decision_id = "unattributed" if where == "decision" else "d"
    department = "unattributed" if where == "department" else "billing"
    rules = (
        f"decisions:\n  - {{id: {decision_id}, title: T, kind: fee, department: {department},"
        " effective: 2026-03-01}\n"
        f"rules:\n  - {{id: r, decision: {decision_id}, match: {{channel: [phone]}}}}\n"
    )
    root = write_workspace(
        tmp_path / "ws",
        rules,
        "contact_id,started_at,channel\nc1,2026-03-02T10:00:00,phone\n",
        departments=departments,
    )
    code, output = run(root)
    assert code == 1
    assert "reserved" in output and ".yaml:" in output and "Traceback" not in output


def test_a_department_without_a_name_is_headed_by_its_id(tmp_path: Path) -> None:
    from conftest import write_workspace

    root = write_workspace(
        tmp_path / "ws",
        "decisions:\n  - {id: d, title: T, kind: fee, department: ops, effective: 2026-03-01}\n"
        "rules:\n  - {id: r, decision: d, match: {channel: [phone]}}\n",
        "contact_id,started_at,channel\nc1,2026-03-02T10:00:00,phone\n",
        departments="departments:\n  - {id: ops}\n",
    )
    code, output = run(root, "--format", "pdf")
    assert code == 0, output
    meta = PdfReader(root / "out/2026-03/departments/ops.pdf").metadata
    assert meta is not None and meta.title is not None and ": ops, Mar 2026" in meta.title
    assert meta.subject == "Customer-service cost charged back to ops for 2026-03"


def test_parallel_rendering_gives_the_same_bytes(
    rendered: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The worker pool (2 processes) renders exactly what one process renders."""
    monkeypatch.setenv("CHARGEBACK_WORKERS", "2")
    root = rendered.parent
    out = tmp_path / "parallel"
    args = ["report", "--workspace", str(root), "--out", str(out), "--format", "pdf"]
    assert runner.invoke(app, args).exit_code == 0
    for path in rendered.rglob("*.pdf"):
        assert (out / path.relative_to(rendered)).read_bytes() == path.read_bytes()


def test_a_rerun_reuses_pdfs_whose_html_did_not_change(
    tmp_path: Path, server: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    import chargeback.documents.compose as documents

    root = make_workspace(tmp_path / "ws", server)
    assert run(root, "--period", "2026-03", "--format", "pdf")[0] == 0
    first = {p.name: p.read_bytes() for p in (root / "out").rglob("*.pdf")}
    drawn: list[int] = []
    real = documents.render_pdfs

    def counting(jobs: list[documents.PdfJob]) -> list[tuple[bytes, list[str]]]:
        drawn.append(len(jobs))
        return real(jobs)

    monkeypatch.setattr(documents, "render_pdfs", counting)
    code, output = run(root, "--period", "2026-03", "--format", "pdf")
    assert code == 0, output
    assert drawn == [0]  # nothing redrawn
    assert {p.name: p.read_bytes() for p in (root / "out").rglob("*.pdf")} == first
    assert ".render-cache" not in output

    add_late = root / "contacts.csv"  # new figures for March: its documents are drawn again
    add_late.write_text(
        add_late.read_text() + "c5,2026-03-25T10:00:00,phone,billing.late_fee,60,x\n"
    )
    assert run(root, "--period", "2026-03", "--format", "pdf")[0] == 0
    assert drawn[-1] > 0
    mine = tmp_path / "mine"  # a changed template folder: everything drawn again
    mine.mkdir()
    (mine / "extra.txt").write_text("a logo's stand-in")
    drawn.clear()
    assert run(root, "--period", "2026-03", "--format", "pdf", "--templates", str(mine))[0] == 0
    assert drawn == [len(first)]
    (root / "out/2026-03/departments/billing.pdf").write_bytes(b"tampered")
    drawn.clear()
    assert run(root, "--period", "2026-03", "--format", "pdf", "--templates", str(mine))[0] == 0
    assert drawn == [1]  # only the file that no longer has the bytes written
    assert (root / "out/2026-03/departments/billing.pdf").read_bytes().startswith(b"%PDF")
