"""The documentation must not drift from the code.

(a) Every ```yaml block in docs/*.md and README.md parses with the project's
    own loader. A block that is a whole rules file (top-level keys among
    departments, decisions, costs, rules, settings) is also loaded as a
    workspace; when it refers to a department or decision it does not define,
    or has no costs block, a minimal one is added beside it, and only then.
    A block of chargeback.yaml keys is loaded as a workspace's chargeback.yaml.
    A block of other keys (say, one rule's `match:`) is only parsed, unless a
    key is a near-miss of a known one (`rule:`), which is then reported.
    A block marked `<!-- fragment -->` on the line just before its fence is
    only parsed. Deliberately wrong examples belong in ```text blocks.
(b) docs/cli.md is exactly what docs/gen_cli.py renders now.
(c) every command of the app has its section in docs/cli.md.
(d) docs/workspace.md names every key and choice the engine accepts.
"""

from __future__ import annotations

import difflib
import importlib.util
import re
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import typer
import yaml

from chargeback.documents.ledger_files import LEDGER_COLUMNS
from chargeback.errors import Problem, WorkspaceError
from chargeback.workspace.load import TOP_LEVEL_KEYS, load_workspace
from chargeback.workspace.model import (
    COST_METHODS,
    DECISION_KINDS,
    MATCH_LIST_KEYS,
    OVERLAP_POLICIES,
)
from chargeback.workspace.settings import SETTINGS_KEYS
from chargeback.workspace.yamlio import load_yaml
from cli import app

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
CLI_MD = DOCS / "cli.md"
WORKSPACE_MD = DOCS / "workspace.md"
FRAGMENT = "<!-- fragment -->"
REGENERATE = ".venv/bin/python docs/gen_cli.py"

FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})[ \t]*(?P<lang>[^\s`{]*)")

# What a block is completed with when it lacks it (ids chosen not to clash).
FILLER_DEPARTMENT = "docs-filler"
MINIMAL_COSTS = {"currency": "USD", "method": "rates", "default": {"per_contact": "1.00"}}


# --------------------------------------------------------------------------- finding blocks


@dataclass(frozen=True)
class Block:
    path: Path
    line: int  # 1-based line of the opening fence; the block's text starts on the next
    lang: str
    text: str
    fragment: bool

    def where(self, line_in_block: int | None = None) -> str:
        name = self.path.relative_to(ROOT).as_posix()
        if line_in_block is None:
            return f"{name}:{self.line}"
        return f"{name}:{self.line + line_in_block}"


def fenced_blocks(path: Path) -> list[Block]:
    lines = path.read_text(encoding="utf-8").splitlines()
    found: list[Block] = []
    i = 0
    while i < len(lines):
        opening = FENCE.match(lines[i])
        if opening is None:
            i += 1
            continue
        fence, indent = opening["fence"], opening["indent"]
        body: list[str] = []
        j = i + 1
        while j < len(lines):
            closing = lines[j].strip()
            if closing.startswith(fence) and set(closing) == {fence[0]}:
                break
            body.append(lines[j][len(indent) :] if lines[j].startswith(indent) else lines[j])
            j += 1
        before = lines[i - 1].strip() if i > 0 else ""
        found.append(
            Block(path, i + 1, opening["lang"].lower(), "\n".join(body) + "\n", before == FRAGMENT)
        )
        i = j + 1
    return found


def doc_files() -> list[Path]:
    files = sorted(DOCS.glob("*.md"))
    readme = ROOT / "README.md"
    if readme.is_file():
        files.append(readme)
    return files


YAML_BLOCKS = [b for f in doc_files() for b in fenced_blocks(f) if b.lang in ("yaml", "yml")]


# --------------------------------------------------------------------------- (a) YAML blocks


def describe(problems: list[Problem], block: Block, own: dict[Path, str]) -> str:
    """Problems as `doc.md:line: message`, for the block's own files; others as they are."""
    out = []
    for problem in problems:
        path = Path(problem.path).resolve() if problem.path is not None else None
        if path is not None and path in own:
            line = f"{block.where(problem.line)}" if problem.line else block.where()
            out.append(f"  {line}: {problem.message}")
        else:
            out.append(f"  {problem} (in what the test added to complete the block)")
    return "\n".join(out)


def parse(block: Block) -> Any:
    try:
        return load_yaml(Path("block.yaml"), block.text)
    except WorkspaceError as exc:
        lines = describe(exc.problems, block, {Path("block.yaml").resolve(): "block"})
        pytest.fail(f"{block.where()}: this ```yaml block does not parse:\n{lines}")


def scalar_ids(items: Any, key: str) -> set[str]:
    """The `key` values of a section's items, for items shaped as mappings."""
    if not isinstance(items, list):
        return set()
    return {
        str(item[key])
        for item in items
        if isinstance(item, dict) and item.get(key) is not None and not isinstance(item[key], dict)
    }


def completion(data: dict[Any, Any]) -> dict[str, Any]:
    """The minimal departments, decisions and costs a rules block refers to but lacks."""
    extra: dict[str, Any] = {}
    departments = scalar_ids(data.get("departments"), "id")
    decisions = scalar_ids(data.get("decisions"), "id")
    wanted_departments = scalar_ids(data.get("decisions"), "department") - departments
    wanted_decisions = scalar_ids(data.get("rules"), "decision") - decisions
    if wanted_decisions and FILLER_DEPARTMENT not in departments:
        wanted_departments.add(FILLER_DEPARTMENT)
    if wanted_departments:
        extra["departments"] = [{"id": d} for d in sorted(wanted_departments)]
    if wanted_decisions:
        extra["decisions"] = [
            {"id": d, "department": FILLER_DEPARTMENT, "effective": "2026-01-01"}
            for d in sorted(wanted_decisions)
        ]
    if "costs" not in data:
        extra["costs"] = MINIMAL_COSTS
    return extra


def check_workspace(block: Block, root: Path, own: dict[Path, str], kind: str) -> None:
    try:
        load_workspace(root)
    except WorkspaceError as exc:
        pytest.fail(
            f"{block.where()}: this ```yaml block is not a valid {kind}:\n"
            f"{describe(exc.problems, block, own)}\n"
            f"If it is deliberately partial, put {FRAGMENT} on the line before its fence; "
            "if it is deliberately wrong, make it a ```text block."
        )


def check_rules_file(block: Block, data: dict[Any, Any], root: Path) -> None:
    (root / "rules").mkdir(parents=True)
    mine = root / "rules" / "from-docs.yaml"
    mine.write_text(block.text, encoding="utf-8")
    extra = completion(data)
    if extra:
        (root / "rules" / "zz-completion.yaml").write_text(
            yaml.safe_dump(extra, sort_keys=False), encoding="utf-8"
        )
    check_workspace(block, root, {mine.resolve(): "rules"}, "rules file")


def check_settings_file(block: Block, root: Path) -> None:
    (root / "rules").mkdir(parents=True)
    (root / "rules" / "costs.yaml").write_text(
        yaml.safe_dump({"costs": MINIMAL_COSTS}), encoding="utf-8"
    )
    mine = root / "chargeback.yaml"
    mine.write_text(block.text, encoding="utf-8")
    check_workspace(block, root, {mine.resolve(): "settings"}, "chargeback.yaml")


@pytest.mark.parametrize("block", YAML_BLOCKS, ids=lambda b: b.where())
def test_yaml_block(block: Block, tmp_path: Path) -> None:
    data = parse(block)
    if block.fragment or not isinstance(data, dict) or not data:
        return
    keys = {str(k) for k in data}
    rules_keys, settings_keys = keys & set(TOP_LEVEL_KEYS), keys & set(SETTINGS_KEYS)
    if not rules_keys and not settings_keys:
        # A misspelt section (`rule:`) should be reported, not waved through as a snippet.
        rules_keys = {k for k in keys if difflib.get_close_matches(k, TOP_LEVEL_KEYS, 1, 0.8)}
        settings_keys = {k for k in keys if difflib.get_close_matches(k, SETTINGS_KEYS, 1, 0.8)}
        if rules_keys and settings_keys:
            settings_keys = set()
    if rules_keys and settings_keys:
        pytest.fail(
            f"{block.where()}: this ```yaml block mixes rules-file sections "
            f"({', '.join(sorted(rules_keys))}) with chargeback.yaml settings "
            f"({', '.join(sorted(settings_keys))}); no file accepts both. Split it, or put "
            f"{FRAGMENT} on the line before its fence."
        )
    if rules_keys:
        check_rules_file(block, data, tmp_path / "ws")
    elif settings_keys:
        check_settings_file(block, tmp_path / "ws")
    # Neither: a snippet (say, one rule's `match:`), checked as YAML only.


def test_fence_finder_sees_fragments_and_indented_blocks(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "Intro\n\n<!-- fragment -->\n```yaml\nrules: []\n```\n\n"
        "1. step\n\n   ```yml\n   timezone: UTC\n   ```\n\n````text\n```yaml\n````\n"
    )
    found = fenced_blocks(page)
    assert [(b.lang, b.line, b.fragment, b.text) for b in found] == [
        ("yaml", 4, True, "rules: []\n"),
        ("yml", 10, False, "timezone: UTC\n"),
        ("text", 14, False, "```yaml\n"),
    ]


def test_completion_adds_only_what_is_missing() -> None:
    assert completion({"costs": {}, "departments": [{"id": "a"}]}) == {}
    assert completion({"decisions": [{"id": "d", "department": "a"}]}) == {
        "departments": [{"id": "a"}],
        "costs": MINIMAL_COSTS,
    }
    extra = completion({"costs": {}, "rules": [{"id": "r", "decision": "d"}]})
    assert extra["departments"] == [{"id": FILLER_DEPARTMENT}]
    assert [d["id"] for d in extra["decisions"]] == ["d"]


# --------------------------------------------------------------------------- (b), (c) cli.md


def gen_cli() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_cli", DOCS / "gen_cli.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cli_md_is_up_to_date() -> None:
    expected = gen_cli().render()
    current = CLI_MD.read_text(encoding="utf-8") if CLI_MD.is_file() else ""
    if current != expected:
        diff = difflib.unified_diff(
            current.splitlines(), expected.splitlines(), "docs/cli.md", "--help now", lineterm=""
        )
        shown = "\n".join(list(diff)[:60])
        pytest.fail(
            f"docs/cli.md is out of date with the app's --help. Regenerate it with\n"
            f"    {REGENERATE}\nand commit the result.\n{shown}"
        )


def app_commands() -> list[str]:
    """`report`, `sample`, ... and `group sub` for any nested group; hidden ones left out."""
    out: list[str] = []

    def walk(command: Any, prefix: str) -> None:
        for name, sub in (getattr(command, "commands", None) or {}).items():
            if not getattr(sub, "hidden", False):
                out.append(prefix + name)
                walk(sub, prefix + name + " ")

    walk(typer.main.get_command(app), "")
    return out


@pytest.mark.parametrize("command", app_commands())
def test_cli_md_documents_command(command: str) -> None:
    text = CLI_MD.read_text(encoding="utf-8") if CLI_MD.is_file() else ""
    assert f"\n## chargeback {command}\n" in text, (
        f"docs/cli.md has no section for `chargeback {command}`; run {REGENERATE}"
    )


# --------------------------------------------------------------------------- (d) workspace.md


REFERENCE_TERMS = sorted(
    {
        *TOP_LEVEL_KEYS,
        *SETTINGS_KEYS,
        *MATCH_LIST_KEYS,
        "text_regex",
        "fields",
        *DECISION_KINDS,
        *OVERLAP_POLICIES,
        *COST_METHODS,
    }
)


@pytest.mark.parametrize("term", REFERENCE_TERMS)
def test_workspace_md_names(term: str) -> None:
    text = WORKSPACE_MD.read_text(encoding="utf-8")
    assert f"`{term}`" in text, (
        f"docs/workspace.md never mentions `{term}`, which the engine accepts"
    )


def test_workspace_md_shows_ledger_columns() -> None:
    text = WORKSPACE_MD.read_text(encoding="utf-8")
    header = ",".join(LEDGER_COLUMNS)
    assert header in text, f"docs/workspace.md should show ledger.csv's header: {header}"
