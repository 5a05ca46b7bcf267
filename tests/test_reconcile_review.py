"""Reconciliation defects a review found (issue 14): each step named for what it is.

1. a baseline's cut is called "rule shares" when another rule of the decision has a
   higher factor but a lower weight;
2. with a control excess shared by two decisions, the other decision's part is
   printed as "expected anyway" instead of a split.
"""

from __future__ import annotations

import re
from pathlib import Path

from conftest import write_workspace
from test_control_ledger import write_shared_world
from test_statements_reconcile import COSTS, DEPARTMENTS, MINUS, text_of
from typer.testing import CliRunner

from cli import app

runner = CliRunner()


def invoke(*args: str) -> None:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output



def test_a_baseline_cut_is_not_called_a_rule_share(tmp_path: Path) -> None:
    """x1 (share 0.2) and x2 (flat baseline, f = 7.6/20 = 0.38) both match 20 phone
    contacts: weight 0.38, so 20 x 0.62 = 12.4 is the baseline's; chat contacts
    (x1 0.2, x3 0.5) lose 5 x 0.5 = 2.5 to shares."""
    rules = """\
    decisions:
      - {id: x, title: X, kind: fee, department: billing, effective: 2026-03-01}
    rules:
      - {id: x1, decision: x, match: {reason: [a]}, share: 0.2}
      - {id: x2, decision: x, match: {reason: [a], channel: [phone]}, baseline: {lookback_days: 10}}
      - {id: x3, decision: x, match: {reason: [a], channel: [chat]}, share: 0.5}
    """
    rows = "contact_id,started_at,channel,reason,handle_seconds,text\n"
    rows += "".join(f"b{k},2026-02-{20 + k}T10:00:00,phone,a,60,t\n" for k in range(1, 5))
    rows += "".join(f"k{k},2026-03-{k:02d}T10:00:00,phone,a,60,t\n" for k in range(1, 21))
    rows += "".join(f"c{k},2026-03-{k:02d}T11:00:00,chat,a,60,t\n" for k in range(1, 6))
    root = write_workspace(tmp_path / "ws", rules, rows, "timezone: UTC\n", DEPARTMENTS, COSTS)
    out = tmp_path / "out"
    invoke(
        "report",
        "--workspace",
        str(root),
        "--out",
        str(out),
        "--period",
        "2026-03",
        "--format",
        "html",
    )
    page = text_of((out / "2026-03" / "departments" / "billing.html").read_text())
    assert f"{MINUS} 12.400 at the usual level before the decision (baseline)" in page, page[
        page.find("Contacts in") :
    ][:400]
    assert f"{MINUS} 2.500 left out by rule shares below 100%" in page


def test_a_shared_control_excess_is_split_not_expected_anyway(tmp_path: Path) -> None:
    """tests/test_control_ledger.py's late fee and paper fee sharing one control cell."""
    ws = tmp_path / "ws"
    write_shared_world(ws)
    out = tmp_path / "out"
    invoke(
        "report",
        "--workspace",
        str(ws),
        "--out",
        str(out),
        "--period",
        "2026-06",
        "--format",
        "html",
    )
    page = text_of((out / "2026-06" / "departments" / "billing.html").read_text())
    line = re.search(r"late-fee : (.*?charged)\.", page)
    assert line
    expected = re.search(rf"{MINUS} (\d+\.\d+) expected anyway", line.group(1))
    table = re.search(r"late-fee-calls contacts it shares .*? (\d+) (\d+\.\d) (\d+\.\d)", page)
    assert expected and table, line.group(1)
    # the line's "expected anyway" is the control table's Expected, the rest a split
    assert abs(float(expected.group(1)) - float(table.group(2))) < 0.1, line.group(1)
    assert "split with paper-fee" in line.group(1)


