"""Find a workspace, read its YAML and validate it in layers.

Layer 1, structure: each file parses, top-level keys are known, sections have
the right shape. Layer 2, items: each department, decision, cost block, rule
and setting has known keys of the right types. Layer 3, references: ids are
unique across files, decisions name real departments, rules real decisions.
Every problem from every layer is collected and reported at once, each with the
file and line it concerns, so a user fixes a workspace in one pass.

The item checks are in items.py and settings.py, built from the typed fields
in fields.py; this module finds the files, walks their structure and checks
what spans files.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from chargeback.errors import Problem, WorkspaceError
from chargeback.resources import sample_workspace
from chargeback.workspace.fields import Collector, Item, suggest
from chargeback.workspace.items import parse_costs, parse_decision, parse_department, parse_rule
from chargeback.workspace.limits import (
    MAX_FILES,
    MAX_ITEMS,
    MAX_PROBLEMS,
    MAX_TOTAL_BYTES,
    shown,
)
from chargeback.workspace.model import Place, Workspace
from chargeback.workspace.settings import parse_settings
from chargeback.workspace.yamlio import YList, YMap, load_yaml_collect, read_source

SETTINGS_FILE = "chargeback.yaml"
TOP_LEVEL_KEYS = ("departments", "decisions", "costs", "rules", "settings")


def find_workspace(explicit: Path | None) -> Path:
    """`--workspace`, else the current folder when it holds rules/, else the sample."""
    if explicit is not None:
        if not explicit.is_dir():
            raise WorkspaceError(Problem("workspace folder not found", explicit))
        if not (explicit / "rules").is_dir():
            raise WorkspaceError(Problem("not a workspace: it has no rules/ folder", explicit))
        return explicit
    here = Path.cwd()
    if (here / "rules").is_dir():
        return here
    if (here / SETTINGS_FILE).exists() or (here / "rules").exists():
        # a workspace half set up: running the sample instead would pass its figures off
        raise WorkspaceError(
            Problem(
                f"this folder has {SETTINGS_FILE} but no rules/ folder: put the rules in "
                "rules/*.yaml (chargeback init DIR writes a starter workspace), or give "
                "--workspace",
                here / "rules",
            )
        )
    return sample_workspace()


def _yaml_paths(rules: Path, ck: Collector) -> list[Path]:
    """Every *.yaml and *.yml name under rules/, files or not: a folder, a device or a
    broken link with such a name is read (and refused with its name), never skipped."""
    try:
        found = sorted(p for p in rules.rglob("*") if p.suffix in (".yaml", ".yml"))
    except OSError as exc:
        ck.add(rules, None, f"cannot list the rules folder: {exc.strerror or exc}")
        return []
    yaml_dirs = [p for p in found if p.is_dir()]
    found = [p for p in found if not any(d in p.parents for d in yaml_dirs)]
    if len(found) > MAX_FILES:
        ck.add(rules, None, f"holds {len(found):,} YAML files; a workspace may have {MAX_FILES:,}")
        return []
    return found


def load_workspace(root: Path, rules_dir: Path | None = None) -> Workspace:
    """Read and validate a whole workspace; raise WorkspaceError with every problem.

    `rules_dir` reads the rules from another folder (`chargeback diff`: a rule set
    beside the workspace's own settings and contacts).
    """
    ck = Collector()
    rules_path = rules_dir if rules_dir is not None else root / "rules"
    files: list[Path] = []
    documents: list[tuple[Path, Any]] = []

    settings_path = root / SETTINGS_FILE
    if settings_path.exists() or settings_path.is_symlink():
        files.append(settings_path)
    paths = _yaml_paths(rules_path, ck)
    unreadable = bool(ck.problems)  # rules/ could not be listed: its ids are unknown
    if not paths and not unreadable:
        ck.add(rules_path, None, "no YAML files (*.yaml, *.yml) in rules/")
    files.extend(paths)
    total = 0
    for path in files:
        text, problems = read_source(path)
        total += len(text.encode("utf-8")) if text is not None else 0
        if text is not None and total > MAX_TOTAL_BYTES:
            text, problems = None, [_too_much(path)]
        data, more = load_yaml_collect(path, text) if text is not None else (None, [])
        problems.extend(more)
        ck.problems.extend(problems)
        if data is None and problems:
            unreadable = True  # its ids are unknown: reference checks would only echo this
        elif data is None:  # a file cut short or never written is refused, not read as nothing
            ck.add(path, 1, "holds no YAML (empty, or only comments): add to it or delete it")
            unreadable = True
        documents.append((path, data))

    # Layer 1: structure.
    settings_items: list[Item] = []
    sections: dict[str, list[Item]] = {"departments": [], "decisions": [], "rules": []}
    cost_items: list[Item] = []
    cost_lines: list[Place] = []  # where each `costs:` key stands
    for path, doc in documents:
        if doc is None:
            continue
        if not isinstance(doc, YMap):
            ck.add(path, 1, "the file must be a mapping of sections (departments:, rules:, ...)")
            unreadable = True
            continue
        if path == settings_path:
            settings_items.append(Item(ck, doc, ""))
            continue
        for key, value in doc.items():
            line = doc.line_of(key)
            if key not in TOP_LEVEL_KEYS:
                ck.add(
                    path,
                    line,
                    f"unknown top-level key '{shown(key)}'{suggest(str(key), TOP_LEVEL_KEYS)}",
                )
            elif value is None:
                continue
            elif key in sections:
                if not isinstance(value, YList):
                    ck.add(path, line, f"'{key}' must be a list (each item starting with '- ')")
                    continue
                singular = key[:-1]
                for index, entry in enumerate(value):
                    if not isinstance(entry, YMap):
                        ck.add(path, value.line_of(index), f"each of '{key}' must be a mapping")
                        continue
                    ident = entry.get("id")
                    label = (
                        f"{singular} '{shown(ident)}'"
                        if ident is not None
                        else f"{singular} #{index + 1}"
                    )
                    sections[key].append(Item(ck, entry, label))
            elif not isinstance(value, YMap):
                ck.add(path, line, f"'{key}' must be a mapping")
            elif key == "costs":
                cost_items.append(Item(ck, value, "costs"))
                cost_lines.append(Place(path, line))
            else:
                settings_items.append(Item(ck, value, "settings"))

    for key, items in sections.items():
        if len(items) > MAX_ITEMS:
            beyond = items[MAX_ITEMS]
            ck.add(
                beyond.path,
                beyond.node.line,
                f"more than {MAX_ITEMS:,} {key} in the workspace: the limit (this is number "
                f"{MAX_ITEMS + 1:,})",
            )
            del items[MAX_ITEMS:]

    # Layer 2: each item's keys and types.
    settings = parse_settings(settings_items)
    departments = [parse_department(i) for i in sections["departments"]]
    decisions = [parse_decision(i) for i in sections["decisions"]]
    rules = [parse_rule(i) for i in sections["rules"]]
    costs = [parse_costs(i) for i in cost_items]

    # Layer 3: uniqueness and references.
    for kind, objects in (("department", departments), ("decision", decisions), ("rule", rules)):
        first: dict[str, Any] = {}
        for obj in objects:
            if not obj.id:
                continue
            place = obj.place
            assert place is not None
            if obj.id in first:
                ck.add(
                    place.path,
                    place.line,
                    f"duplicate {kind} id '{obj.id}' (first defined at {first[obj.id].place})",
                )
            else:
                first[obj.id] = obj
    dept_ids = {d.id for d in departments}
    decision_ids = {d.id for d in decisions}
    if not unreadable:
        for item, decision in zip(sections["decisions"], decisions, strict=True):
            if decision.department and decision.department not in dept_ids:
                item.error(
                    "department",
                    f"unknown department '{decision.department}'"
                    f"{suggest(decision.department, dept_ids)}",
                )
        for item, rule in zip(sections["rules"], rules, strict=True):
            if rule.decision and rule.decision not in decision_ids:
                item.error(
                    "decision",
                    f"unknown decision '{rule.decision}'{suggest(rule.decision, decision_ids)}",
                )
        if not costs and documents:
            ck.add(rules_path, None, "no 'costs' block: add one (see docs/workspace.md)")
    for extra in cost_lines[1:]:
        ck.add(extra.path, extra.line, f"a second 'costs' block (the first is at {cost_lines[0]})")

    if ck.problems:
        raise WorkspaceError(_at_most(sorted(ck.problems, key=_problem_order)))
    return Workspace(
        root=root,
        settings=settings,
        departments=tuple(departments),
        decisions=tuple(decisions),
        rules=tuple(rules),
        costs=costs[0],
        files=tuple(files),
    )


def _problem_order(problem: Problem) -> tuple[str, int]:
    """By file, then line, so the report reads top to bottom whichever layer found what."""
    return (str(problem.path or ""), problem.line or 0)


def _at_most(problems: list[Problem]) -> list[Problem]:
    """The first MAX_PROBLEMS problems, and how many more: a hostile file cannot flood the run."""
    if len(problems) <= MAX_PROBLEMS:
        return problems
    rest = len(problems) - MAX_PROBLEMS
    return [*problems[:MAX_PROBLEMS], Problem(f"... and {rest:,} more problems not shown")]


def _too_much(path: Path) -> Problem:
    return Problem(
        f"the workspace's YAML files together pass {MAX_TOTAL_BYTES // 1024 // 1024} MB "
        "(the limit) at this file",
        path,
    )
