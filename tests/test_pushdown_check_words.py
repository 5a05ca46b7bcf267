"""`check` in DuckDB with rules as bit words (engine/pushdown_check_words.py).

Generated workspaces of more than one word of rules (62 to a word) with every kind of
test (value lists and prefixes, tags, phrases, a regex, a `fields` column, values
missing), windows that end and decisions whose 56 days before fall in the data:
`check` on Parquet in DuckDB must print exactly what the polars engine prints, text
and JSON, and must have counted with the words (no column per rule).
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from conftest import write_workspace
from pg_fixture import pg, pg_server  # noqa: F401  (fixtures)
from typer.testing import CliRunner

from chargeback import run
from cli import app

pytest.importorskip("duckdb")
pytest.importorskip("sqlglot")

REASONS = [
    "billing.fee",
    "billing.fee_dispute",
    "billing.question",
    "app.login",
    "app.crash",
    "other.thing",
    "ÄPP.ünicode",
    "",
]
CHANNELS = ["phone", "chat", "email", "sms"]
TAGS = ["vip", "repeat", "late", "vip|late", "repeat|vip", ""]
TEXTS = [
    "my app v5 had a crash",
    "late fee again",
    "Fee dispute",
    "how do I pay?",
    "",
    "multi\nline crash v5",
    "ÉCLAIR café",
    "login broken",
    "v5 login",
]
SEGMENTS = ["gold", "silver", "", "bronze"]


def _rules(rng: random.Random, n: int) -> str:
    decisions = []
    for d in range(6):
        month = 3 + d % 3
        ends = f", ends: 2026-{month + 1:02d}-{10 + d:02d}" if d % 2 else ""
        decisions.append(
            f"  - {{id: d{d}, title: D{d}, kind: fee, department: billing, "
            f"effective: 2026-{month:02d}-{1 + 3 * d:02d}{ends}}}"
        )
    rules = []
    for i in range(n):
        keys = []
        kind = rng.randrange(6)
        if kind in (0, 1):
            picked = rng.sample(REASONS[:-1], rng.randint(1, 3))
            if rng.random() < 0.3:
                picked = [picked[0].split(".")[0] + ".*"]
            keys.append(f"reason: {picked!r}")
        if kind in (1, 2):
            keys.append(f"channel: {rng.sample(CHANNELS, rng.randint(1, 2))!r}")
        if kind == 3:
            keys.append(f"tags: {rng.choice([['vip'], ['late', 'repeat'], ['rep*']])!r}")
        if kind == 4:
            keys.append(f"text: {rng.choice([['crash'], ['fee', 'pay*'], ['café'], ['LOGIN']])!r}")
            if rng.random() < 0.3:
                keys.append('text_regex: "v5\\\\b"')
        if kind == 5:
            keys.append(f"fields: {{segment: {rng.choice([['gold'], ['silver', 'bronze']])!r}}}")
        rules.append(
            f"  - id: r{i}\n    decision: d{rng.randrange(6)}\n    match: {{{', '.join(keys)}}}\n"
        )
    return "decisions:\n" + "\n".join(decisions) + "\nrules:\n" + "".join(rules)


def _contacts(rng: random.Random, n: int) -> pl.DataFrame:
    rows = []
    for k in range(n):
        day = 1 + rng.randrange(150)
        month, dom = 1 + (day - 1) // 30, 1 + (day - 1) % 28
        rows.append(
            {
                "contact_id": f"c{k}",
                "started_at": f"2026-{month:02d}-{dom:02d}T{rng.randrange(24):02d}:15:00Z",
                "channel": rng.choice(CHANNELS),
                "reason": rng.choice(REASONS) or None,
                "tags": rng.choice(TAGS) or None,
                "text": rng.choice(TEXTS) or None,
                "segment": rng.choice(SEGMENTS) or None,
                "handle_seconds": str(rng.randrange(0, 900)),
            }
        )
    return pl.DataFrame(rows)


def _workspace(tmp_path: Path, rng: random.Random, n_rules: int) -> Path:
    """The generated rules and 400 contacts, the contacts as typed Parquet."""
    frame = _contacts(rng, 400)
    ws = write_workspace(tmp_path / "ws", _rules(rng, n_rules), frame.write_csv())
    frame.with_columns(
        pl.col("started_at").str.to_datetime(time_zone="UTC", time_unit="us"),
        pl.col("handle_seconds").cast(pl.Float64),
        pl.col("tags").str.split("|"),
    ).write_parquet(ws / "contacts.parquet")
    (ws / "chargeback.yaml").write_text("contacts: contacts.parquet\ntimezone: America/New_York\n")
    return ws


def check(ws: Path, *args: str) -> Any:
    return CliRunner().invoke(app, ["check", "--workspace", str(ws), *args])


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_check_with_rules_as_words_is_the_read_out_check(tmp_path: Path, seed: int) -> None:
    n_rules = [70, 130, 9][seed - 1]  # two words, three words, one
    ws = _workspace(tmp_path, random.Random(seed), n_rules)
    for fmt in ("text", "json"):
        want = check(ws, "--engine", "polars", "--format", fmt)
        got = check(ws, "--engine", "duckdb", "--format", fmt)
        assert want.exit_code in (0, 1) and "unknown key" not in want.output, want.output
        if fmt == "json":
            assert json.loads(want.stdout)["rules"], want.stdout  # a check that ran
        assert got.exit_code == want.exit_code, (got.output, want.output)
        assert got.stdout == want.stdout, fmt

    def read_out(*args: object, **kwargs: object) -> None:
        raise AssertionError("the contacts were read out")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(run, "prepare", read_out)
        shown = check(ws, "--engine", "duckdb", "--show-sql", "--format", "json")
    sql = shown.stderr
    assert "cb_review_flags_d" in sql  # the days' words: counted with bit words
    assert 'AS "r0"' not in sql  # no column per rule


def test_statements_with_rules_as_words_are_the_read_out_statements(tmp_path: Path) -> None:
    """The statements' evidence in DuckDB reads the same words (pushdown_evidence): with
    two words of rules every HTML document is the polars engine's, byte for byte."""
    ws = _workspace(tmp_path, random.Random(4), 70)
    runs = {}
    for engine in ("polars", "duckdb"):
        out = tmp_path / engine
        html = ["--format=html", f"--out={out}", f"--engine={engine}", "--show-sql"]
        result = CliRunner().invoke(app, ["report", f"--workspace={ws}", *html])
        assert result.exit_code == 0, result.output
        runs[engine] = {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*.html")}
        if engine == "duckdb":
            assert "cb_evidence_flags_d" in result.stderr and 'AS "r0"' not in result.stderr
    assert runs["duckdb"].keys() == runs["polars"].keys()
    assert any("departments" in name for name in runs["polars"])
    for name, body in runs["polars"].items():
        assert runs["duckdb"][name] == body, name


def test_check_and_statements_with_rules_as_words_on_postgres(
    tmp_path: Path,
    pg: str,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two words of rules on a real PostgreSQL (bits up to 2**61 as BIGINT literals, the
    value tables joined by `=` with the NULL row's word for NULLs): check and the HTML
    statements are what the same engine gives with the contacts read out."""
    import psycopg

    from chargeback.engine import in_engine, pushdown_evidence

    ws = _workspace(tmp_path, random.Random(5), 70)
    columns = "contact_id, started_at, channel, reason, tags, text, segment, handle_seconds"
    with psycopg.connect(pg, autocommit=True) as con:
        con.execute("CREATE SCHEMA IF NOT EXISTS support")
        con.execute("DROP TABLE IF EXISTS support.worded")
        con.execute(
            "CREATE TABLE support.worded (contact_id text, started_at timestamptz, "
            "channel text, reason text, tags text, text text, segment text, "
            "handle_seconds numeric(12,3))"
        )
        with con.cursor().copy(
            f"COPY support.worded ({columns}) FROM STDIN (FORMAT csv, HEADER true)"
        ) as copy:
            copy.write(
                pl.read_csv(ws / "contacts.csv").select(columns.split(", ")).write_csv().encode()
            )
    (ws / "chargeback.yaml").write_text(
        f'contacts: {{uri: "{pg}", table: support.worded}}\ntimezone: America/New_York\n'
    )
    for fmt in ("text", "json"):
        with monkeypatch.context() as patch:
            patch.setattr(in_engine, "in_engine", lambda *args, **kwargs: None)
            want = check(ws, "--engine", "postgres", "--format", fmt)
        got = check(ws, "--engine", "postgres", "--format", fmt, "--show-sql")
        assert want.exit_code in (0, 1) and got.exit_code == want.exit_code, got.output
        assert got.stdout == want.stdout, fmt
        assert "cb_review_flags_d" in got.stderr and "IS NOT DISTINCT FROM t" not in got.stderr
    runs = {}
    for name, off in (("want", True), ("got", False)):
        out = tmp_path / name
        with monkeypatch.context() as patch:
            if off:
                patch.setattr(pushdown_evidence, "engine_evidence", lambda *args: None)
            html = ["--format=html", f"--out={out}", "--engine=postgres", "--show-sql"]
            result = CliRunner().invoke(app, ["report", f"--workspace={ws}", *html])
        assert result.exit_code == 0, result.output
        assert ("cb_evidence_flags_d" in result.stderr) is not off  # the words, when on
        runs[name] = {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*.html")}
    assert runs["got"] == runs["want"] and any("departments" in n for n in runs["got"])
