"""Hand-computed ledgers, one rule feature at a time (SPEC 3-5).

Rates used unless a test says otherwise (see conftest.RATES):
phone 0.40/contact + 1.05/minute, chat 0.15/contact, anything else 1.00/contact.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from textwrap import dedent

from conftest import ledger, row, write_workspace

FEE = """
decisions:
  - {id: fee, title: Fee, kind: fee, department: billing, effective: 2026-03-01}
"""


def test_rates_per_channel_and_default(ws: Path) -> None:
    write_workspace(
        ws,
        FEE + "rules:\n  - {id: r, decision: fee, match: {reason: [billing.fee]}}\n",
        """
        contact_id,started_at,channel,reason,handle_seconds
        1,2026-03-01T10:00:00,phone,billing.fee,120
        2,2026-03-02T10:00:00,chat,billing.fee,600
        3,2026-03-02T10:00:00,email,other,60
        """,
    )
    rows = ledger(ws)
    # phone: 0.40 + 1.05 * 2 min = 2.50; chat has no per_minute -> 0.15 (no default fallback)
    fee = row(rows, "2026-03", "fee")
    assert (fee["contacts"], fee["handle_minutes"], fee["cost"]) == ("2.000", "12.00", "2.65")
    assert (fee["revenue"], fee["net"], fee["cost_center"]) == ("0.00", "-2.65", "CC-100")
    un = row(rows, "2026-03", "unattributed")  # email -> default 1.00
    assert (un["department_id"], un["cost_center"], un["cost"], un["net"]) == (
        "unattributed",
        "",
        "1.00",
        "-1.00",
    )
    assert len(rows) == 2


def test_window_offset_days_and_ends(ws: Path) -> None:
    write_workspace(
        ws,
        """
        decisions:
          - {id: fee, title: Fee, kind: fee, department: billing, effective: 2026-03-10,
             ends: 2026-03-13}
        rules:
          - id: r
            decision: fee
            match: {channel: [email]}
            window: {start_offset_days: 2, days: 3}
        """,
        """
        contact_id,started_at,channel
        1,2026-03-11T10:00:00,email
        2,2026-03-12T00:00:00,email
        3,2026-03-13T23:59:59,email
        4,2026-03-14T10:00:00,email
        """,
    )
    # window = [03-12, 03-15) cut at ends 03-13 -> contacts 2 and 3
    assert row(ledger(ws), "2026-03", "fee")["cost"] == "2.00"


def test_share_and_max_within_a_decision(ws: Path) -> None:
    write_workspace(
        ws,
        FEE
        + dedent(
            """
        rules:
          - {id: a, decision: fee, match: {channel: [email]}, share: 0.3}
          - {id: b, decision: fee, match: {reason: [x]}, share: 0.5}
        """
        ),
        """
        contact_id,started_at,channel,reason
        1,2026-03-05T10:00:00,email,x
        2,2026-03-05T10:00:00,email,y
        """,
    )
    # contact 1 matches both rules of one decision: the larger weight (0.5), not the sum
    fee = row(ledger(ws), "2026-03", "fee")
    assert (fee["contacts"], fee["cost"]) == ("0.800", "0.80")


def test_baseline_charges_only_the_excess(ws: Path) -> None:
    before = [f"b{i},2026-02-{20 + i:02d}T09:00:00,email,billing.fee" for i in range(5)]
    during = [f"m{i},2026-03-{1 + i:02d}T09:00:00,email,billing.fee" for i in range(20)]
    write_workspace(
        ws,
        FEE
        + dedent(
            """
        rules:
          - id: r
            decision: fee
            match: {reason: [billing.fee]}
            baseline: {lookback_days: 10}
        """
        ),
        "contact_id,started_at,channel,reason\n" + "\n".join(before + during) + "\n",
    )
    # B = 5 in [02-19, 03-01) -> b = 0.5/day; March has 31 window days -> E = 15.5
    # A = 20 -> f = (20 - 15.5) / 20 = 0.225; 20 contacts x 1.00 x 0.225 = 4.50
    rows = ledger(ws)
    fee = row(rows, "2026-03", "fee")
    assert (fee["contacts"], fee["cost"]) == ("4.500", "4.50")
    assert row(rows, "2026-03", "unattributed")["cost"] == "15.50"
    assert row(rows, "2026-02", "unattributed")["cost"] == "5.00"


def test_baseline_above_matches_gives_no_line(ws: Path) -> None:
    before = [f"b{i},2026-02-{19 + i:02d}T09:00:00,email,billing.fee" for i in range(10)]
    write_workspace(
        ws,
        FEE
        + dedent(
            """
        rules:
          - {id: r, decision: fee, match: {reason: [billing.fee]}, baseline: {lookback_days: 10}}
        """
        ),
        "contact_id,started_at,channel,reason\n"
        + "\n".join([*before, "m1,2026-03-03T09:00:00,email,billing.fee"])
        + "\n",
    )
    # b = 1/day, E = 31 > A = 1 -> f = 0: weight 0, so no decision row, all unattributed
    rows = ledger(ws, period="2026-03")
    assert [r["decision_id"] for r in rows] == ["unattributed"]
    assert rows[0]["cost"] == "1.00"


TWO_DECISIONS = """
decisions:
  - {id: fee, title: Fee, kind: fee, department: billing, effective: 2026-03-01}
  - {id: app, title: App, kind: launch, department: product, effective: 2026-03-01}
