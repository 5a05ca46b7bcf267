"""docs/reviewing.md's check and explain sections say what the commands really do.

Every `chargeback check` and `chargeback explain` command on the page runs (in a
folder with the `acme` workspace and export the examples name), the JSON example
is a true excerpt of `check --format json` on the sample, and every line of the
explain example is a line of the real output. (test_diff.py covers the diff
section the same way.)
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
from conftest import write_workspace
from typer.testing import CliRunner

from cli import app

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "reviewing.md"
runner = CliRunner()


def section(title: str) -> str:
    text = PAGE.read_text(encoding="utf-8").split(f"\n## {title}", 1)[1]
    return re.split(r"^## ", text, flags=re.M)[0]


def blocks(text: str, lang: str) -> list[str]:
    return re.findall(rf"^```{lang}\n(.*?)^```$", text, flags=re.S | re.M)


def commands(verb: str) -> list[list[str]]:
    found = []
    for block in blocks(section(verb), "sh"):
        for line in block.splitlines():
            if line.startswith(f"chargeback {verb}"):
                found.append(shlex.split(line.split("#")[0])[1:])
    return found


def run(args: list[str]) -> Any:
    result = runner.invoke(app, args)
    assert "Traceback" not in result.output
    return result


def test_every_check_and_explain_command_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_workspace(
        tmp_path / "acme",
        """
        decisions:
          - {id: fee, title: Fee, kind: fee, department: billing, effective: 2026-03-01}
        rules:
          - {id: fee-disputes, decision: fee, match: {reason: [billing.fee]}}
        """,
        "contact_id,started_at,channel,reason\n48213,2026-03-02T10:00:00,phone,billing.fee\n",
    )
    (tmp_path / "exports").mkdir()
    (tmp_path / "exports" / "2026-03.csv").write_text(
        "contact_id,started_at,channel,reason\n1,2026-03-02T10:00:00,chat,billing.fee\n"
    )
    monkeypatch.chdir(tmp_path)  # no rules/ here: a bare command runs on the sample
    found = commands("check") + commands("explain")
    assert len(found) == 5, found
    for args in found:
        result = run(args)
        strict = "--strict" in args and "--workspace" not in args  # the sample has warnings
        assert result.exit_code == (1 if strict else 0), (args, result.output)
        if "json" in args:
            json.loads(result.stdout)


def test_the_check_json_example_is_real(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    [shown] = blocks(section("check"), "json")
    example = json.loads(shown)
    real = json.loads(run(["check", "--format", "json"]).stdout)
    for finding in example["findings"]:
        assert finding in real["findings"], finding
    assert example["coverage"] == real["coverage"]
    assert example["rules"][0] == real["rules"][0]
    assert len(real["findings"]) == 26 and len(real["rules"]) == 40  # as the page says


def test_the_explain_example_is_real(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    [shown] = blocks(section("explain"), "text")
    real = run(["explain", "CT00200216"]).stdout.splitlines()
    for line in shown.splitlines():
        if line.strip() != "...":
            assert line in real, line
