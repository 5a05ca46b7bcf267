"""text_regex keeps RE2's meaning (SPEC 4) on the embedded engine.

Rust's regex (which polars runs) reads `\\d`, `\\w`, `\\s` and `\\b` as Unicode
classes, `[` inside a class as a nested class and `\\<` as a word start; RE2
reads them as ASCII classes and literals. Each case below is RE2's answer,
worked out from RE2's syntax page, checked through a real report.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from chargeback.workspace.re2 import Re2Error, to_rust
from cli import app
from tests.conftest import ledger, write_workspace

MEANING = [
    # pattern, text, RE2 matches (case-insensitive, search)
    (r"\d", "order \u0661\u0662\u0663", False),  # Arabic-Indic digits are not \d in RE2
    (r"\d", "order 123", True),
    (r"\w", "é", False),
    (r"\s", "a\u00a0b", False),  # no-break space is not \s
    (r"\s", "a\x0bb", False),  # RE2's \s has no vertical tab
    (r"\s", "a\tb", True),
    (r"\bfee\b", "éfee", True),  # é is not a word character: a boundary
    (r"\bfee\b", "coffee", False),
    (r"[^\W]", "é", False),
    (r"\D", "\u0661", True),
    (r"a{,2}", "a{,2}", True),  # not a repeat in RE2: literal text
    (r"x{start}", "x{start}", True),
    (r"[[a]", "[", True),  # no nested classes: [ and a
    (r"[a&&b]", "&", True),  # no set operations
    (r"[a-c--b]", "-", True),
    (r"\<a\>", "<a>", True),  # escaped punctuation is literal
    (r"\<a\>", "a", False),
    (r"\Q.*\E", "x.*y", True),
    (r"\Q.*\E", "xy", False),
    (r"k", "\u212a", True),  # Kelvin sign folds to k (Unicode simple case folding)
    (r"late fees?", "LATE FEES", True),
    (r"caf.$", "café", True),
    (r"caf.$", "café\n", False),  # $ is the end of the text only
    (r"a.b", "a\nb", False),  # . does not match a newline
    (r"(?s)a.b", "a\nb", True),
    (r"[[:digit:]]+", "\u0661", False),
]


@pytest.mark.parametrize(("pattern", "text", "expected"), MEANING)
def test_the_rust_pattern_means_what_re2_means(pattern: str, text: str, expected: bool) -> None:
    import polars as pl

    got = pl.Series([text]).str.contains("(?i)" + to_rust(pattern)).item()
    assert got is expected, (pattern, to_rust(pattern), text)


@pytest.mark.parametrize(
    ("pattern", "reason"),
    [
        (r"fee(?=s)", "look-ahead"),
        (r"(fee)\1", "back-references"),
        (r"\C", "any byte"),
        (r"a{1001}", "over 1000"),
        (r"(?x)late fee", "flags"),
        (r"(?u)\w", "flags"),
        (r"\x{D800}", "character code"),
        (r"[fee", "ends too early"),
        (r"(?<!x)fee", "look-behind"),
        (r"(?#note)fee", "comment"),
    ],
)
def test_what_re2_would_not_run_is_refused(pattern: str, reason: str) -> None:
    with pytest.raises(Re2Error, match=reason):
        to_rust(pattern)


RULES = """
decisions:
  - {id: fee, department: billing, title: Fee, effective: 2026-03-01}
rules:
  - id: digits
    decision: fee
    match: {text_regex: 'fee \\d+'}
"""
CONTACTS = """
contact_id,started_at,channel,handle_seconds,text
c1,2026-03-02T10:00:00,chat,60,fee 15
c2,2026-03-02T11:00:00,chat,60,fee \u0661\u0665
"""


def test_a_report_charges_only_ascii_digits(tmp_path: Path) -> None:
    ws = write_workspace(tmp_path / "ws", RULES, CONTACTS)
    rows = ledger(ws)
    fee = next(r for r in rows if r["decision_id"] == "fee")
    assert fee["contacts"] == "1.000"


def test_a_regex_outside_re2_is_refused_with_its_place(tmp_path: Path) -> None:
    ws = write_workspace(tmp_path / "ws", RULES.replace("fee \\d+", "fee(?=s)"), CONTACTS)
    result = CliRunner().invoke(app, ["report", "--workspace", str(ws), "--format", "csv"])
    assert result.exit_code == 1
    assert "main.yaml:7" in result.output
    assert "look-ahead is not supported" in result.output
    assert "Traceback" not in result.output