rules:
  - {id: r-fee, decision: fee, match: {reason: [billing.fee]}, share: 0.8, priority: 1}
  - {id: r-app, decision: app, match: {channel: [email]}, share: 0.6}
"""
ONE_CONTACT = """
contact_id,started_at,channel,reason
1,2026-03-05T10:00:00,email,billing.fee
"""


def test_split_normalises_and_rounds_by_largest_remainder(ws: Path) -> None:
    write_workspace(ws, TWO_DECISIONS, ONE_CONTACT, settings="overlap: split\n")
    rows = ledger(ws)
    # S = 0.8 + 0.6 = 1.4 > 1: fee 4/7 = 0.5714..., app 3/7 = 0.4285... of 1.00
    # floors 57 + 42 = 99 cents; the missing cent goes to app (remainder .857 > .142)
    assert (row(rows, "2026-03", "fee")["cost"], row(rows, "2026-03", "app")["cost"]) == (
        "0.57",
        "0.43",
    )
    assert row(rows, "2026-03", "fee")["contacts"] == "0.571"
    assert row(rows, "2026-03", "unattributed")["cost"] == "0.00"


def test_priority_keeps_only_the_highest(ws: Path) -> None:
    write_workspace(ws, TWO_DECISIONS, ONE_CONTACT, settings="overlap: priority\n")
    rows = ledger(ws)
    # only r-fee (priority 1) is kept: weight 0.8; app has no weight -> no row
    assert row(rows, "2026-03", "fee")["cost"] == "0.80"
    assert row(rows, "2026-03", "unattributed")["cost"] == "0.20"
    assert "app" not in {r["decision_id"] for r in rows}


def test_remainder_ties_go_by_department_then_decision(ws: Path) -> None:
    write_workspace(
        ws,
        """
        decisions:
          - {id: zeta, title: Z, kind: fee, department: billing, effective: 2026-03-01}
          - {id: alpha, title: A, kind: fee, department: product, effective: 2026-03-01}
          - {id: beta, title: B, kind: fee, department: billing, effective: 2026-03-01}
        rules:
          - {id: r1, decision: zeta, match: {channel: [email]}}
          - {id: r2, decision: alpha, match: {channel: [email]}}
          - {id: r3, decision: beta, match: {channel: [email]}}
        """,
        "contact_id,started_at,channel\n1,2026-03-05T10:00:00,email\n",
    )
    rows = ledger(ws)
    # three equal thirds of 1.00: 33 + 33 + 33 = 99, one cent to the smallest
    # (department_id, decision_id) = (billing, beta)
    costs = {r["decision_id"]: r["cost"] for r in rows}
    assert costs == {"beta": "0.34", "zeta": "0.33", "alpha": "0.33", "unattributed": "0.00"}
    assert [r["decision_id"] for r in rows] == ["beta", "zeta", "alpha", "unattributed"]


def test_revenue_monthly_by_period_and_in_force(ws: Path) -> None:
    write_workspace(
        ws,
        """
        decisions:
          - {id: fee, title: Fee, kind: fee, department: billing, effective: 2026-03-15,
             ends: 2026-04-10, revenue: {monthly: 100.00}}
          - {id: app, title: App, kind: launch, department: product, effective: 2026-03-01,
             revenue: {by_period: {2026-03: 50.5, 2026-05: 7}}}
        rules: []
        """,
        """
        contact_id,started_at,channel
        1,2026-03-05T10:00:00,email
        2,2026-04-05T10:00:00,email
        3,2026-05-05T10:00:00,email
        """,
    )
    rows = ledger(ws)
    got = {(r["period"], r["decision_id"]): (r["contacts"], r["revenue"], r["net"]) for r in rows}
    assert got == {
        ("2026-03", "app"): ("0.000", "50.50", "50.50"),
        ("2026-03", "fee"): ("0.000", "100.00", "100.00"),
        ("2026-03", "unattributed"): ("1.000", "0.00", "-1.00"),
        ("2026-04", "fee"): ("0.000", "100.00", "100.00"),  # app: April missing -> 0, no row
        ("2026-04", "unattributed"): ("1.000", "0.00", "-1.00"),
        ("2026-05", "app"): ("0.000", "7.00", "7.00"),  # fee ended 04-10
        ("2026-05", "unattributed"): ("1.000", "0.00", "-1.00"),
    }


POOL = """
costs:
  currency: EUR
  method: pool
  pool: {by_period: {2026-03: 100.00, 2026-04: 10.00}}
