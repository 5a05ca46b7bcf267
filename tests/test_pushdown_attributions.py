"""attributions.parquet computed where the contacts are (engine/pushdown_attributions.py).

`report --format csv,attributions` on duckdb (one and several typed Parquet
files, a `duckdb:///` database) and a real PostgreSQL must write the very
attributions.parquet (byte for byte) and ledger.csv the read-out path writes:
the polars engine's for files, the same engine's with the in-engine path off for
a database. Baselines, windows, a text search, both overlap policies, rates and
a pool, three months, `--period`, control baselines (the sample), terms too large
for Int128 (priced in Python fractions, as drilldown does). Every in-engine run
here forbids reading the contacts out and shows the second pass's SQL, so the
ledger and the rows were both computed in the engine.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from conftest import write_workspace
from pg_fixture import pg, pg_server  # noqa: F401  (fixtures)
from test_pushdown_review import CONTACTS, POOL, RULES, SETTINGS, as_parquet
from typer.testing import CliRunner

from chargeback import inputs, run
from chargeback.engine import drilldown, in_engine, pushdown_attributions
from cli import app

duckdb = pytest.importorskip("duckdb")
pytest.importorskip("sqlglot")

FILES = ("attributions.parquet", "ledger.csv")


def report(ws: Path, out: Path, *args: str, formats: str = "csv,attributions") -> Any:
    result = CliRunner().invoke(
        app, ["report", "--workspace", str(ws), "--out", str(out), "--format", formats, *args]
    )
    assert result.exit_code == 0, result.output
    return result


def in_engine_report(ws: Path, out: Path, engine: str, *args: str, **kwargs: str) -> str:
    """The report on `engine` with reading the contacts out forbidden; its SQL."""

    def read_out(*args: object, **kwargs: object) -> None:
        raise AssertionError("the contacts were read out")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(inputs, "read_out", read_out)
        patch.setattr(run, "read_out", read_out)
        result = report(ws, out, "--engine", engine, "--show-sql", *args, **kwargs)
    sql = str(result.output)
    assert "cb_pushdown_flags" in sql  # the ledger summed in the engine
    assert "TABLE cb_attr_keys AS" in sql  # the second pass, in the engine
    return sql


def read_out_report(ws: Path, out: Path, engine: str, *args: str, **kwargs: str) -> None:
    """The read-out path on `engine` itself (a database only its own engine reads)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(in_engine, "in_engine", lambda *args, **kwargs: None)
        report(ws, out, "--engine", engine, *args, **kwargs)


def same(want: Path, got: Path, names: tuple[str, ...] = FILES) -> None:
    for name in names:
        assert (got / name).read_bytes() == (want / name).read_bytes(), name
    assert pl.read_parquet(got / "attributions.parquet").height > 0


def parquet_workspace(tmp_path: Path, costs: str, settings: str = "") -> Path:
    extra = {"costs": POOL} if costs == "pool" else {}
    ws = write_workspace(tmp_path / "ws", RULES, CONTACTS, **extra)
    as_parquet(ws, SETTINGS + settings)
    return ws


@pytest.mark.parametrize("costs", ["rates", "pool"])
@pytest.mark.parametrize("overlap", ["split", "priority"])
def test_one_parquet_file_in_duckdb(tmp_path: Path, costs: str, overlap: str) -> None:
    ws = parquet_workspace(tmp_path, costs, f"overlap: {overlap}\n")
    report(ws, tmp_path / "polars", "--engine", "polars")
    sql = in_engine_report(ws, tmp_path / "duckdb", "duckdb")
    assert "JOIN cb_attr_parts" in sql  # the rows' arithmetic
    same(tmp_path / "polars", tmp_path / "duckdb")
    months = pl.read_parquet(tmp_path / "duckdb" / "attributions.parquet").get_column("period")
    assert months.unique().sort().to_list() == ["2026-02", "2026-03", "2026-04"]


@pytest.mark.parametrize("period", ["2026-03", "2026-04"])
def test_a_period_filter(tmp_path: Path, period: str) -> None:
    ws = parquet_workspace(tmp_path, "pool")
    report(ws, tmp_path / "polars", "--engine", "polars", "--period", period)
    in_engine_report(ws, tmp_path / "duckdb", "duckdb", "--period", period)
    same(tmp_path / "polars", tmp_path / "duckdb")
    rows = pl.read_parquet(tmp_path / "duckdb" / "attributions.parquet")
    assert rows.get_column("period").unique().to_list() == [period]


