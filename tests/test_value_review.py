"""CS-value defects a review found (issue 14).

3. a prior-period adjustment is advised as "a decision that costs more than it brings";
4. a horizon's block picks a month nobody contacted in, and the chart prints "n/a"
   (legend: "not yet observable") for an observable horizon.
"""

from __future__ import annotations

import re
from pathlib import Path

from conftest import write_workspace
from test_statements_reconcile import COSTS, DEPARTMENTS, RULES, contacts, text_of
from typer.testing import CliRunner

from cli import app

runner = CliRunner()


def invoke(*args: str) -> None:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output



def test_a_prior_period_adjustment_is_not_a_decision_lever(tmp_path: Path) -> None:
    rows = contacts() + "".join(
        f"q{k},2026-04-0{k}T10:00:00,phone,app.crash,60,crash\n" for k in (1, 2, 3)
    )
    root = write_workspace(tmp_path / "ws", RULES, rows, "timezone: UTC\n", DEPARTMENTS, COSTS)
    out = str(tmp_path / "out")
    base = ("--workspace", str(root), "--out", out)
    invoke("report", *base, "--from", "2026-03", "--to", "2026-04", "--format", "html")
    invoke("close", *base, "--period", "2026-03")
    late = "".join(f"z{k},2026-03-2{k}T10:00:00,phone,billing.fee,60,fee\n" for k in range(1, 8))
    (root / "contacts.csv").write_text(rows + late)  # late March contacts: an adjustment in April
    invoke("report", *base, "--period", "2026-04", "--format", "html")
    page = text_of((tmp_path / "out" / "2026-04" / "cs-value.html").read_text())
    levers = page.split("The biggest levers", 1)[1].split("The month and", 1)[0]
    assert "Prior-period adjustment" not in levers, levers


def test_a_horizon_block_shows_a_month_with_contacts(tmp_path: Path) -> None:
    """tests/test_value_cohorts.py's world: Feb 2026 has no contacts, Jan's 40 days are
    observable (+41.68 in the table), yet the 40-day block and chart show Feb: 'n/a'."""
    from test_value_cohorts import make

    root = make(tmp_path / "ws")
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
    page = (out / "2026-03" / "cs-value.html").read_text()
    svg = re.search(r'<svg class="chart money-bars".*?</svg>', page, re.S)
    assert svg
    assert ">n/a<" not in svg.group(0)  # every horizon is observable for some month
    assert "n/a: not yet observable" not in page  # the legend names only what is drawn
    assert "40 days on: contacts in Jan 2026" in text_of(page)

