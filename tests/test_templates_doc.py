"""docs/templates.md must stay true to what templates get.

(a) Every key of every document context (walked recursively: dicts by key,
    lists through all their items, written `lines[].cost`) is named in the doc,
    in backticks, alone or as part of a dotted path.
(b) Every path in the doc's context tables (section 3) exists in a context, so
    a key that is renamed or removed in the code cannot linger in the doc.
(c) The worked example (the doc's ```jinja block) renders through the real CLI
    as a custom statement.html.j2, and shows the department and its total.

The contexts are built for the sample workspace, 2026-05, once per module, the
way chargeback/documents.py builds them.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from typer.testing import CliRunner

from chargeback.evidence import gather
from chargeback.render import money
from chargeback.run import ReportOptions, run_report
from chargeback.statements import Builder, _other_row
from cli import app

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "templates.md"
PERIOD = "2026-05"
DEPARTMENT = "billing"

# Objects that are `none` in the sample month; their keys are those of the row named.
OPTIONAL_OTHER_ROWS = ("other_lines", "by_cost_other", "by_net_other")


@dataclass(frozen=True)
class Contexts:
    by_template: dict[str, list[dict[str, Any]]]
    other_row: dict[str, Any]  # the shape of other_lines / by_cost_other / by_net_other

    def statement(self, department_id: str) -> dict[str, Any]:
        found = [
            c
            for c in self.by_template["statement.html.j2"]
            if c["department"]["id"] == department_id
        ]
        assert len(found) == 1
        return found[0]


@pytest.fixture(scope="module")
def contexts(tmp_path_factory: pytest.TempPathFactory) -> Contexts:
    out = tmp_path_factory.mktemp("run")
    result = run_report(ReportOptions(formats=("csv",), out=out, period=PERIOD))
    ws = result.workspace
    assert result.meta is not None
    evidence = gather(ws, result.loaded.frame, result.attribution, result.ledger)
    generated = datetime.fromisoformat(result.meta["generated_at"])
    today = generated.astimezone(ZoneInfo(ws.settings.timezone)).date()
    builder = Builder(ws, result.attribution, result.ledger, evidence, result.meta, today)
    by_template: dict[str, list[dict[str, Any]]] = {}
    for doc in builder.documents(result.periods):
        context = dict(doc.context)
        context["title"] = doc.title  # added by documents.py
        context["subject"] = doc.title
        by_template.setdefault(doc.template, []).append(context)
    assert set(by_template) == {"statement.html.j2", "summary.html.j2"}
    other = _other_row(result.ledger.lines_for(PERIOD)[:2], Decimal(1), "other decisions")
    assert other is not None
    return Contexts(by_template, other)


def key_paths(value: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """(path, value) for every key: `totals.cost`, `lines`, `lines[].cost`, ..."""
    if isinstance(value, dict):
        for key, item in value.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            yield path, item
            yield from key_paths(item, path)
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, dict | list):
                yield from key_paths(item, prefix + "[]")


def all_paths(contexts: Contexts) -> dict[str, set[str]]:
    """{template: every key path its contexts have}, the optional rows' keys included."""
    found: dict[str, set[str]] = {}
    for template, items in contexts.by_template.items():
        paths = found.setdefault(template, set())
        for context in items:
            for path, _ in key_paths(context):
                paths.add(path)
        for name in OPTIONAL_OTHER_ROWS:
            if name in paths:
                paths.update(path for path, _ in key_paths({name: contexts.other_row}))
    return found


def backticked_names(text: str) -> set[str]:
    """Every name inside `...` in the doc, whole and split at dots and []."""
    names: set[str] = set()
    for span in re.findall(r"`([^`\n]+)`", text):
        names.add(span)
        names.update(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", span))
    return names


def test_every_context_key_is_documented(contexts: Contexts) -> None:
    names = backticked_names(DOC.read_text(encoding="utf-8"))
    missing = sorted(
        f"{template}: {path}"
        for template, paths in all_paths(contexts).items()
        for path in paths
        if path.rsplit(".", 1)[-1].removesuffix("[]") not in names
    )
    assert not missing, (
        "docs/templates.md does not name these context keys (add them to section 3):\n  "
        + "\n  ".join(missing)
    )


def documented_paths(text: str) -> list[str]:
    """The first column of the tables in section 3 (the context reference)."""
    section = text.split("\n## 3. ", 1)[1].split("\n## 4. ", 1)[0]
    return re.findall(r"^\| `([^`]+)` \|", section, flags=re.MULTILINE)


def test_documented_keys_exist(contexts: Contexts) -> None:
    documented = documented_paths(DOC.read_text(encoding="utf-8"))
    assert len(documented) > 50, "the context tables in section 3 were not found"
    known = set().union(*all_paths(contexts).values())
    stale = [path for path in documented if path not in known]
    assert not stale, (
        "docs/templates.md documents keys that no template context has:\n  " + "\n  ".join(stale)
    )


def worked_example(text: str) -> str:
    blocks = re.findall(r"^```jinja\n(.*?)^```$", text, flags=re.MULTILINE | re.DOTALL)
    assert len(blocks) == 1, "docs/templates.md should have exactly one ```jinja block"
    return str(blocks[0])


def test_worked_example_renders(contexts: Contexts, tmp_path: Path) -> None:
    templates = tmp_path / "my_templates"
    templates.mkdir()
    (templates / "statement.html.j2").write_text(
        worked_example(DOC.read_text(encoding="utf-8")), encoding="utf-8"
    )
    out = tmp_path / "out"
    args = ["report", "--templates", str(templates), "--period", PERIOD]
    result = CliRunner().invoke(app, [*args, "--format", "html", "--out", str(out)])
    assert result.exit_code == 0, result.output
    page = (out / PERIOD / "departments" / f"{DEPARTMENT}.html").read_text(encoding="utf-8")
    statement = contexts.statement(DEPARTMENT)
    assert html.escape(statement["department"]["name"]) in page
    assert f">{money(statement['totals']['cost'])}<" in page
    for line in statement["lines"]:
        assert html.escape(line["decision_id"]) in page
    assert "Decisions charged" not in page, "the built-in statement was used, not the example"
    # The summary is not in the folder, so it comes from the built-in templates.
    summary = (out / PERIOD / "summary.html").read_text(encoding="utf-8")
    assert "Executive summary" in summary
