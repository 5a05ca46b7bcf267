"""Hostile and broken workspace YAML and settings (issue 12): refused at their line.

Every case breaks one thing in the harness's good workspace (tests/hostile.py),
runs the CLI and checks the one way a bad input ends: exit 1, no traceback, the
place named as `file:line` (the line found in the text written here, never taken
from the program), and the output folder exactly as it was. The cases are
grouped by class, one class per limit the workspace is read within
(chargeback/workspace/limits.py), so a new input of a known class needs no new
code, only, at most, a new row here.
"""

from __future__ import annotations

import os
import re
import textwrap
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hostile import GOOD_RULES, assert_refused, run, snapshot, workspace

from chargeback.workspace.limits import MAX_DEPTH

SETTINGS_HEAD = "contacts: contacts.csv\n"  # what workspace() writes before `settings`


def rules_with(old: str, new: str) -> str:
    """GOOD_RULES with one piece replaced (which must be there, so a case cannot go stale)."""
    assert old in GOOD_RULES, old
    return GOOD_RULES.replace(old, new, 1)


def plus_rule(line: str) -> str:
    """GOOD_RULES with one more key on its only rule."""
    return GOOD_RULES + f"    {line}\n"


def line_of(text: str, needle: str) -> int:
    """The 1-based line of the first line holding needle."""
    for number, line in enumerate(text.splitlines(), start=1):
        if needle in line:
            return number
    raise AssertionError(f"{needle!r} not in the text")


@dataclass(frozen=True)
class Case:
    """One hostile input: what to write, where it must be refused, and what it must say."""

    rules: str | bytes = GOOD_RULES
    settings: str = ""
    at: str | tuple[str, ...] = ""  # needle(s) in the file's text: the place is (one of) their
    # line(s); "" for the file alone
    file: str = "rules/main.yaml"
    says: str = ""
    command: tuple[str, ...] = ("report",)
    setup: Callable[[Path], object] | None = field(default=None, compare=False)

    def place(self) -> str | re.Pattern[str]:
        if not self.at:
            return self.file
        if self.file == "chargeback.yaml":
            text = SETTINGS_HEAD + textwrap.dedent(self.settings)
        else:
            assert isinstance(self.rules, str)
            text = self.rules
        if isinstance(self.at, tuple):  # where a running count crosses its limit
            lines = "|".join(str(line_of(text, needle)) for needle in self.at)
            return re.compile(rf"{re.escape(self.file)}:({lines}):")
        return f"{self.file}:{line_of(text, self.at)}:"


def deep_flow(levels: int) -> str:
    return GOOD_RULES + "settings:\n  company: " + "[" * levels + "]" * levels + "\n"


def deep_block(levels: int) -> str:
    body = "".join("  " * i + f"k{i}:\n" for i in range(levels)) + "  " * levels + "x: 1\n"
    return GOOD_RULES + "settings:\n  columns:\n" + textwrap.indent(body, "    ")


def laughs() -> str:
    """The billion laughs: nine aliases of nine aliases of ..., 9**9 values expanded."""
    lines = ["a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for i in range(1, 10):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]")
    return GOOD_RULES + "settings:\n  columns:\n" + textwrap.indent("\n".join(lines), "    ") + "\n"


def with_file(name: str, make: Callable[[Path], object]) -> Callable[[Path], object]:
    return lambda ws: make(ws / name)


def replace_with_folder(path: Path) -> None:
    path.unlink()
    path.mkdir()


def huge(path: Path) -> None:
    with path.open("wb") as handle:  # a comment line over and over: valid YAML, just too big
        handle.write(
            b"# padding padding padding padding padding padding padding padding\n" * 170_000
        )


MONEY = "10^15"
SETTINGS = "chargeback.yaml"

