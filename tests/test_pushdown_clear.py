"""A column's `clear` test (pushdown_sql.Column.clear) holds only where none of its checks
does, so DuckDB's grouped scan may skip the checks on the rows it clears (rows_select).

Differential, on real DuckDB: for handle times of every family (doubles with NaN, both
infinities, ties at half a microsecond, negatives, over 30 days, NULL; decimals with a
seventh decimal; integers; texts that are no number), the checks' word guarded by the
test equals the word without it, value by value.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chargeback.engine.pushdown_bits import cond_words
from chargeback.engine.pushdown_sql import Dialect, base_query, handle_column

duckdb = pytest.importorskip("duckdb")

from test_in_engine_groups import wide_contacts  # noqa: E402
from test_in_engine_rows import per_row, pushed, workspace  # noqa: E402
from test_pushdown import Duck  # noqa: E402
from test_pushdown_settle import grouped_scan, in_zone, with_stamp  # noqa: E402

MOST = 30 * 24 * 3600
SQL_TYPE = {
    "float": "DOUBLE",
    "float4": "FLOAT",
    "decimal": "DECIMAL(18,9)",
    "integer": "BIGINT",
    "text": "VARCHAR",
}

doubles = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, -0.0, 0.5e-6, 1.5e-6, 2.0000005, MOST, MOST + 1e-6, -1e-9]),
    st.integers(0, 10**7).map(lambda n: n / 2 / 10**6),  # ties and their neighbours
)
decimals = st.decimals(-(10**6), 10**7, places=9, allow_nan=False, allow_infinity=False)
integers = st.integers(-(10**7), 10**8)
texts = st.one_of(
    st.sampled_from(["12", "12.5", "0.0000005", "-3", "1e3", "abc", "", " 7", "2592001"]),
    st.text(alphabet="0123456789.-e", max_size=8),
)
VALUES = {
    "float": doubles,
    "float4": doubles,
    "decimal": decimals,
    "integer": integers,
    "text": texts,
}


def literal(value: object, family: str) -> str:
    if value is None:
        return f"CAST(NULL AS {SQL_TYPE[family]})"
    if isinstance(value, float):  # 'nan', 'inf', '-inf' included
        return f"CAST('{value!r}' AS {SQL_TYPE[family]})"
    if isinstance(value, Decimal):
        return f"CAST('{value}' AS {SQL_TYPE[family]})"
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    return f"CAST({value} AS BIGINT)"


def words(family: str, values: list[object]) -> list[tuple[int, int]]:
    d = Dialect("duckdb")
    built = handle_column(d, "hs", family)
    assert built.clear is not None
    ((packed, _),) = cond_words(list(built.checks), list(built.checks.values()))
    guarded = f"CASE WHEN {built.clear} THEN CAST(0 AS BIGINT) ELSE {packed} END"
    rows = ", ".join(f"({literal(v, family)})" for v in values)
    relation = f"(VALUES {rows}) AS t(hs)"
    sql = f"SELECT {packed}, {guarded} FROM ({base_query(d, relation, [built])}) AS b"
    con = duckdb.connect()
    try:
        return [(int(a), int(b)) for a, b in con.execute(sql).fetchall()]
    finally:
        con.close()


@pytest.mark.parametrize("family", ["float", "float4", "decimal", "integer", "text"])
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_clear_rows_hold_no_check(family: str, data: st.DataObject) -> None:
    values = data.draw(st.lists(st.one_of(st.none(), VALUES[family]), min_size=1, max_size=20))
    for plain, guarded in words(family, values):
        assert guarded == plain


def test_each_check_still_fires_under_the_guard() -> None:
    got = words("float", [float("nan"), float("inf"), -1.0, MOST + 1.0, 0.5e-6, 1.25, None])
    assert [g for _, g in got] == [p for p, _ in got]
    assert all(g for g, _ in got[:5]) and got[5:] == [(0, 0), (0, 0)]


GUARD = "<> 0.5) THEN CAST(0 AS BIGINT) ELSE"  # rows_select's guard on a double's checks


def test_the_grouped_scan_guards_the_checks_only_where_every_column_clears(
    tmp_path: Path,
) -> None:
    """Settled stamps (no stamp check left) and a double handle time: guarded. A stamp
    before 1970 keeps the stamps' checks, which have no clear test: not guarded. Texts
    matched per row bring their own checks: not guarded."""
    clean = pushed(Duck(), workspace(tmp_path / "a", 13), wide_contacts(), tmp_path / "a")
    assert GUARD in grouped_scan(clean)
    old = with_stamp(wide_contacts(), datetime(1965, 3, 1, 12))
    kept = pushed(Duck(), in_zone(tmp_path / "b", "UTC"), old, tmp_path / "b")
    assert GUARD not in grouped_scan(kept)
    unique = wide_contacts(unique=True)
    rows = pushed(Duck(), workspace(tmp_path / "c", 13), unique, tmp_path / "c")
    assert per_row(rows, "text") and GUARD not in grouped_scan(rows)