def test_a_month_without_contacts_gives_no_rows(tmp_path: Path) -> None:
    ws = parquet_workspace(tmp_path, "rates")
    report(ws, tmp_path / "polars", "--engine", "polars", "--period", "2026-06")
    in_engine_report(ws, tmp_path / "duckdb", "duckdb", "--period", "2026-06")
    name = "attributions.parquet"
    assert (tmp_path / "duckdb" / name).read_bytes() == (tmp_path / "polars" / name).read_bytes()
    assert pl.read_parquet(tmp_path / "duckdb" / name).height == 0


def test_values_mapped_on_the_id_and_a_channel(tmp_path: Path) -> None:
    ws = parquet_workspace(tmp_path, "pool", "values:\n  contact_id: {x1: renamed}\n"
                           "  channel: {sms: phone}\n")  # fmt: skip
    report(ws, tmp_path / "polars", "--engine", "polars")
    in_engine_report(ws, tmp_path / "duckdb", "duckdb")
    same(tmp_path / "polars", tmp_path / "duckdb")
    ids = pl.read_parquet(tmp_path / "duckdb" / "attributions.parquet").get_column("contact_id")
    assert "renamed" in ids and "x1" not in ids


def test_more_rules_than_one_mask_word_holds(tmp_path: Path) -> None:
    """70 rules: the windowed masks in two BIGINT words (cb_m0, cb_m1), as polars' _m0, _m1."""
    matches = ["{channel: [phone]}", "{reason: [billing.fee*]}", "{reason: [billing.question]}"]
    rules = RULES + "".join(
        f"  - {{id: many-{i}, decision: {'fee' if i % 2 else 'app'}, "
        f"match: {matches[i % 3]}, share: 0.0{i % 7 + 1}}}\n"
        for i in range(66)
    )
    ws = write_workspace(tmp_path / "ws", rules, CONTACTS, costs=POOL)
    as_parquet(ws, SETTINGS)
    report(ws, tmp_path / "polars", "--engine", "polars")
    sql = in_engine_report(ws, tmp_path / "duckdb", "duckdb")
    assert '"cb_m1"' in sql
    same(tmp_path / "polars", tmp_path / "duckdb")


def test_several_parquet_files_keep_the_files_and_rows_order(tmp_path: Path) -> None:
    """Rows shuffled across three files: the order is the files', then each file's rows,
    not the ids'."""
    ws = parquet_workspace(tmp_path, "rates")
    frame = pl.read_parquet(ws / "contacts.parquet").sample(fraction=1.0, shuffle=True, seed=4)
    (ws / "contacts").mkdir()
    for i, start in enumerate((0, 4, 9)):
        frame.slice(start, [4, 5, 4][i]).write_parquet(ws / "contacts" / f"part-{i}.parquet")
    (ws / "contacts.parquet").unlink()
    (ws / "chargeback.yaml").write_text("contacts: contacts\n" + SETTINGS)
    report(ws, tmp_path / "polars", "--engine", "polars")
    sql = in_engine_report(ws, tmp_path / "duckdb", "duckdb")
    assert "file_row_number" in sql
    same(tmp_path / "polars", tmp_path / "duckdb")
    ids = pl.read_parquet(tmp_path / "duckdb" / "attributions.parquet").get_column("contact_id")
    march = frame.filter(pl.col("started_at").dt.month() == 3).get_column("contact_id")
    assert [i for i in ids.unique(maintain_order=True) if i in march] != sorted(march)


def test_the_csv_json_and_attributions_together(tmp_path: Path) -> None:
    """With the CS value asked for too, the attributions still come from the engine."""
    ws = parquet_workspace(tmp_path, "pool")
    report(ws, tmp_path / "polars", "--engine", "polars", formats="csv,json,attributions")
    result = report(ws, tmp_path / "duckdb", "--engine", "duckdb", "--show-sql",
                    formats="csv,json,attributions")  # fmt: skip
    assert "JOIN cb_attr_parts" in result.output
    same(tmp_path / "polars", tmp_path / "duckdb")
    stamp = re.compile(r'"generated_at": "[^"]*"')  # the run's clock
    want, got = ((tmp_path / e / "cs_value.json").read_text() for e in ("polars", "duckdb"))
    assert stamp.sub("", got) == stamp.sub("", want)


