"""Snowflake, BigQuery and Databricks SQL: what the shared SQL compiles to (issue 15).

Golden files (tests/golden/<dialect>.sql) hold each dialect's statements for one
workspace that uses every kind of match key; a change in them is a change in
what would run on a customer's warehouse, so it is reviewed as a diff. Rewrite
them with `CHARGEBACK_UPDATE_GOLDEN=1 pytest tests/test_warehouse_dialects.py`.
Each statement must also parse back in its dialect (SQLGlot), and Snowflake,
which has no RE2 translation yet, refuses a `text_regex` rule.
"""

from __future__ import annotations

import os
from pathlib import Path

import polars as pl
import pytest
from conftest import write_workspace

sqlglot = pytest.importorskip("sqlglot")

from chargeback.engine.warehouse_dialects import DIALECTS, compile_sql  # noqa: E402
from chargeback.workspace.load import load_workspace  # noqa: E402

GOLDEN = Path(__file__).parent / "golden"
RULES = """
decisions:
  - {id: late-fee, title: Late fee, kind: fee, department: billing, effective: 2026-03-01}
  - {id: app-launch, title: App launch, kind: launch, department: product, effective: 2026-03-10,
     ends: 2026-06-30}
rules:
  - {id: fee-reason, decision: late-fee, match: {reason: [billing.fee, "billing.late*"]}}
  - {id: fee-text, decision: late-fee, match: {channel: [email], text: ["late FEE", "O'Brien"],
     tags: [fee]}, share: 0.5}
  - {id: app, decision: app-launch, match: {product: [app], region: [north], outcome: [escalated]},
     window: {start_offset_days: 2, days: 30}}
"""
REGEX_RULE = """
  - {id: app-regex, decision: app-launch, match: {text_regex: "(?:app|login)\\\\b.{0,5}crash$"}}
"""
CONTACTS = "contact_id,started_at,channel\nc1,2026-03-02T09:00:00Z,email\n"
SCHEMA = pl.Schema(
    {
        "period": pl.String,
        "date": pl.Date,
        "channel": pl.String,
        "hs_us": pl.Int64,
        "reason": pl.String,
        "text": pl.String,
        "tags": pl.String,
        "product": pl.String,
        "region": pl.String,
        "outcome": pl.String,
    }
)


def statements(tmp_path: Path, dialect: str, rules: str) -> list[str]:
    ws = load_workspace(write_workspace(tmp_path / dialect, rules, CONTACTS))
    return compile_sql(ws, SCHEMA, dialect)


@pytest.mark.parametrize("dialect", DIALECTS)
def test_golden_sql(tmp_path: Path, dialect: str) -> None:
    rules = RULES if dialect == "snowflake" else RULES + REGEX_RULE
    got = ";\n\n".join(statements(tmp_path, dialect, rules)) + ";\n"
    golden = GOLDEN / f"{dialect}.sql"
    if os.environ.get("CHARGEBACK_UPDATE_GOLDEN"):
        golden.write_text(got, encoding="utf-8")
    assert golden.read_text(encoding="utf-8") == got
    for statement in got.split(";\n\n"):
        sqlglot.parse_one(statement.rstrip(";\n"), read=dialect)  # valid syntax there


def test_snowflake_refuses_a_regex_it_cannot_translate(tmp_path: Path) -> None:
    with pytest.raises(NotImplementedError, match=r"text_regex .* on snowflake"):
        statements(tmp_path, "snowflake", RULES + REGEX_RULE)
