"""Bugs found by reading the tool as a user would; each stays fixed."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import ledger, row, write_workspace

from chargeback.errors import DataError, WorkspaceError

FEE = """
decisions:
  - {id: fee, title: Fee, kind: fee, department: billing, effective: 2026-03-01}
rules:
  - {id: r, decision: fee, match: {reason: [x]}}
"""


def test_folder_of_files_with_different_optional_columns(ws: Path) -> None:
    write_workspace(ws, FEE, "contact_id,started_at,channel\n", settings="")
    (ws / "data").mkdir()
    (ws / "data" / "a.csv").write_text(
        "contact_id,started_at,channel,handle_seconds\n1,2026-03-01,phone,60\n"
    )
    (ws / "data" / "b.csv").write_text(
        "reason,channel,contact_id,started_at\nx,chat,2,2026-03-02\n"
    )
    (ws / "chargeback.yaml").write_text("contacts: data/\n")
    rows = ledger(ws)
    # a: phone 0.40 + 1.05 x 1 min = 1.45 unattributed (no reason); b: chat 0.15 to fee
    assert row(rows, "2026-03", "fee")["cost"] == "0.15"
    assert row(rows, "2026-03", "unattributed")["cost"] == "1.45"


def test_decimal_comma_in_yaml_money_is_refused(ws: Path) -> None:
    costs = "costs:\n  method: rates\n  default: {per_contact: '0,40'}\n"
    write_workspace(ws, FEE, "contact_id,started_at,channel\n1,2026-03-01,phone\n", costs=costs)
    with pytest.raises(WorkspaceError, match=r"costs.yaml:3: .*'0,40' is not a number"):
        ledger(ws)


def test_misspelt_columns_key_is_named(ws: Path) -> None:
    write_workspace(
        ws,
        FEE,
        "contact_id,started_at,channel\n1,2026-03-01,phone\n",
        settings="columns:\n  contactid: Ticket\n",
    )
    with pytest.raises(WorkspaceError, match=r"did you mean 'contact_id'"):
        ledger(ws)


def test_every_row_rejected_stops_even_in_quarantine(ws: Path) -> None:
    write_workspace(
        ws, FEE, "contact_id,started_at,channel\n1,22-Apr-15,phone\n2,23-Apr-15,phone\n"
    )
    with pytest.raises(DataError, match="unparsable timestamp"):
        ledger(ws, on_bad_rows="quarantine")
    assert not (ws / "out").exists()


def test_fingerprint_does_not_depend_on_the_working_folder(
    ws: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    write_workspace(ws, FEE, "contact_id,started_at,channel\n1,2026-03-01,phone\n")
    from chargeback.report import ReportOptions
    from chargeback.run import run_report

    prints = []
    for cwd in (ws, ws.parent):
        monkeypatch.chdir(cwd)
        run_report(ReportOptions(workspace=ws, out=ws / "out", formats=("json",)))
        prints.append(json.loads((ws / "out" / "ledger.json").read_text())["meta"]["fingerprint"])
    assert prints[0] == prints[1]


def test_contacts_folder_is_found_without_settings(ws: Path) -> None:
    write_workspace(ws, FEE, "contact_id,started_at,channel,reason\n1,2026-03-01,phone,x\n")
    (ws / "chargeback.yaml").unlink()
    (ws / "contacts").mkdir()
    (ws / "contacts.csv").rename(ws / "contacts" / "march.csv")
    assert row(ledger(ws), "2026-03", "fee")["cost"] == "0.40"


@pytest.mark.parametrize("value", ["nan", "inf", "1e400", "99999999999999"])
def test_impossible_handle_times_are_bad_rows(ws: Path, value: str) -> None:
    write_workspace(
        ws, FEE, f"contact_id,started_at,channel,handle_seconds\n1,2026-03-01,phone,{value}\n"
    )
    with pytest.raises(DataError, match=r"contacts.csv:2, row 1, column 'handle_seconds'"):
        ledger(ws)


def test_quarantine_with_mapped_tags_column(ws: Path) -> None:
    rules = FEE.replace("match: {reason: [x]}", "match: {tags: [fee]}")
    write_workspace(
        ws,
        rules,
        "id,when,channel,Labels\n1,2026-03-01,phone,fee\n2,not a date,phone,fee\n",
        settings="columns: {contact_id: id, started_at: when, tags: Labels}\n",
    )
    rows = ledger(ws, on_bad_rows="quarantine")
    assert row(rows, "2026-03", "fee")["cost"] == "0.40"
    rejected = (ws / "out" / "rejected.csv").read_text().splitlines()
    assert len(rejected) == 2 and "when" in rejected[0]


def test_fields_on_numbers_booleans_and_free_ids(ws: Path) -> None:
    write_workspace(
        ws,
        """
        decisions:
          - {id: Late.Fee 2026, title: Fee, kind: fee, department: billing, effective: 2026-03-01}
        rules:
          - {id: R1, decision: Late.Fee 2026, match: {fields: {vip: [true], seats: [3]}}}
        """,
        "contact_id,started_at,channel,vip,seats\n1,2026-03-01,phone,true,3\n"
        "2,2026-03-01,phone,false,3\n",
    )
    assert row(ledger(ws), "2026-03", "Late.Fee 2026")["contacts"] == "1.000"


def test_leading_zero_cost_center_stays_text(ws: Path) -> None:
    depts = "departments:\n  - {id: billing, name: Billing, cost_center: 04100}\n"
    write_workspace(
        ws, FEE, "contact_id,started_at,channel,reason\n1,2026-03-01,phone,x\n", departments=depts
    )
    assert row(ledger(ws), "2026-03", "fee")["cost_center"] == "04100"


def test_markup_like_text_in_errors_prints_plainly(ws: Path) -> None:
    from typer.testing import CliRunner

    from cli import app

    write_workspace(ws, FEE, "contact_id,started_at,channel\n1,[/bold],phone\n")
    result = CliRunner().invoke(app, ["report", "--workspace", str(ws), "--out", str(ws / "o")])
    assert result.exit_code == 1
    assert "[/bold]" in result.output
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit)