@pytest.mark.parametrize("room", [0, 1 << 40])
def test_terms_too_large_for_int128_are_exact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, room: int
) -> None:
    """drilldown's bound lowered: every part (0), or those of the larger terms, priced in
    Python fractions on both paths; the engine's rows carry them through."""
    monkeypatch.setattr(drilldown, "INT128_ROOM", room)
    ws = parquet_workspace(tmp_path, "pool")
    report(ws, tmp_path / "polars", "--engine", "polars")
    in_engine_report(ws, tmp_path / "duckdb", "duckdb")
    same(tmp_path / "polars", tmp_path / "duckdb")


def test_the_sample_with_control_baselines(tmp_path: Path) -> None:
    """Typed Parquet as a platform writes it: 40 rules, control baselines (the cell)."""
    from chargeback.sample.generate import generate_sample

    generate_sample(tmp_path / "s", contacts=2500, seed=5)
    ws = tmp_path / "s"
    report(ws, tmp_path / "polars", "--engine", "polars")
    sql = in_engine_report(ws, tmp_path / "duckdb", "duckdb")
    assert '"cb_cell"' in sql
    same(tmp_path / "polars", tmp_path / "duckdb")


def test_an_engine_that_gives_no_rows_reads_the_contacts_out(tmp_path: Path) -> None:
    ws = parquet_workspace(tmp_path, "rates")
    report(ws, tmp_path / "polars", "--engine", "polars")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(pushdown_attributions, "engine_attributions", lambda *a, **k: None)
        result = report(ws, tmp_path / "duckdb", "--engine", "duckdb", "--show-sql")
    assert "cb_pushdown_flags" in result.output  # the ledger still summed in the engine
    same(tmp_path / "polars", tmp_path / "duckdb")


@pytest.mark.parametrize("kind", ["table", "query"])
def test_a_duckdb_database(tmp_path: Path, kind: str) -> None:
    """Rows stored out of id order: the read-out export sorts by the id, and so does this."""
    ws = write_workspace(tmp_path / "ws", RULES, CONTACTS, costs=POOL)
    con = duckdb.connect(str(ws / "cx.db"))
    con.execute("CREATE SCHEMA support")
    con.execute(
        "CREATE TABLE support.contacts AS SELECT contact_id, started_at::TIMESTAMPTZ AS "
        "started_at, channel, reason, text, handle_seconds::DECIMAL(12,3) AS handle_seconds "
        f"FROM read_csv('{ws / 'contacts.csv'}', all_varchar=true) ORDER BY reverse(contact_id)"
    )
    con.close()
    source = 'contacts: {uri: "duckdb:///cx.db", table: support.contacts}\n'
    if kind == "query":
        query = "SELECT * FROM support.contacts WHERE channel <> 'sms'"
        source = f'contacts: {{uri: "duckdb:///cx.db", query: "{query}"}}\n'
    (ws / "chargeback.yaml").write_text(source + SETTINGS)
    read_out_report(ws, tmp_path / "want", "duckdb")
    in_engine_report(ws, tmp_path / "got", "duckdb")
    same(tmp_path / "want", tmp_path / "got")


def test_a_postgres_table(tmp_path: Path, pg: str) -> None:  # noqa: F811
    from test_postgres_source import load_table

    ws = write_workspace(tmp_path / "ws", RULES, CONTACTS, costs=POOL)
    load_table(pg, ws, "support.attributed")
    (ws / "chargeback.yaml").write_text(
        f'contacts: {{uri: "{pg}", table: support.attributed}}\n{SETTINGS}overlap: priority\n'
    )
    read_out_report(ws, tmp_path / "want", "postgres")
    assert "JOIN cb_attr_parts" in in_engine_report(ws, tmp_path / "got", "postgres")
    same(tmp_path / "want", tmp_path / "got")
    read_out_report(ws, tmp_path / "want-03", "postgres", "--period", "2026-03")
    in_engine_report(ws, tmp_path / "got-03", "postgres", "--period", "2026-03")
    same(tmp_path / "want-03", tmp_path / "got-03")
    with pytest.MonkeyPatch.context() as patch:  # some parts priced in Python fractions
        patch.setattr(drilldown, "INT128_ROOM", 1 << 40)
        in_engine_report(ws, tmp_path / "got-room", "postgres")
    same(tmp_path / "want", tmp_path / "got-room")


