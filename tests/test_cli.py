"""The command line as scripts see it (SPEC 5-6): exit codes, help, periods, output files.

Every test drives the real Typer app through CliRunner on a tiny workspace
written into tmp_path. One workspace serves most tests:

  contacts (timezone UTC)        channel  hs    cost (phone 0.40 + 1.05/min, chat 0.15 + 0.55/min)
  c1 2026-02-20 late_fee         phone    60    0.40 + 1.05       = 1.45
  c2 2026-03-02 late_fee         phone   120    0.40 + 2.10       = 2.50
  c3 2026-03-15 other            chat    300    0.15 + 2.75       = 2.90
  c4 2026-04-01 late_fee         phone    60    1.45
  c5 2026-05-10 other            chat     60    0.15 + 0.55       = 0.70

  The rule charges reason billing.late_fee* to decision late-fee (billing,
  effective 2026-03-01), so c1 (before the effective date) stays unattributed.
"""

from __future__ import annotations

import csv
import hashlib
import json
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner, Result

import chargeback
from chargeback.resources import sample_workspace
from cli import app

RULES = """\
departments:
  - id: billing
    name: Billing
    cost_center: CC-4100
decisions:
  - id: late-fee
    title: Late fee
    kind: fee
    department: billing
    effective: 2026-03-01
costs:
  currency: USD
  method: rates
  channels:
    phone: {per_contact: 0.40, per_minute: 1.05}
    chat: {per_contact: 0.15, per_minute: 0.55}
rules:
  - id: late-fee-calls
    decision: late-fee
    match:
      reason: ["billing.late_fee*"]
"""

CONTACTS = """\
contact_id,started_at,channel,reason,handle_seconds
c1,2026-02-20T10:00:00,phone,billing.late_fee,60
c2,2026-03-02T10:00:00,phone,billing.late_fee,120
c3,2026-03-15T10:00:00,chat,billing.other,300
c4,2026-04-01T10:00:00,phone,billing.late_fee_dispute,60
c5,2026-05-10T10:00:00,chat,billing.other,60
"""

SETTINGS = """\
contacts: data/contacts.csv
timezone: UTC
"""


def make_workspace(root: Path) -> Path:
    (root / "rules").mkdir(parents=True)
    (root / "rules" / "main.yaml").write_text(RULES)
    (root / "data").mkdir()
    (root / "data" / "contacts.csv").write_text(CONTACTS)
    (root / "chargeback.yaml").write_text(SETTINGS)
    return root


def invoke(*args: str) -> Result:
    """The app, with `report` writing the ledger only unless a test asks for --format:
    these tests are about the ledger and the command line (test_statements.py reads
    the documents)."""
    if args[:1] == ("report",) and "--format" not in args:
        args = (*args, "--format", "csv,json")
    result = CliRunner().invoke(app, list(args))
    # CliRunner swallows crashes; a crash would show up here as a non-SystemExit.
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result


def read_ledger(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture
def ws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = make_workspace(tmp_path / "ws")
    monkeypatch.chdir(root)
    return root


# --------------------------------------------------------------------------- version, help


def test_version() -> None:
    result = invoke("--version")
    assert result.exit_code == 0
    assert result.output.strip() == f"chargeback {chargeback.__version__}"


def test_app_help_has_examples() -> None:
    result = invoke("--help")
    assert result.exit_code == 0
    assert "Examples" in result.output
    assert "chargeback report" in result.output


COMMANDS = sorted(typer.main.get_command(app).commands)  # type: ignore[attr-defined]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_help_has_examples(command: str) -> None:
    result = invoke(command, "--help")
    assert result.exit_code == 0
    assert "Examples" in result.output
    assert f"chargeback {command}" in result.output


# --------------------------------------------------------------------------- usage errors


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--period", "2026-13"], "2026-13"),
        (["--from", "2026-03"], "--to"),
        (["--to", "2026-03"], "--from"),
        (["--from", "2026-05", "--to", "2026-03"], "2026-05"),
        (["--period", "2026-03", "--from", "2026-03", "--to", "2026-04"], "--period"),
        (["--format", "xlsx"], "xlsx"),
        (["--on-bad-rows", "ignore"], "ignore"),
    ],
)
def test_usage_errors_exit_2(ws: Path, args: list[str], says: str) -> None:
    result = invoke("report", "--out", "out", *args)
    assert result.exit_code == 2, result.output
    assert says in result.output
    assert "Traceback" not in result.output
    assert not (ws / "out").exists()


