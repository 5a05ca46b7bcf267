"""One flag, one definition (SPEC 4, "Revenue and net"; issue 13 part 3).

A decision line is flagged when it has revenue in the period and its net is
negative, both as printed to the cent: it costs more in service than it
collects. A line without revenue is a cost, never flagged. Every output reads
LedgerLine.net_negative: ledger.json, the terminal's ▲, the statements, the
summary and the e-mails; and a closed month served from its manifest too.

  timezone UTC; rates (conftest): phone 0.40 + 1.05/min, chat 0.15, else 1.00
  2026-03  c1 phone fee     60s 1.45  fee: revenue 1.00, net -0.45   flagged
           c2 phone launch 120s 2.50  launch: no revenue, net -2.50  a cost, not flagged
           c3 chat  bundle       0.15  bundle: revenue 10.00, net 9.85
           c4 phone even     0s 0.40  even: revenue 0.40, net 0.00   not flagged (not < 0)
           c5 phone gone    60s 1.45  gone: revenue only in 2026-04, so 0 here: not flagged
           paper: revenue 100.00, no contacts, net 100.00
           c6 email other        1.00  unattributed (never flagged)
  2026-04  c7 phone gone    60s 1.45  gone: revenue 5.00, net 3.55
           c8 phone fee     60s 1.45  fee: revenue 1.00, net -0.45   flagged
"""

from __future__ import annotations

import email
import email.policy
import json
import re
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import pytest
from conftest import write_workspace
from typer.testing import CliRunner

from chargeback.engine.ledger import LedgerLine, flags_net
from chargeback.operations.closing import _line_from
from cli import app

runner = CliRunner()

DEPARTMENTS = """
departments:
  - {id: billing, name: Billing, cost_center: CC-100, recipients: [bill@example.com]}
  - {id: product, name: Product, cost_center: CC-200, recipients: [prod@example.com]}
"""
RULES = """\
decisions:
  - {id: fee, title: Late fee, kind: fee, department: billing, effective: 2026-03-01,
     revenue: {monthly: 1.00}}
  - {id: launch, title: App launch, kind: launch, department: product, effective: 2026-03-01}
  - {id: bundle, title: Bundle, kind: campaign, department: product, effective: 2026-03-01,
     revenue: {monthly: 10.00}}
  - {id: even, title: Break-even fee, kind: fee, department: billing, effective: 2026-03-01,
     revenue: {monthly: 0.40}}
  - {id: gone, title: April promo, kind: campaign, department: product, effective: 2026-03-01,
     revenue: {by_period: {2026-04: 5.00}}}
  - {id: paper, title: Paper bill fee, kind: fee, department: billing, effective: 2026-03-01,
     revenue: {by_period: {2026-03: 100.00}}}
rules:
  - {id: r-fee, decision: fee, match: {reason: [fee]}}
  - {id: r-launch, decision: launch, match: {reason: [launch]}}
  - {id: r-bundle, decision: bundle, match: {reason: [bundle]}}
  - {id: r-even, decision: even, match: {reason: [even]}}
  - {id: r-gone, decision: gone, match: {reason: [gone]}}
"""
CONTACTS = """\
contact_id,started_at,channel,reason,handle_seconds
c1,2026-03-02T10:00:00,phone,fee,60
c2,2026-03-03T10:00:00,phone,launch,120
c3,2026-03-04T10:00:00,chat,bundle,0
c4,2026-03-05T10:00:00,phone,even,0
c5,2026-03-06T10:00:00,phone,gone,60
c6,2026-03-07T10:00:00,email,other,0
c7,2026-04-02T10:00:00,phone,gone,60
c8,2026-04-03T10:00:00,phone,fee,60
"""
FLAGGED = {("2026-03", "fee"), ("2026-04", "fee")}


@pytest.fixture(scope="module")
def out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = write_workspace(
        tmp_path_factory.mktemp("flag") / "ws",
        RULES,
        CONTACTS,
        settings="timezone: UTC\nsummary_recipients: [cfo@example.com]\n",
        departments=DEPARTMENTS,
    )
    result = runner.invoke(
        app,
        [
            "report",
            "--workspace",
            str(root),
            "--out",
            str(root / "out"),
            "--format",
            "html,csv,json",
        ],
    )
    assert result.exit_code == 0, result.output
    return root / "out"


def ledger_lines(out: Path) -> list[dict[str, object]]:
    lines: list[dict[str, object]] = json.loads((out / "ledger.json").read_text())["lines"]
    return lines


def test_ledger_json_flags_exactly_lines_with_revenue_and_a_negative_net(out: Path) -> None:
    lines = ledger_lines(out)
    for line in lines:
        revenue, net = Decimal(str(line["revenue"])), Decimal(str(line["net"]))
        assert line["net_negative"] is (revenue != 0 and net < 0), line
    assert {(ln["period"], ln["decision_id"]) for ln in lines if ln["net_negative"]} == FLAGGED
    # a decision without revenue shows its cost as a negative net, unflagged
    launch = next(ln for ln in lines if ln["decision_id"] == "launch")
    assert (launch["net"], launch["net_negative"]) == ("-2.50", False)


