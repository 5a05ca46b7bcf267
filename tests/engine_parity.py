"""What every engine's parity test asks: the polars engine's Aggregates and ledger.

The DuckDB, PostgreSQL and Spark tests (test_*_parity.py) hand `check_parity` a
function that runs their engine on the frame the data layer loaded; this holds
each to the same standard: equal groups, baseline counts, control cells and
sharing, an equal ledger, and equal one-month aggregates (as explain asks).
"""

from __future__ import annotations

import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import polars as pl

from chargeback.data.tables import Loaded
from chargeback.engine import polars_engine
from chargeback.engine.aggregates import Aggregates
from chargeback.engine.attribute import attribute
from chargeback.engine.ledger import build_ledger
from chargeback.inputs import prepare
from chargeback.report import ReportOptions, Steps
from chargeback.run import select_periods
from chargeback.workspace.model import Workspace

Engine = Callable[[Workspace, pl.DataFrame, "set[str] | None"], Aggregates]


def check_parity(
    ws_root: Path, run: Engine, contacts: str | None = None, months: slice = slice(0, 2)
) -> tuple[float, float]:
    """The engine against polars on one workspace; returns their seconds (polars, engine)."""
    opts = ReportOptions(workspace=ws_root, contacts=contacts)
    ws, loaded = prepare(opts, Steps())
    frame = loaded.frame
    t0 = time.perf_counter()
    expected = polars_engine.aggregate(ws, frame)
    t1 = time.perf_counter()
    got = run(ws, frame, None)
    t2 = time.perf_counter()
    assert got.groups == expected.groups
    assert got.baseline_counts == expected.baseline_counts
    assert got.cells == expected.cells
    assert got.sharing == expected.sharing
    assert got == expected
    periods = select_periods(opts, loaded)
    assert build_ledger(ws, attribute(ws, got), periods) == build_ledger(
        ws, attribute(ws, expected), periods
    )
    for month in periods[months]:  # explain's one-month aggregates
        assert run(ws, frame, {month}) == polars_engine.aggregate(ws, frame, {month})
    return t1 - t0, t2 - t1


def write_shared_control_world(ws: Path, rules: str, contacts: int) -> None:
    """test_control_ledger's SHARED rules on `contacts` phone contacts over nine months."""
    (ws / "rules").mkdir(parents=True)
    (ws / "rules" / "main.yaml").write_text(textwrap.dedent(rules))
    (ws / "chargeback.yaml").write_text("contacts: contacts.csv\n")
    rows = ["contact_id,started_at,channel,reason,text"]
    texts = ["a question", "the late fee", "paper bill fee", "LATE FEE on paper", "hello"]
    for n in range(contacts):
        day = 1 + n % 270
        month, dom = divmod(day, 28)
        stamp = f"{2025 + (month + 11) // 12}-{(month + 11) % 12 + 1:02d}-{dom + 1:02d}T09:00:00"
        reason = "billing.fee" if n % 7 == 0 or (month >= 6 and n % 5 == 0) else "other"
        rows.append(f"c{n},{stamp},phone,{reason},{texts[n * 7 % len(texts)]}")
    (ws / "contacts.csv").write_text("\n".join(rows) + "\n")


def one_rule_world(ws: Path, rules: str, match: str) -> tuple[Workspace, Loaded]:
    """`rules`' departments and decisions with one rule `r` of `match`, on one contact:
    what a test of an engine's refusal loads before asking the engine."""
    (ws / "rules").mkdir(parents=True)
    text = rules.split("rules:")[0] + f"rules:\n  - {{id: r, decision: d1, match: {match}}}\n"
    (ws / "rules" / "main.yaml").write_text(textwrap.dedent(text), encoding="utf-8")
    (ws / "chargeback.yaml").write_text("contacts: contacts.csv\n")
    (ws / "contacts.csv").write_text("contact_id,started_at,channel,text\nc1,2026-04-01,phone,x\n")
    return prepare(ReportOptions(workspace=ws), Steps())
