"""What a newcomer hit on a first afternoon (issue 13, part 5), each now a test.

`report --period last`, the README's journal on the sample, a dry send that
says why it has nothing to send, a summary table that fits 80 columns (and
`--all`), plurals, `--help` without `<bool>`, a missing workspace as a usage
error, and several errors listed in file order. Everything goes through the
Typer app, as a newcomer would.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import typer
from conftest import write_workspace
from rich.console import Console
from typer.testing import CliRunner, Result

import chargeback.operations.deliver
from chargeback import console
from chargeback.console import in_file_order
from chargeback.engine.ledger import Ledger, half_up
from chargeback.errors import ChargebackError, Problem
from chargeback.operations.deliver import last_period
from chargeback.report import ReportOptions
from chargeback.run import run_report
from chargeback.terminal import summary_tables
from cli import app

ROOT = Path(__file__).resolve().parent.parent

RULES = """\
decisions:
  - {id: fee, title: Late fee, kind: fee, department: billing, effective: 2026-02-01,
     revenue: {monthly: 1.00}}
rules:
  - {id: r-fee, decision: fee, match: {reason: [fee]}}
"""
CONTACTS = """\
contact_id,started_at,channel,reason,handle_seconds
c1,2026-02-10T10:00:00,phone,fee,60
c2,2026-03-10T10:00:00,phone,fee,60
c3,2026-03-11T10:00:00,email,other,0
"""


def invoke(*args: str, **kwargs: object) -> Result:
    result = CliRunner().invoke(app, [str(a) for a in args], **kwargs)  # type: ignore[arg-type]
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result


def periods_in(path: Path) -> list[str]:
    return sorted({r["period"] for r in csv.DictReader(io.StringIO(path.read_text()))})


# --------------------------------------------------------------------------- report --period last


def test_report_period_last_is_the_month_before_in_the_workspace_timezone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 02:00 UTC on 1 April is still 31 March in New York: "last" is February there
    asked: list[str] = []

    def at_a_fixed_time(timezone: str, now: datetime | None = None) -> str:
        asked.append(timezone)
        return last_period(timezone, datetime(2026, 4, 1, 2, 0, tzinfo=UTC))

    monkeypatch.setattr(chargeback.operations.deliver, "last_period", at_a_fixed_time)
    root = write_workspace(tmp_path / "ws", RULES, CONTACTS, "timezone: America/New_York\n")
    out = tmp_path / "out"
    result = invoke(
        "report", "--workspace", root, "--period", "last", "--format", "csv", "--out", out
    )
    assert result.exit_code == 0, result.output
    assert asked == ["America/New_York"]
    assert periods_in(out / "ledger.csv") == ["2026-02"]
    assert "'last'" in invoke("report", "--help").output


def test_period_last_still_refuses_a_range(tmp_path: Path) -> None:
    root = write_workspace(tmp_path / "ws", RULES, CONTACTS, "timezone: UTC\n")
    result = invoke(
        "report", "--workspace", root, "--period", "last", "--from", "2026-02", "--to", "2026-03"
    )
    assert result.exit_code == 2
    assert "either --period or --from/--to" in result.output


# --------------------------------------------------------------------------- journal on the sample


def readme_commands(prefix: str) -> list[list[str]]:
    """The README's shell lines that start with `prefix`, comments cut, as arguments."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```sh\n(.*?)```", text, re.S)
    lines = [ln.split("#")[0].split() for b in blocks for ln in b.splitlines()]
    return [ln[1:] for ln in lines if " ".join(ln).startswith(prefix)]


@pytest.fixture
def fresh_clone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty folder, as after cloning: no rules/ here, so the sample workspace is used."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_the_readme_journal_runs_on_the_sample(fresh_clone: Path) -> None:
    commands = readme_commands("chargeback journal")
    assert commands, "the README shows a journal command"
    for args in [*commands, ["journal", "--period", "2026-11"]]:
        result = invoke(*args)
        assert result.exit_code == 0, (args, result.output)
        period = args[args.index("--period") + 1]
        journal = fresh_clone / "reports" / period / "journal.csv"
        rows = list(csv.DictReader(io.StringIO(journal.read_text())))
        assert rows[-1]["cost_center"] == "CC-3000"  # the sample's service cost center
        debit = sum(float(r["debit"]) for r in rows)
        assert round(debit, 2) == round(sum(float(r["credit"]) for r in rows), 2) > 0
        assert "journal lines, debits" in result.output


# --------------------------------------------------------------------------- send --dry-run


