"""The CS-value report (SPEC 7) on a hand-computed workspace, and its edges.

timezone UTC; phone 0.40 + 1.05/min, chat 0.15, anything else 1.00
contact  when (2026)     ch     hs   cust outcome     revenue  cost  notes
k1       03-01 10:00     phone  60   A    resolved             1.45  reason x: decision d
k2       03-05 10:00     chat   0    A    sale        50.00    0.15  repeat (A 4 days before)
k3       03-12 10:00     chat   0    A    saved                0.15  7 days after k2: not a repeat
k4       03-12 10:00     email  0    B    unresolved           1.00
k5       03-13 09:59:59  phone  120  B    sale        19.999   2.50  repeat; revenue 20.00
k6       03-20 10:00     phone  60   -    saved                1.45  no customer
k7       04-02 10:00     chat   0    B    resolved             0.15  20 days after k5

orders: A 2025-03-01 9.00 (376 days before k3: out), A 2025-12-01 30.00,
        A 2026-03-12T10:00 40.00 (at k3: not before it), A 2026-04-15 25.00,
        B 2026-03-12T10:00 5.00 (at B's t0: not after it), B 2026-04-11T10:00 7.00
        (t0 + 30 days exactly: in), C 2026-06-30 1.00 (the last order)

2026-03: contacts 6, cost 6.70; phone 3 / 5.40 / 1.80, chat 2 / 0.30 / 0.15,
         email 1 / 1.00; avoidable 1.45 (0.216418), unattributed 5.25;
         revenue_won 70.00 (2 sales); saves 2, save value 30.00 (A's 2025-12-01);
         repeats 2 of 5 with a customer (0.4), repeat cost 2.65;
         after contact: A first k1 resolved, B first k4 unresolved;
           30d: A 40.00, B 7.00; 60d: A 65.00, B 7.00; 180d: not observable
         net value 70.00 + 30.00 - 6.70 = 93.30
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
  - {id: d, title: D, kind: fee, department: billing, effective: 2026-03-01}
rules:
  - {id: r, decision: d, match: {reason: [x]}}
"""
CONTACTS = """\
contact_id,started_at,channel,handle_seconds,customer_id,outcome,revenue,reason
k1,2026-03-01T10:00:00,phone,60,A,resolved,,x
k2,2026-03-05T10:00:00,chat,0,A,sale,50.00,y
k3,2026-03-12T10:00:00,chat,0,A,saved,,y
k4,2026-03-12T10:00:00,email,0,B,unresolved,,y
k5,2026-03-13T09:59:59,phone,120,B,sale,19.999,y
k6,2026-03-20T10:00:00,phone,60,,saved,,y
k7,2026-04-02T10:00:00,chat,0,B,resolved,,y
"""
ORDERS = """\
Customer,ordered_at,amount
A,2025-03-01T10:00:00,9.00
A,2025-12-01T10:00:00,30.00
A,2026-03-12T10:00:00,40.00
A,2026-04-15T10:00:00,25.00
B,2026-03-12T10:00:00,5.00
B,2026-04-11T10:00:00,7.00
C,2026-06-30T10:00:00,1.00
"""
SETTINGS = """\
timezone: UTC
orders: orders.csv
columns:
  orders.customer_id: Customer
value:
  save_value: 100.00
  repeat_window_days: 7
  horizons_days: [30, 60, 180]
"""


def make(root: Path, settings: str = SETTINGS, contacts: str = CONTACTS) -> Path:
    write_workspace(root, RULES, contacts, settings)
    (root / "orders.csv").write_text(ORDERS)
    return root


def value(root: Path, *extra: str) -> tuple[int, str, dict[str, Any]]:
    out = root / "out"
    result = runner.invoke(
        app, ["value", "--workspace", str(root), "--out", str(out), "--format", "json", *extra]
    )
    path = out / "cs_value.json"
    doc = json.loads(path.read_text()) if path.exists() else {}
    return result.exit_code, result.output, doc


