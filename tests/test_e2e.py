"""End to end through what users install: the console script, and a built wheel.

The wheel test proves an installation outside the repository still finds the
sample workspace and templates (they are packaged as chargeback/_data).
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest

from chargeback.resources import sample_workspace

REPO = Path(__file__).resolve().parent.parent
SCRIPT = Path(sys.executable).parent / "chargeback"


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    env["NO_COLOR"] = "1"
    return env


def test_installed_entry_point_reports_and_fails_cleanly(tmp_path: Path) -> None:
    assert SCRIPT.exists(), f"console script not installed next to {sys.executable}"
    ws = tmp_path / "ws"
    (ws / "rules").mkdir(parents=True)
    (ws / "rules" / "all.yaml").write_text(
        "departments: [{id: ops, name: Ops, cost_center: CC-9}]\n"
        "decisions: [{id: d, title: D, kind: fee, department: ops, effective: 2026-01-01}]\n"
        "rules: [{id: r, decision: d, match: {channel: [chat]}}]\n"
        "costs: {method: rates, default: {per_contact: 2.50}}\n"
    )
    (ws / "chargeback.yaml").write_text("contacts: data/\n")
    (ws / "data").mkdir()
    (ws / "data" / "jan.csv").write_text(
        "contact_id,started_at,channel\n1,2026-01-05T09:00:00Z,chat\n2,2026-01-06,email\n"
    )
    done = subprocess.run(
        [str(SCRIPT), "report", "--workspace", str(ws), "--out", str(tmp_path / "out")],
        capture_output=True,
        text=True,
        env=_env(),
        cwd=tmp_path,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    rows = list(csv.DictReader((tmp_path / "out" / "ledger.csv").open()))
    assert [(r["decision_id"], r["cost"]) for r in rows] == [
        ("d", "2.50"),
        ("unattributed", "2.50"),
    ]
    statement = tmp_path / "out" / "2026-01" / "departments" / "ops.pdf"
    assert statement.read_bytes().startswith(b"%PDF-")
    assert (tmp_path / "out" / "2026-01" / "summary.pdf").exists()
    assert "3 PDF documents" in done.stdout  # summary, statement, CS value

    (ws / "rules" / "all.yaml").write_text("rules: [{id: r, decision: nope, match: {}}]\n")
    broken = subprocess.run(
        [str(SCRIPT), "report", "--workspace", str(ws), "--out", str(tmp_path / "out2")],
        capture_output=True,
        text=True,
        env=_env(),
        cwd=tmp_path,
        check=False,
    )
    assert broken.returncode == 1
    assert "Traceback" not in broken.stderr + broken.stdout
    assert "all.yaml:1" in broken.stderr
    assert not (tmp_path / "out2").exists()


@pytest.mark.skipif(
    not (sample_workspace() / "sample_data" / "contacts.parquet").exists(),
    reason="sample data not generated",
)
def test_wheel_outside_the_repository_finds_the_sample(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist), str(REPO)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert build.returncode == 0, build.stderr[-2000:]
    wheel = next(dist.glob("chargeback-*.whl"))
    target = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--target",
            str(target),
            str(wheel),
        ],
        check=True,
        capture_output=True,
    )
    empty = tmp_path / "empty"
    empty.mkdir()
    env = _env() | {"PYTHONPATH": str(target)}
    where = subprocess.run(
        [sys.executable, "-c", "import chargeback, sys; print(chargeback.__file__)"],
        capture_output=True,
        text=True,
        env=env,
        cwd=empty,
        check=True,
    )
    assert where.stdout.startswith(str(target)), where.stdout  # the wheel, not the checkout
    run = subprocess.run(
        [sys.executable, "-m", "chargeback", "report", "--period", "2026-03", "--out", "out"],
        capture_output=True,
        text=True,
        env=env,
        cwd=empty,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert (empty / "out" / "ledger.csv").read_text().startswith("period,department_id")
    # the packaged templates rendered the statements
    billing = (empty / "out" / "2026-03" / "departments" / "billing.html").read_text()
    assert "Chargeback statement" in billing and "Harborline Communications" in billing
    assert (empty / "out" / "2026-03" / "departments" / "billing.pdf").exists()


def test_the_quick_exit_keeps_output_codes_and_exit_handlers(tmp_path: Path) -> None:
    """__main__.leave skips the interpreter's teardown: every byte written to a pipe
    still arrives, the status is the command's (0, 1, 2, a message's 1), and the
    exit handlers run (here one that writes a file)."""
    marker = tmp_path / "handler-ran"
    program = (
        "import atexit, sys, pathlib\n"
        f"atexit.register(lambda: pathlib.Path({str(marker)!r}).write_text('yes'))\n"
        "from chargeback.__main__ import leave\n"
        "sys.stdout.write('x' * 1_000_000)\n"
        "leave(eval(sys.argv[1]))\n"
    )
    for code, status in (("None", 0), ("0", 0), ("1", 1), ("2", 2), ("'bye'", 1)):
        marker.unlink(missing_ok=True)
        done = subprocess.run(
            [sys.executable, "-c", program, code], capture_output=True, text=True, check=False
        )
        assert done.returncode == status, done.stderr
        assert done.stdout == "x" * 1_000_000
        assert marker.read_text() == "yes"
        assert ("bye" in done.stderr) == (code == "'bye'")
    usage = subprocess.run(
        [str(SCRIPT), "report", "--no-such-option"], capture_output=True, text=True, env=_env()
    )
    assert usage.returncode == 2 and "No such option" in usage.stderr
