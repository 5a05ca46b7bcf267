"""Differential test: the cohort view of cs_value.json (issue 14) against tests/cohort_oracle.py.

Inputs, each run through `chargeback report --format json` with orders from the
workspace's `orders:` setting:

- a hand-made UTC workspace on which the oracle itself is pinned (so a misreading
  shared by both sides cannot hide), then compared with the product;
- seeded random workspaces in DST time zones (America/New_York, Australia/Sydney):
  a few hundred contacts and orders over 20 months with a month without contacts,
  several outcomes and none, contacts without customer_id, same-instant first
  contacts, contacts on local month boundaries, offset / Z / naive / microsecond
  timestamps, refunds and half-cent amounts, orders exactly at t0, at t0 + h days,
  at mid(c) + h days, at start(c) and start(c - 12 months), and the last order put
  exactly on one cell's observability boundary; small horizons so that observable
  and unobservable cells both occur; also a `--period` run (the window still starts
  at the first month of the data) and a run without orders (no "cohorts");
- the generated sample (`chargeback sample DIR --contacts 4000 --seed 3`), every period.

Every period's "cohorts" object is compared entirely; a failure names the first
differing path, then lists a few more.
"""

from __future__ import annotations

import json
import random
import textwrap
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from cohort_oracle import (
    month_index,
    month_mid,
    month_name,
    month_start,
    observable_reach,
    oracle_cohorts,
)
from conftest import write_workspace
from test_value_differential import parquet_to_csv
from typer.testing import CliRunner

from cli import app

MISSING = "<missing>"

RULES = """
decisions:
  - {id: fee, title: Fee, kind: fee, department: billing, effective: 2024-01-01}
rules:
  - {id: fee-calls, decision: fee, match: {reason: ["billing*"]}, share: 0.5}
"""


# ---------------------------------------------------------------------------- helpers


def run_report(workspace: Path, out: Path, *extra: str) -> dict[str, Any]:
    args = ["report", "--workspace", str(workspace), "--format", "json", "--out", str(out)]
    result = CliRunner().invoke(app, [*args, *extra])
    assert result.exit_code == 0, result.output
    data: dict[str, Any] = json.loads((out / "cs_value.json").read_text())
    return data


def differences(expected: Any, got: Any, path: str) -> list[str]:
    """Every leaf where got differs from expected (Decimal = a 6-place JSON number)."""
    if isinstance(expected, dict):
        if not isinstance(got, dict):
            return [f"{path}: expected an object, got {got!r}"]
        out = []
        if sorted(got) != sorted(expected):
            out.append(f"{path}: expected keys {sorted(expected)}, got {sorted(got)}")
        for key in expected:
            out += differences(expected[key], got.get(key, MISSING), f"{path}.{key}")
        return out
    if isinstance(expected, list):
        return [] if got == expected else [f"{path}: expected {expected!r}, got {got!r}"]
    if isinstance(expected, Decimal):
        ok = isinstance(got, int | float) and not isinstance(got, bool)
        if ok and Decimal(repr(got)) == expected:
            return []
        return [f"{path}: expected {expected}, got {got!r}"]
    if isinstance(expected, int) and (type(got) is not int or got != expected):
        return [f"{path}: expected {expected!r}, got {got!r}"]
    return [] if got == expected else [f"{path}: expected {expected!r}, got {got!r}"]


def assert_cohorts(expected: dict[str, dict[str, Any]], data: dict[str, Any]) -> None:
    periods = data["periods"]
    problems = (
        []
        if sorted(periods) == sorted(expected)
        else [f"periods: expected {sorted(expected)}, got {sorted(periods)}"]
    )
    for p in sorted(expected):
        if p in periods:
            problems += differences(expected[p], periods[p].get("cohorts", MISSING), f"{p}.cohorts")
    if problems:
        head = f"first difference: {problems[0]}\n({len(problems)} in all)\n"
        raise AssertionError(head + "\n".join(problems[1:12]))


def j(x: str) -> Decimal:
    return Decimal(x)


# ------------------------------------------------------------------- hand-made workspace

