"""SPEC 10 through the command line: `engine:`, `--engine`, `{uri, table|query}` sources.

A workspace with its contacts in a DuckDB database file must give the ledger the
same contacts give as a CSV file, on both embedded engines; bad rows are named by
the source and their row; a password in the YAML is refused at its line; an
engine that cannot read a source's address, an unknown engine and a missing
driver are clear errors with the right exit codes; `--show-sql` prints what is
sent. (Real PostgreSQL and Spark runs: test_postgres_parity, test_spark_parity.)
"""

from __future__ import annotations

import builtins
from pathlib import Path
from typing import Any

import pytest
from conftest import write_workspace
from typer.testing import CliRunner

from cli import app

duckdb = pytest.importorskip("duckdb")

RULES = """
decisions:
  - {id: late-fee, title: Late fee, kind: fee, department: billing, effective: 2026-03-01,
     revenue: {monthly: 40}}
  - {id: app-launch, title: App launch, kind: launch, department: product, effective: 2026-03-10}
rules:
  - {id: fee-reason, decision: late-fee, match: {reason: [billing.fee*]}}
  - {id: fee-text, decision: late-fee, match: {text: ["late FEE"], text_regex: "fee\\\\s+\\\\d+"}}
  - {id: app, decision: app-launch, match: {text_regex: "(?:app|login)\\\\b"}, share: 0.5}
"""
CONTACTS = """
contact_id,started_at,channel,reason,text,handle_seconds
c1,2026-03-02T09:00:00Z,email,billing.fee,late fee 20 charged,0
c2,2026-03-03T23:30:00-05:00,phone,billing.fee_dispute,LATE Fee  10 again,125.5
c3,2026-03-11,chat,product.app,the app crashed at LOGIN,30
c4,2026-03-12T10:00:00,chat,other,Grüße: ÄPP? appliance,0
c5,2026-02-27T12:00:00Z,phone,billing.fee,late fee 5,60
"""


def run(root: Path, *args: str) -> Any:
    return CliRunner().invoke(app, ["report", "--workspace", str(root), *args])


def to_duckdb(root: Path, name: str = "cx.db", table: str = "support.contacts") -> None:
    """The workspace's contacts.csv as a typed table in a DuckDB database file."""
    con = duckdb.connect(str(root / name))
    schema = table.split(".")[0] if "." in table else None
    if schema:
        con.execute(f"CREATE SCHEMA {schema}")
    con.execute(
        f"CREATE TABLE {table} AS SELECT contact_id, started_at::TIMESTAMPTZ AS started_at, "
        "channel, reason, text, handle_seconds::DECIMAL(12,3) AS handle_seconds "
        f"FROM read_csv('{root / 'contacts.csv'}', all_varchar=true)"
    )
    con.close()


def ledger_csv(root: Path, *args: str) -> str:
    out = root / "out"
    result = run(root, "--format", "csv", "--out", str(out), *args)
    assert result.exit_code == 0, result.output
    text = (out / "ledger.csv").read_text(encoding="utf-8")
    (out / "ledger.csv").unlink()
    (out / "ledger.json").unlink()
    return text


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    # ISO stamps with offsets do not survive the DuckDB cast equally; keep them UTC
    contacts = CONTACTS.replace("2026-03-03T23:30:00-05:00", "2026-03-04T04:30:00Z")
    contacts = contacts.replace("2026-03-11,", "2026-03-11T00:00:00Z,")
    contacts = contacts.replace("2026-03-12T10:00:00,", "2026-03-12T10:00:00Z,")
    return write_workspace(tmp_path / "ws", RULES, contacts)


def test_every_source_and_engine_gives_the_same_ledger(ws: Path) -> None:
    expected = ledger_csv(ws)
    assert "late-fee" in expected and "app-launch" in expected
    assert ledger_csv(ws, "--engine", "duckdb") == expected
    to_duckdb(ws)
    settings = ws / "chargeback.yaml"
    settings.write_text('contacts: {uri: "duckdb:///cx.db", table: support.contacts}\n')
    assert ledger_csv(ws) == expected  # the address's engine: duckdb
    query = "SELECT * FROM support.contacts WHERE channel <> 'fax'"
    settings.write_text(f'contacts: {{uri: "duckdb:///cx.db", query: "{query}"}}\n')
    assert ledger_csv(ws, "--engine", "duckdb") == expected


def test_bad_rows_are_named_by_source_row_and_column(ws: Path) -> None:
    to_duckdb(ws, table="contacts")
    con = duckdb.connect(str(ws / "cx.db"))
    con.execute("UPDATE contacts SET handle_seconds = -1 WHERE contact_id = 'c3'")
    con.close()
    (ws / "chargeback.yaml").write_text('contacts: {uri: "duckdb:///cx.db", table: contacts}\n')
    result = run(ws, "--format", "csv")
    assert result.exit_code == 1
    assert "duckdb:///cx.db contacts (ordered by contact_id), row 3, column 'handle_seconds'" in (
        result.output
    )
    assert "Traceback" not in result.output
    assert not (ws / "reports").exists()


