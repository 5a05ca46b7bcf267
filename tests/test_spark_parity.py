"""The Spark engine against the polars engine: identical aggregates and ledgers.

One local Spark (local[2]) serves the module. Both engines receive the frame
the data layer loaded (run.prepare); their Aggregates must be equal (groups in
the same order, baseline counts, control cells, sharing) and so must the
ledgers. Workspaces: test_differential's fixed scenarios, test_control_ledger's
control worlds and Unicode / DST / regex edges; the regex translation is also
checked directly, pattern by pattern, against polars' regex. Without pyspark
or Java the module is skipped, except under CI, where that is a failure.
"""

from __future__ import annotations

import os
import shutil
import textwrap
from pathlib import Path
from typing import Any

import polars as pl
import pytest

if not os.environ.get("CI"):
    pytest.importorskip("pyspark")
    pytest.importorskip("sqlglot")
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        pytest.skip("the spark engine needs Java", allow_module_level=True)

from engine_parity import check_parity, one_rule_world
from sqlglot import exp
from test_control_ledger import world, write_shared_world
from test_differential import fixed_scenario, tie_scenario, write_scenario
from test_duckdb_parity import DST_STAMPS, EDGE_RULES, EDGE_TEXTS

from chargeback.data.scratch import scratch_dir
from chargeback.engine import polars_engine, spark_engine
from chargeback.engine.aggregates import Aggregates
from chargeback.engine.java_regex import to_java
from chargeback.engine.sql_compile import col
from chargeback.report import ReportOptions, Steps
from chargeback.run import prepare
from chargeback.workspace.model import Workspace
from chargeback.workspace.re2 import to_rust


def assert_parity(
    spark: Any, ws_root: Path, contacts: str | None = None, remote: str | None = None
) -> list[str]:
    """Both engines on one workspace, and one month as explain asks; returns the SQL run."""
    log: list[str] = []

    def run(ws: Workspace, frame: pl.DataFrame, periods: set[str] | None) -> Aggregates:
        sql_log = log if periods is None else None
        return spark_engine.aggregate(ws, frame, periods, remote=remote, sql_log=sql_log)

    check_parity(ws_root, run, contacts, months=slice(-1, None))
    return log


@pytest.mark.parametrize(
    ("seed", "overlap", "method", "header_map"),
    [
        (1, "split", "rates", {}),
        (2, "priority", "pool", {"contact_id": "Ticket ID", "started_at": "Created at"}),
    ],
)
def test_fixed_differential_workspaces(
    spark: Any, tmp_path: Path, seed: int, overlap: str, method: str, header_map: dict[str, str]
) -> None:
    ws, csv_path = write_scenario(fixed_scenario(seed, overlap, method, header_map), tmp_path)
    log = assert_parity(spark, ws, str(csv_path))
    assert log[0].startswith("CACHE TABLE") and log[-1].startswith("DROP VIEW")


def test_no_contacts_and_no_months(spark: Any, tmp_path: Path) -> None:
    """An empty frame (Spark cannot infer its schema) and an empty month selection."""
    ws_root, csv_path = write_scenario(fixed_scenario(3, "split", "pool", {}), tmp_path)
    ws, loaded = prepare(ReportOptions(workspace=ws_root, contacts=str(csv_path)), Steps())
    empty = loaded.frame.head(0)
    assert spark_engine.aggregate(ws, empty) == polars_engine.aggregate(ws, empty)
    none = spark_engine.aggregate(ws, loaded.frame, set())
    assert none == polars_engine.aggregate(ws, loaded.frame, set())


def test_spark_connect(tmp_path: Path, spark_remote: str) -> None:
    """The same parity through a Spark Connect server (conftest's spark_remote)."""
    remote = spark_remote
    ws, csv_path = write_scenario(fixed_scenario(1, "split", "rates", {}), tmp_path)
    assert_parity(None, ws, str(csv_path), remote=remote)
    world(tmp_path / "control")
    assert_parity(None, tmp_path / "control", remote=remote)


def test_largest_remainder_ties(spark: Any, tmp_path: Path) -> None:
    ws, csv_path = write_scenario(tie_scenario(), tmp_path)
    assert_parity(spark, ws, str(csv_path))


def test_control_world(spark: Any, tmp_path: Path) -> None:
    world(tmp_path / "ws")
    assert_parity(spark, tmp_path / "ws")


def test_control_shared_by_two_decisions(spark: Any, tmp_path: Path) -> None:
    (tmp_path / "ws").mkdir()
    write_shared_world(tmp_path / "ws")
    assert_parity(spark, tmp_path / "ws")