HAND_CONTACTS = """
contact_id,started_at,channel,reason,customer_id,outcome
d1,2026-01-05T00:00:00Z,chat,other,D,resolved
a2,2026-02-03T10:00:00Z,chat,other,A,sale
a1,2026-02-03T10:00:00Z,chat,other,A,resolved
n1,2026-02-10T08:00:00Z,chat,billing.fee,,saved
b1,2026-02-20T00:00:00Z,chat,other,B,
c1,2026-03-02T00:00:00Z,chat,other,C,resolved
"""
HAND_ORDERS = """
customer_id,ordered_at,amount
A,2026-02-03T10:00:00Z,100.00
A,2026-02-13T10:00:00Z,20.005
A,2026-03-05T10:00:00.000001Z,3.00
B,2026-02-25T00:00:00Z,-5.00
B,2026-03-22T00:00:00Z,2.00
D,2025-02-01T00:00:00Z,50.00
D,2026-02-25T00:00:00Z,7.50
E,2026-02-01T00:00:00Z,30.00
Z,2026-03-22T00:00:00Z,1.00
"""
# Feb: A's first contact is a1 (same instant as a2, id ascending): resolved, t0 Feb 3 10:00;
# the order at t0 is out, 20.005 -> 20.01 at exactly t0 + 10 days is in, 3.00 one
# microsecond after t0 + 30 days is out. B (null outcome -> unknown) t0 Feb 20: -5.00 in
# both horizons, 2.00 exactly at t0 + 30 days in 30 only. Comparison: D (an order exactly
# at start(Feb - 12 months), no contact in Feb); E's order at start(Feb) is not before it.
# D from mid(Feb) = Feb 15 00:00: 7.50 at mid + 10 days. Last order Mar 22 00:00 = Feb's
# reach (B's t0 Feb 20 > mid) + 30 days: observable exactly. March (mid Mar 16 12:00) is
# not observable at 10 days. Jan: D contacted, so the comparison is empty.
HAND_SETTINGS = """
timezone: UTC
orders: orders.csv
value:
  horizons_days: [10, 30]
"""


def group(n: int, orders: str, active: str | None, per: str | None) -> dict[str, Any]:
    return {
        "customers": n,
        "orders_after": orders,
        "active_after": None if active is None else j(active),
        "per_customer": per,
    }


def lifted(g: dict[str, Any], per: str | None, active: str | None) -> dict[str, Any]:
    return {
        **g,
        "lift": {"per_customer": per, "active_after": None if active is None else j(active)},
    }


def hand_workspace(root: Path, with_orders: bool = True) -> Path:
    settings = HAND_SETTINGS if with_orders else HAND_SETTINGS.replace("orders: orders.csv\n", "")
    write_workspace(root, RULES, HAND_CONTACTS, settings=settings)
    (root / "orders.csv").write_text(textwrap.dedent(HAND_ORDERS).lstrip())
    return root


def test_oracle_is_hand_computed(tmp_path: Path) -> None:
    ws = hand_workspace(tmp_path / "ws")
    got = oracle_cohorts(ws, ws / "contacts.csv", ws / "orders.csv")
    assert sorted(got) == ["2026-01", "2026-02", "2026-03"]
    comparison = group(1, "7.50", "1", "7.50")
    feb10 = {
        "contacted": lifted(group(2, "15.01", "1", "7.51"), "0.01", "0"),  # 7.505 - 7.50
        "outcomes": {
            "resolved": lifted(group(1, "20.01", "1", "20.01"), "12.51", "0"),
            "unknown": lifted(group(1, "-5.00", "1", "-5.00"), "-12.50", "0"),
        },
        "comparison": comparison,
    }
    feb30 = {
        "contacted": lifted(group(2, "17.01", "1", "8.51"), "1.01", "0"),  # 8.505 - 7.50
        "outcomes": {
            "resolved": lifted(group(1, "20.01", "1", "20.01"), "12.51", "0"),
            "unknown": lifted(group(1, "-3.00", "1", "-3.00"), "-10.50", "0"),
        },
        "comparison": comparison,
    }
    jan = {
        "contacted": lifted(group(1, "0.00", "0", "0.00"), None, None),
        "outcomes": {"resolved": lifted(group(1, "0.00", "0", "0.00"), None, None)},
        "comparison": group(0, "0.00", None, None),
    }
    assert got["2026-01"] == {
        "months": ["2026-01"],
        "latest": {"10": "2026-01", "30": "2026-01"},
        "cells": {"2026-01": {"10": jan, "30": jan}},
    }
    assert got["2026-03"] == {
        "months": ["2026-01", "2026-02", "2026-03"],
        "latest": {"10": "2026-02", "30": "2026-02"},
        "cells": {
            "2026-01": {"10": jan, "30": jan},
            "2026-02": {"10": feb10, "30": feb30},
            "2026-03": {"10": None, "30": None},
        },
    }
    # mid(c) of a DST month, in integer microseconds: March 2026 in New York is 743 hours.
    ny = ZoneInfo("America/New_York")
    assert month_mid(month_index("2026-03"), ny) == datetime(2026, 3, 16, 16, 30, tzinfo=UTC)
    assert month_mid(month_index("2026-11"), ny) - month_start(month_index("2026-11"), ny) == (
        timedelta(days=15, minutes=30)
    )


