"""Cohorts with a comparison group (cs_value.json `cohorts`), computed by hand.

timezone America/New_York (EST = UTC-5, EDT = UTC-4 from 2026-03-08); horizons 10 and 40 days.

contacts  local time        cust outcome
k1        2026-01-10 10:00  A    resolved     A's first in Jan: t0 = 01-10 15:00Z
k2        2026-01-20 10:00  B    unresolved   t0 = 01-20 15:00Z
k3        2026-01-25 10:00  A    sale         not A's first: A stays resolved
(none in 2026-02)
k4        2026-03-05 09:00  A    resolved     t0 = 03-05 14:00Z (EST)
k5        2026-03-20 12:00  C    saved        t0 = 03-20 16:00Z (EDT)
k6        2026-03-21 12:00  -    resolved     no customer: in no group

month starts (local midnight): Jan 01-01 05:00Z, Feb 02-01 05:00Z, Mar 03-01 05:00Z,
Apr 04-01 04:00Z. Midpoints: Jan 01-16 17:00Z, Feb 02-15 05:00Z, and March, 743 hours
long across the DST change, 03-16 16:30Z (12:30 local, not the wall-clock 12:00).

orders    local time        cust amount
          2025-01-01 00:00  E    1.00     exactly start(2025-01): E buys before Jan 2026
          2025-06-01 10:00  D    20.00
          2025-12-15 10:00  A    50.00    A bought, but contacted in Jan: not compared
          2026-01-16 12:00  E    7.00     exactly mid(Jan): not after it
          2026-01-20 10:00  A    12.34    exactly A's t0 + 10 days: inside
          2026-01-20 10:00  B    9.99     exactly B's t0: not after it
          2026-01-26 12:00  D    30.00    exactly mid(Jan) + 10 days: inside
          2026-02-15 10:00  A    100.00
          2026-02-28 10:00  B    1.01
          2026-03-15 10:00  A    10.00    03-15 14:00Z = A's March t0 + 10 days exactly
                                          (11 wall-clock hours later across the DST change)
          2026-03-17 10:00  D    8.00
          2026-03-26 12:30  B    4.00     exactly mid(Mar) + 10 days
          2026-03-30 12:00  C    25.00    C's only order, exactly t0 + 10 days: inside
          2026-04-10 12:00  Z    3.00     the last order: 04-10 16:00Z

comparison: Jan {D, E} (A contacted in Jan; B first bought in Jan), Feb {A, B, D, E}
(nobody contacted), Mar {B, D, E} (A contacted in Mar; C never bought before).

Jan  10: A 12.34, B 0 | comparison D 30.00, E 0 (at t0)        -> n 2, 30.00, 0.5, 15.00
     40: A 112.34, B 1.01 -> total 113.35, per 56.675 -> 56.68 | comparison 30.00
Feb  10: comparison A 100.00 (n 4: 25.00, 0.25); 40: A 110.00 + B 5.01 + D 8.00 = 123.01
     (30.7525 -> 30.75, 0.75); no contacted customers: n 0, nulls, lift null
Mar  10: A 10.00, C 25.00 (17.50) | comparison B 4.00 + D 8.00 = 12.00 (4.00, 2/3)
     40: max(mid, C's t0 03-20 16:00Z) + 40 days = 04-29 > 04-10 16:00Z: null
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import write_workspace
from typer.testing import CliRunner

from cli import app

runner = CliRunner()

RULES = """\
decisions:
  - {id: d, title: D, kind: fee, department: billing, effective: 2025-01-01}
rules:
  - {id: r, decision: d, match: {reason: [x]}}
"""
CONTACTS = """\
contact_id,started_at,channel,handle_seconds,customer_id,outcome,revenue,reason
k1,2026-01-10T10:00:00,chat,0,A,resolved,,x
k2,2026-01-20T10:00:00,chat,0,B,unresolved,,y
k3,2026-01-25T10:00:00,chat,0,A,sale,5.00,y
k4,2026-03-05T09:00:00,chat,0,A,resolved,,y
k5,2026-03-20T12:00:00,chat,0,C,saved,,y
k6,2026-03-21T12:00:00,chat,0,,resolved,,y
"""
ORDERS = """\
customer_id,ordered_at,amount
E,2025-01-01T00:00:00,1.00
D,2025-06-01T10:00:00,20.00
A,2025-12-15T10:00:00,50.00
E,2026-01-16T12:00:00,7.00
A,2026-01-20T10:00:00,12.34
B,2026-01-20T10:00:00,9.99
D,2026-01-26T12:00:00,30.00
A,2026-02-15T10:00:00,100.00
B,2026-02-28T10:00:00,1.01
A,2026-03-15T10:00:00,10.00
D,2026-03-17T10:00:00,8.00
B,2026-03-26T12:30:00,4.00
C,2026-03-30T12:00:00,25.00
Z,2026-04-10T12:00:00,3.00
"""
SETTINGS = """\
timezone: America/New_York
orders: orders.csv
value:
  horizons_days: [10, 40]
