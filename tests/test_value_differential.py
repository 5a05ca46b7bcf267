"""Differential test: `chargeback value` (cs_value.json) against tests/value_oracle.py.

Two inputs:

- the generated sample workspace (`chargeback sample DIR --contacts 4000 --seed 3`,
  timezone America/New_York as generated, Parquet contacts and orders). The engine
  reads the Parquet files; the oracle reads a CSV copy of the same rows. The oracle
  implements SPEC 4's flat baseline, not 4b's control fit, so the sample's
  control-baseline rules get a flat baseline over the same lookback on both sides
  (the control ledger has its own tests: test_control_ledger.py, test_control_truth.py).
- a tiny hand-made workspace (timezone UTC, CSV contacts and orders) built around the
  boundaries of SPEC 7: a repeat exactly at the window, two contacts of a customer
  at the same instant, orders exactly at t0, t0 + h, t - 365 days and t, a saved
  contact without customer_id, a null first outcome, a horizon that is observable
  exactly at the last order and one that is not. It runs with and without orders.

For every period: counts, money (exact strings, per-channel costs included) and
ratios (6 decimals) must equal the oracle's. Every disagreement of a run is listed
in one assertion message.
"""

from __future__ import annotations

import csv
import json
import textwrap
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import yaml
from conftest import write_workspace
from typer.testing import CliRunner
from value_oracle import oracle_value

from cli import app

EXACT_KEYS = (
    "contacts",
    "cost",
    "cost_per_contact",
    "avoidable_cost",
    "unattributed_cost",
    "revenue_won",
    "sales",
    "saves",
    "save_value_total",
    "contacts_with_customer",
    "repeats",
    "repeat_cost",
    "net_value",
)
COUNT_KEYS = ("contacts", "sales", "saves", "contacts_with_customer", "repeats")
RATIO_KEYS = ("avoidable_share", "repeat_rate")
MISSING = "<missing>"


# ---------------------------------------------------------------------------- helpers


