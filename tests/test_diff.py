"""chargeback diff (SPEC 9): two rule sets' ledgers on the same contacts, compared.

The hand-computed workspace is the one docs/reviewing.md shows (rates: chat
0.15, phone 0.40 + 1.05/min, anything else 1.00):

  1 2026-02-20 chat   other        0.15   unattributed
  2 2026-03-02 email  billing.fee  1.00   late-fee (share 1, then 0.5)
  3 2026-03-03 email  billing.fee  1.00   late-fee
  4 2026-03-04 email  billing.fee  1.00   late-fee
  5 2026-03-05 phone  other (2 min) 2.50  unattributed

  old: late-fee 3.000 / 3.00, March unattributed 1.000 / 2.50
  new: late-fee 1.500 / 1.50, March unattributed 2.500 / 4.00

"Done means" (issue 10): the JSON is exactly the difference between the two
ledger.csv files `chargeback report --format csv` writes with each rule set;
test_json_is_the_difference_of_two_report_ledgers computes that difference from
the CSV files alone.
"""

from __future__ import annotations

import csv
import io
import json
import os
import random
import re
import shlex
import shutil
import subprocess
import tempfile
import textwrap
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from conftest import DEPARTMENTS, write_workspace
from rich.console import Console
from typer.testing import CliRunner, Result

from chargeback.report import ReportOptions
from chargeback.review.diff import diff_text
from chargeback.run import run_diff
from chargeback.workspace.load import load_workspace
from cli import app

ROOT = Path(__file__).resolve().parent.parent
REVIEWING_MD = ROOT / "docs" / "reviewing.md"

FEES = """
decisions:
  - {id: late-fee, title: Late fee, kind: fee, department: billing, effective: 2026-03-01}
rules:
  - {id: late-fee-contacts, decision: late-fee, match: {reason: [billing.fee]}}
"""
FEES_HALF = FEES.replace("[billing.fee]}}", "[billing.fee]}, share: 0.5}")
CONTACTS = """
contact_id,started_at,channel,reason,handle_seconds
1,2026-02-20T10:00:00,chat,other,300
2,2026-03-02T10:00:00,email,billing.fee,60
3,2026-03-03T10:00:00,email,billing.fee,60
4,2026-03-04T10:00:00,email,billing.fee,60
5,2026-03-05T10:00:00,phone,other,120
"""


def fig(contacts: str, cost: str) -> dict[str, str]:
    return {"contacts": contacts, "cost": cost}


def change(old: tuple[str, str], new: tuple[str, str], delta: tuple[str, str]) -> dict[str, Any]:
    return {"old": fig(*old), "new": fig(*new), "delta": fig(*delta)}


ZERO = ("0.000", "0.00")
EXPECTED = {
    "lines": [
        {
            "period": "2026-03",
            "department_id": "billing",
            "decision_id": "late-fee",
            **change(("3.000", "3.00"), ("1.500", "1.50"), ("-1.500", "-1.50")),
        },
        {
            "period": "2026-03",
            "department_id": "unattributed",
            "decision_id": "unattributed",
            **change(("1.000", "2.50"), ("2.500", "4.00"), ("1.500", "1.50")),
        },
    ],
    "departments": [
        {
            "department_id": "billing",
            **change(("3.000", "3.00"), ("1.500", "1.50"), ("-1.500", "-1.50")),
        },
        {"department_id": "product", **change(ZERO, ZERO, ZERO)},
        {
            "department_id": "unattributed",
            **change(("2.000", "2.65"), ("3.500", "4.15"), ("1.500", "1.50")),
        },
    ],
}


def invoke(*args: str | Path) -> Result:
    result = CliRunner().invoke(app, [str(a) for a in args])
    # CliRunner swallows crashes; a crash would show up here as a non-SystemExit.
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    assert "Traceback" not in result.output
    return result


