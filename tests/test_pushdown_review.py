"""`explain` where the contacts are (engine/pushdown_review.py, SPEC 10, issue 15).

On duckdb (typed Parquet files, a `duckdb:///` database) and a real PostgreSQL,
`chargeback explain ID` sums the aggregates in the engine and reads out only the
rows carrying that id. Its output (text and JSON) must be byte for byte the
read-out path's (`--engine polars`) for every contact: baselines, a control
baseline, rates and a pool, both overlap policies. The SQL sent shows the
in-engine path ran and that no statement read every contact out. A contact that
is not there, a duplicate id and a bad row fall back to the read-out path and so
give its very messages.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
import pytest
from conftest import write_workspace
from pg_fixture import pg, pg_server  # noqa: F401  (fixtures)
from typer.testing import CliRunner

from chargeback import run
from chargeback.engine import in_engine, pushdown_review
from cli import app

duckdb = pytest.importorskip("duckdb")
pytest.importorskip("sqlglot")

RULES = """
decisions:
  - {id: fee, title: Late fee, kind: fee, department: billing, effective: 2026-03-01}
  - {id: app, title: App v5, kind: launch, department: product, effective: 2026-03-05,
     ends: 2026-03-25}
rules:
  - id: fee-disputes
    decision: fee
    match: {reason: [billing.fee*]}
    share: 0.8
  - id: fee-baseline
    decision: fee
    match: {reason: [billing.question]}
    baseline: {lookback_days: 10}
    priority: 1
  - id: app-logins
    decision: app
    match: {reason: [billing.fee, app.login], channel: [phone]}
    priority: 2
  - id: app-text
    decision: app
    match: {text: ["crash"], text_regex: "v5\\\\b"}
    baseline: {lookback_days: 20}
"""
CONTACTS = """
contact_id,started_at,channel,reason,text,handle_seconds
b1,2026-02-20T10:00:00Z,chat,billing.question,how do I pay,60
b2,2026-02-21T10:00:00Z,chat,billing.question,pay?,60
b3,2026-02-22T15:00:00Z,email,billing.question,app v5 crash,60
b4,2026-02-23T10:00:00Z,chat,billing.question,,60
b5,2026-02-28T23:30:00Z,phone,billing.question,app v5 crash,90
q1,2026-03-02T10:00:00Z,chat,billing.question,late,60
q2,2026-03-03T10:00:00Z,chat,billing.question,later,61.5
x1,2026-03-06T10:00:00Z,phone,billing.fee,my app v5 had a crash,600
x2,2026-03-07T10:00:00Z,chat,billing.fee_dispute,fee,0
x3,2026-03-08T10:00:00Z,email,other.thing,v5 crash report,0
x4,2026-03-26T03:00:00Z,phone,app.login,login,125.25
x5,2026-04-01T03:30:00Z,phone,billing.fee,late fee,30
x6,2026-04-02T12:00:00Z,sms,app.login,"multi
line crash v5",12
"""
IDS = ["b1", "b5", "q1", "q2", "x1", "x2", "x3", "x4", "x5", "x6"]
POOL = """
costs:
  currency: EUR
  method: pool
  pool:
    by_period: {2026-02: 900.00, 2026-03: 1250.01, 2026-04: 333.33}
