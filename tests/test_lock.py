"""The run lock leaves a folder as it found it when the run fails."""

from __future__ import annotations

from pathlib import Path

import pytest

from chargeback.operations.lock import LOCK_NAME, locked


def test_a_failed_run_restores_the_lock_file_it_found(tmp_path: Path) -> None:
    (tmp_path / LOCK_NAME).write_text("pid 4242")
    with pytest.raises(RuntimeError), locked(tmp_path):
        assert (tmp_path / LOCK_NAME).read_text().startswith("pid ")
        raise RuntimeError("the run failed")
    assert (tmp_path / LOCK_NAME).read_text() == "pid 4242"


def test_a_failed_run_removes_the_lock_and_folder_it_made(tmp_path: Path) -> None:
    out = tmp_path / "new" / "out"
    with pytest.raises(RuntimeError), locked(out):
        raise RuntimeError("the run failed")
    assert not (tmp_path / "new").exists()


def test_a_good_run_leaves_its_pid(tmp_path: Path) -> None:
    with locked(tmp_path):
        pass
    assert (tmp_path / LOCK_NAME).read_text().startswith("pid ")