def diff_json(*args: str | Path) -> Any:
    result = invoke("diff", *args, "--format", "json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)  # exactly one JSON document on stdout


def git(repo: Path, *args: str) -> str:
    """git with a fixed identity and no user or system config, so it runs the same in CI."""
    env = {**os.environ, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}
    identity = ["-c", "user.name=Test", "-c", "user.email=test@example.com"]
    done = subprocess.run(
        ["git", "-C", str(repo), *identity, "-c", "commit.gpgsign=false", *args],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    return done.stdout


def commit_all(repo: Path, message: str) -> None:
    git(repo, "add", "--all")
    git(repo, "commit", "-q", "-m", message)


def rules_copy(ws: Path, dest: Path, main: str, org: str = DEPARTMENTS) -> Path:
    """ws's rules folder with another main.yaml (and org.yaml)."""
    shutil.copytree(ws / "rules", dest)
    (dest / "main.yaml").write_text(textwrap.dedent(main))
    (dest / "org.yaml").write_text(textwrap.dedent(org))
    return dest


@pytest.fixture(autouse=True)
def no_repository_above(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """tmp_path is never taken as part of a repository it happens to sit in."""
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))


# --------------------------------------------------------------------------- hand-computed


def test_two_folders_hand_computed(tmp_path: Path) -> None:
    ws = write_workspace(tmp_path / "ws", FEES, CONTACTS)
    new = rules_copy(ws, tmp_path / "new_rules", FEES_HALF)
    assert diff_json(ws / "rules", new, "--workspace", ws) == EXPECTED
    # and back: every delta changes sign, old and new swap
    back = diff_json(new, ws / "rules", "--workspace", ws)
    assert [line["delta"]["cost"] for line in back["lines"]] == ["1.50", "-1.50"]
    assert back["departments"][0]["old"] == EXPECTED["departments"][0]["new"]


def test_a_line_on_one_side_only_counts_zero_on_the_other(tmp_path: Path) -> None:
    ws = write_workspace(tmp_path / "ws", FEES, CONTACTS)
    # late-fee moves to product; a new decision (survey, ops) takes contact 5 (2.50)
    moved = """
    decisions:
      - {id: late-fee, title: Late fee, kind: fee, department: product, effective: 2026-03-01}
      - {id: survey, title: Survey, kind: process, department: ops, effective: 2026-03-01}
    rules:
      - {id: late-fee-contacts, decision: late-fee, match: {reason: [billing.fee]}}
      - {id: survey-calls, decision: survey, match: {reason: [other], channel: [phone]}}
    """
    org = DEPARTMENTS + "  - {id: ops, name: Operations, cost_center: CC-300}\n"
    new = rules_copy(ws, tmp_path / "new_rules", moved, org)
    got = diff_json(ws / "rules", new, "--workspace", ws)
    assert got["lines"] == [
        {
            "period": "2026-03",
            "department_id": "billing",
            "decision_id": "late-fee",
            **change(("3.000", "3.00"), ZERO, ("-3.000", "-3.00")),
        },
        {
            "period": "2026-03",
            "department_id": "ops",
            "decision_id": "survey",
            **change(ZERO, ("1.000", "2.50"), ("1.000", "2.50")),
        },
        {
            "period": "2026-03",
            "department_id": "product",
            "decision_id": "late-fee",
            **change(ZERO, ("3.000", "3.00"), ("3.000", "3.00")),
        },
        {
            "period": "2026-03",
            "department_id": "unattributed",
            "decision_id": "unattributed",
            **change(("1.000", "2.50"), ZERO, ("-1.000", "-2.50")),
        },
    ]
    assert [(d["department_id"], d["delta"]["cost"]) for d in got["departments"]] == [
        ("billing", "-3.00"),
        ("ops", "2.50"),  # a department only the new rules have
        ("product", "3.00"),
        ("unattributed", "-2.50"),
    ]


def test_period_options_limit_the_months_compared(tmp_path: Path) -> None:
    ws = write_workspace(tmp_path / "ws", FEES, CONTACTS)
    new = rules_copy(ws, tmp_path / "new_rules", FEES_HALF)
    february = diff_json(ws / "rules", new, "--workspace", ws, "--period", "2026-02")
    assert february["lines"] == []
    assert february["departments"][-1] == {
        "department_id": "unattributed",
        **change(("1.000", "0.15"), ("1.000", "0.15"), ("0.000", "0.00")),
    }
    march = diff_json(ws / "rules", new, "--workspace", ws, "--from", "2026-03", "--to", "2026-03")
    assert march["lines"] == EXPECTED["lines"]
    assert march["departments"][-1] == {
        "department_id": "unattributed",
        **change(("1.000", "2.50"), ("2.500", "4.00"), ("1.500", "1.50")),
    }
    # a month without contacts: nothing to move, still exit 0
    assert diff_json(ws / "rules", new, "--workspace", ws, "--period", "2027-01")["lines"] == []
    bad = invoke("diff", ws / "rules", new, "--workspace", ws, "--period", "2026-3")
    assert bad.exit_code == 2 and "--period '2026-3' is not a month" in bad.output


def test_text_names_what_moves_and_says_when_nothing_does(tmp_path: Path) -> None:
    ws = write_workspace(tmp_path / "ws", FEES, CONTACTS)
    new = rules_copy(ws, tmp_path / "new_rules", FEES_HALF)
    moved = invoke("diff", ws / "rules", new, "--workspace", ws)
    assert moved.exit_code == 0, moved.output
    text = moved.stdout
    assert "How each department's charge moves (USD)" in text
    assert re.search(r"billing\s+2026-03\s+3\.00\s+1\.50\s+-1\.50\s+-1\.500", text)
    assert re.search(r"late-fee\s+2026-03\s+3\.00\s+1\.50\s+-1\.50\s+-1\.500", text)
    assert "2 of 3 ledger lines move; the total charged is the same." in text
    same = invoke("diff", ws / "rules", ws / "rules", "--workspace", ws)
    assert same.exit_code == 0
    assert "Nothing moves: both rule sets give the same ledger." in same.stdout
    assert (
        json.loads(invoke("diff", new, new, "--workspace", ws, "--format", "json").stdout)["lines"]
        == []
    )


# --------------------------------------------------------------------------- git revisions


def repo_with_two_commits(tmp_path: Path) -> Path:
    """repo/finance/ws: the old rules in HEAD~1, the new ones in HEAD."""
    repo = tmp_path / "repo"
    ws = write_workspace(repo / "finance" / "ws", FEES, CONTACTS)
    git(repo, "init", "-q", "-b", "main")
    commit_all(repo, "old rules")
    (ws / "rules" / "main.yaml").write_text(textwrap.dedent(FEES_HALF))
    commit_all(repo, "late fee: half")
    return ws


def leftovers() -> set[Path]:
    return set(Path(tempfile.gettempdir()).glob("chargeback-diff-*"))


def test_git_revisions_of_a_workspace_inside_a_repository(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = repo_with_two_commits(tmp_path)
    before = leftovers()
    assert diff_json("HEAD~1", "HEAD", "--workspace", ws) == EXPECTED
    sha = git(ws, "rev-parse", "HEAD~1").strip()
    assert diff_json(sha, "main", "--workspace", ws) == EXPECTED
    monkeypatch.chdir(tmp_path)  # a folder not found from here is looked for in the workspace
    assert diff_json("HEAD~1", "rules", "--workspace", ws) == EXPECTED
    monkeypatch.chdir(ws)
    # a folder and a revision mixed; `.` is the workspace folder, standing for its rules/
    assert diff_json("HEAD~1", "rules") == EXPECTED
    assert diff_json("HEAD~1", ".") == EXPECTED
    text = invoke("diff", "HEAD~1", "HEAD").stdout
    assert f"old: HEAD~1 ({sha[:7]})" in text
    assert leftovers() == before  # the temporary copies are gone


def test_an_error_in_a_revision_is_named_at_its_place(tmp_path: Path) -> None:
    ws = repo_with_two_commits(tmp_path)
    broken = FEES_HALF.replace("decision: late-fee,", "decision: late-fees,")
    (ws / "rules" / "main.yaml").write_text(textwrap.dedent(broken))
    commit_all(ws, "a typo")
    result = invoke("diff", "HEAD~1", "HEAD", "--workspace", ws)
    assert result.exit_code == 1
    assert "HEAD:finance/ws/rules/main.yaml:5: rule 'late-fee-contacts'" in result.stderr
    assert "unknown decision 'late-fees'" in result.stderr
    assert "chargeback-diff-" not in result.stderr


def test_a_workspace_outside_any_repository_is_a_clear_error(tmp_path: Path) -> None:
    ws = write_workspace(tmp_path / "ws", FEES, CONTACTS)
    result = invoke("diff", "HEAD~1", "rules", "--workspace", ws)
    assert result.exit_code == 1
    assert "'HEAD~1' is not a folder, and the workspace is not inside a git repository" in (
        result.stderr
    )


def test_an_unknown_revision_is_a_clear_error(tmp_path: Path) -> None:
    ws = repo_with_two_commits(tmp_path)
    result = invoke("diff", "no-such-branch", "HEAD", "--workspace", ws)
    assert result.exit_code == 1
    assert "'no-such-branch' is neither a folder nor a revision of the git repository" in (
        result.stderr
    )
    # the first side's temporary copy is removed when the second fails
    before = leftovers()
    assert invoke("diff", "HEAD", "nope", "--workspace", ws).exit_code == 1
    assert leftovers() == before


def test_a_revision_without_the_rules_folder(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "README.md").write_text("before the workspace\n")
    git(repo, "init", "-q", "-b", "main")
    commit_all(repo, "readme")
    ws = write_workspace(repo / "ws", FEES, CONTACTS)
    commit_all(repo, "workspace")
    result = invoke("diff", "HEAD~1", "HEAD", "--workspace", ws)
    assert result.exit_code == 1
    assert "revision 'HEAD~1' has no ws/rules/ folder" in result.stderr


# --------------------------------------------------------------------------- the two ledgers


OLD_RULES = """
decisions:
  - {id: fee, title: Fee, kind: fee, department: billing, effective: 2026-02-10,
     revenue: {monthly: 40.00}}
  - {id: app, title: App, kind: launch, department: product, effective: 2026-03-01,
     ends: 2026-04-15}
  - {id: bundle, title: Bundle, kind: pricing, department: product, effective: 2026-01-01}
rules:
  - {id: fee-r, decision: fee, match: {reason: ["billing.fee*"]}, baseline: {lookback_days: 14}}
  - {id: app-r, decision: app, match: {channel: [chat], text: [app]}, share: 0.6}
  - {id: bundle-r, decision: bundle, match: {tags: [bundle]}}
"""
NEW_RULES = """
settings: {overlap: priority}
decisions:
  - {id: fee, title: Fee, kind: fee, department: billing, effective: 2026-02-10,
     revenue: {monthly: 40.00}}
  - {id: app, title: App, kind: launch, department: product, effective: 2026-03-01,
     ends: 2026-04-15}
  - {id: bundle, title: Bundle, kind: pricing, department: product, effective: 2026-01-01}
  - {id: survey, title: Survey, kind: process, department: ops, effective: 2026-03-10}
rules:
  - {id: fee-r, decision: fee, match: {reason: ["billing.fee*"]}, share: 0.7}
  - {id: fee-text, decision: fee, match: {text: [late fee]}}
  - {id: app-r, decision: app, match: {channel: [chat], text: [app]}, window: {days: 30}}
  - {id: survey-r, decision: survey, match: {reason: [survey]}, priority: 1}
"""
NEW_ORG = DEPARTMENTS + "  - {id: ops, name: Operations, cost_center: CC-300}\n"


def generated_contacts(n: int = 400, seed: int = 20260301) -> str:
    rng = random.Random(seed)
    rows = ["contact_id,started_at,channel,reason,text,tags,handle_seconds"]
    for i in range(n):
        month, day = rng.choice([(1, 31), (2, 28), (3, 31), (4, 30)])
        stamp = f"2026-{month:02d}-{rng.randint(1, day):02d}T{rng.randint(0, 23):02d}:17:00"
        rows.append(
            ",".join(
                [
                    f"c{i}",
                    stamp,
                    rng.choice(["phone", "chat", "email", "social"]),
                    rng.choice(["billing.fee", "billing.fee_dispute", "survey", "other"]),
                    rng.choice(["late fee again", "app crashes", "hello", "", "App login"]),
                    rng.choice(["", "bundle", "bundle|promo", "promo"]),
                    str(rng.randint(30, 900)),
                ]
            )
        )
    return "\n".join(rows) + "\n"


def read_ledger_csv(path: Path) -> dict[tuple[str, str, str], tuple[Decimal, Decimal]]:
    with path.open(newline="") as handle:
        return {
            (r["period"], r["department_id"], r["decision_id"]): (
                Decimal(r["contacts"]),
                Decimal(r["cost"]),
            )
            for r in csv.DictReader(handle)
        }


def difference(old_csv: Path, new_csv: Path, departments: set[str]) -> dict[str, Any]:
    """SPEC 9's document computed from two ledger.csv files alone."""
    old, new = read_ledger_csv(old_csv), read_ledger_csv(new_csv)
    zero = (Decimal(0), Decimal(0))

    def figures(pair: tuple[Decimal, Decimal]) -> dict[str, str]:
        return {"contacts": f"{pair[0]:.3f}", "cost": f"{pair[1]:.2f}"}

    def entry(o: tuple[Decimal, Decimal], n: tuple[Decimal, Decimal]) -> dict[str, Any]:
        delta = (n[0] - o[0], n[1] - o[1])
        return {"old": figures(o), "new": figures(n), "delta": figures(delta)}

    lines = []
    for key in sorted(old.keys() | new.keys()):
        o, n = old.get(key, zero), new.get(key, zero)
        if o != n:
            period, dept, decision = key
            ids = {"period": period, "department_id": dept, "decision_id": decision}
            lines.append({**ids, **entry(o, n)})
    everyone = departments | {k[1] for k in old.keys() | new.keys()} | {"unattributed"}
    depts = []
    for dept in sorted(everyone):
        sums = []
        for side in (old, new):
            rows = [v for k, v in side.items() if k[1] == dept]
            contacts, cost = sum((r[0] for r in rows), Decimal(0)), sum((r[1] for r in rows), 0)
            sums.append((contacts, Decimal(cost)))
        depts.append({"department_id": dept, **entry(sums[0], sums[1])})
    return {"lines": lines, "departments": depts}


def report_csv(ws: Path, out: Path, *period: str) -> Path:
    result = invoke("report", "--workspace", ws, "--format", "csv", "--out", out, *period)
    assert result.exit_code == 0, result.output
    return out / "ledger.csv"


@pytest.mark.parametrize(
    "period", [(), ("--period", "2026-03"), ("--from", "2026-02", "--to", "2026-03")]
)
def test_json_is_the_difference_of_two_report_ledgers(
    tmp_path: Path, period: tuple[str, ...]
) -> None:
    old_ws = write_workspace(tmp_path / "old", OLD_RULES, generated_contacts())
    new_ws = tmp_path / "new"
    shutil.copytree(old_ws, new_ws)
    shutil.rmtree(new_ws / "rules")
    rules_copy(old_ws, new_ws / "rules", NEW_RULES, NEW_ORG)
    expected = difference(
        report_csv(old_ws, tmp_path / "out-old", *period),
        report_csv(new_ws, tmp_path / "out-new", *period),
        {"billing", "product", "ops"},
    )
    assert expected["lines"], "the rule change should move something"
    got = diff_json(old_ws / "rules", new_ws / "rules", "--workspace", old_ws, *period)
    assert got == expected
    # the same two rule sets as two commits of a repository
    git(old_ws, "init", "-q", "-b", "main")
    commit_all(old_ws, "old")
    shutil.rmtree(old_ws / "rules")
    shutil.copytree(new_ws / "rules", old_ws / "rules")
    commit_all(old_ws, "new")
    assert diff_json("HEAD~1", "HEAD", "--workspace", old_ws, *period) == expected


def test_rule_sets_that_read_the_contacts_differently(tmp_path: Path) -> None:
    """A settings: block in rules/ is part of the rule set, even when it moves months."""
    contacts = "contact_id,started_at,channel,reason\n" + "".join(
        f"{i},2026-03-{1 + i % 3:02d}T02:30:00Z,email,billing.fee\n" for i in range(9)
    )
    old_ws = write_workspace(tmp_path / "old", FEES, contacts)
    new_ws = tmp_path / "new"
    shutil.copytree(old_ws, new_ws)
    (new_ws / "rules" / "zone.yaml").write_text("settings: {timezone: America/New_York}\n")
    expected = difference(
        report_csv(old_ws, tmp_path / "out-old"),
        report_csv(new_ws, tmp_path / "out-new"),
        {"billing", "product"},
    )
    assert any(line["period"] == "2026-02" for line in expected["lines"])
    assert diff_json(old_ws / "rules", new_ws / "rules", "--workspace", old_ws) == expected


def test_the_sample_company_with_a_rule_change(tmp_path: Path) -> None:
    """300,000 contacts and the sample's own rules, one rule's share halved."""
    sample = ROOT if (ROOT / "sample_data" / "contacts.parquet").is_file() else None
    if sample is None:
        pytest.skip("the sample data is not in this checkout")
    ws = tmp_path / "ws"
    shutil.copytree(sample / "rules", ws / "rules")
    (ws / "sample_data").mkdir()
    shutil.copy(sample / "sample_data" / "contacts.parquet", ws / "sample_data")
    shutil.copy(sample / "chargeback.yaml", ws / "chargeback.yaml")
    old_csv = report_csv(ws, tmp_path / "out-old")
    git(ws, "init", "-q", "-b", "main")
    commit_all(ws, "sample rules")
    billing = ws / "rules" / "billing.yaml"
    text = billing.read_text()
    assert "decision: late-fee-2026\n" in text
    halved = "decision: late-fee-2026\n    share: 0.5\n"
    billing.write_text(text.replace("decision: late-fee-2026\n", halved, 1))
    commit_all(ws, "late fee disputes: half")
    new_csv = report_csv(ws, tmp_path / "out-new")
    expected = difference(old_csv, new_csv, {d.id for d in load_workspace(ws).departments})
    assert expected["lines"], "halving a rule should move something"
    assert diff_json("HEAD~1", "HEAD", "--workspace", ws) == expected


def test_the_table_fits_80_columns(tmp_path: Path) -> None:
    old_ws = write_workspace(tmp_path / "old", OLD_RULES, generated_contacts())
    new = rules_copy(old_ws, tmp_path / "new_rules", NEW_RULES, NEW_ORG)
    moved, warnings = run_diff(str(old_ws / "rules"), str(new), ReportOptions(workspace=old_ws))
    console = Console(width=80, record=True, file=io.StringIO())
    console.print(diff_text(moved))
    lines = console.export_text().splitlines()
    assert max(len(line) for line in lines) <= 80
    assert any("ops" in line for line in lines) and warnings == []


# --------------------------------------------------------------------------- the docs


def doc_blocks(lang: str) -> list[str]:
    """The page's `lang` blocks in its diff section (other sections have their own tests)."""
    text = REVIEWING_MD.read_text(encoding="utf-8").split("\n## diff", 1)[1]
    text = re.split(r"^## ", text, flags=re.M)[0]
    return re.findall(rf"^```{lang}\n(.*?)^```$", text, flags=re.S | re.M)


def doc_commands() -> list[list[str]]:
    """Every `chargeback diff ...` in the page's shell and YAML blocks, up to a redirect."""
    found = []
    for block in doc_blocks("sh") + doc_blocks("yaml"):
        for line in block.splitlines():
            command = re.search(r"(?:^|run:|[;{])\s*(chargeback diff [^>;|#]*)", line)
            if command:
                found.append(shlex.split(command[1])[1:])
    return found


def test_the_docs_examples_run_and_show_real_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = write_workspace(tmp_path / "ws", FEES, CONTACTS)
    (ws / "rules" / "main.yaml").rename(ws / "rules" / "fees.yaml")
    git(ws, "init", "-q", "-b", "main")
    commit_all(ws, "late fee")
    (ws / "rules" / "fees.yaml").write_text(textwrap.dedent(FEES_HALF))
    monkeypatch.chdir(ws)
    # "Reading it" and "JSON": the share going from 1 to 0.5, as HEAD against rules/
    [shown] = doc_blocks("text")[-1:]
    text = invoke("diff", "HEAD", "rules").stdout
    sha = git(ws, "rev-parse", "--short=7", "HEAD").strip()
    expected = shown.replace("HEAD (08dad25)", f"HEAD ({sha})")
    assert [ln.rstrip() for ln in text.splitlines()] == expected.splitlines()
    [document] = doc_blocks("json")
    assert json.loads(document) == diff_json("HEAD", "rules") == EXPECTED
    # every command on the page, in a repository where each of its names exists
    commit_all(ws, "half")
    git(ws, "update-ref", "refs/remotes/origin/main", "HEAD~1")
    shutil.copytree(ws / "rules", ws / "old_rules")
    commands = doc_commands()
    assert ["diff", "origin/main", "HEAD", "--format", "json"] in commands
    for command in commands:
        result = invoke(*command)
        assert result.exit_code == 0, (command, result.output)
        if "json" in command:
            assert set(json.loads(result.stdout)) == {"lines", "departments"}


def test_warnings_go_to_stderr_named_by_side(tmp_path: Path) -> None:
    ws = write_workspace(tmp_path / "ws", FEES, CONTACTS)
    extra = "  - {id: by-product, decision: late-fee, match: {product: [x]}}\n"
    new = rules_copy(ws, tmp_path / "new_rules", FEES + extra)
    result = invoke("diff", ws / "rules", new, "--workspace", ws, "--format", "json")
    assert result.exit_code == 0
    assert json.loads(result.stdout)["lines"] == []
    stderr = " ".join(result.stderr.split())  # however the console wrapped it
    assert f"warning: {new} (folder): the contacts have no 'product' column" in stderr
    assert "warning" not in invoke("diff", ws / "rules", ws / "rules", "--workspace", ws).stderr