def test_hand_workspace_matches_oracle(tmp_path: Path) -> None:
    ws = hand_workspace(tmp_path / "ws")
    expected = oracle_cohorts(ws, ws / "contacts.csv", ws / "orders.csv")
    assert_cohorts(expected, run_report(ws, tmp_path / "out"))


def test_no_cohorts_without_orders(tmp_path: Path) -> None:
    ws = hand_workspace(tmp_path / "ws", with_orders=False)
    data = run_report(ws, tmp_path / "out")
    assert data["periods"]
    assert all("cohorts" not in v for v in data["periods"].values())


# --------------------------------------------------------------------- random workspaces

OUTCOMES = ["resolved", "resolved", "unresolved", "saved", "sale", None]


def stamp(instant: datetime, tz: ZoneInfo, rng: random.Random) -> str:
    """The instant as Z, as a local offset, or naive local (only away from DST changes)."""
    local = instant.astimezone(tz)
    form = rng.randrange(3)
    if form == 2 and 8 <= local.hour <= 20:
        return local.replace(tzinfo=None).isoformat(sep=" ")
    if form == 1:
        return local.isoformat()
    return instant.isoformat().replace("+00:00", "Z")


def amount(rng: random.Random) -> str:
    cents = rng.randint(-3000, 40000)
    if rng.random() < 0.2:  # a half cent, to check per-row rounding (away from zero)
        return f"{Decimal(cents) / 100 + Decimal('0.005') * (1 if cents >= 0 else -1)}"
    return f"{Decimal(cents) / 100}"


def random_instant(index: int, tz: ZoneInfo, rng: random.Random) -> datetime:
    start, end = month_start(index, tz), month_start(index + 1, tz)
    micro = rng.randrange(int((end - start) / timedelta(microseconds=1)))
    if rng.random() < 0.7:
        micro -= micro % 1_000_000
    return start + timedelta(microseconds=micro)