@pytest.fixture
def march(tmp_path: Path) -> dict[str, Any]:
    code, output, doc = value(make(tmp_path / "ws"))
    assert code == 0, output
    return doc


def test_cost_and_channels(march: dict[str, Any]) -> None:
    p = march["periods"]["2026-03"]
    assert (p["contacts"], p["cost"], p["cost_per_contact"]) == (6, "6.70", "1.12")
    assert p["by_channel"] == {
        "chat": {"contacts": 2, "cost": "0.30", "cost_per_contact": "0.15"},
        "email": {"contacts": 1, "cost": "1.00", "cost_per_contact": "1.00"},
        "phone": {"contacts": 3, "cost": "5.40", "cost_per_contact": "1.80"},
    }
    assert (p["avoidable_cost"], p["avoidable_share"], p["unattributed_cost"]) == (
        "1.45",
        0.216418,
        "5.25",
    )


def test_revenue_won_saves_and_save_value_from_orders(march: dict[str, Any]) -> None:
    p = march["periods"]["2026-03"]
    assert (p["revenue_won"], p["sales"]) == ("70.00", 2)
    assert (p["saves"], p["save_value_total"], p["save_value_method"]) == (2, "30.00", "orders")
    assert p["net_value"] == "93.30"


def test_repeats(march: dict[str, Any]) -> None:
    p = march["periods"]["2026-03"]
    assert (p["contacts_with_customer"], p["repeats"], p["repeat_rate"]) == (5, 2, 0.4)
    assert p["repeat_cost"] == "2.65"
    assert p["repeat_by_reason"] == {
        "y": {"contacts": 4, "repeats": 2, "repeat_rate": 0.5, "repeat_cost": "2.65"},
        "x": {"contacts": 1, "repeats": 0, "repeat_rate": 0.0, "repeat_cost": "0.00"},
    }
    april = march["periods"]["2026-04"]
    assert (april["repeats"], april["repeat_rate"], april["repeat_cost"]) == (0, 0.0, "0.00")


def test_after_contact_by_outcome_and_horizon(march: dict[str, Any]) -> None:
    after = march["periods"]["2026-03"]["after_contact"]
    unknown = {"customers": 1, "orders_after": None, "active_after": None}
    assert after == {
        "resolved": {
            "30": {"customers": 1, "orders_after": "40.00", "active_after": 1.0},
            "60": {"customers": 1, "orders_after": "65.00", "active_after": 1.0},
            "180": unknown,
        },
        "unresolved": {
            "30": {"customers": 1, "orders_after": "7.00", "active_after": 1.0},
            "60": {"customers": 1, "orders_after": "7.00", "active_after": 1.0},
            "180": unknown,
        },
    }
    assert march["last_order_date"] == "2026-06-30"


def test_trailing_view_sums_the_months(march: dict[str, Any]) -> None:
    t = march["trailing_12_months"]["2026-04"]
    assert (t["from"], t["to"], t["months"]) == ("2026-03", "2026-04", 2)
    assert (t["contacts"], t["cost"], t["revenue_won"], t["net_value"]) == (
        7,
        "6.85",
        "70.00",
        "93.15",
    )
    assert (t["repeats"], t["contacts_with_customer"], t["repeat_rate"]) == (2, 6, 0.333333)
    assert t["by_channel"]["chat"] == {"contacts": 3, "cost": "0.45", "cost_per_contact": "0.15"}


def test_without_orders_saves_use_the_setting_and_after_contact_is_left_out(
    tmp_path: Path,
) -> None:
    root = make(tmp_path / "ws", SETTINGS.replace("orders: orders.csv\n", ""))
    code, output, doc = value(root, "--period", "2026-03")
    assert code == 0, output
    p = doc["periods"]["2026-03"]
    assert (p["save_value_total"], p["save_value_method"]) == ("200.00", "fixed")
    assert "after_contact" not in p
    assert any("order data" in note for note in doc["notes"])
    assert "order data" in output  # the terminal says it too


