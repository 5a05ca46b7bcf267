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
    from chargeback.run import ReportOptions, run_report

    prints = []
    for cwd in (ws, ws.parent):
        monkeypatch.chdir(cwd)
        run_report(ReportOptions(workspace=ws, out=ws / "out", formats=("json",)))
        prints.append(json.loads((ws / "out" / "ledger.json").read_text())["meta"]["fingerprint"])
    assert prints[0] == prints[1]