def test_unknown_option_exits_2(ws: Path) -> None:
    result = invoke("report", "--no-such-option")
    assert result.exit_code == 2


# --------------------------------------------------------------------------- periods


def periods_in(ledger: Path) -> list[str]:
    return sorted({row["period"] for row in read_ledger(ledger)})


def test_default_periods_are_the_months_in_the_contacts(ws: Path) -> None:
    result = invoke("report", "--out", "out")
    assert result.exit_code == 0, result.output
    assert periods_in(ws / "out" / "ledger.csv") == ["2026-02", "2026-03", "2026-04", "2026-05"]


def test_period_selects_one_month(ws: Path) -> None:
    result = invoke("report", "--period", "2026-03", "--out", "out")
    assert result.exit_code == 0, result.output
    rows = read_ledger(ws / "out" / "ledger.csv")
    # 2026-03: c2 is the late fee (2.50), c3 unattributed (2.90).
    assert [(r["period"], r["decision_id"], r["contacts"], r["cost"]) for r in rows] == [
        ("2026-03", "late-fee", "1.000", "2.50"),
        ("2026-03", "unattributed", "1.000", "2.90"),
    ]


def test_from_to_selects_a_range(ws: Path) -> None:
    result = invoke("report", "--from", "2026-03", "--to", "2026-04", "--out", "out")
    assert result.exit_code == 0, result.output
    rows = read_ledger(ws / "out" / "ledger.csv")
    assert periods_in(ws / "out" / "ledger.csv") == ["2026-03", "2026-04"]
    # 2026-04: c4 (reason billing.late_fee_dispute matches the prefix) costs 1.45.
    april = [(r["decision_id"], r["cost"]) for r in rows if r["period"] == "2026-04"]
    assert april == [("late-fee", "1.45"), ("unattributed", "0.00")]


# --------------------------------------------------------------------------- sample workspace