def test_the_rule_reads_the_figures_as_printed_to_the_cent() -> None:
    assert flags_net(Decimal("1.00"), Decimal("1.01"))
    assert not flags_net(Decimal("1.00"), Decimal("1.00"))  # net 0.00 is not negative
    assert not flags_net(Decimal("0.00"), Decimal("5.00"))  # no revenue: a cost
    assert not flags_net(Decimal("0.004"), Decimal("5.00"))  # revenue that prints as 0.00
    assert flags_net(Decimal("1.00"), Decimal("1.005"))  # cost that prints as 1.01
    line = LedgerLine(
        "2026-03",
        "unattributed",
        "",
        "unattributed",
        Fraction(1),
        Fraction(1),
        Decimal("9.00"),
        Decimal("1.00"),
    )
    assert not line.net_negative  # the unattributed line is never flagged


def test_terminal_marks_the_same_lines_and_says_no_revenue(tmp_path: Path) -> None:
    root = write_workspace(
        tmp_path / "ws", RULES, CONTACTS, "timezone: UTC\n", departments=DEPARTMENTS
    )
    result = runner.invoke(
        app,
        [
            "report",
            "--workspace",
            str(root),
            "--out",
            str(tmp_path / "out"),
            "--format",
            "csv",
            "--all",
        ],
    )
    assert result.exit_code == 0, result.output
    rows = {
        (period, line.split()[0]): line
        for period, table in re.findall(
            r"^(2026-0\d) ·(.*?)(?=^2026-0\d ·|\Z)", result.stdout, re.M | re.S
        )
        for line in table.splitlines()
        if line.split() and line.split()[0] in ("fee", "launch", "bundle", "even", "gone", "paper")
    }
    assert {key for key, line in rows.items() if "▲" in line} == FLAGGED
    assert "no revenue" in rows["2026-03", "launch"] and "-2.50" in rows["2026-03", "launch"]
    assert "no revenue" in rows["2026-03", "gone"]  # its revenue is in April only
    assert "no revenue" not in rows["2026-04", "gone"]
    assert "▲ costs more in service than it collects" in result.stdout


def test_statements_and_summary_flag_the_same_lines(out: Path) -> None:
    billing = (out / "2026-03/departments/billing.html").read_text()
    product = (out / "2026-03/departments/product.html").read_text()
    summary = (out / "2026-03/summary.html").read_text()
    assert billing.count('class="flagged"') == 1 and "▲ 1 decision costs more" in billing
    assert 'class="flagged"' not in product and "costs more than it collects" not in product
    assert "no revenue declared" in product  # launch, and gone in March
    assert 'class="neg"' not in product  # -2.50 is a cost, not a flagged net
    flagged = re.search(r"▲ Costs more than it collects</strong>(.*?)</table>", summary, re.S)
    assert flagged is not None
    assert "Late fee" in flagged.group(1) and "App launch" not in flagged.group(1)
    assert "1 of them cost more" in summary


def test_emails_name_the_same_lines(out: Path, tmp_path: Path) -> None:
    root = out.parent
    result = runner.invoke(
        app,
        [
            "send",
            "--workspace",
            str(root),
            "--period",
            "2026-03",
            "--out",
            str(tmp_path / "sent"),
            "--dry-run",
        ],
    )
    assert result.exit_code == 0, result.output
    outbox = tmp_path / "sent/2026-03/outbox"
    texts = {}
    for path in sorted(outbox.glob("*.eml")):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        body = message.get_body(("plain",))  # type: ignore[attr-defined]
        texts[path.stem] = body.get_content()
    assert "Late fee (fee): net -0.45" in texts["statement-billing"]
    assert "than it collects" not in texts["statement-product"]
    assert "Late fee (billing): net -0.45" in texts["summary"]
    assert "App launch" not in texts["summary"]


def test_a_closed_month_keeps_the_flag(out: Path, tmp_path: Path) -> None:
    root, folder = out.parent, tmp_path / "closing"
    closed = runner.invoke(
        app, ["close", "--workspace", str(root), "--period", "2026-03", "--out", str(folder)]
    )
    assert closed.exit_code == 0, closed.output
    manifest = json.loads((folder / "closed/2026-03/manifest.json").read_text())
    assert all("collects" not in row for row in manifest["lines"])  # the flag reads revenue
    again = runner.invoke(
        app, ["report", "--workspace", str(root), "--out", str(folder), "--format", "csv,json"]
    )
    assert again.exit_code == 0, again.output
    lines = ledger_lines(folder)
    assert {(ln["period"], ln["decision_id"]) for ln in lines if ln["net_negative"]} == FLAGGED


def test_a_manifest_closed_before_the_one_flag_still_reads() -> None:
    """Months closed earlier carry `collects`; it is ignored, and the flag is the one rule."""
    row = {
        "period": "2026-03",
        "department_id": "product",
        "cost_center": "CC-200",
        "decision_id": "launch",
        "contacts_exact": "1",
        "handle_minutes_exact": "2",
        "cost": "2.50",
        "revenue": "0.00",
        "title": "App launch",
        "kind": "launch",
        "collects": True,
    }
    assert not _line_from(row).net_negative
    assert _line_from({**row, "revenue": "1.00", "collects": False}).net_negative