"""
SETTINGS = "timezone: America/New_York\n"


def explain(ws: Path, contact_id: str, *args: str) -> Any:
    return CliRunner().invoke(app, ["explain", contact_id, "--workspace", str(ws), *args])


def as_parquet(ws: Path, settings: str = SETTINGS) -> None:
    """contacts.csv as a typed Parquet file (an instant, a float handle time)."""
    frame = pl.read_csv(ws / "contacts.csv", infer_schema=False).with_columns(
        pl.col("started_at").str.to_datetime(time_zone="UTC", time_unit="us"),
        pl.col("handle_seconds").cast(pl.Float64),
    )
    frame.write_parquet(ws / "contacts.parquet")
    (ws / "chargeback.yaml").write_text("contacts: contacts.parquet\n" + settings)


def same(ws: Path, engine: str, ids: list[str], read_out: pytest.MonkeyPatch | None = None) -> None:
    """explain on `engine` prints what the read-out path prints, text and JSON: the polars
    engine's, or (`read_out`, for a database only its own engine reads) the engine's own
    with the in-engine path switched off."""
    for contact_id in ids:
        for fmt in ("text", "json"):
            if read_out is None:
                want = explain(ws, contact_id, "--engine", "polars", "--format", fmt)
            else:
                with read_out.context() as patch:
                    patch.setattr(pushdown_review, "one_contact", lambda *args, **kwargs: None)
                    want = explain(ws, contact_id, "--engine", engine, "--format", fmt)
            got = explain(ws, contact_id, "--engine", engine, "--format", fmt)
            assert got.exit_code == want.exit_code, (contact_id, got.output, want.output)
            assert got.stdout == want.stdout, (contact_id, fmt)
            assert got.stderr == want.stderr, (contact_id, fmt)


def in_engine_sql(ws: Path, engine: str, contact_id: str) -> str:
    """The SQL `explain --show-sql` sent; asserts the in-engine path ran (the read-out
    path's `prepare` is never called)."""

    def read_out(*args: object, **kwargs: object) -> None:
        raise AssertionError("the contacts were read out")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(run, "prepare", read_out)
        result = explain(ws, contact_id, "--engine", engine, "--show-sql", "--format", "json")
    assert result.exit_code == 0, result.output
    sql = result.stderr
    assert "cb_pushdown_flags" in sql  # summed in the engine
    looked_up = [line for line in sql.splitlines() if f"= '{contact_id}'" in line]
    assert looked_up, sql  # the one contact read out, by its id ...
    reads = [line for line in sql.splitlines() if 'ORDER BY "contact_id"' in line]
    assert all(line in looked_up for line in reads), reads  # ... and no other
    return sql


@pytest.mark.parametrize("costs", ["rates", "pool"])
@pytest.mark.parametrize("overlap", ["split", "priority"])
def test_parquet_on_duckdb_explains_as_the_read_out_path(
    tmp_path: Path, costs: str, overlap: str
) -> None:
    extra = {"costs": POOL} if costs == "pool" else {}
    ws = write_workspace(tmp_path / "ws", RULES, CONTACTS, **extra)  # type: ignore[arg-type]
    as_parquet(ws, SETTINGS + f"overlap: {overlap}\n")
    same(ws, "duckdb", IDS)
    in_engine_sql(ws, "duckdb", "x1")


def test_a_missing_contact_falls_back_to_the_same_message(tmp_path: Path) -> None:
    ws = write_workspace(tmp_path / "ws", RULES, CONTACTS)
    as_parquet(ws)
    same(ws, "duckdb", ["nosuch", "x1 ", "", "x'1", 'x"1', "x\x01"])
    result = explain(ws, "nosuch", "--engine", "duckdb", "--show-sql")
    assert result.exit_code == 1
    assert "contact 'nosuch' is not in the contacts (13 loaded)" in result.output


def test_a_duplicate_id_falls_back_to_the_same_error(tmp_path: Path) -> None:
    ws = write_workspace(tmp_path / "ws", RULES, CONTACTS + "x1,2026-03-09T10:00:00Z,chat,a,b,1\n")
    as_parquet(ws)
    same(ws, "duckdb", ["x1", "x2"])
    assert explain(ws, "x2", "--engine", "duckdb").exit_code == 1


def test_a_bad_row_falls_back_to_the_same_error(tmp_path: Path) -> None:
    ws = write_workspace(tmp_path / "ws", RULES, CONTACTS)
    as_parquet(ws)
    frame = pl.read_parquet(ws / "contacts.parquet")
    bad = pl.when(pl.col("contact_id") == "x3").then(-4.0).otherwise(pl.col("handle_seconds"))
    frame.with_columns(bad.alias("handle_seconds")).write_parquet(ws / "contacts.parquet")
    same(ws, "duckdb", ["x1", "x3"])
    result = explain(ws, "x1", "--engine", "duckdb", "--show-sql")
    assert result.exit_code == 1
    assert "row 10, column 'handle_seconds': must not be negative" in result.output
    assert "= 'x1'" not in result.stderr  # flagged: no contact was looked up in the engine
    padded = pl.when(pl.col("contact_id") == "x3").then(pl.lit(" chat")).otherwise("channel")
    frame.with_columns(padded.alias("channel")).write_parquet(ws / "contacts.parquet")
    same(ws, "duckdb", ["x1", "x3"])  # trimmed by the data layer: read out, same answer


def test_values_map_the_id_in_the_engine_too(tmp_path: Path) -> None:
    ws = write_workspace(tmp_path / "ws", RULES, CONTACTS)
    values = "values:\n  contact_id: {x1: renamed}\n  channel: {sms: chat}\n"
    as_parquet(ws, SETTINGS + values)
    same(ws, "duckdb", ["renamed", "x1", "x6"])
    in_engine_sql(ws, "duckdb", "renamed")


def test_a_folder_of_parquet_files_explains_as_the_read_out_path(tmp_path: Path) -> None:
    ws = write_workspace(tmp_path / "ws", RULES, CONTACTS)
    as_parquet(ws)
    frame = pl.read_parquet(ws / "contacts.parquet")
    (ws / "contacts").mkdir()
    frame.head(6).write_parquet(ws / "contacts" / "a.parquet")
    frame.tail(7).write_parquet(ws / "contacts" / "b.parquet")
    (ws / "contacts.parquet").unlink()
    (ws / "chargeback.yaml").write_text("contacts: contacts\n" + SETTINGS)
    same(ws, "duckdb", ["b1", "x1", "x6", "nosuch"])
    in_engine_sql(ws, "duckdb", "x6")
    same_check(ws, "duckdb")


@pytest.mark.parametrize("kind", ["table", "query"])
def test_a_duckdb_database_explains_as_the_read_out_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    ws = write_workspace(tmp_path / "ws", RULES, CONTACTS)
    con = duckdb.connect(str(ws / "cx.db"))
    con.execute("CREATE SCHEMA support")
    con.execute(
        "CREATE TABLE support.contacts AS SELECT contact_id, started_at::TIMESTAMPTZ AS "
        "started_at, channel, reason, text, handle_seconds::DECIMAL(12,3) AS handle_seconds "
        f"FROM read_csv('{ws / 'contacts.csv'}', all_varchar=true)"
    )
    con.close()
    source = 'contacts: {uri: "duckdb:///cx.db", table: support.contacts}\n'
    if kind == "query":
        query = "SELECT * FROM support.contacts WHERE channel <> 'fax'"
        source = f'contacts: {{uri: "duckdb:///cx.db", query: "{query}"}}\n'
    (ws / "chargeback.yaml").write_text(source + SETTINGS)
    same(ws, "duckdb", [*IDS, "nosuch"], monkeypatch)
    in_engine_sql(ws, "duckdb", "x4")
    same_check(ws, "duckdb", monkeypatch)
    counted_in_engine(ws, "duckdb")


def test_a_postgres_table_explains_as_the_read_out_path(
    tmp_path: Path,
    pg: str,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from test_postgres_source import load_table

    ws = write_workspace(tmp_path / "ws", RULES, CONTACTS, costs=POOL)
    load_table(pg, ws, "support.review")
    (ws / "chargeback.yaml").write_text(
        f'contacts: {{uri: "{pg}", table: support.review}}\n{SETTINGS}overlap: priority\n'
    )
    same(ws, "postgres", [*IDS, "nosuch"], monkeypatch)
    in_engine_sql(ws, "postgres", "x1")


def sample_ids(ws: Path) -> list[str]:
    """Some of the sample's contacts, and some its two control baselines charge."""
    frame = pl.read_parquet(ws / "sample_data" / "contacts.parquet")
    some = frame.get_column("contact_id").gather_every(211).to_list()
    reason = pl.col("reason")
    control = reason.str.starts_with("billing.late_fee") | reason.str.starts_with("app.login")
    late = frame.filter(control).sort("started_at").get_column("contact_id").tail(40)
    return [*some, *late.gather_every(8).to_list()]


def test_the_sample_with_control_baselines_explains_in_duckdb(tmp_path: Path) -> None:
    """Typed Parquet as a platform writes it, 40 rules with control baselines."""
    from chargeback.sample.generate import generate_sample

    generate_sample(tmp_path / "s", contacts=3000, seed=5)
    ws = tmp_path / "s"
    picked = sample_ids(ws)
    same(ws, "duckdb", picked)
    in_engine_sql(ws, "duckdb", picked[0])


# ------------------------------------------------------------------ check


def check(ws: Path, *args: str) -> Any:
    return CliRunner().invoke(app, ["check", "--workspace", str(ws), *args])


def same_check(ws: Path, engine: str, read_out: pytest.MonkeyPatch | None = None) -> None:
    """check on `engine` prints what the read-out path prints, text and JSON."""
    for fmt in ("text", "json"):
        if read_out is None:
            want = check(ws, "--engine", "polars", "--format", fmt)
        else:
            with read_out.context() as patch:
                patch.setattr(in_engine, "in_engine", lambda *args, **kwargs: None)
                want = check(ws, "--engine", engine, "--format", fmt)
        got = check(ws, "--engine", engine, "--format", fmt)
        assert got.exit_code == want.exit_code, (got.output, want.output)
        assert got.stdout == want.stdout, fmt
        assert got.stderr == want.stderr, fmt


def counted_in_engine(ws: Path, engine: str) -> str:
    """`check --show-sql` ran in the engine: the read-out path's `prepare` never ran."""

    def read_out(*args: object, **kwargs: object) -> None:
        raise AssertionError("the contacts were read out")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(run, "prepare", read_out)
        result = check(ws, "--engine", engine, "--show-sql", "--format", "json")
    assert result.exit_code in (0, 1), result.output
    assert "cb_pushdown_flags" in result.stderr and "cb_review_flags" in result.stderr
    return str(result.stderr)


@pytest.mark.parametrize("costs", ["rates", "pool", "missing"])
def test_check_on_parquet_in_duckdb_is_the_read_out_check(tmp_path: Path, costs: str) -> None:
    """`missing`: a rule on `product`, which the contacts lack (a missing-column warning)."""
    extra = {"costs": POOL} if costs == "pool" else {}
    rules = RULES
    if costs == "missing":
        rules += "  - {id: by-product, decision: fee, match: {product: [p1]}}\n"
    ws = write_workspace(tmp_path / "ws", rules, CONTACTS, **extra)  # type: ignore[arg-type]
    as_parquet(ws)
    same_check(ws, "duckdb")
    counted_in_engine(ws, "duckdb")


def test_check_on_the_sample_in_duckdb_is_the_read_out_check(tmp_path: Path) -> None:
    from chargeback.sample.generate import generate_sample

    generate_sample(tmp_path / "s", contacts=4000, seed=3)
    same_check(tmp_path / "s", "duckdb")
    counted_in_engine(tmp_path / "s", "duckdb")


def test_check_with_a_bad_row_falls_back(tmp_path: Path) -> None:
    ws = write_workspace(tmp_path / "ws", RULES, CONTACTS)
    as_parquet(ws)
    frame = pl.read_parquet(ws / "contacts.parquet")
    bad = pl.when(pl.col("contact_id") == "x3").then(-4.0).otherwise(pl.col("handle_seconds"))
    frame.with_columns(bad.alias("handle_seconds")).write_parquet(ws / "contacts.parquet")
    same_check(ws, "duckdb")
    result = check(ws, "--engine", "duckdb", "--show-sql")
    assert "cb_review" not in result.stderr and "must not be negative" in result.output


def test_check_on_postgres_is_the_read_out_check(
    tmp_path: Path,
    pg: str,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from test_postgres_source import load_table

    ws = write_workspace(tmp_path / "ws", RULES, CONTACTS)
    load_table(pg, ws, "support.checked")
    (ws / "chargeback.yaml").write_text(
        f'contacts: {{uri: "{pg}", table: support.checked}}\n{SETTINGS}'
    )
    same_check(ws, "postgres", monkeypatch)
    counted_in_engine(ws, "postgres")


@pytest.mark.parametrize("fax", [True, False])
def test_check_finds_the_planted_problems_in_duckdb(tmp_path: Path, fax: bool) -> None:
    """test_check's workspace (a leaky, a dead and an out-of-data rule, an overlap, an
    unpriced channel, tags split on spaces, a telling phrase) as typed Parquet."""
    import test_check

    ws = write_workspace(
        tmp_path / "ws", test_check.RULES, test_check.contacts(fax), costs=test_check.COSTS
    )
    frame = pl.read_csv(ws / "contacts.csv", infer_schema=False)
    frame.with_columns(pl.col("started_at").str.to_datetime(time_unit="us")).write_parquet(
        ws / "contacts.parquet"
    )
    (ws / "chargeback.yaml").write_text("contacts: contacts.parquet\n")
    same_check(ws, "duckdb")
    sql = counted_in_engine(ws, "duckdb")
    assert "cb_review" in sql
    same(ws, "duckdb", ["q1", "d3", "l4", "u5", "f1", "q150"])  # wall-clock times
    _, doc = test_check.check(ws, "--engine", "duckdb")
    codes = {f["code"] for f in doc["findings"]}
    assert {"leaky-rule", "dead-rule", "window-outside-data", "overlap"} <= codes
    assert ("unpriced-channel" in codes) == fax


def test_an_integer_id_on_postgres_is_looked_up_by_its_text(
    tmp_path: Path,
    pg: str,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import psycopg

    ws = write_workspace(tmp_path / "ws", RULES, CONTACTS)
    with psycopg.connect(pg, autocommit=True) as con:
        con.execute("CREATE SCHEMA IF NOT EXISTS support")
        con.execute("DROP TABLE IF EXISTS support.numbered")
        con.execute(
            "CREATE TABLE support.numbered (id bigint, started_at timestamptz, channel text, "
            "reason text, text text, handle_seconds numeric(12,3))"
        )
        with con.cursor().copy("COPY support.numbered FROM STDIN (FORMAT csv, HEADER true)") as cp:
            frame = pl.read_csv(ws / "contacts.csv", infer_schema=False)
            ids = pl.int_range(10, 10 + frame.height).alias("contact_id")  # b1 10, ..., x6 22
            cp.write(frame.with_columns(ids).write_csv().encode())
    (ws / "chargeback.yaml").write_text(
        f'contacts: {{uri: "{pg}", table: support.numbered}}\n{SETTINGS}'
        "columns: {contact_id: id}\n"
    )
    same(ws, "postgres", ["10", "17", "22", "010", "99"], monkeypatch)
    in_engine_sql(ws, "postgres", "17")
    same_check(ws, "postgres", monkeypatch)


def test_a_postgres_explain_reads_its_contact_on_the_sums_snapshot(
    tmp_path: Path,
    pg: str,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """explain's aggregates and the contact's own rows come from one REPEATABLE READ
    transaction: a contact another session deletes after the first scans is explained
    as the table held it when the run began. When the rows came through a connection of
    their own, they were not found, and the read-out path, reading the table without
    the contact, said so."""
    import psycopg
    from test_postgres_source import load_table

    from chargeback.engine import postgres_engine

    ws = write_workspace(tmp_path / "ws", RULES, CONTACTS, costs=POOL)
    load_table(pg, ws, "support.snapshot")
    (ws / "chargeback.yaml").write_text(
        f'contacts: {{uri: "{pg}", table: support.snapshot}}\n{SETTINGS}'
    )
    want = explain(ws, "x1", "--engine", "postgres", "--format", "json")
    assert want.exit_code == 0, want.output
    run_sql = postgres_engine._Con.run
    deleted: list[str] = []

    def meanwhile(self: Any, sql: str, params: Any = None) -> Any:
        if sql.startswith("CREATE TEMP TABLE") and not deleted:  # after the first scans
            with psycopg.connect(pg, autocommit=True) as other:
                other.execute("DELETE FROM support.snapshot WHERE contact_id = 'x1'")
            deleted.append(sql)
        return run_sql(self, sql, params)

    monkeypatch.setattr(postgres_engine._Con, "run", meanwhile)
    got = explain(ws, "x1", "--engine", "postgres", "--format", "json", "--show-sql")
    assert deleted, "no pass made a temporary table"
    assert got.exit_code == 0, got.output
    assert got.stdout == want.stdout
    sql = got.stderr
    begin, commit = sql.index("REPEATABLE READ"), sql.rindex("COMMIT")
    assert begin < sql.index("= 'x1'") < commit  # the contact read inside the transaction
    monkeypatch.setattr(postgres_engine._Con, "run", run_sql)
    later = explain(ws, "x1", "--engine", "postgres")  # the next run sees the deletion
    assert later.exit_code != 0 and "x1" in later.output