def test_bare_report_in_an_empty_folder_uses_the_sample(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    try:
        sample = sample_workspace()
    except FileNotFoundError:
        pytest.skip("the packaged sample workspace is missing from this installation")
    if not (sample / "sample_data" / "contacts.parquet").is_file():
        pytest.skip("sample_data/contacts.parquet has not been generated yet")
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.chdir(empty)
    result = invoke("report", "--format", "csv,json")
    assert result.exit_code == 0, result.output
    written = list(empty.rglob("ledger.csv"))
    assert len(written) == 1, f"expected one ledger.csv under the working folder: {written}"
    assert read_ledger(written[0]), "the sample ledger has rows"


# --------------------------------------------------------------------------- output


def test_no_colour_escapes_when_not_a_terminal(ws: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    monkeypatch.delenv("TTY_COMPATIBLE", raising=False)
    ok = invoke("report", "--out", "out")
    assert ok.exit_code == 0
    # on a terminal a flagged line is red and "no revenue" dim; piped, neither is styled
    assert "late-fee" in ok.output
    assert "\x1b[" not in ok.output
    bad = invoke("report", "--period", "2026-13")
    assert bad.exit_code == 2
    assert "\x1b[" not in bad.output


def test_output_folder_gets_ledger_csv_and_json(ws: Path) -> None:
    result = invoke("report", "--out", "out")
    assert result.exit_code == 0, result.output
    assert (ws / "out" / "ledger.csv").is_file()
    assert (ws / "out" / "ledger.json").is_file()
    header = (ws / "out" / "ledger.csv").read_text().splitlines()[0]
    assert header == (
        "period,department_id,cost_center,decision_id,contacts,handle_minutes,cost,revenue,net"
    )


def test_format_csv_writes_the_ledger_and_no_documents(ws: Path) -> None:
    result = invoke("report", "--out", "out", "--format", "csv")
    assert result.exit_code == 0, result.output
    assert (ws / "out" / "ledger.csv").is_file()
    # SPEC 5: ledger.json is the folder's book, written by every report whatever --format
    assert (ws / "out" / "ledger.json").is_file()
    assert not (ws / "out" / "cs_value.json").exists()
    assert not list((ws / "out").rglob("*.pdf")) and not list((ws / "out").rglob("*/*.html"))
    assert (ws / "out" / "index.html").is_file()  # the book's page, like ledger.json


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_ledger_json_metadata_fingerprints_every_input(ws: Path) -> None:
    result = invoke("report", "--out", "out")
    assert result.exit_code == 0, result.output
    doc = json.loads((ws / "out" / "ledger.json").read_text())
    meta = doc["meta"]
    assert meta["version"] == chargeback.__version__
    generated = datetime.fromisoformat(meta["generated_at"])
    assert generated.tzinfo is not None, "generated_at carries its offset"

    by_file = {Path(i["path"]).name: i["sha256"] for i in meta["inputs"]}
    expected = {
        p.name: sha256(p)
        for p in (
            ws / "data" / "contacts.csv",
            ws / "chargeback.yaml",
            ws / "rules" / "main.yaml",
        )
    }
    assert by_file == expected


def test_ledger_json_period_totals_add_up(ws: Path) -> None:
    result = invoke("report", "--out", "out")
    assert result.exit_code == 0, result.output
    doc = json.loads((ws / "out" / "ledger.json").read_text())
    # Hand totals: Feb 1.45; Mar 2.50 + 2.90 = 5.40; Apr 1.45; May 0.70.
    expected = {"2026-02": "1.45", "2026-03": "5.40", "2026-04": "1.45", "2026-05": "0.70"}
    assert {p: t["cost"] for p, t in doc["periods"].items()} == expected
    for period, totals in doc["periods"].items():
        lines = [ln for ln in doc["lines"] if ln["period"] == period]
        assert sum(Decimal(ln["cost"]) for ln in lines) == Decimal(totals["cost"]), period
    # The json lines are the csv rows.
    rows = read_ledger(ws / "out" / "ledger.csv")
    assert [(r["period"], r["decision_id"], r["cost"]) for r in rows] == [
        (ln["period"], ln["decision_id"], ln["cost"]) for ln in doc["lines"]
    ]


def test_settings_output_is_the_default_out(ws: Path) -> None:
    (ws / "chargeback.yaml").write_text(SETTINGS + "output: my-reports\n")
    result = invoke("report")
    assert result.exit_code == 0, result.output
    assert (ws / "my-reports" / "ledger.csv").is_file()


def test_contacts_option_overrides_settings(ws: Path) -> None:
    # The override file holds only the header, c2 and c3 (both March).
    lines = CONTACTS.splitlines(keepends=True)
    Path("march.csv").write_text(lines[0] + lines[2] + lines[3])
    result = invoke("report", "--contacts", "march.csv", "--out", "out")
    assert result.exit_code == 0, result.output
    assert periods_in(ws / "out" / "ledger.csv") == ["2026-03"]


def test_workspace_option_from_elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = make_workspace(tmp_path / "acme")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    result = invoke("report", "--workspace", str(root), "--out", "out", "--period", "2026-05")
    assert result.exit_code == 0, result.output
    rows = read_ledger(elsewhere / "out" / "ledger.csv")
    assert [(r["decision_id"], r["cost"]) for r in rows] == [("unattributed", "0.70")]


def test_missing_workspace_folder_is_a_usage_error(tmp_path: Path) -> None:
    result = invoke("report", "--workspace", str(tmp_path / "nope"))
    assert result.exit_code == 2  # an option that does not fit, like --period 2026-13
    assert "nope" in result.output
    assert "Traceback" not in result.output


def test_a_folder_without_rules_is_still_a_workspace_error(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    result = invoke("report", "--workspace", str(tmp_path / "empty"))
    assert result.exit_code == 1
    assert "no rules/ folder" in result.output


def test_help_shows_no_raw_markup() -> None:
    result = invoke("report", "--help")
    assert "[bold]" not in result.output
    assert "[/]" not in result.output
