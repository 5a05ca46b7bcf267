"""The run's fingerprint hashes its input files early, while the engine reads them
(files.hash_early): the digests are those of the files as they are when asked."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from conftest import write_workspace
from test_engine_choice import RULES
from test_postgres_source import CONTACTS

from chargeback import files
from chargeback.files import hash_early, sha256_file


def plain(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_early_digests_are_the_files_digests(tmp_path: Path) -> None:
    paths = []
    for i in range(5):
        path = tmp_path / f"part-{i}.parquet"
        path.write_bytes(os.urandom(3 << 20) + bytes([i]))
        paths.append(path)
    hash_early(paths)
    hash_early(paths)  # asked twice: hashed once
    assert [sha256_file(p) for p in paths] == [plain(p) for p in paths]
    assert not files._early  # each taken once


def test_a_file_changed_after_it_was_hashed_early_is_hashed_again(tmp_path: Path) -> None:
    path = tmp_path / "contacts.csv"
    path.write_bytes(b"contact_id\n1\n")
    hash_early([path])
    next(iter(files._early.values())).join()
    path.write_bytes(b"contact_id\n1\n2\n")
    os.utime(path, ns=(1, 1))  # even with an old stamp: the size differs
    assert sha256_file(path) == plain(path)
    files._early.clear()


def test_a_run_that_stopped_early_leaves_nothing_for_long(tmp_path: Path) -> None:
    """Digests nobody asked for (the run failed first) go at the next run's call."""
    first, second = tmp_path / "a.csv", tmp_path / "b.csv"
    first.write_bytes(b"a")
    second.write_bytes(b"b")
    hash_early([first])
    hash_early([second])
    assert len(files._early) == 1
    assert sha256_file(second) == plain(second) and not files._early


def test_a_file_gone_since_is_the_usual_error(tmp_path: Path) -> None:
    path = tmp_path / "contacts.csv"
    path.write_bytes(b"x")
    hash_early([path])
    path.unlink()
    with pytest.raises(OSError):
        sha256_file(path)
    files._early.clear()


def test_a_report_writes_the_same_fingerprint_as_before(tmp_path: Path) -> None:
    """The run's metadata lists each contacts file with its plain sha256."""
    import json

    from typer.testing import CliRunner

    from cli import app

    ws = write_workspace(tmp_path / "ws", RULES, CONTACTS)
    header, *rows = (ws / "contacts.csv").read_text().splitlines(keepends=True)
    (ws / "contacts.csv").unlink()
    (ws / "contacts").mkdir()
    (ws / "contacts" / "a.csv").write_text(header + "".join(rows[:3]))
    (ws / "contacts" / "b.csv").write_text(header + "".join(rows[3:]))
    (ws / "chargeback.yaml").write_text("contacts: contacts/\n")
    done = CliRunner().invoke(
        app, ["report", "--workspace", str(ws), "--format", "csv", "--out", str(tmp_path / "o")]
    )
    assert done.exit_code == 0, done.output
    meta = json.loads((tmp_path / "o" / "ledger.json").read_text())
    inputs = {i["path"]: i["sha256"] for i in meta["meta"]["inputs"] if i["kind"] == "contacts"}
    assert sorted(inputs.values()) == sorted(plain(p) for p in (ws / "contacts").glob("*.csv"))
    assert not files._early
