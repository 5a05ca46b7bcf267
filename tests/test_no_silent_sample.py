"""No silent sample (issue 13): the built-in sample only where nothing says otherwise."""

from __future__ import annotations

from pathlib import Path

import pytest
from hostile import run

NOTICE = "Using the built-in sample workspace"


def test_a_run_on_the_sample_says_so_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = run(["check", "--format", "json"])
    assert result.output.startswith(NOTICE), result.output[:200]


def test_a_folder_with_settings_but_no_rules_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "chargeback.yaml").write_text("contacts: contacts.csv\n")
    monkeypatch.chdir(tmp_path)
    result = run(["report", "--format", "csv"])
    assert result.exit_code == 1, result.output
    assert "no rules/ folder" in result.output and NOTICE not in result.output
    assert not (tmp_path / "reports").exists()


def test_an_empty_rules_folder_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "rules").mkdir()
    monkeypatch.chdir(tmp_path)
    result = run(["report", "--format", "csv"])
    assert result.exit_code == 1, result.output
    assert "no YAML files" in result.output and NOTICE not in result.output


def test_an_explicit_workspace_is_not_announced(tmp_path: Path) -> None:
    from hostile import workspace

    root = workspace(tmp_path / "ws")
    result = run(["check", "--workspace", root])
    assert NOTICE not in result.output


def test_the_timestamp_hint_fits_the_failing_values(tmp_path: Path) -> None:
    from hostile import GOOD_CONTACTS, workspace

    contacts = GOOD_CONTACTS.replace("2026-03-02T09:00:00", "14.03.2026 13:45").replace(
        "2026-03-03T10:00:00", "13.03.2026 10:00"
    )
    root = workspace(tmp_path / "ws", contacts=contacts)
    result = run(["report", "--workspace", root, "--out", root / "out", "--format", "csv"])
    assert result.exit_code == 1
    assert 'timestamp_format: "%d.%m.%Y %H:%M"' in result.output
    # and the layout it names does read them
    (root / "chargeback.yaml").write_text(
        'contacts: contacts.csv\ntimestamp_format: "%d.%m.%Y %H:%M"\n'
        "timezone: UTC\n"
    )
    again = run(["report", "--workspace", root, "--out", root / "out", "--format", "csv"])
    assert again.exit_code == 1 and "13.03.2026" not in again.output  # the ISO rows now fail
