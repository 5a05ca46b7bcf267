"""Period close, prior-period adjustments and the journal (issue 5).

timezone UTC; phone 1.00 a contact, anything else 2.00
March: c1 phone fee -> fee 1.00       April: c2 phone fee -> fee 1.00, c3 chat -> unattributed 2.00
May:   c4 phone fee -> fee 1.00
Late March contacts added after close: c9 phone fee (+1.00 to fee), c8 chat (+2.00 unattributed)
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from conftest import write_workspace
from typer.testing import CliRunner

from cli import app

runner = CliRunner()

RULES = """\
departments:
  - {id: billing, name: Billing, cost_center: CC-1}
  - {id: product, name: Product, cost_center: CC-2}
decisions:
  - {id: fee, title: Fee, kind: fee, department: billing, effective: 2026-03-01,
     revenue: {monthly: 1.00}}
  - {id: app, title: App, kind: launch, department: product, effective: 2026-03-01}
rules:
  - {id: r, decision: fee, match: {reason: [fee]}}
  - {id: a, decision: app, match: {reason: [app]}}
costs:
  currency: USD
  method: rates
  channels: {phone: {per_contact: 1.00}}
  default: {per_contact: 2.00}
"""
CONTACTS = """\
contact_id,started_at,channel,reason
c1,2026-03-02T10:00:00,phone,fee
c2,2026-04-02T10:00:00,phone,fee
c3,2026-04-03T10:00:00,chat,x
c4,2026-05-03T10:00:00,phone,fee
"""


def workspace(tmp_path: Path, settings: str = "") -> Path:
    root = tmp_path / "ws"
    (root / "rules").mkdir(parents=True)
    (root / "rules" / "all.yaml").write_text(RULES)
    (root / "contacts.csv").write_text(CONTACTS)
    (root / "chargeback.yaml").write_text("timezone: UTC\ncontacts: contacts.csv\n" + settings)
    return root


def cb(root: Path, *args: str) -> tuple[int, str]:
    result = runner.invoke(app, [*args, "--workspace", str(root), "--out", str(root / "out")])
    return result.exit_code, result.output


def ledger(root: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO((root / "out" / "ledger.csv").read_text())))


def add(root: Path, *rows: str) -> None:
    with (root / "contacts.csv").open("a") as handle:
        handle.write("".join(row + "\n" for row in rows))


def snapshot(root: Path, period: str) -> dict[str, bytes]:
    folder = root / "out" / period
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*.*")}


def test_closed_month_stays_byte_identical_and_late_contacts_become_adjustments(
    tmp_path: Path,
) -> None:
    root = workspace(tmp_path)
    assert cb(root, "report")[0] == 0
    code, output = cb(root, "close", "--period", "2026-03")
    assert code == 0, output
    before = snapshot(root, "2026-03")
    march = [r for r in ledger(root) if r["period"] == "2026-03"]
    assert {p for p in before} >= {"summary.pdf", "departments/billing.pdf", "cs-value.pdf"}

    add(root, "c9,2026-03-20T10:00:00,phone,fee", "c8,2026-03-21T10:00:00,chat,x")
    code, output = cb(root, "report")
    assert code == 0, output
    assert snapshot(root, "2026-03") == before  # every closed document, byte for byte
    assert [r for r in ledger(root) if r["period"] == "2026-03"] == march
    april = {r["decision_id"]: r for r in ledger(root) if r["period"] == "2026-04"}
    assert april["adjustment-2026-03:fee"]["cost"] == "1.00"
    assert april["adjustment-2026-03:fee"]["contacts"] == "1.000"
    assert april["adjustment-2026-03:fee"]["department_id"] == "billing"
    assert april["adjustment-2026-03:unattributed"]["cost"] == "2.00"
    assert "change closed 2026-03 by 3.00 USD" in output and "2026-04" in output
    # April's lines still add up to its total, which now carries the adjustment
    doc = json.loads((root / "out" / "ledger.json").read_text())
    total = doc["periods"]["2026-04"]["cost"]
    lines = [r for r in ledger(root) if r["period"] == "2026-04"]
    assert total == "6.00" == f"{sum(float(r['cost']) for r in lines):.2f}"
    # and the statement shows it
    from pypdf import PdfReader

    text = "".join(
        p.extract_text() for p in PdfReader(root / "out/2026-04/departments/billing.pdf").pages
    )
    assert "Prior-period adjustment for 2026-03" in text


def test_an_adjustment_is_posted_once_even_after_its_month_is_closed(tmp_path: Path) -> None:
    root = workspace(tmp_path)
    assert cb(root, "close", "--period", "2026-03")[0] == 0
    add(root, "c9,2026-03-20T10:00:00,phone,fee")
    assert cb(root, "close", "--period", "2026-04")[0] == 0  # April freezes the adjustment
    code, output = cb(root, "report")
    assert code == 0, output
    may = [r["decision_id"] for r in ledger(root) if r["period"] == "2026-05"]
    assert not any(d.startswith("adjustment") for d in may)
    add(root, "c7,2026-03-22T10:00:00,phone,fee")  # one more late contact
    cb(root, "report")
    may_rows = {r["decision_id"]: r for r in ledger(root) if r["period"] == "2026-05"}
    assert may_rows["adjustment-2026-03:fee"]["cost"] == "1.00"  # only the new one


def test_close_twice_and_reopen_needs_force(tmp_path: Path) -> None:
    root = workspace(tmp_path)
    assert cb(root, "close", "--period", "2026-03")[0] == 0
    code, output = cb(root, "close", "--period", "2026-03")
    assert code == 1 and "already closed" in output and "reopen" in output
    code, output = cb(root, "reopen", "--period", "2026-03")
    assert code == 2 and "--force" in output
    code, output = cb(root, "reopen", "--period", "2026-03", "--force")
    assert code == 0, output
    history = [
        json.loads(line) for line in (root / "out/closed/history.jsonl").read_text().splitlines()
    ]
    assert [h["action"] for h in history] == ["close", "reopen"]
    assert all(h["period"] == "2026-03" and h["at"] and h["by"] for h in history)
    add(root, "c9,2026-03-20T10:00:00,phone,fee")
    code, output = cb(root, "report")
    assert code == 0 and "adjustment" not in output
    march = {r["decision_id"]: r for r in ledger(root) if r["period"] == "2026-03"}
    assert march["fee"]["cost"] == "2.00"  # reopened: recomputed from the data
    code, output = cb(root, "reopen", "--period", "2026-07", "--force")
    assert code == 1 and "not closed" in output


JOURNAL = """\
journal:
  service_cost_center: CC-9000
  account: "6150"
  credit_account: "4990"
  delimiter: ";"
  date_format: "%d.%m.%Y"
  columns:
    Buchungsdatum: "{date}"
    Konto: "{account}"
    Kostenstelle: "{cost_center}"
    Soll: "{debit}"
    Haben: "{credit}"
    Text: "Chargeback {period} {department_name}"
