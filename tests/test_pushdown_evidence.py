"""A statement's evidence computed where the contacts are (engine/pushdown_evidence.py, SPEC 10).

On duckdb (typed Parquet files, a `duckdb:///` database) and a real PostgreSQL,
the statements' evidence (splits by reason and channel, examples, daily counts,
leaky-rule notes) comes from grouped queries in the engine; only the picked
examples' rows leave it. The HTML statements must be byte for byte the read-out
path's (`--engine polars`): several decisions, flat baselines, a leaky rule, a
null reason, texts with odd whitespace and over 140 characters, ties in local
time broken by contact_id in byte order, several months, a DST time zone (the
spring gap and the autumn hour that happens twice). The run's Extras prove the
evidence came from the engine, and no statement it sent reads every contact.
"""

from __future__ import annotations

import csv
import io
import random
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from conftest import write_workspace
from pg_fixture import pg, pg_server  # noqa: F401  (fixtures)

from chargeback.engine import evidence, pushdown_evidence
from chargeback.report import ReportOptions
from chargeback.run import run_report

duckdb = pytest.importorskip("duckdb")

RULES = """
decisions:
  - {id: fee, title: Late fee, kind: fee, department: billing, effective: 2026-03-01}
  - {id: app, title: App v5, kind: launch, department: product, effective: 2026-03-05,
     ends: 2026-03-25}
  - {id: ship, title: Carrier switch, kind: process, department: product,
     effective: 2026-04-10}
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
    match: {text: ["crash"]}
    baseline: {lookback_days: 20}
  - id: ship-any
    decision: ship
    match: {reason: [ship.*]}
"""
SETTINGS = "timezone: America/New_York\n"
REASONS = ["billing.fee", "billing.fee_dispute", "billing.question", "app.login", "ship.late",
           "ship.lost", "other.thing", ""]  # fmt: skip
TEXTS = [
    "my app  v5 had a\tcrash",
    "late fee\n\nagain",
    "where is\u00a0my parcel",
    "crash " + "word " * 40 + "end",
    "x" * 139 + " tail",
    "login  crash\r\nplease",
    "",
]
CHANNELS = ["phone", "chat", "email", "sms"]


def contacts_csv() -> str:
    """A few hundred contacts over Feb-Apr and November 2026, New York time."""
    rng = random.Random(15)
    rows = []
    for k in range(260):
        day = rng.randrange(0, 89)  # 2026-02-01 .. 2026-04-30
        month, dom = (2, day + 1) if day < 28 else (3, day - 27) if day < 59 else (4, day - 58)
        hour, minute = rng.randrange(24), rng.randrange(60)
        stamp = f"2026-{month:02d}-{dom:02d}T{hour:02d}:{minute:02d}:{rng.randrange(60):02d}Z"
        rows.append((f"c{k}", stamp, rng.choice(CHANNELS), rng.choice(REASONS),
                     rng.choice(TEXTS), str(rng.randrange(0, 900))))  # fmt: skip
    # ties in local time, broken by the id's bytes: both 01:30 EDT and 01:30 EST, and
    # the spring gap's hour (07:30Z is 03:30 EDT on 2026-03-08)
    for k, cid in enumerate(["t-a", "t-B", "t-10", "t-9", "T-z", "t-\u00e9", "t-_"]):
        stamp = "2026-11-01T05:30:00Z" if k % 2 else "2026-11-01T06:30:00Z"
        rows.append((cid, stamp, "phone", "billing.fee", TEXTS[k % len(TEXTS)], "60"))
    for cid in ["g-b", "g-a", "g-C", "g-1"]:
        rows.append((cid, "2026-03-08T07:30:00Z", "chat", "app.login", "crash", "30"))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["contact_id", "started_at", "channel", "reason", "text", "handle_seconds"])
    writer.writerows(rows)
    return out.getvalue()


def as_parquet(ws: Path) -> None:
    frame = pl.read_csv(ws / "contacts.csv", infer_schema=False).with_columns(
        pl.col("started_at").str.to_datetime(time_zone="UTC", time_unit="us"),
        pl.col("handle_seconds").cast(pl.Float64),
    )
    frame.write_parquet(ws / "contacts.parquet")
    (ws / "chargeback.yaml").write_text("contacts: contacts.parquet\n" + SETTINGS)