def test_integer_ids_on_postgres_in_the_exports_text_order(tmp_path: Path, pg: str) -> None:  # noqa: F811
    """The export sorts an integer id by its text (9 after 100): so do the rows."""
    import psycopg

    ws = write_workspace(tmp_path / "ws", RULES, CONTACTS)
    frame = pl.read_csv(ws / "contacts.csv", infer_schema=False)
    numbers = [100, 9, 10, 1000, 2, 11, 99, 101, 5, 12, 1, 20, 3]
    with psycopg.connect(pg, autocommit=True) as con:
        con.execute("CREATE SCHEMA IF NOT EXISTS support")
        con.execute("DROP TABLE IF EXISTS support.numbered_attr")
        con.execute(
            "CREATE TABLE support.numbered_attr (id bigint, started_at timestamptz, "
            "channel text, reason text, text text, handle_seconds numeric(12,3))"
        )
        copy_sql = "COPY support.numbered_attr FROM STDIN (FORMAT csv, HEADER true)"
        with con.cursor().copy(copy_sql) as cp:
            ids = pl.Series("contact_id", numbers[: frame.height])
            cp.write(frame.with_columns(ids).write_csv().encode())
    (ws / "chargeback.yaml").write_text(
        f'contacts: {{uri: "{pg}", table: support.numbered_attr}}\n{SETTINGS}'
        "columns: {contact_id: id}\n"
    )
    read_out_report(ws, tmp_path / "want", "postgres")
    in_engine_report(ws, tmp_path / "got", "postgres")
    same(tmp_path / "want", tmp_path / "got")
    got = pl.read_parquet(tmp_path / "got" / "attributions.parquet")
    march = got.filter(pl.col("period") == "2026-03").get_column("contact_id")
    assert march.unique(maintain_order=True).to_list() == sorted(set(march))  # as text


def racing(
    patch: pytest.MonkeyPatch, before: Callable[[], object], after: Callable[[], object] = list
) -> list[pl.DataFrame | None]:
    """A writer between the ledger's pass and the attributions' (`before`), and `after` it:
    what the second pass answered, one entry per call."""
    answers: list[pl.DataFrame | None] = []
    real = pushdown_attributions.engine_attributions

    def spy(*args: Any, **kwargs: Any) -> pl.DataFrame | None:
        before()
        answers.append(real(*args, **kwargs))
        after()
        return answers[-1]

    patch.setattr(pushdown_attributions, "engine_attributions", spy)
    return answers


def append_duplicate(ws: Path) -> None:
    """q1 (March) once more, as a later row: a duplicate id the ledger's pass never saw."""
    frame = pl.read_parquet(ws / "contacts.parquet")
    pl.concat([frame, frame.filter(pl.col("contact_id") == "q1")]).write_parquet(
        ws / "contacts.parquet"
    )


def test_a_duplicate_appended_between_the_passes_stops_the_run(tmp_path: Path) -> None:
    """The second pass sees the duplicate: None, so the run reads the contacts out, and the
    data layer refuses the duplicate (SPEC 2's default): no attributions.parquet written
    that the ledger disagrees with, no ledger either."""
    ws = parquet_workspace(tmp_path, "pool")
    with pytest.MonkeyPatch.context() as patch:
        answers = racing(patch, lambda: append_duplicate(ws))
        result = CliRunner().invoke(
            app, ["report", "--workspace", str(ws), "--out", str(tmp_path / "got"),
                  "--format", "csv,attributions", "--engine", "duckdb"]
        )  # fmt: skip
    assert answers == [None]  # the in-engine ledger ran, its second pass refused
    assert result.exit_code != 0
    assert "duplicate contact_id 'q1'" in result.output
    assert not (tmp_path / "got" / "attributions.parquet").exists()