SPARK_EDGE_RULES = f"""{EDGE_RULES}
  - {{id: sigma, decision: d2, match: {{text: ["ΟΔΟΣ", "σας"]}}}}
  - {{id: greek-class, decision: d1, match: {{text_regex: "\\\\p{{Greek}}{{3}}"}}}}
  - {{id: not-word, decision: d2, match: {{text_regex: "^[^\\\\W]+$"}}}}
  - {{id: lines, decision: d1, match: {{text_regex: "(?m)^b$"}}}}
  - {{id: quote, decision: d2, match: {{text: ["it's \\\\ ok"], text_regex: "'s \\\\\\\\"}}}}
"""
SPARK_TEXTS = ["it's \\ ok", "IT'S \\ OK now", "a\r\nb", "a\u2028b", "ab\u0085", "Σας ΟΔΟΣ"]


def test_unicode_dst_and_regex_edges(spark: Any, tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    (ws / "rules").mkdir(parents=True)
    (ws / "rules" / "main.yaml").write_text(textwrap.dedent(SPARK_EDGE_RULES), encoding="utf-8")
    (ws / "chargeback.yaml").write_text("contacts: contacts.csv\ntimezone: Europe/Berlin\n")
    texts = EDGE_TEXTS + SPARK_TEXTS
    frame = pl.DataFrame(
        {
            "contact_id": [f"c{n}" for n in range(400)],
            "started_at": [DST_STAMPS[n % len(DST_STAMPS)] for n in range(400)],
            "channel": ["phone" if n % 3 else "chat" for n in range(400)],
            "text": [texts[n % len(texts)] for n in range(400)],
            "tags": [f"x{n % 4}" for n in range(400)],
            "handle_seconds": [n * 7 for n in range(400)],
        }
    )
    frame.write_csv(ws / "contacts.csv")
    assert_parity(spark, ws)


PATTERNS = [
    r"\d", r"\w+", r"\s", r"\S", r"\bfee\b", r"\Bee", "a.b", "(?s)a.b", "a$", "^a", "(?m)^a$",
    "(?m)^$", "$", "k", "K", "\u017f", "s", "i", "\u0130", "\u0131", "ß", "\u1e9e", "\u03c3",
    "\u03c2", "[a-z]+", "[^a-z]", r"\W", r"[\W]", r"[^\W]", "[[:alpha:]]", "[[:^alpha:]]",
    "[[:space:]]", r"\v", r"\x{1F600}", ".", r"\p{Greek}", r"\PL", r"[\p{Greek}\d]",
    "(?i)(?-i)k", "(?-i:k)x", "a|b|c", "x{2,}", r"\Q.*\E", r"[\]]", "[]a]", "[a-]", r"\.", "'",
    "\\\\", r"\x41", "(?U)a+?", "é", "e\u0301", r"\{", "{", "a{,2}", r"\A\z", "^$", r"\x{85}",
    r"\x{2028}", r"\r", "(?m:^b)c", "[k-m]", "[^k]", r"[\s\d]+$", "(?P<n>fee)s?",
]  # fmt: skip
TEXTS = [
    "", "a", "a\nb", "a\rb", "a\r\nb", "a\u2028b", "a\u0085b", "a\n", "\na", "b\nc", "fee",
    "fees", "coffee", "café fee", "éfee", "5\u212a", "\u017f", "S", "\u0130", "\u0131", "i",
    "I", "ß", "\u1e9e", "ΣΑΣ", "\u03c3", "\u03c2", "ΟΔΟΣ", "١٢٣", "123", "\t\x0b\x0c", "\U0001f600",
    "x\U0001f600y", "xx", "x", ".*", "{a}", "]", "a-", "'", "\\", "A", "aaa", "e\u0301",
    "\u00e9", "abc", "k", "K", "_", "a b", "\u00a0", "{", "a{,2}", "u",
]  # fmt: skip


def test_regexes_mean_in_spark_what_they_mean_in_polars(spark: Any) -> None:
    """Every pattern on every text: Spark's rlike on the translation, as polars' own regex."""
    text = pl.DataFrame({"i": range(len(TEXTS)), "text": TEXTS})
    view = "regex_texts"
    spark.createDataFrame(text.to_arrow()).createOrReplaceTempView(view)
    prims = spark_engine.SparkPrimitives()
    found = exp.select(
        col("i"), *[prims.regex_search(col("text"), p).as_(f"p{k}") for k, p in enumerate(PATTERNS)]
    ).from_(view)
    rows = {row[0]: row[1:] for row in spark.sql(found.sql("spark")).collect()}
    wrong = []
    for k, pattern in enumerate(PATTERNS):
        polars = text["text"].str.contains("(?i)" + to_rust(pattern)).to_list()
        for i, expected in enumerate(polars):
            if rows[i][k] != expected:
                wrong.append((pattern, to_java(pattern)[:80], TEXTS[i], expected))
    assert wrong == []


PLANES_END = 0x30000
CLASSES = [  # (big properties like \\PL are hundreds of ranges: slow to run on every row)
    r"[^\W]", r"\W", "[[:^alpha:]]", "[^a-z]", "(?-i:[^k])", "\u03c3", "[\u0100-\u017f]",
    r"\S", ".", r"\p{Greek}",
]  # fmt: skip


def test_character_classes_agree_on_every_code_point(spark: Any) -> None:
    """Each class, on each code point of the planes with cased letters (0-2) alone: the same
    members in both engines (compared as a count and two checksums of the code points)."""
    prims = spark_engine.SparkPrimitives()
    sums = []
    for pattern in CLASSES:
        hit = prims.regex_search(col("c"), pattern)
        n = exp.cast(col("n"), "BIGINT")
        sums += [
            exp.Sum(this=exp.If(this=hit, true=exp.Literal.number(1), false=exp.Literal.number(0))),
            exp.Sum(this=exp.If(this=hit.copy(), true=n, false=exp.Literal.number(0))),
            exp.Sum(this=exp.If(this=hit.copy(), true=n * n.copy(), false=exp.Literal.number(0))),
        ]
    query = exp.select(*sums).from_(exp.to_table("code_points")).sql("spark")
    planes = f"SELECT * FROM ({spark_engine.CODE_POINTS}) WHERE n < {PLANES_END}"
    spark.sql(planes).createOrReplaceTempView("code_points")
    got = spark.sql(query).collect()[0]
    points = spark_engine._code_points().filter(pl.col("n") < PLANES_END)
    for k, pattern in enumerate(CLASSES):
        members = points.filter(pl.col("c").str.contains("(?i)" + to_rust(pattern)))["n"]
        n = members.cast(pl.Int64)
        expected = (len(members), int(n.sum()), int((n * n).sum()))
        assert tuple(got[3 * k : 3 * k + 3]) == expected, pattern


def test_lower_is_checked_on_every_code_point(spark: Any) -> None:
    """The conformance ran; the capital sigma and ASCII are read alike by both engines."""
    repair = spark_engine.lower_conformance(spark, sigma=True)
    assert repair.sigma is not None
    assert 0x03A3 not in repair.sigma and ord("A") not in repair.sigma
    print(f"\nlower() repairs: {repair.replace, repair.src}; sigma differs at {len(repair.sigma)}")


def test_a_sigma_phrase_beside_newer_letters_is_refused(spark: Any, tmp_path: Path) -> None:
    """Where Spark's Unicode tables call a letter cased and polars' do not, a capital sigma
    beside it may lower-case apart: a phrase with a sigma is refused on such texts."""
    repair = spark_engine.lower_conformance(spark, sigma=True)
    if not repair.sigma:
        pytest.skip("this Spark reads every code point's case as polars does")
    ws = tmp_path / "ws"
    (ws / "rules").mkdir(parents=True)
    rule = '  - {id: r, decision: d1, match: {text: ["\u03bf\u03b4\u03bf\u03c2"]}}\n'
    rules = EDGE_RULES.split("rules:")[0] + "rules:\n" + rule
    (ws / "rules" / "main.yaml").write_text(textwrap.dedent(rules), encoding="utf-8")
    (ws / "chargeback.yaml").write_text("contacts: contacts.csv\n")
    text = "\u039f\u0394\u039f\u03a3" + chr(repair.sigma[0])
    (ws / "contacts.csv").write_text(
        f"contact_id,started_at,channel,text\nc1,2026-04-01,phone,{text}\n", encoding="utf-8"
    )
    ws_model, loaded = prepare(ReportOptions(workspace=ws), Steps())
    with pytest.raises(NotImplementedError, match="sigma"):
        spark_engine.aggregate(ws_model, loaded.frame)


@pytest.mark.parametrize(
    ("match", "feature"),
    [
        ('{text_regex: "fee**"}', "repeat of a repeat"),
        ('{text_regex: "a{2}+"}', "repeat of a repeat"),
    ],
)
def test_what_spark_cannot_reproduce_is_refused(
    spark: Any, tmp_path: Path, match: str, feature: str
) -> None:
    ws_model, loaded = one_rule_world(tmp_path / "ws", EDGE_RULES, match)
    with pytest.raises(NotImplementedError, match=feature):
        spark_engine.aggregate(ws_model, loaded.frame)


def test_the_local_session_writes_its_warehouse_into_the_scratch_folder(spark: Any) -> None:
    """Spark's default is spark-warehouse/ in the current folder, left behind after a run."""
    spark.sql("CREATE TABLE cb_scratch_probe USING parquet AS SELECT 1 AS a")
    try:
        (row,) = (
            spark.sql("DESCRIBE TABLE EXTENDED cb_scratch_probe")
            .filter("col_name = 'Location'")
            .collect()
        )
        location = Path(str(row["data_type"]).removeprefix("file:"))
        assert location.is_relative_to(scratch_dir())
    finally:
        spark.sql("DROP TABLE IF EXISTS cb_scratch_probe")
