"""docs/templates.md must stay true to what templates get.

(a) Every key of every document context (walked recursively: dicts by key,
    lists through all their items, written `lines[].cost`) is named in the doc,
    in backticks, alone or as part of a dotted path.
(b) Every path in the doc's context tables (section 3) exists in a context, so
    a key that is renamed or removed in the code cannot linger in the doc.
(c) The worked example (the doc's ```jinja block) renders through the real CLI
    as a custom statement.html.j2, and shows the department and its total.
(d) Each subsection of section 3 documents its own template: the paths of 3.2,
    3.3 and 3.4 exist in the statement, summary and CS-value contexts, and 3.1's
    in all of them. The CS-value context is held to more: every one of its paths
    is a row of 3.1 or 3.4 (`definitions.<metric>` stands for any metric, and
    each metric is named in 3.4).

The contexts (statements, summary and CS-value report) are built for the
sample workspace, 2026-05, once per module, the way chargeback/documents/compose.py
builds them; a statement and summary of a workspace with a control baseline
(tests/test_control_ledger.py's world) add the keys only such a rule has.
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
from test_control_ledger import world
from typer.testing import CliRunner

from chargeback.documents.render import money
from chargeback.documents.statements import Builder, _other_row
from chargeback.documents.value_doc import ValueBuilder
from chargeback.engine.evidence import gather
from chargeback.report import ReportOptions, RunResult
from chargeback.run import run_report
from cli import app

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "templates.md"
PERIOD = "2026-05"
DEPARTMENT = "billing"
STATEMENT, SUMMARY = "statement.html.j2", "summary.html.j2"
TEMPLATES = (STATEMENT, SUMMARY, "cs_value.html.j2")
CS_VALUE = "cs_value.html.j2"

# Objects that are `none` in the sample month; their keys are those of the row named.
OPTIONAL_OTHER_ROWS = ("other_lines", "by_cost_other", "by_net_other")


@dataclass(frozen=True)
class Contexts:
    by_template: dict[str, list[dict[str, Any]]]
    other_row: dict[str, Any]  # the shape of other_lines / by_cost_other / by_net_other
    control: dict[str, list[dict[str, Any]]]  # statement and summary with a control baseline

    def statement(self, department_id: str) -> dict[str, Any]:
        found = [
            c
            for c in self.by_template["statement.html.j2"]
            if c["department"]["id"] == department_id
        ]
        assert len(found) == 1
        return found[0]


def build(options: ReportOptions) -> tuple[RunResult, dict[str, list[dict[str, Any]]]]:
    """The run and its documents' contexts by template, as compose.py builds them."""
    result = run_report(options)
    ws = result.workspace
    assert result.meta is not None
    assert result.value is not None
    evidence = gather(ws, result.loaded.frame, result.attribution, result.ledger)
    generated = datetime.fromisoformat(result.meta["generated_at"])
    today = generated.astimezone(ZoneInfo(ws.settings.timezone)).date()
    builder = Builder(ws, result.attribution, result.ledger, evidence, result.meta, today)
    by_template: dict[str, list[dict[str, Any]]] = {}
    docs = builder.documents(result.periods)
    value = ValueBuilder(ws, result.value, result.ledger)
    docs += [value.document(p, builder.common(p)) for p in result.periods]
    for doc in docs:
        context = dict(doc.context)
        context["title"] = doc.title  # added by documents/compose.py
        context["subject"] = doc.subject
        by_template.setdefault(doc.template, []).append(context)
    return result, by_template


@pytest.fixture(scope="module")
def contexts(tmp_path_factory: pytest.TempPathFactory) -> Contexts:
    out = tmp_path_factory.mktemp("run")
    # json (not csv alone) so that the run computes the CS value too
    result, by_template = build(ReportOptions(formats=("json",), out=out, period=PERIOD))
    assert set(by_template) == set(TEMPLATES)
    other = _other_row(result.ledger.lines_for(PERIOD)[:2], Decimal(1), "other decisions")
    assert other is not None
    root = tmp_path_factory.mktemp("control")
    world(root / "ws")
    _, control = build(
        ReportOptions(workspace=root / "ws", formats=("json",), out=root / "out", period="2026-06")
    )
    assert any(line["range"] for c in control[STATEMENT] for line in c["lines"])
    return Contexts(by_template, other, {t: control[t] for t in (STATEMENT, SUMMARY)})


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
    everything = [*contexts.by_template.items(), *contexts.control.items()]
    for template, items in everything:
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


def table_paths(text: str) -> list[str]:
    """The first column of the tables in a piece of the doc."""
    return re.findall(r"^\| `([^`]+)` \|", text, flags=re.MULTILINE)


def subsections(text: str) -> dict[str, str]:
    """Section 3's subsections by the template they are for: {"*": 3.1, template: 3.n}."""
    section = text.split("\n## 3. ", 1)[1].split("\n## 4. ", 1)[0]
    found: dict[str, str] = {}
    for part in section.split("\n### 3.")[1:]:
        heading, _, body = part.partition("\n")
        name = heading.split(" ", 1)[1].strip()
        found["*" if name == "Every document" else name] = body
    assert set(found) == {"*", *TEMPLATES}, f"section 3's subsections: {sorted(found)}"
    return found


def documented_paths(text: str) -> list[str]:
    """The first column of the tables in section 3 (the context reference)."""
    return [path for body in subsections(text).values() for path in table_paths(body)]


def path_pattern(documented: str) -> re.Pattern[str]:
    """A documented path as a pattern: a `<name>` part stands for any one key."""
    parts = re.split(r"(<[a-z_]+>)", documented)
    return re.compile(
        "".join(r"[^.\[\]]+" if re.fullmatch(r"<[a-z_]+>", p) else re.escape(p) for p in parts)
    )


def matches(documented: str, paths: set[str]) -> bool:
    pattern = path_pattern(documented)
    return any(pattern.fullmatch(path) for path in paths)


def test_documented_keys_exist(contexts: Contexts) -> None:
    text = DOC.read_text(encoding="utf-8")
    documented = documented_paths(text)
    assert len(documented) > 50, "the context tables in section 3 were not found"
    paths = all_paths(contexts)
    stale = [
        f"{where}: {path}"
        for template, body in subsections(text).items()
        for path in table_paths(body)
        for where in (TEMPLATES if template == "*" else (template,))
        if not matches(path, paths[where])
    ]
    assert not stale, (
        "docs/templates.md documents keys that the template's context does not have:\n  "
        + "\n  ".join(stale)
    )


def test_cs_value_paths_are_rows(contexts: Contexts) -> None:
    """Every CS-value key has its own row (3.1 or 3.4); 3.4 names every metric."""
    sections = subsections(DOC.read_text(encoding="utf-8"))
    rows = [path_pattern(p) for p in table_paths(sections["*"] + sections[CS_VALUE])]
    [context] = contexts.by_template[CS_VALUE]
    missing = sorted(
        path for path in all_paths(contexts)[CS_VALUE] if not any(r.fullmatch(path) for r in rows)
    )
    assert not missing, (
        "docs/templates.md has no row in 3.4 (or 3.1) for these CS-value keys:\n  "
        + "\n  ".join(missing)
    )
    [row] = re.findall(r"^\| `definitions\.<metric>` \|.*$", sections[CS_VALUE], re.MULTILINE)
    unnamed = sorted(set(context["definitions"]) - set(re.findall(r"`([a-z_]+)`", row)))
    assert not unnamed, f"3.4's `definitions.<metric>` row does not name the metrics {unnamed}"


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