"""


Lift = tuple[str | None, float | None]


def group(
    n: int, orders: str, active: float | None, per: str | None, lift: Lift | None = None
) -> dict[str, Any]:
    """A group as cs_value.json writes it; `lift` (per customer, active share) when compared."""
    out: dict[str, Any] = {
        "customers": n,
        "orders_after": orders,
        "active_after": active,
        "per_customer": per,
    }
    if lift is not None:
        out["lift"] = {"per_customer": lift[0], "active_after": lift[1]}
    return out


def cs_value(root: Path, *extra: str) -> dict[str, Any]:
    out = root / "out"
    result = runner.invoke(
        app,
        ["report", "--workspace", str(root), "--out", str(out), "--format", "json", *extra],
    )
    assert result.exit_code == 0, result.output
    doc: dict[str, Any] = json.loads((out / "cs_value.json").read_text())
    return doc


def make(root: Path, settings: str = SETTINGS) -> Path:
    write_workspace(root, RULES, CONTACTS, settings)
    (root / "orders.csv").write_text(ORDERS)
    return root


@pytest.fixture(scope="module")
def doc(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = make(tmp_path_factory.mktemp("cohorts") / "ws")
    return cs_value(root, "--from", "2026-01", "--to", "2026-03")


def test_the_window_starts_at_the_first_contact_month(doc: dict[str, Any]) -> None:
    march = doc["periods"]["2026-03"]["cohorts"]
    assert march["months"] == ["2026-01", "2026-02", "2026-03"]
    assert march["latest"] == {"10": "2026-03", "40": "2026-02"}
    assert list(march["cells"]) == march["months"]
    january = doc["periods"]["2026-01"]["cohorts"]
    assert january["months"] == ["2026-01"]
    assert january["latest"] == {"10": "2026-01", "40": "2026-01"}
    assert january["cells"]["2026-01"] == march["cells"]["2026-01"]  # a cell is the month's


def test_january_boundaries_and_an_excluded_comparison_customer(doc: dict[str, Any]) -> None:
    cells = doc["periods"]["2026-03"]["cohorts"]["cells"]["2026-01"]
    assert cells["10"] == {
        "contacted": group(2, "12.34", 0.5, "6.17", lift=("-8.83", 0.0)),
        "outcomes": {
            "resolved": group(1, "12.34", 1.0, "12.34", lift=("-2.66", 0.5)),
            "unresolved": group(1, "0.00", 0.0, "0.00", lift=("-15.00", -0.5)),
        },
        "comparison": group(2, "30.00", 0.5, "15.00"),
    }
    assert cells["40"] == {
        "contacted": group(2, "113.35", 1.0, "56.68", lift=("41.68", 0.5)),
        "outcomes": {
            "resolved": group(1, "112.34", 1.0, "112.34", lift=("97.34", 0.5)),
            "unresolved": group(1, "1.01", 1.0, "1.01", lift=("-13.99", 0.5)),
        },
        "comparison": group(2, "30.00", 0.5, "15.00"),
    }


def test_a_month_without_contacts_has_only_its_comparison_group(doc: dict[str, Any]) -> None:
    cells = doc["periods"]["2026-03"]["cohorts"]["cells"]["2026-02"]
    nobody = group(0, "0.00", None, None, lift=(None, None))
    assert cells["10"] == {
        "contacted": nobody,
        "outcomes": {},
        "comparison": group(4, "100.00", 0.25, "25.00"),
    }
    assert cells["40"] == {
        "contacted": nobody,
        "outcomes": {},
        "comparison": group(4, "123.01", 0.75, "30.75"),
    }


def test_the_dst_month_and_an_unobservable_cell(doc: dict[str, Any]) -> None:
    cells = doc["periods"]["2026-03"]["cohorts"]["cells"]["2026-03"]
    assert cells["10"] == {
        "contacted": group(2, "35.00", 1.0, "17.50", lift=("13.50", 0.333333)),
        "outcomes": {
            "resolved": group(1, "10.00", 1.0, "10.00", lift=("6.00", 0.333333)),
            "saved": group(1, "25.00", 1.0, "25.00", lift=("21.00", 0.333333)),
        },
        "comparison": group(3, "12.00", 0.666667, "4.00"),
    }
    assert cells["40"] is None  # unknown, never zeros


def test_contacted_groups_are_the_after_contact_figures(doc: dict[str, Any]) -> None:
    for period in ("2026-01", "2026-03"):
        entry = doc["periods"][period]
        cells = entry["cohorts"]["cells"][period]
        for outcome, horizons in entry["after_contact"].items():
            for h, item in horizons.items():
                if cells[h] is None:
                    continue
                got = cells[h]["outcomes"][outcome]
                assert (got["customers"], got["orders_after"], got["active_after"]) == (
                    item["customers"],
                    item["orders_after"],
                    item["active_after"],
                )


def test_without_orders_there_are_no_cohorts(tmp_path: Path) -> None:
    root = make(tmp_path / "ws", SETTINGS.replace("orders: orders.csv\n", ""))
    doc = cs_value(root, "--period", "2026-03")
    assert "cohorts" not in doc["periods"]["2026-03"]
    assert "after_contact" not in doc["periods"]["2026-03"]