def test_without_outcome_the_outcome_metrics_are_left_out(tmp_path: Path) -> None:
    contacts = "\n".join(
        ",".join(cell for i, cell in enumerate(line.split(",")) if i != 5)
        for line in CONTACTS.splitlines()
    )
    code, output, doc = value(make(tmp_path / "ws", contacts=contacts), "--period", "2026-03")
    assert code == 0, output
    p = doc["periods"]["2026-03"]
    assert "revenue_won" not in p and "saves" not in p and "net_value" not in p
    assert p["repeats"] == 2  # needs customer_id only
    assert any("'outcome' column" in note for note in doc["notes"])


def test_orders_from_the_command_line_and_bad_order_rows(tmp_path: Path) -> None:
    root = make(tmp_path / "ws", SETTINGS.replace("orders: orders.csv\n", ""))
    (root / "more.csv").write_text("Customer,ordered_at,amount\nA,2026-01-01,12.50\nB,oops,1\n")
    code, output, _ = value(root, "--orders", str(root / "more.csv"))
    assert code == 1
    assert "more.csv:3" in output and "ordered_at" in output and "Traceback" not in output
    (root / "more.csv").write_text("Customer,ordered_at,amount\nA,2026-01-01,abc\n")
    code, output, _ = value(root, "--orders", str(root / "more.csv"))
    assert code == 1 and "not a number: 'abc'" in output and "amount" in output

    code, output, _ = value(root, "--orders", str(root / "more.csv"), "--on-bad-rows", "quarantine")
    assert code == 1  # every order row bad: a set-up problem, not data
    (root / "more.csv").write_text("Customer,ordered_at,amount\nA,2026-01-01,1\nB,x,1\n")
    code, output, _doc = value(
        root, "--orders", str(root / "more.csv"), "--on-bad-rows", "quarantine"
    )
    assert code == 0, output
    assert (root / "out" / "rejected_orders.csv").read_text().count("\n") == 2


def test_value_writes_no_ledger_and_report_includes_cs_value(tmp_path: Path) -> None:
    root = make(tmp_path / "ws")
    code, output, _ = value(root, "--period", "2026-03")
    assert code == 0, output
    assert sorted(p.name for p in (root / "out").glob("[!.]*")) == ["cs_value.json"]
    result = runner.invoke(
        app,
        ["report", "--workspace", str(root), "--out", str(tmp_path / "r"), "--format", "json"],
    )
    assert result.exit_code == 0, result.output
    assert (
        json.loads((tmp_path / "r" / "cs_value.json").read_text())["periods"]["2026-03"][
            "net_value"
        ]
        == "93.30"
    )
    bad = runner.invoke(app, ["value", "--workspace", str(root), "--format", "csv"])
    assert bad.exit_code == 2


def test_orders_without_customer_ids_fall_back_to_the_save_value_setting(tmp_path: Path) -> None:
    contacts = "\n".join(
        ",".join(cell for i, cell in enumerate(line.split(",")) if i != 4)
        for line in CONTACTS.splitlines()
    )
    code, output, doc = value(make(tmp_path / "ws", contacts=contacts), "--period", "2026-03")
    assert code == 0, output
    p = doc["periods"]["2026-03"]
    assert (p["save_value_total"], p["save_value_method"]) == ("200.00", "fixed")
    assert "repeats" not in p and "after_contact" not in p
    assert any("'customer_id' column" in note for note in doc["notes"])


def test_the_last_order_date_is_the_local_date(tmp_path: Path) -> None:
    """An order at 22:00 in New York on 30 June is 1 July in UTC: the data ends on 30 June."""
    root = make(tmp_path / "ws", SETTINGS.replace("timezone: UTC", "timezone: America/New_York"))
    (root / "orders.csv").write_text(ORDERS.replace("2026-06-30T10:00:00", "2026-06-30T22:00:00"))
    code, output, doc = value(root)
    assert code == 0, output
    assert doc["last_order_date"] == "2026-06-30"