"""


def test_journal_balances_in_the_erp_layout(tmp_path: Path) -> None:
    root = workspace(tmp_path, JOURNAL)
    add(root, "c5,2026-04-05T10:00:00,phone,app")
    code, output = cb(root, "journal", "--period", "2026-04")
    assert code == 0, output
    text = (root / "out/2026-04/journal.csv").read_text()
    rows = list(csv.reader(io.StringIO(text), delimiter=";"))
    assert rows == [
        ["Buchungsdatum", "Konto", "Kostenstelle", "Soll", "Haben", "Text"],
        ["30.04.2026", "6150", "CC-1", "1.00", "0.00", "Chargeback 2026-04 Billing"],
        ["30.04.2026", "6150", "CC-2", "1.00", "0.00", "Chargeback 2026-04 Product"],
        ["30.04.2026", "4990", "CC-9000", "0.00", "2.00", "Chargeback 2026-04 Customer service"],
    ]
    assert "debits 2.00 = credits 2.00" in output
    assert not (root / "out" / "ledger.csv").exists()  # a journal run writes only the journal


def test_journal_of_a_closed_month_uses_its_frozen_figures(tmp_path: Path) -> None:
    root = workspace(tmp_path, "journal: {service_cost_center: CC-9000}\n")
    assert cb(root, "close", "--period", "2026-03")[0] == 0
    add(root, "c9,2026-03-20T10:00:00,phone,fee")
    code, output = cb(root, "journal", "--period", "2026-03")
    assert code == 0, output
    rows = list(csv.DictReader(io.StringIO((root / "out/2026-03/journal.csv").read_text())))
    assert [(r["cost_center"], r["debit"], r["credit"]) for r in rows] == [
        ("CC-1", "1.00", "0.00"),
        ("CC-9000", "0.00", "1.00"),
    ]


def test_journal_settings_errors(tmp_path: Path) -> None:
    root = workspace(tmp_path)
    code, output = cb(root, "journal", "--period", "2026-04")
    assert code == 1 and "service_cost_center" in output
    bad = workspace(
        tmp_path / "b", 'journal:\n  service_cost_center: X\n  columns: {A: "{amout}"}\n'
    )
    code, output = cb(bad, "journal", "--period", "2026-04")
    assert code == 1 and "chargeback.yaml:5" in output and "amout" in output


def test_send_attaches_the_frozen_statement_of_a_closed_month(tmp_path: Path) -> None:
    import email
    import email.policy

    root = workspace(tmp_path)
    (root / "rules" / "all.yaml").write_text(
        RULES.replace("cost_center: CC-1}", "cost_center: CC-1, recipients: [b@example.com]}")
    )
    assert cb(root, "close", "--period", "2026-03")[0] == 0
    frozen = (root / "out/closed/2026-03/documents/departments/billing.pdf").read_bytes()
    add(root, "c9,2026-03-20T10:00:00,phone,fee")
    code, output = cb(root, "send", "--period", "2026-03", "--dry-run")
    assert code == 0, output
    message = email.message_from_bytes(
        (root / "out/2026-03/outbox/statement-billing.eml").read_bytes(),
        policy=email.policy.default,
    )
    assert isinstance(message, email.message.EmailMessage)
    (pdf,) = [p for p in message.iter_attachments() if p.get_content_type() == "application/pdf"]
    assert pdf.get_content() == frozen


def test_an_adjustment_belongs_to_one_month_whatever_the_run_reports(tmp_path: Path) -> None:
    root = workspace(tmp_path, "journal: {service_cost_center: CC-9000}\n")
    assert cb(root, "close", "--period", "2026-03")[0] == 0
    add(root, "c9,2026-03-20T10:00:00,phone,fee")
    code, output = cb(root, "journal", "--period", "2026-05")
    assert code == 0, output
    may = (root / "out/2026-05/journal.csv").read_text()
    assert "CC-1,1.00" in may  # May's own fee only, no adjustment
    assert "belongs to 2026-04, which this run does not report" in output
    code, output = cb(root, "journal", "--period", "2026-04")
    assert code == 0, output
    rows = list(csv.DictReader(io.StringIO((root / "out/2026-04/journal.csv").read_text())))
    assert rows[0]["cost_center"] == "CC-1" and rows[0]["debit"] == "2.00"  # fee + adjustment


def test_reopen_refuses_when_a_later_closed_month_carries_its_adjustments(tmp_path: Path) -> None:
    root = workspace(tmp_path)
    assert cb(root, "close", "--period", "2026-03")[0] == 0
    add(root, "c9,2026-03-20T10:00:00,phone,fee")
    assert cb(root, "close", "--period", "2026-04")[0] == 0
    code, output = cb(root, "reopen", "--period", "2026-03", "--force")
    assert code == 1 and "reopen 2026-04 first" in output
    assert cb(root, "reopen", "--period", "2026-04", "--force")[0] == 0
    assert cb(root, "reopen", "--period", "2026-03", "--force")[0] == 0


def test_journal_refuses_format_specs_and_departments_without_a_cost_center(
    tmp_path: Path,
) -> None:
    spec = workspace(
        tmp_path / "a", 'journal:\n  service_cost_center: X\n  columns: {A: "{amount:.2f}"}\n'
    )
    code, output = cb(spec, "journal", "--period", "2026-04")
    assert code == 1 and "write {amount}" in output and "Traceback" not in output
    bare = workspace(tmp_path / "b", "journal: {service_cost_center: X}\n")
    (bare / "rules" / "all.yaml").write_text(RULES.replace(", cost_center: CC-1", ""))
    code, output = cb(bare, "journal", "--period", "2026-04")
    assert code == 1 and "'billing' has no cost_center" in output


def test_a_closed_month_with_thirds_of_a_contact_posts_no_phantom_adjustment(
    tmp_path: Path,
) -> None:
    """Frozen figures keep 9 decimals: unchanged data must compare equal to them."""
    rules = """
    decisions:
      - {id: a, title: A, kind: fee, department: billing, effective: 2026-03-01}
      - {id: b, title: B, kind: fee, department: billing, effective: 2026-03-01}
      - {id: c, title: C, kind: fee, department: product, effective: 2026-03-01}
    rules:
      - {id: ra, decision: a, match: {reason: [x]}}
      - {id: rb, decision: b, match: {reason: [x]}}
      - {id: rc, decision: c, match: {reason: [x]}}
    """
    contacts = "contact_id,started_at,channel,reason\n1,2026-03-02,phone,x\n2,2026-04-02,phone,x\n"
    ws = write_workspace(tmp_path / "ws", rules, contacts)
    out = str(tmp_path / "out")
    base = ["--workspace", str(ws), "--out", out]
    assert runner.invoke(app, ["close", "--period", "2026-03", *base]).exit_code == 0
    result = runner.invoke(app, ["report", "--format", "csv", *base])
    assert result.exit_code == 0, result.output
    assert "would change closed" not in result.output
    assert "adjustment" not in (tmp_path / "out" / "ledger.csv").read_text()


def test_a_journal_goes_when_report_changes_its_month(tmp_path: Path) -> None:
    """The journal is drawn from the month's figures; a report that changes them
    removes it (with the command to draw it again), one that does not keeps it."""
    root = workspace(tmp_path, "journal: {service_cost_center: CC-9000}\n")
    assert cb(root, "journal", "--period", "2026-04")[0] == 0  # before any report
    journal = root / "out/2026-04/journal.csv"
    assert cb(root, "report", "--period", "2026-04", "--format", "csv")[0] == 0
    assert journal.exists()  # the book had no April to compare with: it stays
    code, output = cb(root, "report", "--period", "2026-04", "--format", "csv")
    assert code == 0 and journal.exists(), output  # same figures: still the month's journal
    add(root, "c6,2026-05-02T10:00:00,phone,app")  # new inputs, April's figures unchanged
    code, output = cb(root, "report", "--period", "2026-04", "--format", "csv")
    assert code == 0 and journal.exists(), output
    add(root, "c7,2026-04-07T10:00:00,phone,app")
    code, output = cb(root, "report", "--period", "2026-04", "--format", "csv")
    assert code == 0, output
    assert not journal.exists()
    said = " ".join(output.split())
    assert "2026-04: journal.csv was made from figures this run changed" in said
    assert "chargeback journal --period 2026-04" in said
