"""The PostgreSQL engine against the polars engine: identical aggregates and ledgers.

The same proof as test_duckdb_parity, on a real PostgreSQL server started for
the session (tests/pg_server.py): test_differential's random and fixed
scenarios, the control worlds and the Unicode / DST / regex edge workspace
give equal Aggregates and ledgers. Also: the regex translation matches polars
character by character on the server, what cannot be translated is refused
by name, and the password never appears in the SQL or the URI.
"""

from __future__ import annotations

import os
import tempfile
import textwrap
from pathlib import Path

import polars as pl
import pytest

if not os.environ.get("CI"):
    pytest.importorskip("psycopg")
    pytest.importorskip("sqlglot")

import pg_fixture
from engine_parity import check_parity, write_shared_control_world
from hypothesis import HealthCheck, given, settings
from test_control_ledger import SHARED, world
from test_differential import Scenario, fixed_scenario, scenarios, tie_scenario, write_scenario
from test_duckdb_parity import DST_STAMPS, EDGE_RULES, EDGE_TEXTS

from chargeback.engine import postgres_engine
from chargeback.engine.aggregates import Aggregates
from chargeback.report import ReportOptions, Steps
from chargeback.run import prepare
from chargeback.workspace.model import Workspace

pg_server, pg = pg_fixture.pg_server, pg_fixture.pg  # the session's server, its URI


def assert_parity(ws_root: Path, conninfo: str, contacts: str | None = None) -> list[str]:
    """Both engines on one workspace (all months, then two single months); returns the SQL."""
    log: list[str] = []

    def run(ws: Workspace, frame: pl.DataFrame, periods: set[str] | None) -> Aggregates:
        sql_log = log if periods is None else None
        return postgres_engine.aggregate(ws, frame, periods, conninfo=conninfo, sql_log=sql_log)

    check_parity(ws_root, run, contacts)
    return log


@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
@given(sc=scenarios())
def test_random_differential_workspaces(pg: str, sc: Scenario) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        ws, csv_path = write_scenario(sc, Path(tmp))
        assert_parity(ws, pg, str(csv_path))


@pytest.mark.parametrize(
    ("seed", "overlap", "method", "header_map"),
    [
        (1, "split", "rates", {}),
        (2, "priority", "pool", {}),
        (3, "split", "pool", {"contact_id": "Ticket ID", "started_at": "Created at"}),
    ],
)
def test_fixed_differential_workspaces(
    pg: str, tmp_path: Path, seed: int, overlap: str, method: str, header_map: dict[str, str]
) -> None:
    ws, csv_path = write_scenario(fixed_scenario(seed, overlap, method, header_map), tmp_path)
    assert_parity(ws, pg, str(csv_path))


def test_largest_remainder_ties(pg: str, tmp_path: Path) -> None:
    ws, csv_path = write_scenario(tie_scenario(), tmp_path)
    assert_parity(ws, pg, str(csv_path))


def test_control_world(pg: str, tmp_path: Path) -> None:
    world(tmp_path / "ws")
    assert_parity(tmp_path / "ws", pg)


def test_control_shared_by_two_decisions(pg: str, tmp_path: Path) -> None:
    write_shared_control_world(tmp_path / "ws", SHARED, 3000)
    assert_parity(tmp_path / "ws", pg)


SIGMA_RULE = """
  - {id: sigma-text, decision: d2, match: {text: ["\u039f\u0394\u039f\u03a3"]}}"""
PG_EDGE_RULES = """
  - {id: greek-prop, decision: d1, match: {text_regex: "\\\\p{Greek}{2}\\\\b"}}
  - {id: new-letter-re, decision: d2, match: {text_regex: "\u1c89"}}
  - {id: multiline, decision: d1, match: {text_regex: "(?m)^b$|(?s)a.b|(?-i:STRASSE)"}}
  - {id: classes, decision: d2, match: {text_regex: "[^a-z0-9 ]{2}|\\\\Bee|[k-l]\\\\W"}}
  - {id: quoted, decision: d1, match: {text_regex: "\\\\Q5K\\\\E|x{2,3}?|\\\\Aa"}}
"""
ICU_EDGE_RULES = EDGE_RULES + SIGMA_RULE + PG_EDGE_RULES
EDGE_MORE = ["STRASSE", "strasse", "a\nb\nc", "\u0391\u0392 x", "5K", "K!", "\u017f", "XXX", "beef"]


