"""The groups as columns (aggregates.GroupTable) and the column helpers of engine/columnar.py.

test_attribute_identity.py holds the figures to the oracle; here the pieces that
stand in for Python objects: a table is the tuple of Groups it stands for, mask
words decode to decode_masks' own sets (rules inserted lowest first), and
row_ids finds alike rows however wide they are, runs finds each code's first row;
fraction_sum is Fraction's own sum.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from chargeback.engine.aggregates import Group, GroupTable, MatchedSets
from chargeback.engine.amounts import fraction_sum
from chargeback.engine.columnar import row_ids, runs, sort_order
from chargeback.engine.polars_engine import MASK_BITS, decode_masks

groups = st.lists(
    st.builds(
        Group,
        st.sampled_from(["2026-01", "2026-02", "2025-12"]),
        st.sampled_from(["phone", "chat", "é-mail"]),
        st.frozensets(st.integers(0, 200), max_size=8),
        st.one_of(st.integers(0, 10**6), st.integers(2**63, 2**65)),
        st.one_of(st.integers(0, 10**12), st.integers(-(2**64), 2**64)),
        st.frozensets(st.integers(0, 5), max_size=2),
    ),
    max_size=30,
)


@settings(max_examples=200, deadline=None)
@given(groups=groups, keep=st.lists(st.booleans(), min_size=30, max_size=30))
def test_a_table_is_the_groups_it_stands_for(groups: list[Group], keep: list[bool]) -> None:
    table = GroupTable.from_groups(groups)
    assert len(table) == len(groups)
    assert table == tuple(groups) and tuple(groups) == table
    assert list(table) == groups and table[:3] == tuple(groups[:3])
    assert [list(g.matched) for g in table] == [list(g.matched) for g in groups]
    counts: dict[str, int] = {}
    for g in groups:
        counts[g.channel] = counts.get(g.channel, 0) + g.contacts
    assert list(table.contacts_by_channel().items()) == list(counts.items())
    kept = np.array(keep[: len(groups)], dtype=bool)
    assert table.subset(kept) == tuple(g for g, k in zip(groups, kept, strict=True) if k)
    assert table != list(groups)


@settings(max_examples=200, deadline=None)
@given(
    rows=st.integers(1, 4).flatmap(
        lambda width: st.lists(
            st.lists(st.integers(0, (1 << MASK_BITS) - 1), min_size=width, max_size=width),
            max_size=20,
        )
    )
)
def test_mask_words_give_decode_masks_sets(rows: list[list[int]]) -> None:
    sets = MatchedSets.of_masks(np.array(rows, dtype=np.int64), MASK_BITS).frozensets()
    assert len(sets) == len(rows)
    for row, got in zip(rows, sets, strict=True):
        assert list(got) == list(decode_masks(row))


@settings(max_examples=200, deadline=None)
@given(
    table=st.integers(1, 40).flatmap(
        lambda width: st.lists(
            st.lists(
                st.one_of(st.integers(-1, 3), st.integers(-1, 2**40)),
                min_size=width,
                max_size=width,
            ),
            min_size=1,
            max_size=30,
        )
    )
)
def test_row_ids_are_the_distinct_rows(table: list[list[int]]) -> None:
    """However many bits the rows take (renumbered past 62), alike rows share an id."""
    array = np.array(table, dtype=np.int64)
    first, ids = row_ids(array)
    rows = [tuple(r) for r in table]
    assert len(first) == len(set(rows))
    for k, row in enumerate(rows):
        assert rows[first[ids[k]]] == row
    for a in range(len(rows)):
        for b in range(len(rows)):
            assert (ids[a] == ids[b]) == (rows[a] == rows[b])


@settings(max_examples=200, deadline=None)
@given(
    st.integers(1, 3).flatmap(
        lambda width: st.lists(
            st.lists(
                st.one_of(st.integers(0, 5), st.integers(0, 2**40), st.integers(-3, -1)),
                min_size=width,
                max_size=width,
            ),
            max_size=40,
        )
    )
)
def test_sort_order_sorts_as_lexsort(rows: list[list[int]]) -> None:
    """Packed into one int64 where the columns fit, lexsort where they do not (past 62
    bits, or a negative value): either way the rows come out in lexsort's order."""
    if not rows:
        return
    columns = [np.array(c, dtype=np.int64) for c in zip(*rows, strict=True)]
    got = [tuple(int(c[k]) for c in columns) for k in sort_order(*columns)]
    assert got == sorted(tuple(r) for r in rows)


fractions = st.fractions(max_denominator=2**70) | st.builds(
    lambda n, k: Fraction(n, 3**k * 7), st.integers(-(2**80), 2**80), st.integers(0, 60)
)


@settings(max_examples=300, deadline=None)
@given(
    codes=st.one_of(
        st.lists(st.integers(0, 5), max_size=40),  # sorted by radix, as 16 bits
        st.lists(st.integers(-70_000, 70_000), max_size=40),  # either way, by their spread
        st.lists(st.integers(10**6, 10**6 + 70_000), max_size=40),  # offset, then radix
        st.lists(st.one_of(st.integers(0, 5), st.integers(-(2**56), 2**56)), max_size=40),
    )
)
def test_runs_are_np_unique_with_first_rows(codes: list[int]) -> None:
    """The columnar steps sum each run with reduceat and take its code's first row from
    the run's start: the runs must be np.unique's distinct codes, in order, and the
    stable order must put each code's first row first."""
    code = np.array(codes, dtype=np.int64)
    order, starts = runs(code)
    distinct, first = np.unique(code, return_index=True)
    assert code[order].tolist() == sorted(codes)
    assert code[order[starts]].tolist() == distinct.tolist()
    assert order[starts].tolist() == first.tolist()
    ends = [*starts[1:].tolist(), len(codes)][: len(starts)]
    sums = np.add.reduceat(code[order], starts) if len(codes) else np.zeros(0)
    assert sums.tolist() == [codes.count(c) * c for c in distinct.tolist()]
    assert [e - s for s, e in zip(starts.tolist(), ends, strict=True)] == [
        codes.count(c) for c in distinct.tolist()
    ]


@settings(max_examples=300, deadline=None)
@given(values=st.lists(fractions, max_size=40))
def test_fraction_sum_is_the_running_sum(values: list[Fraction]) -> None:
    """build_ledger's sums (amounts.fraction_sum): pairs unreduced, reduced at the end."""
    expected = sum(values, Fraction(0))
    got = fraction_sum(values)
    assert got == expected
    assert (got.numerator, got.denominator) == (expected.numerator, expected.denominator)
    assert fraction_sum(iter(values)) == expected