def test_a_dry_send_without_recipients_says_why_nothing_would_go(tmp_path: Path) -> None:
    root = write_workspace(tmp_path / "ws", RULES, CONTACTS, "timezone: UTC\n")  # no recipients
    result = invoke(
        "send", "--workspace", root, "--period", "2026-03", "--dry-run", "--out", tmp_path / "out"
    )
    assert result.exit_code == 0, result.output
    said = " ".join(result.stdout.split())
    assert (
        "2026-03: dry run, nothing would be sent: no department with charges has "
        "recipients (billing: add `recipients:`" in said
    )
    assert "no `summary_recipients:`" in said
    assert "Wrote 0" not in said


def test_a_send_of_a_month_without_charges_says_so(tmp_path: Path) -> None:
    departments = """
departments:
  - {id: billing, name: Billing, cost_center: CC-100, recipients: [bill@example.com]}
"""
    contacts = "contact_id,started_at,channel,reason\nc1,2026-01-10T10:00:00,email,other\n"
    root = write_workspace(tmp_path / "ws", RULES, contacts, "timezone: UTC\n", departments)
    dry = invoke(
        "send", "--workspace", root, "--period", "2026-01", "--dry-run", "--out", tmp_path / "out"
    )
    assert dry.exit_code == 0, dry.output
    assert "nothing would be sent: no department has charges in 2026-01" in dry.stdout
    env = {
        "CHARGEBACK_SMTP_HOST": "127.0.0.1",
        "CHARGEBACK_SMTP_PORT": "9",
        "CHARGEBACK_SMTP_SECURITY": "none",
        "CHARGEBACK_SMTP_FROM": "cb@example.com",
    }
    real = invoke(
        "send", "--workspace", root, "--period", "2026-01", "--out", tmp_path / "out", env=env
    )
    assert real.exit_code == 0, real.output
    assert "2026-01: nothing sent: no department has charges in 2026-01" in real.stdout


# --------------------------------------------------------------------------- the summary table


@pytest.fixture(scope="module")
def november() -> Ledger:
    """The sample's 2026-11 ledger, computed, nothing written."""
    result = run_report(ReportOptions(period="2026-11", formats=("csv",), write=False))
    return result.ledger


def rendered(ledger: Ledger, width: int, top: int | None = 5) -> list[str]:
    screen = Console(width=width, color_system=None, record=True, file=io.StringIO())
    for table in summary_tables(ledger, False, top, width):
        screen.print(table)
    return [line.rstrip() for line in screen.export_text().splitlines()]


def figures(ledger: Ledger) -> Iterator[tuple[str, str, str, str, str]]:
    """Each decision line's id, contacts (3 decimals), cost, revenue and net as the table prints
    them: the ledger's figures with thousands commas."""
    for ln in ledger.lines:
        if not ln.is_unattributed:
            yield (
                ln.decision_id,
                f"{half_up(ln.contacts, 3):,.3f}",
                f"{ln.cost:,.2f}",
                f"{ln.revenue:,.2f}",
                f"{ln.net:,.2f}",
            )


def test_the_summary_fits_80_columns_with_every_figure_whole(november: Ledger) -> None:
    lines = rendered(november, 80, top=None)
    assert max(len(line) for line in lines) <= 80
    for decision, contacts, cost, revenue, net in figures(november):
        row = next(line for line in lines if line.startswith(decision + " "))
        assert contacts in row and cost in row and net in row, row
        assert (revenue in row) if revenue != "0.00" else ("no revenue" in row), row
    assert "department" in lines[1]  # the sample's table needs no column dropped at 80


def test_a_narrow_terminal_loses_columns_not_figures(november: Ledger) -> None:
    lines = rendered(november, 60)
    assert max(len(line) for line in lines) <= 60
    header = lines[next(i for i, ln in enumerate(lines) if ln.startswith("decision"))]
    assert "department" not in header and "revenue" not in header  # dropped, in that order
    assert "contacts" in header and "cost USD" in header and "net USD" in header
    for decision, contacts, cost, _, net in figures(november):
        row = next((line for line in lines if line.startswith(decision + " ")), None)
        if row is not None:
            assert contacts in row and cost in row and net in row, row


def test_the_readme_shows_the_real_table(november: Ledger) -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = next(b for b in re.findall(r"```text\n(.*?)```", text, re.S) if "2026-11 ·" in b)
    assert block.rstrip("\n").splitlines() == rendered(november, 80)


def test_report_all_lists_every_decision(fresh_clone: Path) -> None:
    base = ["report", "--period", "2026-11", "--format", "csv", "--out", "out"]
    short = invoke(*base)
    full = invoke(*base, "--all")
    assert short.exit_code == full.exit_code == 0, short.output + full.output
    assert re.search(r"^\+3 more \(--all\)", short.stdout, re.M)
    assert "more (--all)" not in full.stdout
    for decision in ("paper-bill-fee", "unlimited-price-rise", "esim-launch"):
        assert decision not in short.stdout and decision in full.stdout