def run_value(workspace: Path, out: Path) -> dict[str, Any]:
    args = ["value", "--workspace", str(workspace), "--format", "json", "--out", str(out)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    data: dict[str, Any] = json.loads((out / "cs_value.json").read_text())
    return data


def cents(text: str) -> int:
    return int(Decimal(text) * 100)


def same_ratio(got: Any, expected: Decimal | None) -> bool:
    if expected is None:
        return got is None
    if isinstance(got, bool) or not isinstance(got, int | float):
        return False
    return Decimal(repr(got)) == expected


def compare(expected: dict[str, dict[str, Any]], got: dict[str, Any]) -> list[str]:
    """Every difference between the oracle's periods and cs_value.json's."""
    problems: list[str] = []
    periods = got.get("periods", {})
    if sorted(periods) != sorted(expected):
        problems.append(f"periods: expected {sorted(expected)}, got {sorted(periods)}")
    for p in sorted(set(expected) & set(periods)):
        e, g = expected[p], periods[p]
        for key in EXACT_KEYS:
            value = g.get(key, MISSING)
            if value != e[key] or (key in COUNT_KEYS and type(value) is not int):
                problems.append(f"{p} {key}: expected {e[key]!r}, got {value!r}")
        for key in RATIO_KEYS:
            value = g.get(key, MISSING)
            if not same_ratio(value, e[key]):
                problems.append(f"{p} {key}: expected {e[key]}, got {value!r}")
        problems += compare_channels(p, e["by_channel"], g.get("by_channel", {}), g.get("cost"))
        if "after_contact" in e:
            problems += compare_after(p, e["after_contact"], g.get("after_contact", {}))
        elif g.get("after_contact"):
            problems.append(f"{p} after_contact without orders: got {g['after_contact']!r}")
    return problems


def compare_channels(
    p: str, expected: dict[str, Any], got: dict[str, Any], period_cost: Any
) -> list[str]:
    problems: list[str] = []
    if sorted(got) != sorted(expected):
        return [f"{p} by_channel: expected {sorted(expected)}, got {sorted(got)}"]
    for ch, e in expected.items():
        g = got[ch]
        if g.get("contacts") != e["contacts"]:
            problems.append(f"{p} {ch} contacts: expected {e['contacts']}, got {g.get('contacts')}")
        for key in ("cost", "cost_per_contact"):
            value = g.get(key)
            if value != e[key]:
                problems.append(f"{p} {ch} {key}: expected {e[key]}, got {value!r}")
    return problems


def compare_after(p: str, expected: dict[str, Any], got: dict[str, Any]) -> list[str]:
    problems: list[str] = []
    if sorted(got) != sorted(expected):
        return [f"{p} after_contact outcomes: expected {sorted(expected)}, got {sorted(got)}"]
    for outcome, horizons in expected.items():
        if sorted(got[outcome]) != sorted(horizons):
            problems.append(
                f"{p} after_contact[{outcome}] horizons: expected {sorted(horizons)}, "
                f"got {sorted(got[outcome])}"
            )
            continue
        for h, e in horizons.items():
            g = got[outcome][h]
            where = f"{p} after_contact[{outcome}][{h}]"
            if g.get("customers") != e["customers"]:
                problems.append(f"{where} customers: expected {e['customers']}, got {g}")
            if g.get("orders_after", MISSING) != e["orders_after"]:
                problems.append(f"{where} orders_after: expected {e['orders_after']!r}, got {g}")
            if not same_ratio(g.get("active_after", MISSING), e["active_after"]):
                problems.append(f"{where} active_after: expected {e['active_after']}, got {g}")
    return problems


def parquet_to_csv(source: Path, target: Path) -> Path:
    """The same rows as CSV (ISO instants, tags joined by '|', empty = null)."""
    frame = pl.read_parquet(source)

    def cell(value: Any) -> str:
        if value is None:
            return ""
        if isinstance(value, datetime):
            return value.isoformat()
        if isinstance(value, list):
            return "|".join(value)
        if isinstance(value, float):
            return repr(value)
        return str(value)

    with target.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(frame.columns)
        for row in frame.iter_rows():
            writer.writerow([cell(v) for v in row])
    return target


# ------------------------------------------------------------------------ the sample


def flat_baselines(rules: Path) -> None:
    """Give every `baseline: {method: control}` rule a flat baseline over its lookback."""
    for path in sorted(rules.rglob("*.yaml")):
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        changed = False
        for rule in doc.get("rules") or []:
            baseline = rule.get("baseline")
            if isinstance(baseline, dict) and baseline.get("method") == "control":
                rule["baseline"] = {"lookback_days": baseline.get("lookback_days", 182)}
                changed = True
        if changed:
            path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")


def test_sample_workspace_matches_oracle(tmp_path: Path) -> None:
    ws = tmp_path / "sample"
    result = CliRunner().invoke(
        app, ["sample", str(ws), "--contacts", "4000", "--seed", "3"], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    flat_baselines(ws / "rules")  # the oracle's baseline is the flat one
    data = ws / "sample_data"
    contacts_csv = parquet_to_csv(data / "contacts.parquet", tmp_path / "contacts.csv")
    orders_csv = parquet_to_csv(data / "orders.parquet", tmp_path / "orders.csv")

    got = run_value(ws, tmp_path / "out")
    expected = oracle_value(ws, contacts_csv, orders_csv)

    assert len(expected) == 24  # Dec 2024 - Nov 2026 in New York time
    problems = compare(expected, got)
    assert not problems, "\n".join(problems)


# ------------------------------------------------------------------- the tiny workspace

RULES = """
decisions:
  - {id: fee, title: Fee, kind: fee, department: billing, effective: 2026-03-01}
rules:
  - {id: fee-calls, decision: fee, match: {reason: ["billing*"]}, share: 0.5}
"""

# Rates (conftest.RATES): phone 0.40 + 1.05/min, chat 0.15, anything else 1.00.
CONTACTS = """
contact_id,started_at,channel,reason,handle_seconds,customer_id,outcome,revenue
a1,2026-03-01T10:00:00Z,phone,billing.fee,60,A,resolved,
a2,2026-03-08T10:00:00Z,phone,tech.x,11,A,resolved,
b2,2026-03-05T09:00:00Z,chat,billing.fee,,B,resolved,5.00
b1,2026-03-05T09:00:00Z,chat,other,,B,saved,
b3,2026-03-06T09:00:00Z,email,other,,B,escalated,
c1,2026-03-10T12:00:00Z,phone,sales.new,1,C,sale,10.125
c2,2026-03-25T00:00:00Z,phone,account.cancel,7,C,saved,
n1,2026-03-15T08:00:00Z,chat,account.cancel,,,saved,
n2,2026-03-16T08:00:00Z,sms,sales.new,,,upsell,20.00
d1,2026-03-20 08:00,email,other,,D,,
s1,2026-03-21T08:00:00Z,phone,sales.new,10,D,sale,
a3,2026-03-28T10:00:00Z,chat,other,,A,resolved,
a4,2026-04-02T10:00:00Z,phone,billing.fee,120,A,resolved,
f1,2026-04-05T00:00:00Z,chat,other,,F,unresolved,
f2,2026-04-11T23:59:59Z,chat,other,,F,unresolved,
e1,2026-04-20T00:00:00Z,email,other,,E,saved,
"""
# a2: exactly 7 days after a1 -> not a repeat. b1/b2: same instant, neither is a repeat;
# B's first contact is b1 (contact_id ascending) -> outcome "saved". b3, s1: repeats.
# a4: repeat of a3 across months. f2: 6d 23:59:59 after f1 -> repeat.
# c1: revenue 10.125 -> 10.13 (half-up; 10.125 is exact in binary, so no float excuse).
# n1: saved without customer. d1: naive (read in UTC), null outcome -> "unknown".

ORDERS = """
customer_id,ordered_at,amount
C,2025-03-24T23:59:59Z,50.00
C,2025-03-25T00:00:00Z,11.11
C,2026-03-10T12:00:00Z,5.00
C,2026-03-20T12:00:00Z,7.125
C,2026-03-20T12:00:01Z,3.00
C,2026-03-25T00:00:00Z,2.22
B,2026-03-06T09:00:00Z,40.00
E,2026-04-21T00:00:00Z,9.99
Z,2026-04-30T00:00:00Z,1.00
"""
# c2 (saved, t = 2026-03-25T00:00Z): t - 365 days = 2025-03-25T00:00Z is included, one
# second earlier is not, the order at t is not: 11.11 + 5.00 + 7.13 + 3.00 = 26.24
# (7.125, exact in binary, rounds half-up to 7.13).
# C's t0 = c1 = 2026-03-10T12:00Z: the order at t0 is out, the one at t0 + 10 days in.
# The last order, 2026-04-30T00:00Z, is April's latest t0 (e1) + 10 days: 10 observable,
# 30 not.

VALUE = """
timezone: UTC
value:
  sale_outcomes: [sale, upsell]
  save_outcomes: [saved]
  save_value: 120.50
  repeat_window_days: 7
  horizons_days: [10, 30]
"""


def tiny_workspace(root: Path, with_orders: bool) -> Path:
    settings = VALUE + ("orders: orders.csv\n" if with_orders else "")
    write_workspace(root, RULES, CONTACTS, settings=settings)
    (root / "orders.csv").write_text(textwrap.dedent(ORDERS).lstrip())
    return root


def test_oracle_on_the_tiny_workspace_is_hand_computed(tmp_path: Path) -> None:
    """Pin the oracle itself on the edges, so a shared misreading cannot hide."""
    ws = tiny_workspace(tmp_path / "ws", with_orders=True)
    v = oracle_value(ws, ws / "contacts.csv", ws / "orders.csv")
    march, april = v["2026-03"], v["2026-04"]
    # phone 1.45 + 0.5925 + 0.4175 + 0.5225 + 0.575, chat 4 x 0.15, email 2 x 1, sms 1
    assert march["cost"] == "7.16"  # 7.1575 half-up
    assert {ch: e["cost"] for ch, e in march["by_channel"].items()} == {
        "chat": "0.60",
        "email": "2.00",
        "phone": "3.56",
        "sms": "1.00",
    }
    assert (march["avoidable_cost"], march["unattributed_cost"]) == ("0.80", "6.36")
    assert (march["revenue_won"], march["sales"], march["saves"]) == ("30.13", 3, 3)
    assert march["save_value_total"] == "26.24"
    assert (march["contacts_with_customer"], march["repeats"]) == (10, 2)
    assert march["repeat_cost"] == "1.58"  # b3 1.00 + s1 0.575
    assert march["net_value"] == "49.21"
    after = march["after_contact"]
    assert sorted(after) == ["resolved", "sale", "saved", "unknown"]
    assert after["sale"]["10"] == {
        "customers": 1,
        "orders_after": "7.13",
        "active_after": Decimal(1),
    }
    assert after["sale"]["30"]["orders_after"] == "12.35"
    assert after["saved"]["10"]["orders_after"] == "40.00"
    assert after["unknown"]["30"] == {"customers": 1, "orders_after": "0.00", "active_after": 0}
    assert (april["repeats"], april["contacts_with_customer"], april["saves"]) == (2, 4, 1)
    assert (april["cost"], april["avoidable_cost"], april["net_value"]) == ("3.80", "1.25", "-3.80")
    assert april["avoidable_share"] == Decimal("0.328947")
    assert april["after_contact"]["saved"] == {
        "10": {"customers": 1, "orders_after": "9.99", "active_after": Decimal(1)},
        "30": {"customers": 1, "orders_after": None, "active_after": None},
    }

    no_orders = oracle_value(ws, ws / "contacts.csv", None)
    assert no_orders["2026-03"]["save_value_total"] == "361.50"  # 3 x 120.50


@pytest.mark.parametrize("with_orders", [True, False], ids=["orders", "no-orders"])
def test_tiny_workspace_matches_oracle(tmp_path: Path, with_orders: bool) -> None:
    ws = tiny_workspace(tmp_path / "ws", with_orders)
    got = run_value(ws, tmp_path / "out")
    expected = oracle_value(ws, ws / "contacts.csv", ws / "orders.csv" if with_orders else None)
    problems = compare(expected, got)
    assert not problems, "\n".join(problems)
