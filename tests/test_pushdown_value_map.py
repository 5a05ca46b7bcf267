"""A value table's `any` tests as one lookup of the value (pushdown_bits._value_map).

On DuckDB, table_words turns the blocks whose one test on a column is any_of's (exact
values, `*` prefixes) into one CASE on the value plus one test per prefix, ORed; every
other engine keeps a CASE per block. Differential, on real DuckDB: for random blocks
and values (NULL, empty, a value in several blocks, a value both exact and under a
prefix, quotes), both forms give every value the same words.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chargeback.engine.pushdown_bits import Bits, _Conditions, table_words, word_of

duckdb = pytest.importorskip("duckdb")

from chargeback.engine.duckdb_engine import DuckDBPrimitives  # noqa: E402

VALUES = ["billing", "billing.fee", "bill", "", "it's", "tech", "Tech", "é", "billing*x"]
tests_ = st.lists(st.sampled_from([*VALUES, "bill*", "billing.*", "*", "it*"]), max_size=4)


def bits_for_blocks(blocks: list[list[str] | None], other: set[int]) -> Bits:
    """Bits as bits_for makes them for blocks testing `reason` (None: no test on it);
    the blocks in `other` carry a second test on reason, so keep a CASE each."""
    conditions = _Conditions(DuckDBPrimitives(), {"reason"})
    words = -(-len(blocks) // 62)
    out = Bits([f"r{b}" for b in range(len(blocks))], words, [0] * words)
    for b, values in enumerate(blocks):
        w, bit = word_of(b)
        out.possible[w] |= bit
        if values is None:
            continue
        vs = tuple(values)
        out.tests.setdefault("reason", {})[b] = [conditions.sql("reason", "any", vs)]
        if b in other:
            out.tests["reason"][b].append(conditions.sql("reason", "any", ("tech", "bill*")))
            continue
        subject, prefixes = conditions.any_parts("reason", vs)
        out.subjects["reason"] = subject
        exact = tuple(v for v in vs if not v.endswith("*"))
        out.anys.setdefault("reason", {})[b] = (exact, prefixes)
    return out


def words_of(bits: Bits, dialect: str) -> list[tuple[object, ...]]:
    words = table_words(bits, "reason", dialect)
    con = duckdb.connect()
    try:
        con.execute("CREATE TABLE v (reason VARCHAR)")
        con.executemany("INSERT INTO v VALUES (?)", [[v] for v in [*VALUES, None]])
        cols = ", ".join(f"{e} AS w{k}" for k, e in sorted(words.items())) or "0"
        rows = con.execute(f"SELECT reason, {cols} FROM v ORDER BY reason NULLS FIRST")
        return [tuple(r) for r in rows.fetchall()]
    finally:
        con.close()


@settings(max_examples=60, deadline=None)
@given(
    blocks=st.lists(st.one_of(st.none(), tests_.filter(bool)), min_size=1, max_size=70),
    other=st.sets(st.integers(0, 69), max_size=3),
)
def test_the_lookup_gives_the_per_block_words(
    blocks: list[list[str] | None], other: set[int]
) -> None:
    bits = bits_for_blocks(blocks, other)
    assert words_of(bits, "duckdb") == words_of(bits, "per-block")


def test_a_value_in_several_blocks_and_under_a_prefix() -> None:
    """billing.fee: exact in r0 and r2, under r1's prefix and r2's own: each bit once."""
    bits = bits_for_blocks([["billing.fee"], ["billing.*"], ["billing.fee", "bill*"]], set())
    sql = table_words(bits, "reason", "duckdb")[0]
    assert sql.count('CASE "reason" WHEN') == 1 and " IN (" not in sql
    rows = dict((r[0], r[1]) for r in words_of(bits, "duckdb"))
    assert rows["billing.fee"] == 0b111
    assert rows["bill"] == 0b100 and rows["billing"] == 0b100
    assert rows[None] == 0 and rows[""] == 0