def test_the_cli_fits_the_terminal_it_is_given(
    fresh_clone: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(console.out, "width", 80)
    result = invoke("report", "--period", "2026-11", "--format", "csv", "--out", "out")
    assert result.exit_code == 0, result.output
    table = result.stdout.split("\n\n")[0].splitlines()
    assert max(len(line.rstrip()) for line in table) <= 80


# --------------------------------------------------------------------------- plurals


def test_one_period_and_one_contact_are_singular(tmp_path: Path) -> None:
    contacts = "contact_id,started_at,channel,reason\nc1,2026-03-10T10:00:00,phone,fee\n"
    settings = "timezone: UTC\njournal: {service_cost_center: CC-9}\n"
    root = write_workspace(tmp_path / "ws", RULES, contacts, settings)
    result = invoke("report", "--workspace", root, "--format", "csv", "--out", tmp_path / "out")
    assert result.exit_code == 0, result.output
    assert "1 period, 1 contact, " in result.stdout
    assert "2026-03 · 1 contact ·" in result.stdout
    journal = invoke(
        "journal", "--workspace", root, "--period", "2026-03", "--out", tmp_path / "out"
    )
    assert journal.exit_code == 0, journal.output
    assert "2026-03: 2 journal lines, debits 0.40 = credits 0.40" in journal.stdout
    for text in (result.output, journal.output):
        assert "(s)" not in text


# --------------------------------------------------------------------------- --help


COMMANDS = sorted(typer.main.get_command(app).commands)  # type: ignore[attr-defined]


@pytest.mark.parametrize("command", ["", *COMMANDS])
def test_help_shows_no_type_after_a_flag(command: str) -> None:
    result = invoke(*([command] if command else []), "--help")
    assert result.exit_code == 0
    assert "<bool>" not in result.output
    assert "--help" in result.output


def test_flags_are_still_listed_and_options_keep_their_type() -> None:
    text = " ".join(invoke("send", "--help").output.split())
    assert "--dry-run Write the messages" in text and "--resend Send again" in text
    assert "--period <str>" in text
    assert "<bool>" not in (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")


# --------------------------------------------------------------------------- missing workspace


@pytest.mark.parametrize(
    "args",
    [
        ["report"],
        ["value"],
        ["check"],
        ["explain", "c1"],
        ["send", "--period", "2026-03", "--dry-run"],
        ["close", "--period", "2026-03"],
        ["reopen", "--period", "2026-03", "--force"],
        ["journal", "--period", "2026-03"],
        ["diff", "a", "b"],
    ],
)
def test_a_missing_workspace_folder_is_a_usage_error(tmp_path: Path, args: list[str]) -> None:
    result = invoke(*args, "--workspace", tmp_path / "nope")
    assert result.exit_code == 2, result.output
    assert "--workspace" in result.output and "nope" in result.output
    assert "no such folder" in result.output
    assert "Traceback" not in result.output


def test_a_file_given_as_workspace_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "rules.yaml").write_text("rules: []\n")
    result = invoke("check", "--workspace", tmp_path / "rules.yaml")
    assert result.exit_code == 2
    assert "is a file, not a folder" in result.output


# --------------------------------------------------------------------------- errors in file order


def test_problems_are_sorted_by_file_then_line_stably() -> None:
    a, b = Path("rules/a.yaml"), Path("rules/b.yaml")
    given = [
        Problem("hint without a place", severity="hint"),
        Problem("b9", b, 9),
        Problem("a12", a, 12),
        Problem("b2", b, 2),
        Problem("a3-first", a, 3),
        Problem("a3-second", a, 3),
        Problem("a-file", a),
        Problem("contacts row 4", Path("contacts.csv"), row=4),
    ]
    assert [p.message for p in in_file_order(given)] == [
        "contacts row 4", "a-file", "a3-first", "a3-second", "a12", "b2", "b9",
        "hint without a place",
    ]  # fmt: skip


def test_the_cli_lists_several_errors_in_file_order(
    fresh_clone: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def several(*args: object) -> None:
        raise ChargebackError(
            [
                Problem("third", Path("rules/b.yaml"), 4),
                Problem("first", Path("chargeback.yaml"), 7),
                Problem("second", Path("rules/a.yaml"), 1),
            ]
        )

    monkeypatch.setattr("cli.run_check", several)
    result = invoke("check")
    assert result.exit_code == 1
    said = [ln.split(": ", 2)[-1] for ln in result.output.splitlines() if ln.startswith("error")]
    assert said == ["first", "second", "third"]
