"""A workspace whose contacts live in a real PostgreSQL: the whole command, end to end.

The server is real (tests/pg_server.py: initdb on loopback, password only in
PGPASSWORD). The same contacts as a CSV file and as a typed PostgreSQL table
(timestamptz, numeric) must give byte-identical ledger.csv files; a bad row is
named by the source and its row; a wrong password is a clear error that never
shows the password.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from conftest import write_workspace
from pg_fixture import pg, pg_server  # noqa: F401  (fixtures)
from test_engine_choice import RULES
from typer.testing import CliRunner

from cli import app

psycopg = pytest.importorskip("psycopg")

CONTACTS = """
contact_id,started_at,channel,reason,text,handle_seconds
c1,2026-03-02T09:00:00Z,email,billing.fee,late fee 20 charged,0
c2,2026-03-04T04:30:00Z,phone,billing.fee_dispute,LATE Fee  10 again,125.5
c3,2026-03-11T00:00:00Z,chat,product.app,the app crashed at LOGIN,30
c4,2026-03-12T10:00:00Z,chat,other,Grüße: ÄPP? appliance,0
c5,2026-02-27T12:00:00Z,phone,billing.fee,late fee 5,60
c6,2026-03-31T23:59:59Z,email,billing.fee,"multi
line late fee",12.25
"""


def load_table(conninfo: str, root: Path, table: str) -> None:
    with psycopg.connect(conninfo, autocommit=True) as con:
        con.execute("CREATE SCHEMA IF NOT EXISTS support")
        con.execute(f"DROP TABLE IF EXISTS {table}")
        con.execute(
            f"CREATE TABLE {table} (contact_id text, started_at timestamptz, channel text, "
            "reason text, text text, handle_seconds numeric(12,3))"
        )
        with con.cursor().copy(f"COPY {table} FROM STDIN (FORMAT csv, HEADER true)") as copy:
            copy.write((root / "contacts.csv").read_bytes())


def report(root: Path, *args: str) -> Any:
    """csv and json: the ledger and the CS value's contact side are computed on the
    server (test_in_engine, test_pushdown_value); bad rows still read them out."""
    formats = ["--format", "csv,json"]
    return CliRunner().invoke(app, ["report", "--workspace", str(root), *formats, *args])


def test_a_postgres_table_gives_the_csv_ledger(tmp_path: Path, pg: str) -> None:  # noqa: F811
    ws = write_workspace(tmp_path / "ws", RULES, CONTACTS)
    first = report(ws, "--out", str(tmp_path / "csv"))
    assert first.exit_code == 0, first.output
    expected = (tmp_path / "csv" / "ledger.csv").read_text(encoding="utf-8")
    load_table(pg, ws, "support.contacts")
    (ws / "chargeback.yaml").write_text(f'contacts: {{uri: "{pg}", table: support.contacts}}\n')
    result = report(ws, "--out", str(tmp_path / "pg"), "--show-sql")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "pg" / "ledger.csv").read_text(encoding="utf-8") == expected
    # the CS value's contact side is grouped on the server too (test_pushdown_value.py)
    assert "CREATE TEMP VIEW cb_value_rows" in result.output
    assert 'FROM "support"."contacts" ORDER BY "contact_id"' not in result.output
    import os

    assert os.environ["PGPASSWORD"] not in result.output


def test_bad_rows_and_a_wrong_password(
    tmp_path: Path,
    pg: str,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ws = write_workspace(tmp_path / "ws", RULES, CONTACTS)
    load_table(pg, ws, "support.bad")
    with psycopg.connect(pg, autocommit=True) as con:
        con.execute("UPDATE support.bad SET handle_seconds = -5 WHERE contact_id = 'c2'")
    (ws / "chargeback.yaml").write_text(f'contacts: {{uri: "{pg}", table: support.bad}}\n')
    result = report(ws)
    assert result.exit_code == 1, result.output
    assert "support.bad (ordered by contact_id), row 2, column 'handle_seconds'" in result.output
    monkeypatch.setenv("PGPASSWORD", "not-the-password-123")
    result = report(ws)
    assert result.exit_code == 1
    assert "cannot connect" in result.output and "Traceback" not in result.output
    assert "not-the-password-123" not in result.output


def test_a_regex_postgres_cannot_run_exactly_is_refused_at_its_rule(
    tmp_path: Path,
    pg: str,  # noqa: F811
) -> None:
    rules = RULES.replace("match: {reason: [billing.fee*]}", 'match: {text_regex: "a{300}"}')
    ws = write_workspace(tmp_path / "ws", rules, CONTACTS)
    load_table(pg, ws, "support.contacts")
    (ws / "chargeback.yaml").write_text(f'contacts: {{uri: "{pg}", table: support.contacts}}\n')
    result = report(ws)
    assert result.exit_code == 1, result.output
    assert "rules/main.yaml:" in result.output
    assert "rule 'fee-reason': the postgres engine cannot run it exactly" in result.output
    assert "Traceback" not in result.output


def test_a_password_cut_by_the_servers_excerpt_is_still_blanked(
    tmp_path: Path,
    pg: str,  # noqa: F811
) -> None:
    """libpq shows about 60 columns of a query around an error, cutting what is longer:
    a password typed into `query:` must not show even in part."""
    import os

    secret = os.environ["PGPASSWORD"]
    ws = write_workspace(tmp_path / "ws", RULES, CONTACTS)
    load_table(pg, ws, "support.contacts")
    for pad in (0, 20, 40, 55):
        query = f"SELECT * FROM support.contacts WHERE {'x' * pad} = '{secret * 3}' +++ ;;x"
        query = query.replace(";;", "")
        (ws / "chargeback.yaml").write_text(
            f'contacts: {{uri: "{pg}", query: "{query}"}}\n', encoding="utf-8"
        )
        result = report(ws)
        assert result.exit_code == 1, result.output
        assert "Traceback" not in result.output
        for cut in range(len(secret) - 3):  # any 4 characters of it
            assert secret[cut : cut + 4] not in result.output, (pad, result.output)


def test_scrub_blanks_whole_and_cut_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    from chargeback.data.warehouse import scrub

    monkeypatch.setenv("PGPASSWORD", "hunter2-Secret")
    assert scrub("password hunter2-Secret refused") == "password *** refused"
    assert scrub("LINE 1: ...WHERE a = 'hunter2-Se...") == "LINE 1: ...WHERE a = '***..."
    assert scrub("...ter2-Secret' AND b") == "...***' AND b"
    assert scrub("the hun is on") == "the hun is on"  # under 4 characters of it
    assert scrub("the hunt is on") == "the *** is on"  # 4 of them: blanked, to be safe
    monkeypatch.setenv("PGPASSWORD", "abc")
    assert scrub("abc and ab") == "*** and ab"  # a short secret: only whole
    monkeypatch.delenv("PGPASSWORD")
    assert scrub("hunter2-Secret") == "hunter2-Secret"