CASES: dict[str, Case] = {
    # --- the file itself: read within limits, never handed to the parser broken ---
    "nul-byte": Case(rules=GOOD_RULES.encode() + b"oops: \x00\n", says="U+0000"),
    "escape-byte": Case(rules=GOOD_RULES.encode() + b"oops: \x1b[2J\n", says="U+001B"),
    "latin-1": Case(
        rules=rules_with("name: Billing", "name: B\xe9lling").encode("latin-1"),
        says="not UTF-8",
    ),
    "utf-16": Case(rules=GOOD_RULES.encode("utf-16"), says="not UTF-8"),
    "empty-rules-file": Case(rules="", says="holds no YAML"),
    "only-comments": Case(rules="# departments: to do\n", says="holds no YAML"),
    "yaml-name-is-a-folder": Case(
        file="rules/extra.yaml",
        says="is a folder",
        setup=with_file("rules/extra.yaml", lambda p: p.mkdir()),
    ),
    "broken-link": Case(
        file="rules/extra.yaml",
        says="cannot read",
        setup=with_file("rules/extra.yaml", lambda p: p.symlink_to(p.parent / "gone.yaml")),
    ),
    "fifo": Case(
        file="rules/pipe.yaml",
        says="not a regular file",
        setup=with_file("rules/pipe.yaml", lambda p: os.mkfifo(p)),
    ),
    "huge-file": Case(
        file="rules/big.yaml", says="at most 10 MB", setup=with_file("rules/big.yaml", huge)
    ),
    "settings-is-a-folder": Case(
        file=SETTINGS,
        says="is a folder",
        setup=lambda ws: replace_with_folder(ws / SETTINGS),
    ),
    "settings-nul": Case(
        file=SETTINGS,
        says="U+0000",
        setup=lambda ws: (ws / SETTINGS).write_bytes(b"contacts: contacts.csv\x00\n"),
    ),
    "settings-empty": Case(
        file=SETTINGS, says="holds no YAML", setup=lambda ws: (ws / SETTINGS).write_bytes(b"")
    ),
    # --- structure: depth and expanded size are counted while the tree is built ---
    "deep-flow": Case(rules=deep_flow(5000), at="company:", says="nested more than"),
    "deep-block": Case(rules=deep_block(120), at=f"k{MAX_DEPTH - 3}:", says="nested more than"),
    "billion-laughs": Case(
        rules=laughs(), at=tuple(f"a{i}:" for i in range(10)), says="expands to more than"
    ),
    "alias-loop": Case(
        rules=GOOD_RULES + "settings:\n  columns: &c [*c]\n", at="columns:", says="a loop"
    ),
    "python-tag": Case(
        rules=rules_with("title: Late fee", "title: !!python/object/apply:os.system [ls]"),
        at="title:",
        says="is not allowed",
    ),
    "binary-tag": Case(
        rules=rules_with("title: Late fee", "title: !!binary aGVsbG8="),
        at="title:",
        says="is not allowed",
    ),
    "set-tag": Case(
        rules=rules_with("title: Late fee", "title: !!set {a, b}"), at="title:", says="not allowed"
    ),
    # --- money: finite, below 10^15, at most 12 decimal places ---
    "revenue-1e26": Case(
        rules=rules_with("monthly: 1000.00", "monthly: 100000000000000000000000000"),
        at="monthly:",
        says=MONEY,
    ),
    "per-minute-1e9999999": Case(
        rules=rules_with("per_minute: 1.05", "per_minute: 1e9999999"), at="phone:", says=MONEY
    ),
    "per-contact-5000-digits": Case(
        rules=rules_with("per_contact: 0.40", "per_contact: " + "9" * 5000), at="phone:", says=MONEY
    ),
    "per-contact-nan": Case(
        rules=rules_with("per_contact: 0.40", "per_contact: .nan"), at="phone:", says="finite"
    ),
    "per-minute-inf": Case(
        rules=rules_with("per_minute: 1.05", "per_minute: -.inf"), at="phone:", says="finite"
    ),
    "per-contact-negative": Case(
        rules=rules_with("chat: {per_contact: 0.15}", "chat: {per_contact: -0.15}"),
        at="chat:",
        says="negative",
    ),
    "per-contact-boolean": Case(
        rules=rules_with("per_contact: 1.00", "per_contact: true"), at="default:", says="number"
    ),
    "per-contact-list": Case(
        rules=rules_with("per_contact: 1.00", "per_contact: [1]"), at="default:", says="number"
    ),
    "share-tiny": Case(rules=plus_rule("share: 1e-99999"), at="share:", says="decimal places"),
    "pool-1e30": Case(
        rules=rules_with("method: rates", "method: pool\n  pool: {monthly: 1e30}").replace(
            "  default: {per_contact: 1.00}\n", ""
        ),
        at="pool:",
        says=MONEY,
    ),
    # --- dates and day counts: every window and lookback stays on the calendar ---
    "effective-year-1-with-baseline": Case(
        rules=rules_with("effective: 2026-03-01", "effective: 0001-01-01")
        + "    baseline: {lookback_days: 56}\n",
        at="effective:",
        says="outside the dates",
    ),
    "effective-9999-12-31": Case(
        rules=rules_with("effective: 2026-03-01", "effective: 9999-12-31")
        + "    window: {days: 90}\n",
        at="effective:",
        says="outside the dates",
    ),
    "by-period-month-0000": Case(
        rules=rules_with("revenue: {monthly: 1000.00}", "revenue: {by_period: {0000-01: 5}}"),
        at="0000-01",
        says="outside the months",
    ),
    "lookback-huge": Case(
        rules=plus_rule("baseline: {lookback_days: 999999999999}"), at="baseline:", says="36,525"
    ),
    "lookback-zero": Case(
        rules=plus_rule("baseline: {lookback_days: 0}"), at="baseline:", says="from 1"
    ),
    "lookback-negative": Case(
        rules=plus_rule("baseline: {method: control, lookback_days: -5}"),
        at="baseline:",
        says="from 1",
    ),
    "window-offset-huge": Case(
        rules=plus_rule("window: {start_offset_days: -99999999999}"), at="window:", says="36,525"
    ),
    "interval-outside": Case(
        rules=plus_rule("baseline: {method: control, interval: 1.5}"),
        at="baseline:",
        says="less than 1",
    ),
    "priority-huge": Case(
        rules=plus_rule("priority: " + "9" * 30), at="priority:", says="1,000,000"
    ),
    # --- ids and texts: as written, one line, no control characters ---
    "rule-id-number": Case(
        rules=rules_with("id: late-fee-calls", "id: 42"), at="id: 42", says="read as a number"
    ),
    "department-id-date": Case(
        rules=rules_with("{id: billing,", "{id: 2026-03-01,"),
        at="2026-03-01",
        says="read as a date",
    ),
    "department-id-newline": Case(
        rules=rules_with("{id: billing,", '{id: "billing\\n",'), at="billing\\n", says="line break"
    ),
    "name-bell": Case(
        rules=rules_with("name: Billing", 'name: "Bil\\x07ling"'), at="Bil", says="U+0007"
    ),
    "cost-center-nul": Case(
        rules=rules_with("cost_center: CC-100", 'cost_center: "CC\\x00100"'), at="CC", says="U+0000"
    ),
    "title-bidi-override": Case(
        rules=rules_with("title: Late fee", 'title: "Late \\u202Eeef"'), at="title:", says="U+202E"
    ),
    "channel-escape": Case(
        rules=rules_with("    chat: {", '    "ch\\x1bat": {'), at="ch\\x1bat", says="U+001B"
    ),
    "title-list": Case(
        rules=rules_with("title: Late fee", "title: [Late, fee]"), at="title:", says="must be text"
    ),
    "recipients-header-injection": Case(
        rules=rules_with(
            "cost_center: CC-100}",
            'cost_center: CC-100, recipients: ["a@example.com\\r\\nBcc: x@evil.example"]}',
        ),
        at="recipients",
        says="carriage return",
        command=("send", "--period", "2026-03", "--dry-run"),
    ),
    "recipients-two-in-one": Case(
        rules=rules_with(
            "cost_center: CC-100}",
            "cost_center: CC-100, recipients: ['a@example.com, b@example.com']}",
        ),
        at="recipients",
        says="e-mail address",
        command=("check",),
    ),
    "recipients-no-domain": Case(
        rules=rules_with("cost_center: CC-100}", "cost_center: CC-100, recipients: [lead@]}"),
        at="recipients",
        says="domain",
    ),
    # --- settings in chargeback.yaml ---
    "timestamp-format-unknown-code": Case(
        file=SETTINGS,
        settings="timestamp_format: '%Q-%Y'\n",
        at="timestamp_format",
        says="strftime",
    ),
    "timestamp-format-no-day": Case(
        file=SETTINGS, settings="timestamp_format: '%H:%M'\n", at="timestamp_format", says="day"
    ),
    "timezone-unknown": Case(
        file=SETTINGS, settings="timezone: Mars/Olympus\n", at="timezone", says="IANA"
    ),
    "timezone-polars-lacks": Case(
        file=SETTINGS, settings="timezone: posixrules\n", at="timezone", says="IANA"
    ),
    "timezone-too-long": Case(
        file=SETTINGS, settings="timezone: " + "A" * 5000 + "\n", at="timezone", says="at most"
    ),
    "summary-recipient-lf": Case(
        file=SETTINGS,
        settings='summary_recipients: ["cfo@example.com\\nBcc: x@evil.example"]\n',
        at="summary_recipients",
        says="line break",
        command=("send", "--period", "2026-03", "--dry-run"),
    ),
    "smtp-port": Case(
        file=SETTINGS,
        settings="smtp: {host: mail.example.com, port: 70000}\n",
        at="smtp",
        says="65535",
    ),
    "smtp-host-blank": Case(
        file=SETTINGS, settings="smtp:\n  host: 'mail example.com'\n", at="host:", says="host"
    ),
    "smtp-from-invalid": Case(
        file=SETTINGS,
        settings="smtp:\n  from: 'chargeback at example'\n",
        at="from:",
        says="address",
    ),
    "smtp-password-in-file": Case(
        file=SETTINGS,
        settings="smtp:\n  host: mail.example.com\n  password: hunter2\n",
        at="password:",
        says="CHARGEBACK_SMTP_PASSWORD",
    ),
    "orders-url-with-password": Case(
        file=SETTINGS,
        settings="orders: 'postgresql://analyst:hunter2@db.internal/cx'\n",
        at="orders",
        says="password",
    ),
    "company-escape": Case(
        file=SETTINGS, settings='company: "Acme\\x1b[2J"\n', at="company", says="U+001B"
    ),
    "horizon-zero": Case(
        file=SETTINGS, settings="value: {horizons_days: [30, 0]}\n", at="value", says="from 1"
    ),
    "save-value-inf": Case(
        file=SETTINGS, settings="value: {save_value: .inf}\n", at="value", says="finite"
    ),
    "journal-date-format-nul": Case(
        file=SETTINGS, settings='journal: {date_format: "%Y\\x00%m"}\n', at="journal", says="U+0000"
    ),
    # a `fields` name the loader uses itself: refused by name before any engine reads
    "fields-reserved-date": Case(
        rules=rules_with(
            '["billing.late_fee*"]\n', '["billing.late_fee*"]\n      fields: {date: [x]}\n'
        ),
        at="fields:",
        says="uses internally",
    ),
    "fields-reserved-prefix-duckdb": Case(
        rules=rules_with(
            '["billing.late_fee*"]\n', '["billing.late_fee*"]\n      fields: {_raw_x: [x]}\n'
        ),
        at="fields:",
        says="uses internally",
        command=("report", "--engine", "duckdb"),
    ),
    "fields-reserved-check": Case(
        rules=rules_with(
            '["billing.late_fee*"]\n', '["billing.late_fee*"]\n      fields: {_utc: [x]}\n'
        ),
        at="fields:",
        says="uses internally",
        command=("check",),
    ),
    "settings-deep": Case(
        file=SETTINGS,
        settings="columns: " + "{a: " * 200 + "1" + "}" * 200 + "\n",
        at="columns",
        says="nested",
    ),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_hostile_workspace_is_refused_at_its_place(tmp_path: Path, case: Case) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    if isinstance(case.rules, bytes):
        workspace(ws, settings=case.settings)
        (ws / "rules" / "main.yaml").write_bytes(case.rules)
    else:
        workspace(ws, rules=case.rules, settings=case.settings)
    if case.setup is not None:
        case.setup(ws)
    out = ws / "out"
    out.mkdir()
    (out / "keep.txt").write_text("an earlier run's file\n", encoding="utf-8")
    before = snapshot(out)

    args = [case.command[0], "--workspace", str(ws), *case.command[1:]]
    if case.command[0] in ("report", "send"):
        args += ["--out", str(out)]
    if case.command[0] == "report":
        args += ["--format", "csv,json"]
    started = time.monotonic()
    result = run(args)
    took = time.monotonic() - started

    assert_refused(result, case.place(), untouched=(out, before))
    text = result.output
    assert case.says in text, f"{case.says!r} not in:\n{text}"
    assert "\x1b" not in text and "\x00" not in text, "a control character reached the terminal"
    assert took < 5, f"took {took:.1f} s: a limit should stop this early"


def test_a_workspace_at_every_limit_still_runs(tmp_path: Path) -> None:
    """The bounds are inclusive where they say so: values at the edge are read, and run."""
    top = "999999999999999.999999999999"
    rules = (
        rules_with("monthly: 1000.00", f"monthly: {top}")
        .replace("effective: 2026-03-01", "effective: 2026-03-01\n    ends: 2199-12-31")
        .replace("name: Billing,", 'name: "Billing & Payments — Zürich 💶",')
        + "    share: 0.000000000001\n"
        + "    priority: 1000000\n"
        + "    window: {start_offset_days: -36525, days: 36525}\n"
    )
    ws = workspace(tmp_path / "ws", rules=rules, settings="timezone: Europe/Kyiv\n")
    result = run(
        ["report", "--workspace", str(ws), "--out", str(ws / "out"), "--format", "csv,json"]
    )
    assert result.exit_code == 0, result.output
    assert (ws / "out" / "ledger.csv").is_file()
