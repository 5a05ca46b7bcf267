"""A broken workspace (SPEC 1, 3, 4, 6): exit 1, every problem at once, each at file:line.

Each test writes a small workspace into tmp_path, breaks one thing (or
several), runs `chargeback report` through CliRunner and checks that:
- the exit code is 1 and the run ended cleanly (no crash, no "Traceback");
- every problem is named with its `file:line` (line numbers are found in the
  YAML text written here, never taken from the engine);
- nothing was written: the --out folder does not exist.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from chargeback.errors import WorkspaceError
from chargeback.workspace.yamlio import load_yaml
from cli import app

DEPARTMENTS = """\
departments:
  - id: billing
    name: Billing
    cost_center: CC-4100
"""

DECISIONS = """\
decisions:
  - id: late-fee
    title: Late fee
    kind: fee
    department: billing
    effective: 2026-03-01
"""

COSTS = """\
costs:
  currency: USD
  method: rates
  channels:
    phone: {per_contact: 0.40, per_minute: 1.05}
  default: {per_contact: 5.00}
"""

RULES = """\
rules:
  - id: late-fee-calls
    decision: late-fee
    match:
      reason: ["billing.late_fee*"]
"""

GOOD = DEPARTMENTS + DECISIONS + COSTS + RULES

CONTACTS = """\
contact_id,started_at,channel,reason,handle_seconds
c1,2026-03-02T10:00:00,phone,billing.late_fee,120
c2,2026-03-03T10:00:00,email,account,0
"""


def write_workspace(
    root: Path, rules: dict[str, str], settings: str | None = None, contacts: str = CONTACTS
) -> None:
    (root / "rules").mkdir(parents=True, exist_ok=True)
    for name, text in rules.items():
        (root / "rules" / name).write_text(text)
    if settings is not None:
        (root / "chargeback.yaml").write_text(settings)
    (root / "contacts.csv").write_text(contacts)


def line_of(text: str, needle: str, nth: int = 1) -> int:
    """1-based line of the nth line containing `needle` in `text`."""
    hits = [n for n, line in enumerate(text.splitlines(), start=1) if needle in line]
    assert len(hits) >= nth, f"{needle!r} not found {nth} time(s)"
    return hits[nth - 1]


def report(root: Path) -> Result:
    return CliRunner().invoke(
        app,
        ["report", "--workspace", ".", "--contacts", "contacts.csv", "--out", "out"],
    )


def error_lines(result: Result) -> list[str]:
    return [ln for ln in result.output.splitlines() if ln.startswith("error:")]


def assert_fails(result: Result, root: Path, *places_and_words: tuple[str, str]) -> None:
    """Exit 1, cleanly, nothing written; each (place, words) on one error line."""
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit), f"crashed: {result.exception!r}"
    assert "Traceback" not in result.output
    assert not (root / "out").exists(), "a failed run must write nothing"
    errors = error_lines(result)
    for place, words in places_and_words:
        hits = [e for e in errors if f"{place}:" in e and words in e]
        assert hits, f"no error at {place} saying {words!r}:\n{result.output}"


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_the_good_workspace_runs(root: Path) -> None:
    # The baseline every other test breaks: it must work.
    write_workspace(root, {"main.yaml": GOOD})
    result = report(root)
    assert result.exit_code == 0, result.output
    assert (root / "out" / "ledger.csv").is_file()


# --------------------------------------------------------------------------- keys


def test_unknown_key_suggests_the_right_one(root: Path) -> None:
    text = GOOD.replace("    department: billing", "    departmnt: billing")
    write_workspace(root, {"main.yaml": text})
    result = report(root)
    assert_fails(
        result,
        root,
        (f"rules/main.yaml:{line_of(text, 'departmnt:')}", "did you mean 'department'"),
    )


def test_unknown_top_level_key(root: Path) -> None:
    text = GOOD + "rulez:\n  - id: x\n"
    write_workspace(root, {"main.yaml": text})
    assert_fails(
        report(root),
        root,
        (f"rules/main.yaml:{line_of(text, 'rulez:')}", "unknown top-level key 'rulez'"),
    )


def test_duplicate_id_across_files_names_both_places(root: Path) -> None:
    other = DECISIONS  # late-fee again
    write_workspace(root, {"a.yaml": GOOD, "b.yaml": other})
    result = report(root)
    first = f"rules/a.yaml:{line_of(GOOD, '- id: late-fee')}"
    second = f"rules/b.yaml:{line_of(other, '- id: late-fee')}"
    assert_fails(result, root, (second, "late-fee"))
    (line,) = [e for e in error_lines(result) if "duplicate" in e]
    assert first in line and second in line


def test_decision_with_unknown_department(root: Path) -> None:
    text = GOOD.replace("    department: billing", "    department: biling")
    write_workspace(root, {"main.yaml": text})
    # The place is the line that names the missing department.
    assert_fails(
        report(root),
        root,
        (f"rules/main.yaml:{line_of(text, 'department: biling')}", "unknown department 'biling'"),
    )


def test_rule_with_unknown_decision(root: Path) -> None:
    text = GOOD.replace("    decision: late-fee", "    decision: late-fees")
    write_workspace(root, {"main.yaml": text})
    assert_fails(
        report(root),
        root,
        (f"rules/main.yaml:{line_of(text, 'decision: late-fees')}", "unknown decision 'late-fees'"),
    )


def test_second_costs_block_in_another_file(root: Path) -> None:
    write_workspace(root, {"a.yaml": GOOD, "b.yaml": COSTS})
    result = report(root)
    # Both places are the `costs:` lines themselves.
    first = f"rules/a.yaml:{line_of(GOOD, 'costs:')}"
    second = f"rules/b.yaml:{line_of(COSTS, 'costs:')}"
    assert_fails(result, root, (second, "costs"))
    (line,) = [e for e in error_lines(result) if "costs" in e]
    assert first in line


# --------------------------------------------------------------------------- values


def test_impossible_date(root: Path) -> None:
    text = GOOD.replace("effective: 2026-03-01", "effective: 2026-02-30")
    write_workspace(root, {"main.yaml": text})
    assert_fails(
        report(root), root, (f"rules/main.yaml:{line_of(text, 'effective:')}", "2026-02-30")
    )


def test_invalid_regex_is_rejected_with_the_engine_rules(root: Path) -> None:
    # Python's re accepts look-behind; RE2/Rust regex (the engine's) does not.
    text = GOOD.replace('reason: ["billing.late_fee*"]', 'text_regex: "(?<=a)b"')
    write_workspace(root, {"main.yaml": text})
    assert_fails(
        report(root), root, (f"rules/main.yaml:{line_of(text, 'text_regex:')}", "text_regex")
    )


@pytest.mark.parametrize("share", ["0", "1.5", "-0.2"])
def test_share_out_of_range(root: Path, share: str) -> None:
    text = GOOD + f"    share: {share}\n"
    write_workspace(root, {"main.yaml": text})
    assert_fails(report(root), root, (f"rules/main.yaml:{line_of(text, 'share:')}", "share"))


def test_share_of_one_is_fine(root: Path) -> None:
    write_workspace(root, {"main.yaml": GOOD + "    share: 1\n"})
    assert report(root).exit_code == 0


def test_fields_naming_a_column_the_contacts_lack(root: Path) -> None:
    text = GOOD + "      fields: {plan: [basic, plus]}\n"
    write_workspace(root, {"main.yaml": text})
    assert_fails(report(root), root, (f"rules/main.yaml:{line_of(text, 'plan:')}", "'plan'"))


def test_fields_naming_an_extra_column_is_fine(root: Path) -> None:
    text = GOOD + "      fields: {plan: [basic]}\n"
    contacts = (
        "contact_id,started_at,channel,reason,plan\nc1,2026-03-02,phone,billing.late_fee,basic\n"
    )
    write_workspace(root, {"main.yaml": text}, contacts=contacts)
    result = report(root)
    assert result.exit_code == 0, result.output


# --------------------------------------------------------------------------- YAML syntax


def test_malformed_yaml_unclosed_bracket(root: Path) -> None:
    text = GOOD.replace('reason: ["billing.late_fee*"]', 'reason: ["billing.late_fee*"') + (
        "  - id: second\n    decision: late-fee\n"
    )
    write_workspace(root, {"main.yaml": text})
    result = report(root)
    # The place to fix is where the bracket was opened, not where the parser gave up.
    assert_fails(result, root, (f"rules/main.yaml:{line_of(text, 'reason: [')}", "YAML"))


def test_malformed_yaml_in_one_file_raises_no_follow_up_errors(root: Path) -> None:
    # a.yaml holds everything but is broken; b.yaml is fine. Only the syntax error is
    # real: "no costs block" or "unknown decision" would be echoes of it.
    broken = GOOD.replace("  currency: USD", "  currency: [USD")
    extra = "rules:\n  - id: other\n    decision: late-fee\n"
    write_workspace(root, {"a.yaml": broken, "b.yaml": extra})
    result = report(root)
    assert_fails(result, root, ("rules/a.yaml", "YAML"))
    assert len(error_lines(result)) == 1, result.output


def test_duplicate_key_in_one_mapping(root: Path) -> None:
    text = GOOD.replace("    title: Late fee\n", "    title: Late fee\n    title: Late fees\n")
    write_workspace(root, {"main.yaml": text})
    result = report(root)
    first, second = line_of(text, "title:"), line_of(text, "title:", nth=2)
    assert_fails(result, root, (f"rules/main.yaml:{second}", "duplicate key 'title'"))
    (line,) = [e for e in error_lines(result) if "duplicate key" in e]
    assert str(first) in line.split(f":{second}:", 1)[1], "names the first occurrence too"


def test_duplicate_key_does_not_hide_other_errors_in_the_file(root: Path) -> None:
    text = GOOD.replace("    title: Late fee\n", "    title: Late fee\n    title: Late fees\n")
    text = text.replace("    department: billing", "    department: biling")
    write_workspace(root, {"main.yaml": text})
    result = report(root)
    assert_fails(
        result,
        root,
        (f"rules/main.yaml:{line_of(text, 'title:', nth=2)}", "duplicate key"),
        ("rules/main.yaml", "biling"),
    )


# --------------------------------------------------------------------------- settings


def test_unknown_overlap_value(root: Path) -> None:
    settings = "timezone: UTC\noverlap: splt\n"
    write_workspace(root, {"main.yaml": GOOD}, settings=settings)
    assert_fails(
        report(root), root, (f"chargeback.yaml:{line_of(settings, 'overlap:')}", "'split'")
    )


def test_bad_timezone(root: Path) -> None:
    settings = "overlap: split\ntimezone: Europe/Berln\n"
    write_workspace(root, {"main.yaml": GOOD}, settings=settings)
    assert_fails(
        report(root), root, (f"chargeback.yaml:{line_of(settings, 'timezone:')}", "Europe/Berln")
    )


# --------------------------------------------------------------------------- all at once


def test_several_errors_across_files_in_one_run(root: Path) -> None:
    settings = "timezone: Mars/Olympus\n"
    depts = DEPARTMENTS.replace("    name: Billing", "    nme: Billing")  # 1 unknown key
    decisions = DECISIONS.replace("2026-03-01", "2026-02-30")  # 2 impossible date
    rules = RULES + "    share: 1.5\n" + "    priority: high\n"  # 3 share, 4 priority
    write_workspace(
        root,
        {
            "depts.yaml": depts,
            "decisions.yaml": decisions,
            "costs.yaml": COSTS,
            "rules.yaml": rules,
        },
        settings=settings,  # 5 bad timezone
    )
    result = report(root)
    assert_fails(
        result,
        root,
        (f"chargeback.yaml:{line_of(settings, 'timezone:')}", "Mars/Olympus"),
        (f"rules/depts.yaml:{line_of(depts, 'nme:')}", "nme"),
        (f"rules/decisions.yaml:{line_of(decisions, 'effective:')}", "2026-02-30"),
        (f"rules/rules.yaml:{line_of(rules, 'share:')}", "share"),
        (f"rules/rules.yaml:{line_of(rules, 'priority:')}", "'high'"),
    )
    assert len(error_lines(result)) == 5, result.output
    assert "5 problems" in result.output


def test_real_process_prints_no_traceback(tmp_path: Path) -> None:
    """The same through `python -m chargeback` in a child process (stderr and exit code)."""
    text = GOOD.replace("    department: billing", "    departmnt: billing")
    write_workspace(tmp_path, {"main.yaml": text})
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "chargeback",
            "report",
            "--workspace",
            ".",
            "--contacts",
            "contacts.csv",
            "--out",
            "out",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    assert re.search(r"rules/main\.yaml:\d+: .*did you mean 'department'", proc.stderr)
    assert not (tmp_path / "out").exists()


# --------------------------------------------------------------------------- the loader


def test_loader_refuses_python_tags(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    text = f'x: !!python/object/apply:os.system ["touch {marker}"]\n'
    with pytest.raises(WorkspaceError) as info:
        load_yaml(tmp_path / "evil.yaml", text)
    assert "python/object" in str(info.value)
    assert "evil.yaml:1" in str(info.value)
    assert not marker.exists()


def test_loader_refuses_python_object_tag(tmp_path: Path) -> None:
    with pytest.raises(WorkspaceError):
        load_yaml(tmp_path / "evil.yaml", "x: !!python/object:pathlib.Path {}\n")


def test_loader_keeps_no_as_a_string(tmp_path: Path) -> None:
    data = load_yaml(tmp_path / "x.yaml", "region: NO\nothers: [yes, off, 'on']\nflag: true\n")
    assert data["region"] == "NO"
    assert data["others"] == ["yes", "off", "on"]
    assert data["flag"] is True


def test_loader_reads_numbers_exactly(tmp_path: Path) -> None:
    from decimal import Decimal

    data = load_yaml(tmp_path / "x.yaml", "rate: 0.40\ndate: 2026-03-01\n")
    assert data["rate"] == Decimal("0.40")
    assert data["date"] == "2026-03-01"