def statements(ws: Path, out: Path, engine: str, period: tuple[str, ...] = ()) -> dict[str, bytes]:
    """The HTML documents of a run, by path; the run's result kept on `statements.last`."""
    opts = ReportOptions(
        workspace=ws,
        out=out,
        formats=("html",),
        engine=engine,
        period=period[1] if period else None,
    )
    statements.last = run_report(opts)  # type: ignore[attr-defined]
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*.html"))}


def spied(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """Every statement the in-engine evidence sends, with how many rows came back; and
    the read-out path's counting switched off, so only the engine can give the evidence."""
    sent: list[tuple[str, int]] = []
    real = pushdown_evidence.engine_evidence

    class Counting:
        def __init__(self, con: Any) -> None:
            self.con = con

        def execute(self, sql: str) -> list[tuple[Any, ...]]:
            rows = self.con.execute(sql)
            sent.append((sql, len(rows)))
            return rows

    def engine_evidence(ws: Any, raw: Any, *args: Any) -> Any:
        return real(ws, Counting(raw), *args)

    def read_out(*args: object) -> None:
        raise AssertionError("the evidence was counted on contacts read out")

    monkeypatch.setattr(pushdown_evidence, "engine_evidence", engine_evidence)
    monkeypatch.setattr(evidence, "frame_counts", read_out)
    return sent


def same_statements(
    ws: Path,
    tmp: Path,
    source: str,
    monkeypatch: pytest.MonkeyPatch,
    period: str | None = None,
    engine: str = "duckdb",
) -> list[tuple[str, int]]:
    """The HTML statements on `engine` are the read-out path's, byte for byte: the polars
    engine's on Parquet files (`source` 'polars-files'), else the engine's own with the
    in-engine evidence switched off. Returns what the in-engine evidence sent."""
    engine = engine if source == "polars-files" else source
    extra = () if period is None else ("--period", period)
    with monkeypatch.context() as patch:
        if source == "polars-files":
            want = statements(ws, tmp / "want", "polars", extra)
        else:
            patch.setattr(pushdown_evidence, "engine_evidence", lambda *args: None)
            want = statements(ws, tmp / "want", engine, extra)
            assert statements.last.extras.evidence is None  # type: ignore[attr-defined]
    with monkeypatch.context() as patch:
        sent = spied(patch)
        got = statements(ws, tmp / "got", engine, extra)
    assert statements.last.extras.evidence is not None  # type: ignore[attr-defined]
    assert sorted(got) == sorted(want) and any("departments" in name for name in got)
    for name in want:
        assert got[name] == want[name], name
    return sent


def few_rows(sent: list[tuple[str, int]], contacts: int) -> None:
    """No statement brought every contact back: grouped rows, and at most four examples
    per month and decision."""
    assert sent and all(n < contacts // 2 for _, n in sent), [n for _, n in sent]
    examples = [n for sql, n in sent if "ROW_NUMBER()" in sql]
    assert examples and all(n <= 4 * 5 for n in examples)  # five months


CONTACTS = contacts_csv()
TIED = ["T-z", "t-10", "t-9", "t-B", "t-_", "t-a", "t-\u00e9"]  # by their bytes
TIED_PICKS = [TIED[0], TIED[2], TIED[4], TIED[6]]  # 0, round(2), round(4), 6 of seven


def shown(docs: dict[str, bytes]) -> list[str]:
    """The tied November contacts the billing statement shows as examples, in its order."""
    billing = docs["2026-11/departments/billing.html"].decode()
    found = sorted((billing.find(f">{cid}<"), cid) for cid in TIED)
    return [cid for at, cid in found if at >= 0]


ROWS = CONTACTS.count("\n") - 1


@pytest.mark.parametrize("period", [None, "2026-03"])
def test_parquet_on_duckdb_gives_the_read_out_statements(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, period: str | None
) -> None:
    ws = write_workspace(tmp_path / "ws", RULES, CONTACTS)
    as_parquet(ws)
    sent = same_statements(ws, tmp_path, "polars-files", monkeypatch, period)
    few_rows(sent, ROWS)
    assert any("cb_evidence_flags" in sql for sql, _ in sent)
    assert not any("cb_evidence" in sql for sql, _ in sent[-1:] if not sql.startswith("DROP"))


def test_the_examples_are_picked_in_byte_order_of_ids(tmp_path: Path) -> None:
    """November's seven fee contacts share one local minute (01:30 EDT and 01:30 EST):
    the first, third, fifth and seventh by id bytes are shown, as polars sorts them."""
    ws = write_workspace(tmp_path / "ws", RULES, CONTACTS)
    as_parquet(ws)
    docs = statements(ws, tmp_path / "out", "duckdb")
    assert statements.last.extras.evidence is not None  # type: ignore[attr-defined]
    assert shown(docs) == TIED_PICKS
    billing = docs["2026-11/departments/billing.html"].decode()
    assert "probably charging everyday demand" in billing  # a leaky rule's note


def test_a_duckdb_database_gives_the_read_out_statements(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = write_workspace(tmp_path / "ws", RULES, CONTACTS)
    con = duckdb.connect(str(ws / "cx.db"))
    con.execute(
        "CREATE TABLE contacts AS SELECT contact_id, started_at::TIMESTAMPTZ AS started_at, "
        "channel, reason, text, handle_seconds::DECIMAL(12,3) AS handle_seconds "
        f"FROM read_csv('{ws / 'contacts.csv'}', all_varchar=true)"
    )
    con.close()
    (ws / "chargeback.yaml").write_text(
        'contacts: {uri: "duckdb:///cx.db", table: contacts}\n' + SETTINGS
    )
    few_rows(same_statements(ws, tmp_path, "duckdb", monkeypatch), ROWS)


def words_database(pg: str) -> str:  # noqa: F811
    """A database whose text sorts as words do (ICU: 't-9' < 't-a' < 'T-z'), when the
    server has ICU: the examples must still follow the ids' bytes, as polars sorts them."""
    import psycopg

    with psycopg.connect(pg, autocommit=True) as con:
        if not con.execute("SELECT 1 FROM pg_collation WHERE collname = 'und-x-icu'").fetchall():
            return pg
        con.execute("DROP DATABASE IF EXISTS cb_words")
        con.execute(
            "CREATE DATABASE cb_words TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'und' "
            "LOCALE 'C.UTF-8'"
        )
    return pg.rsplit("/", 1)[0] + "/cb_words"


def test_a_postgres_table_gives_the_read_out_statements(
    tmp_path: Path,
    pg: str,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from test_postgres_source import load_table

    ws = write_workspace(tmp_path / "ws", RULES, CONTACTS)
    uri = words_database(pg)
    load_table(uri, ws, "support.evidence")
    (ws / "chargeback.yaml").write_text(
        f'contacts: {{uri: "{uri}", table: support.evidence}}\n{SETTINGS}'
    )
    few_rows(same_statements(ws, tmp_path, "postgres", monkeypatch), ROWS)
    on_server = statements(ws, tmp_path / "server", "postgres")
    assert statements.last.extras.evidence is not None  # type: ignore[attr-defined]
    assert shown(on_server) == TIED_PICKS  # the server's ids sorted by bytes, as polars does


@pytest.fixture(scope="module")
def spark(request: pytest.FixtureRequest) -> Any:
    """The run's one local Spark session (conftest's spark_local; the run finds it as the
    active one), asked for only once pyspark and Java are known to be there."""
    import importlib.util
    import shutil

    if shutil.which("java") is None or not importlib.util.find_spec("pyspark"):
        pytest.skip("pyspark or Java missing")
    return request.getfixturevalue("spark_local")  # its lower() check run with it


def test_parquet_in_local_spark_gives_the_read_out_statements(
    spark: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Spark's local times from polars' offsets (the DST days), its timestamps read back
    as microseconds, its ids compared by bytes."""
    ws = write_workspace(tmp_path / "ws", RULES, CONTACTS)
    as_parquet(ws)
    sent = same_statements(ws, tmp_path, "polars-files", monkeypatch, engine="spark")
    few_rows(sent, ROWS)
    assert any("unix_micros(" in sql for sql, _ in sent)