"""


def test_pool_by_handle_time_and_evenly_when_zero(ws: Path) -> None:
    write_workspace(
        ws,
        FEE + "rules:\n  - {id: r, decision: fee, match: {reason: [x]}}\n",
        """
        contact_id,started_at,channel,reason,handle_seconds
        1,2026-03-05T10:00:00,phone,x,60
        2,2026-03-05T10:00:00,phone,y,120
        3,2026-03-05T10:00:00,phone,y,0
        4,2026-04-05T10:00:00,phone,x,0
        5,2026-04-05T10:00:00,phone,y,0
        6,2026-04-05T10:00:00,phone,y,
        """,
        costs=POOL,
    )
    rows = ledger(ws)
    # March: 100 x 60/180 = 33.333.. -> 33.33; the rest 66.666.. takes the spare cent
    assert row(rows, "2026-03", "fee")["cost"] == "33.33"
    assert row(rows, "2026-03", "unattributed")["cost"] == "66.67"
    # April: no handle time at all -> 10.00 spread evenly over 3 contacts
    assert row(rows, "2026-04", "fee")["cost"] == "3.33"
    assert row(rows, "2026-04", "unattributed")["cost"] == "6.67"


def test_match_keys_prefix_tags_text_regex_fields(ws: Path) -> None:
    write_workspace(
        ws,
        """
        decisions:
          - {id: d1, title: Prefix, kind: fee, department: billing, effective: 2026-03-01}
          - {id: d2, title: Tags, kind: fee, department: billing, effective: 2026-03-01}
          - {id: d3, title: Text, kind: fee, department: product, effective: 2026-03-01}
          - {id: d4, title: Regex, kind: fee, department: product, effective: 2026-03-01}
          - {id: d5, title: Fields, kind: fee, department: product, effective: 2026-03-01}
        rules:
          - {id: r1, decision: d1, match: {reason: ["billing.late*", billing]}}
          - {id: r2, decision: d2, match: {tags: [fee, "promo*"]}}
          - {id: r3, decision: d3, match: {text: ["Late Fee"]}}
          - {id: r4, decision: d4, match: {text_regex: "code\\\\s+\\\\d+"}}
          - {id: r5, decision: d5, match: {fields: {plan: [basic, "pro*"]}, channel: [email]}}
        """,
        """
        contact_id,started_at,channel,reason,tags,text,plan
        1,2026-03-05T10:00:00,email,billing.late_fee,,,
        2,2026-03-05T10:00:00,email,billing.fee,,,
        3,2026-03-05T10:00:00,email,Billing.late_fee,vip | fee,,
        4,2026-03-05T10:00:00,email,,promotion,THE LATE FEE!,
        5,2026-03-05T10:00:00,email,,feed,Code   42 failed,professional
        6,2026-03-05T10:00:00,email,,,,basic
        7,2026-03-05T10:00:00,chat,,,,basic
        """,
    )
    rows = {r["decision_id"]: r["contacts"] for r in ledger(ws)}
    # d1: contact 1 only (prefix; 'billing' alone is no prefix of billing.fee, so 2 is
    #     unattributed; reason is case-sensitive so 3 does not match)
    # d2: 3 (tag 'fee' once trimmed); 4 (prefix promo*) is shared with d3 (text,
    #     any case): 0.5 each; 'feed' is not 'fee'
    # d4 (regex) and d5 (pro* on plan, email) share 5: 0.5 each; d5 also takes 6;
    #     7 is chat -> unattributed with 2
    assert rows == {
        "d1": "1.000",
        "d2": "1.500",
        "d3": "0.500",
        "d4": "0.500",
        "d5": "1.500",
        "unattributed": "2.000",
    }


def test_timezone_decides_the_period(ws: Path) -> None:
    contacts = """
    contact_id,started_at,channel
    1,2026-03-31T23:30:00-04:00,email
    2,2026-03-31T22:00:00,email
    """
    write_workspace(ws, "decisions: []\n", contacts, settings="timezone: UTC\n")
    utc = {(r["period"], r["contacts"]) for r in ledger(ws)}
    assert utc == {
        ("2026-03", "1.000"),
        ("2026-04", "1.000"),
    }  # 03:30 UTC on 1 April; 23:30 EDT on 31 March
    write_workspace(ws, "decisions: []\n", contacts, settings="timezone: America/New_York\n")
    ny = {(r["period"], r["contacts"]) for r in ledger(ws)}
    assert ny == {("2026-03", "2.000")}


def test_every_period_adds_up(ws: Path) -> None:
    write_workspace(ws, TWO_DECISIONS, ONE_CONTACT + "2,2026-03-06T10:00:00,phone,x\n")
    rows = ledger(ws)
    total = sum(Decimal(r["cost"]) for r in rows)
    # email 1.00 + phone 0.40 (no handle time)
    assert total == Decimal("1.40")


def test_fields_naming_tags_uses_the_tags_rule(ws: Path) -> None:
    write_workspace(
        ws,
        FEE + "rules:\n  - {id: r, decision: fee, match: {fields: {tags: [fee]}}}\n",
        "contact_id,started_at,channel,tags\n1,2026-03-05T10:00:00,email,fee\n"
        "2,2026-03-05T10:00:00,email,vip | fee\n3,2026-03-05T10:00:00,email,feed\n",
    )
    assert row(ledger(ws), "2026-03", "fee")["contacts"] == "2.000"


def test_fields_on_timestamp_or_handle_time_is_a_workspace_error(ws: Path) -> None:
    import pytest

    from chargeback.errors import WorkspaceError

    write_workspace(
        ws,
        FEE + "rules:\n  - {id: r, decision: fee, match: {fields: {started_at: [x]}}}\n",
        "contact_id,started_at,channel\n1,2026-03-05T10:00:00,email\n",
    )
    with pytest.raises(WorkspaceError, match=r"main.yaml:\d+: rule 'r': match field 'started_at'"):
        ledger(ws)
