"""docs/baselines.md's worked example is the real output of tests/test_control_ledger's world."""

from __future__ import annotations

import json
import re
from pathlib import Path

from test_control_ledger import report, runner, world

from cli import app

PAGE = Path(__file__).resolve().parent.parent / "docs" / "baselines.md"


def test_the_worked_example_is_real(tmp_path: Path) -> None:
    truth = world(tmp_path / "ws")
    doc = report(tmp_path / "ws", tmp_path / "out")
    text = PAGE.read_text(encoding="utf-8")
    [shown_json] = re.findall(r"^```json\n(.*?)^```$", text, flags=re.S | re.M)
    shown = json.loads(shown_json)
    (line,) = [
        ln for ln in doc["lines"] if ln["period"] == "2026-06" and ln["decision_id"] == "fee"
    ]
    assert {k: line[k] for k in shown} == shown
    assert f"really added {truth['2026-06']} contacts in June" in text
    contacts = (tmp_path / "ws" / "contacts.csv").read_text().splitlines()
    contact = next(r.split(",")[0] for r in contacts if "2026-06-03" in r and "billing.fee" in r)
    out = runner.invoke(app, ["explain", contact, "--workspace", str(tmp_path / "ws")]).stdout
    [shown_text] = re.findall(r"^```text\n(.*?)^```$", text, flags=re.S | re.M)
    for shown_line in shown_text.splitlines():
        assert shown_line in out.splitlines(), shown_line