@pytest.mark.parametrize(
    ("source", "line_text"),
    [
        ('{uri: "postgresql://ann:s3cret@db/cx", table: t}', "holds a password"),
        ('{uri: "postgresql://ann@db/cx", table: t, password: s3cret}', "'password'"),
        ('{uri: "postgresql://ann@db/cx?password=s3cret", table: t}', "credential"),
    ],
)
def test_a_password_in_the_yaml_is_refused_at_its_line(
    ws: Path, source: str, line_text: str
) -> None:
    (ws / "chargeback.yaml").write_text(f"timezone: UTC\ncontacts: {source}\n")
    result = run(ws, "--format", "csv")
    assert result.exit_code == 1
    assert "chargeback.yaml:2" in result.output and line_text in result.output
    assert "s3cret" not in result.output


def test_source_mistakes_are_refused_at_their_line(ws: Path) -> None:
    cases = {
        'contacts: {uri: "duckdb:///cx.db"}': "give the table to read",
        'contacts: {uri: "duckdb:///cx.db", table: a, query: "SELECT 1"}': "not both",
        'contacts: {uri: "mysql://db/cx", table: a}': "not a database address",
        'contacts: {uri: "duckdb:///cx.db", query: "SELECT 1; DROP TABLE a"}': "one SELECT",
        'contacts: {uri: "duckdb:///cx.db", tabel: a}': "unknown key 'tabel'",
    }
    for yaml_text, expected in cases.items():
        (ws / "chargeback.yaml").write_text(yaml_text + "\n")
        result = run(ws, "--format", "csv")
        assert result.exit_code == 1, yaml_text
        assert "chargeback.yaml:1" in result.output and expected in result.output, result.output


def test_an_engine_that_cannot_read_the_address_is_an_error(ws: Path) -> None:
    to_duckdb(ws)
    (ws / "chargeback.yaml").write_text(
        'contacts: {uri: "duckdb:///cx.db", table: support.contacts}\nengine: postgres\n'
    )
    result = run(ws, "--format", "csv")
    assert result.exit_code == 1
    assert "chargeback.yaml:2" in result.output and "runs on the duckdb engine" in result.output
    (ws / "chargeback.yaml").write_text(
        'contacts: {uri: "duckdb:///cx.db", table: support.contacts}\n'
    )
    result = run(ws, "--format", "csv", "--engine", "polars")
    assert result.exit_code == 2 and "runs on the duckdb engine" in result.output


def test_unknown_engine_and_postgres_without_a_source(ws: Path) -> None:
    result = run(ws, "--format", "csv", "--engine", "oracle")
    assert result.exit_code == 2 and "unknown --engine 'oracle'" in result.output
    (ws / "chargeback.yaml").write_text("contacts: contacts.csv\nengine: postgres\n")
    result = run(ws, "--format", "csv")
    assert result.exit_code == 1
    assert "chargeback.yaml:2" in result.output and "postgresql://" in result.output
    (ws / "chargeback.yaml").write_text("contacts: contacts.csv\nengine: oracle\n")
    result = run(ws, "--format", "csv")
    assert result.exit_code == 1 and "chargeback.yaml:2" in result.output


def test_a_missing_driver_names_the_extra(ws: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_import = builtins.__import__

    def no_duckdb(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "duckdb" or name.startswith("duckdb."):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_duckdb)
    monkeypatch.delitem(__import__("sys").modules, "duckdb")
    result = run(ws, "--format", "csv", "--engine", "duckdb")
    assert result.exit_code == 1
    assert "pip install 'chargeback[duckdb]'" in result.output
    assert "Traceback" not in result.output


def test_show_sql_prints_what_is_sent(ws: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from chargeback.engine import pushdown_value

    to_duckdb(ws)
    (ws / "chargeback.yaml").write_text(
        'contacts: {uri: "duckdb:///cx.db", table: support.contacts}\n'
    )
    in_engine = run(ws, "--format", "csv,json", "--show-sql")  # json's value: grouped there
    assert "CREATE TEMP VIEW cb_value_rows" in in_engine.output
    # the value's facts refused: the contacts are read out, and that is printed too
    monkeypatch.setattr(pushdown_value, "engine_value", lambda *args, **kwargs: None)
    result = run(ws, "--format", "csv,json", "--show-sql")
    assert result.exit_code == 0, result.output
    assert '-- sent to the engine\nSELECT "contact_id"' in result.output
    assert 'FROM "support"."contacts" ORDER BY "contact_id";' in result.output


def test_a_regex_duckdb_cannot_run_exactly_is_refused_at_its_rule(ws: Path) -> None:
    rules = RULES.replace("match: {reason: [billing.fee*]}", 'match: {text_regex: "\\\\p{Greek}"}')
    (ws / "rules" / "main.yaml").write_text(rules)
    assert run(ws, "--format", "csv").exit_code == 0  # polars runs it
    result = run(ws, "--format", "csv", "--engine", "duckdb")
    assert result.exit_code == 1, result.output
    assert "rules/main.yaml:" in result.output
    assert "rule 'fee-reason': the duckdb engine cannot run it exactly" in result.output
