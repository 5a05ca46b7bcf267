"""DuckDB's value tables for the grouped scan: the fewest-valued crossed into one table,
the regex searches over many distinct texts run in two halves, each phrase searched once.

pushdown_tables.cross_tables: every combination of the small tables' values, its words
ANDed once, joined on all their columns at once (NULL-safe). Real DuckDB against the
polars engine: the same aggregates with the crossed table, without it, with reason's
family crossed in (control baselines), and a row whose combination is missing from the
crossed table is flagged, so the contacts are read out as for any value not found.
fold_regexes' halves: every text in exactly one of them, the same aggregates. The
text table searches each phrase once (phrases_once), however many rules share it. The
scan groups by integer codes of the month and channel (coded_channel), their texts
joined back to the groups.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
import pytest
from test_in_engine_groups import report, wide_contacts
from test_in_engine_rows import pushed, workspace
from test_pushdown import Duck
from test_pushdown_lists import run

from chargeback.engine import pushdown_tables

pytest.importorskip("duckdb")

CROSS = "CREATE TEMP TABLE cb_pd_x"


def scan(log: list[str]) -> str:
    (found,) = {s for s in log if s.startswith("CREATE TEMP TABLE cb_pushdown_flags")}
    return found


def test_small_tables_are_crossed(tmp_path: Path) -> None:
    """channel, outcome, product, region (and plan, reason: 3-4 values each, NULLs among
    them) in one table of at most CROSS_ROWS rows; one join in the scan finds them."""
    log = pushed(Duck(), workspace(tmp_path, 70), wide_contacts(), tmp_path)
    (made,) = {s for s in log if s.startswith(CROSS)}
    assert '"cb_k_channel"' in made and '"cb_k_region"' in made
    assert 'LEFT JOIN cb_pd_x AS tx ON b."v_channel" IS NOT DISTINCT FROM tx."cb_k_channel"' in (
        scan(log)
    )
    assert 'AS "cb_channel"' in scan(log) and 'tx."cb_m" AS "cb_channel"' in scan(log)
    coded(log, "cb_pd_x")


@pytest.mark.parametrize("lookbacks", [False, True])
def test_mapped_channels_share_a_code(tmp_path: Path, lookbacks: bool) -> None:
    """`values:` maps chat to email: two raw values, one channel, so one code. Without
    lookback rules the fetch has no GROUP BY of its own; a code per raw value gave two
    groups of one key (the same ledger, but not polars' aggregates, nor its fingerprint)."""
    from conftest import write_workspace
    from test_in_engine_groups import wide_rules
    from test_postgres_source import CONTACTS

    rules = wide_rules(13)
    if not lookbacks:
        rules = rules.replace(", baseline: {lookback_days: 15}", "")
    ws = write_workspace(tmp_path / "ws", rules, CONTACTS)
    (ws / "chargeback.yaml").write_text(
        "timezone: Europe/Berlin\noverlap: split\nvalues:\n  channel: {chat: email}\n"
    )
    log = pushed(Duck(), ws, wide_contacts(), tmp_path)
    assert any('"cb_pi" AS "cb_key0", "cb_ci" AS "cb_key1"' in s for s in log)


def coded(log: list[str], table: str) -> None:
    """Grouped by the month's and channel's codes; their texts joined back from `table`."""
    assert scan(log).startswith(
        'CREATE TEMP TABLE cb_pushdown_flags AS SELECT "cb_pi" AS "cb_key0", "cb_ci" AS "cb_key1"'
    )
    (fetch,) = {s for s in log if s.startswith('SELECT cp."period", cc."cb_m"')}
    assert f'(SELECT DISTINCT "cb_ci", "cb_m" FROM {table}) AS cc' in fetch


def test_without_room_nothing_is_crossed(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.setattr(pushdown_tables, "CROSS_ROWS", 3)
    log = pushed(Duck(), workspace(tmp_path, 70), wide_contacts(), tmp_path)
    assert not any(s.startswith(CROSS) for s in log)
    assert "cb_pd_x" not in scan(log)
    coded(log, "cb_pd_v_0")  # the channel's own table


def test_only_what_fits_is_crossed(tmp_path: Path, monkeypatch: Any) -> None:
    """Room for the two smallest tables only: the rest keep their own joins."""
    monkeypatch.setattr(pushdown_tables, "CROSS_ROWS", 9)
    log = pushed(Duck(), workspace(tmp_path, 70), wide_contacts(), tmp_path)
    (made,) = {s for s in log if s.startswith(CROSS)}
    assert made.count('"cb_k_') == 2
    assert "LEFT JOIN cb_pd_v_" in scan(log) and "LEFT JOIN cb_pd_x" in scan(log)


class Dropping(Duck):
    """Takes one combination out of the crossed table once it is made: as if the contacts
    had changed between the value tables and the scan."""

    def execute(self, sql: str) -> list[tuple[Any, ...]]:
        got = super().execute(sql)
        if sql.startswith(CROSS):
            self.con.execute("DELETE FROM cb_pd_x WHERE cb_k_channel = 'chat'")
        return got


def test_a_combination_not_found_is_flagged(tmp_path: Path) -> None:
    got, log = run(wide_contacts(), tmp_path, Dropping())
    assert any(s.startswith(CROSS) for s in log)
    assert got is None  # read out: the usual path has the contacts as they are now


def test_reason_families_crossed_with_control_baselines(tmp_path: Path, monkeypatch: Any) -> None:
    """The generated sample (control baselines: each contact's cell by its reason's
    family), with room for every table of few values (reason's 76 among them): reason
    crossed in, its family from the crossed table; polars' ledger."""
    from chargeback.sample.generate import generate_sample

    generate_sample(tmp_path / "s", contacts=3000, seed=5)
    ws = tmp_path / "s"
    frame = pl.read_parquet(ws / "sample_data" / "contacts.parquet")
    small = ("channel", "outcome", "product", "region", "plan", "reason")
    room = 1
    for name in small:
        room *= frame[name].n_unique()
    monkeypatch.setattr(pushdown_tables, "CROSS_ROWS", room)
    first = report(ws, tmp_path / "polars")
    assert first.exit_code == 0, first.output
    result = report(ws, tmp_path / "duckdb", "--engine", "duckdb", "--show-sql")
    assert result.exit_code == 0, result.output
    assert "CREATE TEMP TABLE cb_pd_rows" in result.output  # summed in DuckDB, not read out
    assert "CREATE TEMP TABLE cb_pd_x" in result.output and 'AS "cb_k_reason"' in result.output
    assert 'tx."cb_fam"' in result.output
    expected = (tmp_path / "polars" / "ledger.csv").read_text()
    assert (tmp_path / "duckdb" / "ledger.csv").read_text() == expected


def test_many_texts_are_searched_in_halves(tmp_path: Path, monkeypatch: Any) -> None:
    """fold_regexes' searches on the distinct texts, split in two by the text's hash (one
    thread each) once the texts are many: every text in one half, polars' aggregates."""
    monkeypatch.setattr(pushdown_tables, "SPLIT_TEXTS", 2)
    log = pushed(Duck(), workspace(tmp_path, 70), wide_contacts(), tmp_path)
    (folded,) = {s for s in log if s.startswith("CREATE TEMP TABLE cb_pd_v_") and "_rx AS" in s}
    assert 'WHERE hash("cb_k") % 2 = 0 UNION ALL SELECT' in folded
    assert folded.endswith('WHERE hash("cb_k") % 2 = 1')


def text_table(log: list[str]) -> str:
    (found,) = {
        s for s in log if s.startswith("CREATE TEMP TABLE cb_pd_v_") and '"text" AS "cb_m"' in s
    }
    return found


def test_a_phrase_rules_share_is_searched_once(tmp_path: Path) -> None:
    """r1 and r11 both search 'refund' and 'late fee' (wide_rules): once per distinct
    text, as a column both words read (phrases_once), with polars' aggregates."""
    log = pushed(Duck(), workspace(tmp_path, 13), wide_contacts(), tmp_path)
    table = text_table(log)
    for phrase in ("refund", "late fee", "bill"):
        assert table.count(f"CONTAINS(\"text_lower\", '{phrase}')") == 1, phrase
    assert '"cb_p0"' in table


def test_phrases_once_leaves_other_sql_alone() -> None:
    """Only whole searches are replaced: a longer phrase holding a shorter one keeps its
    own search, and a phrase with a quote is matched as rendered."""
    from chargeback.engine.duckdb_engine import DuckDBPrimitives
    from chargeback.engine.pushdown_bits import Bits
    from chargeback.engine.pushdown_sql import Dialect
    from chargeback.engine.sql_compile import col

    prims = DuckDBPrimitives()
    bits = Bits(["r0"], 1, [1], needles={"fee", "late fee", "it's", "unused"})
    search = {n: prims.contains(col("text_lower"), n).sql("duckdb") for n in bits.needles}
    late, fee, its = search["late fee"], search["fee"], search["it's"]
    words = {0: f"({late} OR {fee}) AND {its} AND x"}
    columns, out = pushdown_tables.phrases_once(Dialect("duckdb"), prims, bits, words)
    assert columns == [f'{fee} AS "cb_p0"', f'{its} AS "cb_p1"', f'{late} AS "cb_p2"']
    assert out == {0: '("cb_p2" OR "cb_p0") AND "cb_p1" AND x'}
    # another test's values may spell a search across two of their literals: the phrase
    # ", " and the values 'aCONTAINS("text_lower", ' and ')b' in an IN list
    comma = prims.contains(col("text_lower"), ", ").sql("duckdb")
    spelled = '"text" IN (' + "'a" + comma.split("'")[0] + "', ')b')"
    assert comma in spelled
    bits = Bits(["r0"], 1, [1], needles={", "})
    _, out = pushdown_tables.phrases_once(
        Dialect("duckdb"), prims, bits, {0: comma + " AND " + spelled}
    )
    assert out == {0: '"cb_p0" AND ' + spelled}