def random_workspace(root: Path, seed: int, tz_name: str, horizons: list[int], early: bool) -> Path:
    """Contacts 2025-01..2026-08 but Aug 2025; `early`: also a few in 2024-03 (30 months)."""
    rng = random.Random(seed)
    tz = ZoneInfo(tz_name)
    first = month_index("2025-01")
    months = [m for m in range(first, first + 20) if m != first + 7]  # Aug 2025 has none
    early_months = [month_index("2024-03")] if early else []
    customers = [f"C{i:02d}" for i in range(40)]
    buyers_only = [f"B{i:02d}" for i in range(12)]

    ids = [f"k{i:04d}" for i in range(400)]
    rng.shuffle(ids)  # file order is not id order: ties at one instant go by id
    contacts: list[tuple[str, datetime, str | None, str | None]] = []
    for i in range(300):
        m = rng.choice(months) if i >= 6 or not early else early_months[0]
        instant = random_instant(m, tz, rng)
        edge = rng.random()
        if edge < 0.05:
            instant = month_start(m, tz)  # local midnight of the 1st
        elif edge < 0.1:
            instant = month_start(m + 1, tz) - timedelta(microseconds=1)
        customer = None if rng.random() < 0.1 else rng.choice(customers)
        contacts.append((ids.pop(), instant, customer, rng.choice(OUTCOMES)))
    for _ in range(15):  # a second contact of the same customer at the same instant
        _, instant, customer, _ = rng.choice(contacts)
        contacts.append((ids.pop(), instant, customer, rng.choice(OUTCOMES)))

    orders: list[tuple[str, datetime]] = []
    for _ in range(350):
        m = rng.randrange(first - 13, first + 20)
        orders.append((rng.choice(customers + buyers_only), random_instant(m, tz, rng)))
    with_customer = [c for c in contacts if c[2] is not None]
    for _, instant, customer, _ in rng.sample(with_customer, 40):
        assert customer is not None
        orders.append((customer, instant))  # at t0: not after it
        orders.append((customer, instant + timedelta(days=rng.choice(horizons))))
    for m in rng.sample(months, 10):
        who = rng.choice(customers + buyers_only)
        orders.append((who, month_mid(m, tz)))
        orders.append((who, month_mid(m, tz) + timedelta(days=rng.choice(horizons))))
        orders.append((rng.choice(buyers_only), month_start(m - 12, tz)))
        orders.append((rng.choice(buyers_only), month_start(m, tz)))
        orders.append((rng.choice(customers), month_start(m, tz) - timedelta(microseconds=1)))

    lines = ["contact_id,started_at,channel,reason,customer_id,outcome"]
    for cid, instant, customer, outcome in contacts:
        reason = rng.choice(["billing.fee", "other"])
        lines.append(
            f"{cid},{stamp(instant, tz, rng)},chat,{reason},{customer or ''},{outcome or ''}"
        )
    settings = f"timezone: {tz_name}\norders: orders.csv\nvalue:\n  horizons_days: {horizons}\n"
    write_workspace(root, RULES, "\n".join(lines) + "\n", settings=settings)

    def write_orders(rows: list[tuple[str, datetime, str]]) -> None:
        text = ["customer_id,ordered_at,amount"]
        text += [f"{who},{stamp(at, tz, rng)},{amt}" for who, at, amt in rows]
        (root / "orders.csv").write_text("\n".join(text) + "\n")

    priced = [(who, at, amount(rng)) for who, at in orders]
    write_orders(priced)
    # The last order exactly on the boundary of one cell: (last month - 2, middle horizon).
    boundary_month = month_name(months[-3])
    h = sorted(horizons)[1]
    last = observable_reach(root, root / "contacts.csv", root / "orders.csv", boundary_month)
    last += timedelta(days=h)
    kept = [row for row in priced if row[1] <= last]
    write_orders([*kept, (rng.choice(customers), last, "1.00")])
    return root


CASES = [
    (11, "America/New_York", [1, 30, 90], False),
    (12, "Australia/Sydney", [1, 30, 90], False),
    (13, "America/New_York", [7, 45, 180], True),
    (14, "Australia/Sydney", [3, 60, 400], True),
]


@pytest.mark.parametrize(
    ("seed", "tz_name", "horizons", "early"), CASES, ids=[str(c[0]) for c in CASES]
)
def test_random_workspace_matches_oracle(
    tmp_path: Path, seed: int, tz_name: str, horizons: list[int], early: bool
) -> None:
    ws = random_workspace(tmp_path / "ws", seed, tz_name, horizons, early)
    expected = oracle_cohorts(ws, ws / "contacts.csv", ws / "orders.csv")
    cells = [c for v in expected.values() for row in v["cells"].values() for c in row.values()]
    assert any(c is None for c in cells) and any(c is not None for c in cells)
    assert_cohorts(expected, run_report(ws, tmp_path / "out"))

    # One reported month: its window still reaches back to the first month of the data
    # (or 24 months, with the early contacts).
    p = "2026-06"
    only = oracle_cohorts(ws, ws / "contacts.csv", ws / "orders.csv", periods=[p])
    assert only[p]["months"][0] == ("2024-07" if early else "2025-01")
    assert len(expected["2026-08"]["months"]) == (24 if early else 20)
    assert_cohorts(only, run_report(ws, tmp_path / "out-one", "--period", p))


# ------------------------------------------------------------------------ the sample


def test_sample_workspace_matches_oracle(tmp_path: Path) -> None:
    ws = tmp_path / "sample"
    result = CliRunner().invoke(
        app, ["sample", str(ws), "--contacts", "4000", "--seed", "3"], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    data = ws / "sample_data"
    contacts_csv = parquet_to_csv(data / "contacts.parquet", tmp_path / "contacts.csv")
    orders_csv = parquet_to_csv(data / "orders.parquet", tmp_path / "orders.csv")

    expected = oracle_cohorts(ws, contacts_csv, orders_csv)
    assert len(expected) >= 12  # the months with contacts; assert_cohorts checks the set
    assert_cohorts(expected, run_report(ws, tmp_path / "out"))