def _edge_workspace(tmp_path: Path, rules: str) -> Path:
    ws = tmp_path / "ws"
    (ws / "rules").mkdir(parents=True)
    (ws / "rules" / "main.yaml").write_text(textwrap.dedent(rules), encoding="utf-8")
    (ws / "chargeback.yaml").write_text("contacts: contacts.csv\ntimezone: Europe/Berlin\n")
    rows = ["contact_id,started_at,channel,text,tags,handle_seconds"]
    texts = EDGE_TEXTS + EDGE_MORE
    for n in range(600):
        text = texts[n % len(texts)].replace('"', "")
        stamp = DST_STAMPS[n % len(DST_STAMPS)]
        rows.append(f'c{n},{stamp},{"phone" if n % 3 else "chat"},"{text}",x{n % 4},{n * 7}')
    (ws / "contacts.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return ws


def test_unicode_dst_and_regex_edges(pg: str, tmp_path: Path) -> None:
    """Every DuckDB edge, plus what only postgres runs: sigma phrases, \\p, new letters, flags."""
    ws = _edge_workspace(tmp_path, ICU_EDGE_RULES)
    log = assert_parity(ws, pg)
    assert any(s.startswith("COPY contacts") for s in log)
    assert any("und-x-icu" in s for s in log)
    assert os.environ["PGPASSWORD"] not in "".join(log) + pg


ATOMS = [  # one-character patterns: compared with polars over every code point
    "k", "s", "\u212a", "\u00b5", "\u1c89", "\\d", "\\W", "\\S", "[^a-z]", "[k-l]", "[[:alpha:]]",
    "\\p{Greek}", "\\PL", "(?-i:[^K])", ".", "(?s).", "[\\x{10000}-\\x{10FFFF}]", "\\x{1F600}",
]  # fmt: skip
PATTERNS = [  # structure: anchors, boundaries, flags, repeats, alternation
    "\\bk", "k\\B", "^a", "a$", "(?m)^b", "(?m)a$", "a.b", "(?s)a.b", "\\Aa|b\\z", "a{2}",
    "(?i:a)(?-i:B)", "(a|\u03c3)+?b", "\\Qa.\\E", "[\u017f]k", "x*", "a|", "(?U)a+b",
]  # fmt: skip
ALPHABET = ["a", "A", "b", "B", "k", "\u212a", "\u017f", "s", "\n", " ", "_", "1", "\u03c3", "."]


def _strings() -> list[str]:
    short = ["", *ALPHABET]
    pairs = [x + y for x in ALPHABET for y in ALPHABET]
    return short + pairs + [x + y + z for x in ALPHABET[:9] for y in ALPHABET for z in ALPHABET[:9]]


def test_regex_translation_matches_polars(pg: str) -> None:
    """Each pattern, run on the server as translated, matches exactly what polars matches:
    atoms over every code point, structures over every short string of a tricky alphabet."""
    import polars as pl
    import psycopg

    from chargeback.engine.pg_regex import to_postgres, universe
    from chargeback.workspace.re2 import to_rust

    def polars_hits(texts: pl.Series, pattern: str) -> pl.Series:
        return texts.str.contains("(?i)" + to_rust(pattern))

    cases = [
        ("chars", universe().get_column("c"), ATOMS),
        ("strings", pl.Series(_strings()), PATTERNS),
    ]
    with psycopg.connect(pg, autocommit=True) as con:
        for table, texts, patterns in cases:
            frame = pl.DataFrame({"t": texts}).with_columns(
                [polars_hits(texts, p).alias(f"e{k}") for k, p in enumerate(patterns)]
            )
            cols = ", ".join(f"e{k} boolean" for k in range(len(patterns)))
            con.execute(f"CREATE TEMP TABLE {table} (t text, {cols})")
            with con.cursor().copy(f"COPY {table} FROM STDIN (FORMAT csv)") as copy:
                copy.write(frame.write_csv(include_header=False).encode())
            wrong = [f"count(*) FILTER (WHERE (t ~ %s) <> e{k})" for k in range(len(patterns))]
            params = tuple(to_postgres(p) for p in patterns)
            row = con.execute(f"SELECT {', '.join(wrong)} FROM {table}", params).fetchone()
            assert row is not None
            assert dict(zip(patterns, row, strict=True)) == dict.fromkeys(patterns, 0)
            assert frame.height > 1000


def _workspace(tmp_path: Path, match: str, rows: str = "c1,2026-04-01,phone,x\n") -> Path:
    ws = tmp_path / "ws"
    (ws / "rules").mkdir(parents=True)
    rules = EDGE_RULES.split("rules:")[0] + f"rules:\n  - {{id: r, decision: d1, match: {match}}}\n"
    (ws / "rules" / "main.yaml").write_text(textwrap.dedent(rules), encoding="utf-8")
    (ws / "chargeback.yaml").write_text("contacts: contacts.csv\n")
    (ws / "contacts.csv").write_text("contact_id,started_at,channel,text\n" + rows)
    return ws


def test_untranslatable_regex_is_refused(pg: str, tmp_path: Path) -> None:
    """RE2 allows 1000 repeats, PostgreSQL 255: refused by name, never run differently."""
    ws, loaded = prepare(
        ReportOptions(workspace=_workspace(tmp_path, '{text_regex: "a{300}"}')), Steps()
    )
    with pytest.raises(
        NotImplementedError, match=r"text_regex 'a\{300\}': a repeat count over 255"
    ):
        postgres_engine.aggregate(ws, loaded.frame, conninfo=pg)


def test_nul_in_text_is_refused(pg: str, tmp_path: Path) -> None:
    import polars as pl

    ws, loaded = prepare(ReportOptions(workspace=_workspace(tmp_path, '{text: ["x"]}')), Steps())
    frame = loaded.frame.with_columns(text=pl.lit("a\x00x"))
    with pytest.raises(NotImplementedError, match="NUL character"):
        postgres_engine.aggregate(ws, frame, conninfo=pg)


def test_without_icu_lower_follows_the_ctype(
    pg: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No ICU collation: the database's ctype (C.UTF-8) lower(), repaired by the conformance
    check (it lower-cases İ to a plain i); a sigma phrase, whose final form libc does not
    write, is refused."""
    monkeypatch.setattr(postgres_engine, "ICU_ROOT", "no-such-collation")
    log = assert_parity(_edge_workspace(tmp_path, EDGE_RULES + PG_EDGE_RULES), pg)
    assert not any('COLLATE "no-such-collation"' in s for s in log)
    sigma = _workspace(tmp_path / "sigma", '{text: ["\u039f\u0394\u039f\u03a3"]}')
    ws, loaded = prepare(ReportOptions(workspace=sigma), Steps())
    with pytest.raises(NotImplementedError, match="sigma"):
        postgres_engine.aggregate(ws, loaded.frame, conninfo=pg)


def test_sql_can_be_shown_without_a_server(tmp_path: Path) -> None:
    ws, loaded = prepare(
        ReportOptions(workspace=_workspace(tmp_path, '{text_regex: "\\\\bfee"}')), Steps()
    )
    statements = postgres_engine.prepare_sql(ws, loaded.frame.schema)
    assert statements[0].startswith("CREATE TEMP TABLE contacts (")
    assert "(?<=[0-9A-Za-z_])" in statements[2]