def test_a_duplicate_appended_between_the_passes_is_quarantined(tmp_path: Path) -> None:
    """With --on-bad-rows quarantine the read-out sets the later q1 aside: the files are
    the polars run's on the contacts the ledger summed (one q1 row set)."""
    ws = parquet_workspace(tmp_path, "pool")
    report(ws, tmp_path / "polars", "--engine", "polars", "--on-bad-rows", "quarantine")
    with pytest.MonkeyPatch.context() as patch:
        answers = racing(patch, lambda: append_duplicate(ws))
        report(ws, tmp_path / "got", "--engine", "duckdb", "--on-bad-rows", "quarantine")
    assert answers == [None]
    same(tmp_path / "polars", tmp_path / "got")


@pytest.mark.parametrize(
    "change",
    [
        # a new contact in March: one more contact and its handle time in (2026-03, chat)
        "INSERT INTO support.contacts VALUES ('x9', TIMESTAMPTZ '2026-03-10 10:00:00+00', "
        "'chat', 'billing.fee', 'fee', 30)",
        # x1 no longer matches app-text: its (period, channel) counts and sums unchanged,
        # its group (the windowed masks) another
        "UPDATE support.contacts SET text = 'fine' WHERE contact_id = 'x1'",
    ],
    ids=["appended", "changed"],
)
def test_a_duckdb_table_changed_between_the_passes(tmp_path: Path, change: str) -> None:
    """The second pass's groups are not the ledger's: None. The change is undone after it,
    so the read-out sees the ledger's rows and the files are the read-out path's."""
    ws = write_workspace(tmp_path / "ws", RULES, CONTACTS, costs=POOL)
    db = str(ws / "cx.db")
    with duckdb.connect(db) as con:
        con.execute("CREATE SCHEMA support")
        con.execute(
            "CREATE TABLE support.contacts AS SELECT contact_id, started_at::TIMESTAMPTZ AS "
            "started_at, channel, reason, text, handle_seconds::DECIMAL(12,3) AS "
            f"handle_seconds FROM read_csv('{ws / 'contacts.csv'}', all_varchar=true)"
        )
        con.execute("CREATE TABLE support.kept AS SELECT * FROM support.contacts")
    (ws / "chargeback.yaml").write_text(
        'contacts: {uri: "duckdb:///cx.db", table: support.contacts}\n' + SETTINGS
    )

    def run_sql(*statements: str) -> None:
        with duckdb.connect(db) as con:
            for sql in statements:
                con.execute(sql)

    restore = (
        "DELETE FROM support.contacts",
        "INSERT INTO support.contacts SELECT * FROM support.kept",
    )
    read_out_report(ws, tmp_path / "want", "duckdb")
    with pytest.MonkeyPatch.context() as patch:
        answers = racing(patch, lambda: run_sql(change), lambda: run_sql(*restore))
        report(ws, tmp_path / "got", "--engine", "duckdb")
    assert answers == [None]
    same(tmp_path / "want", tmp_path / "got")
    run_sql(change)  # the same change before the whole run: the second pass answers
    with pytest.MonkeyPatch.context() as patch:
        answers = racing(patch, list)
        report(ws, tmp_path / "again", "--engine", "duckdb")
    assert answers[0] is not None


def test_a_postgres_table_appended_to_between_the_passes(tmp_path: Path, pg: str) -> None:  # noqa: F811
    """The review's live table: a row appended after the ledger's pass (then removed, so
    the read-out sees the ledger's rows): the second pass answers None."""
    import psycopg
    from test_postgres_source import load_table

    ws = write_workspace(tmp_path / "ws", RULES, CONTACTS, costs=POOL)
    load_table(pg, ws, "support.raced")
    (ws / "chargeback.yaml").write_text(
        f'contacts: {{uri: "{pg}", table: support.raced}}\n{SETTINGS}'
    )

    def run_sql(sql: str) -> None:
        with psycopg.connect(pg, autocommit=True) as con:
            con.execute(sql)

    row = "('x9', '2026-03-10 10:00:00+00', 'chat', 'billing.fee', 'fee', 30)"
    read_out_report(ws, tmp_path / "want", "postgres")
    with pytest.MonkeyPatch.context() as patch:
        answers = racing(
            patch,
            lambda: run_sql(f"INSERT INTO support.raced VALUES {row}"),
            lambda: run_sql("DELETE FROM support.raced WHERE contact_id = 'x9'"),
        )
        report(ws, tmp_path / "got", "--engine", "postgres")
    assert answers == [None]
    same(tmp_path / "want", tmp_path / "got")
