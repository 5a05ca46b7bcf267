"""The in-engine ledger's cheaper statements (engine/pushdown_bits.py day_segments,
pushdown_groups.py's groups fetched in order) mean what the old ones did.

Real DuckDB, no mocks: the days table's runs equal the per-day CASEs they replace,
over windows that start, end, open and close outside the span; groups fetched in
order or not give the same aggregates.
"""

from __future__ import annotations

import random
from datetime import date, timedelta
from itertools import pairwise
from pathlib import Path

import pytest
from conftest import write_workspace
from test_in_engine_groups import wide_rules
from test_postgres_source import CONTACTS

from chargeback.engine.pushdown_bits import day_segments, day_words
from chargeback.engine.pushdown_groups import Found, _assemble
from chargeback.workspace.load import load_workspace

duckdb = pytest.importorskip("duckdb")

WINDOWS = """
decisions:
  - {id: d1, title: D1, kind: fee, department: billing, effective: 2026-01-10}
  - {id: d2, title: D2, kind: fee, department: product, effective: 2026-02-01, ends: 2026-02-20}
  - {id: d3, title: D3, kind: fee, department: billing, effective: 2025-06-01}
  - {id: d4, title: D4, kind: fee, department: product, effective: 2027-03-01}
rules:
"""


def window_rules(n: int) -> str:
    """Rules with windows and lookbacks of every shape: open, closed, shifted, before,
    inside and after the days asked, over more than one word."""
    shapes = [
        "",
        ", window: {start_offset_days: -3, days: 30}",
        ", window: {start_offset_days: 5, days: 1}",
        ", window: {start_offset_days: -400, days: 36500}",
        ", window: {start_offset_days: 40}",
    ]
    lines = []
    for i in range(n):
        baseline = f", baseline: {{lookback_days: {7 + i % 50}}}" if i % 3 == 1 else ""
        lines.append(
            f"  - {{id: r{i}, decision: d{1 + i % 4}, match: {{channel: [phone]}}"
            f"{shapes[i % len(shapes)]}{baseline}}}"
        )
    return WINDOWS + "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    ("n", "lo", "hi"),
    [
        (9, "2026-01-01", "2026-03-31"),
        (130, "2025-05-01", "2027-06-30"),
        (70, "2026-01-15", "2026-01-15"),
    ],
)
def test_day_segments_equal_the_per_day_cases(tmp_path: Path, n: int, lo: str, hi: str) -> None:
    ws = load_workspace(write_workspace(tmp_path / "ws", window_rules(n), CONTACTS))
    words = -(-n // 62)
    first, last = date.fromisoformat(lo), date.fromisoformat(hi)
    wins, lbs = day_words(ws, words)
    got_wins, got_lbs, runs = day_segments(ws, words, first, last)
    assert (got_wins, got_lbs) == (sorted(wins), sorted(lbs))
    assert runs[0][0] == first and runs[-1][1] == last  # every day, once, in order
    assert all(b[0] == a[1] + timedelta(days=1) for a, b in pairwise(runs))
    cols = [f"{e} AS w{k}" for k, e in sorted(wins.items())]
    cols += [f"{e} AS l{k}" for k, e in sorted(lbs.items())]
    days = (
        f"SELECT CAST(d AS DATE) AS date FROM generate_series(CAST('{lo}' AS TIMESTAMP), "
        f"CAST('{hi}' AS TIMESTAMP), INTERVAL '1 day') AS t(d)"
    )
    con = duckdb.connect()
    try:
        rows = con.execute(f"SELECT date, {', '.join(cols)} FROM ({days}) ORDER BY 1").fetchall()
    finally:
        con.close()
    expanded = [
        (first_day + timedelta(days=i), *w, *b)
        for first_day, last_day, w, b in runs
        for i in range((last_day - first_day).days + 1)
    ]
    assert [tuple(r) for r in rows] == expanded


def test_groups_in_order_or_not_give_the_same_aggregates(tmp_path: Path) -> None:
    ws = load_workspace(write_workspace(tmp_path / "ws", wide_rules(130), CONTACTS))
    rng = random.Random(7)
    masks = [0, 1, 6, 2**61 + 5]
    rows = {
        (
            f"2026-0{rng.randint(1, 3)}",
            rng.choice(["chat", "phone", "émail"]),
            *(rng.choice(masks) for _ in range(3)),
        ): None
        for _ in range(300)
    }
    groups = [(*key, rng.randint(1, 9), rng.randint(0, 10**9)) for key in rows]
    shuffled = list(groups)
    rng.shuffle(shuffled)
    lookbacks: list[tuple[list[int], tuple[int, ...]]] = [([0], (8 | 1024, 4))]
    total = sum(g[-2] for g in groups)
    ordered = _assemble(ws, Found(sorted(groups), lookbacks, total, [], ordered=True), None)
    unordered = _assemble(ws, Found(shuffled, lookbacks, total, []), None)
    assert ordered == unordered
    assert ordered.aggregates.baseline_counts["r3"] == 4
    months = {"2026-02"}
    assert _assemble(ws, Found(shuffled, lookbacks, total, []), months) == _assemble(
        ws, Found(sorted(groups), lookbacks, total, [], ordered=True), months
    )
