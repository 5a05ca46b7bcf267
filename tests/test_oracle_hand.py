"""The oracle (tests/oracle.py) against ledgers worked out by hand from SPEC 3-5.

Each test writes a tiny workspace inline, and the comments show the arithmetic.
Row tuples are (period, department_id, cost_center, decision_id, contacts,
handle_minutes, cost, revenue, net).
"""

from __future__ import annotations

import csv
import textwrap
from pathlib import Path

import pytest

# tests/ has no __init__.py, so pytest puts it on sys.path
from oracle import (
    LEDGER_COLUMNS,
    oracle_ledger,
    oracle_period_totals,
)

Row = tuple[str, ...]

CONTACT_HEADER = [
    "contact_id",
    "started_at",
    "channel",
    "reason",
    "tags",
    "text",
    "handle_seconds",
    "product",
    "region",
    "outcome",
]


def workspace(
    tmp_path: Path,
    rules_yaml: str,
    contacts: list[dict[str, str]],
    settings_yaml: str | None = None,
    header: list[str] | None = None,
) -> tuple[Path, Path]:
    ws = tmp_path / "ws"
    (ws / "rules").mkdir(parents=True)
    (ws / "rules" / "all.yaml").write_text(textwrap.dedent(rules_yaml), encoding="utf-8")
    if settings_yaml is not None:
        (ws / "chargeback.yaml").write_text(textwrap.dedent(settings_yaml), encoding="utf-8")
    path = tmp_path / "contacts.csv"
    cols = header or CONTACT_HEADER
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=cols)
        writer.writeheader()
        for row in contacts:
            writer.writerow({k: row.get(k, "") for k in cols})
    return ws, path


def ledger(ws: Path, contacts: Path, periods: list[str] | None = None) -> list[Row]:
    rows = oracle_ledger(ws, contacts, periods)
    for row in rows:
        assert list(row) == LEDGER_COLUMNS
    return [tuple(row.values()) for row in rows]


def c(cid: str, at: str, channel: str, **kw: str) -> dict[str, str]:
    return {"contact_id": cid, "started_at": at, "channel": channel, **kw}


def test_rates_one_rule(tmp_path: Path) -> None:
    # c1 phone 120 s: 0.40 + 1.05 * 2 = 2.50, reason billing.late_fee matches "billing*"
    # c2 email 300 s: 3.80 (email lists no per_minute -> 0, NOT default), reason "billing"
    #    matches "billing*" (a prefix matches the bare value too)
    # c3 chat 60 s: unlisted channel -> default 5.00 + 0.0 * 1 = 5.00; reason tech, no match
    # total 11.30; fee gets c1 + c2 = 6.30, 2 contacts, (120 + 300) / 60 = 7.00 minutes
    ws, contacts = workspace(
        tmp_path,
        """
        departments:
          - {id: billing, name: Billing, cost_center: CC-4100}
        decisions:
          - {id: fee, title: Fee, kind: fee, department: billing, effective: 2026-03-01}
        costs:
          currency: USD
          method: rates
          channels:
            phone: {per_contact: 0.40, per_minute: 1.05}
            email: {per_contact: 3.80}
          default: {per_contact: 5.00, per_minute: 0.0}
        rules:
          - id: r1
            decision: fee
            match: {reason: "billing*"}
        """,
        [
            c(
                "c1",
                "2026-03-02T10:00:00",
                "phone",
                reason="billing.late_fee",
                handle_seconds="120",
            ),
            c("c2", "2026-03-03T10:00:00", "email", reason="billing", handle_seconds="300"),
            c("c3", "2026-03-04T10:00:00", "chat", reason="tech", handle_seconds="60"),
        ],
    )
    assert ledger(ws, contacts) == [
        ("2026-03", "billing", "CC-4100", "fee", "2.000", "7.00", "6.30", "0.00", "-6.30"),
        ("2026-03", "unattributed", "", "unattributed", "1.000", "1.00", "5.00", "0.00", "-5.00"),
    ]
    assert oracle_period_totals(ws, contacts) == {"2026-03": "11.30"}


def test_baseline_factor_over_two_months(tmp_path: Path) -> None:
    # effective 2026-02-25, window days 10 -> [02-25, 03-07); lookback 10 -> [02-15, 02-25)
    # B = 5 phone contacts in lookback (02-14 is outside, the chat one fails the match)
    # b = 5 / 10 = 0.5 per day
    # Feb: D = 4 (25..28), E = 2, A = 4 -> f = (4 - 2) / 4 = 0.5 -> 4 * 0.5 = 2 contacts
    # Mar: D = 6 (1..6),  E = 3, A = 4 (03-07 is outside) -> f = 1/4 -> 1 contact
    # Every contact costs 1.00 and lasts 60 s (1 minute).
    # Feb: 1 + 5 + 1 + 4 = 11 contacts, 11.00; Mar: 5 contacts, 5.00.
    # Revenue monthly 10.00 in both months (in force from 02-25, no ends).
    ws, contacts = workspace(
        tmp_path,
        """
        departments:
          - {id: ops, name: Ops, cost_center: CC-1}
        decisions:
          - id: d1
            title: D1
            kind: process
            department: ops
            effective: 2026-02-25
            revenue: {monthly: 10.00}
        costs:
          method: rates
          channels: {}
          default: {per_contact: 1.00}
        rules:
          - id: r1
            decision: d1
            match: {channel: phone}
            window: {days: 10}
            baseline: {lookback_days: 10}
        """,
        [
            c("a0", "2026-02-14T12:00:00", "phone", handle_seconds="60"),
            *[
                c(f"b{i}", f"2026-02-{d}T12:00:00", "phone", handle_seconds="60")
                for i, d in enumerate(["15", "17", "20", "22", "24"])
            ],
            c("x0", "2026-02-16T12:00:00", "chat", handle_seconds="60"),
            *[
                c(f"f{i}", f"2026-02-{d}T12:00:00", "phone", handle_seconds="60")
                for i, d in enumerate(["25", "26", "27", "28"])
            ],
            *[
                c(f"m{i}", f"2026-03-0{d}T12:00:00", "phone", handle_seconds="60")
                for i, d in enumerate(["1", "2", "5", "6", "7"])
            ],
        ],
    )
    assert ledger(ws, contacts) == [
        ("2026-02", "ops", "CC-1", "d1", "2.000", "2.00", "2.00", "10.00", "8.00"),
        ("2026-02", "unattributed", "", "unattributed", "9.000", "9.00", "9.00", "0.00", "-9.00"),
        ("2026-03", "ops", "CC-1", "d1", "1.000", "1.00", "1.00", "10.00", "9.00"),
        ("2026-03", "unattributed", "", "unattributed", "4.000", "4.00", "4.00", "0.00", "-4.00"),
    ]


RULES_TWO_DECISIONS = """
departments:
  - {id: ops, name: Ops, cost_center: CC-1}
  - {id: billing, name: Billing, cost_center: CC-2}
decisions:
  - {id: a, title: A, kind: launch, department: ops, effective: 2026-01-01}
  - {id: b, title: B, kind: fee, department: billing, effective: 2026-01-01}
costs:
  method: rates
  channels:
    phone: {per_contact: 2.00}
  default: {per_contact: 1.00}
rules:
  - {id: ra, decision: a, match: {channel: phone}, share: 0.5, priority: 1}
  - {id: rb, decision: b, match: {reason: "billing*"}}
"""

TWO_DECISION_CONTACTS = [
    c("c1", "2026-01-10T09:00:00", "phone", reason="billing.x", handle_seconds="600"),  # 2.00
    c("c2", "2026-01-11T09:00:00", "chat", reason="billing.y", handle_seconds="300"),  # 1.00
    c("c3", "2026-01-12T09:00:00", "phone", handle_seconds="0"),  # 2.00
]


def test_priority_overlap(tmp_path: Path) -> None:
    # c1 matches ra (prio 1) and rb (prio 0): only ra kept -> w_a = 0.5, rest 0.5
    # c2 matches rb only -> w_b = 1;  c3 matches ra only -> w_a = 0.5, rest 0.5
    # a: 1.000 contacts, (0.5*600 + 0.5*0)/60 = 5.00 min, 0.5*2 + 0.5*2 = 2.00
    # b: 1.000, 5.00 min, 1.00;  unattributed: 1.000, 5.00 min, 2.00;  total 5.00
    ws, contacts = workspace(
        tmp_path, RULES_TWO_DECISIONS, TWO_DECISION_CONTACTS, "overlap: priority\n"
    )
    assert ledger(ws, contacts) == [
        ("2026-01", "billing", "CC-2", "b", "1.000", "5.00", "1.00", "0.00", "-1.00"),
        ("2026-01", "ops", "CC-1", "a", "1.000", "5.00", "2.00", "0.00", "-2.00"),
        ("2026-01", "unattributed", "", "unattributed", "1.000", "5.00", "2.00", "0.00", "-2.00"),
    ]


def test_split_overlap_normalises(tmp_path: Path) -> None:
    # split (the default): c1 gets w_a = 0.5, w_b = 1 -> S = 1.5 -> a = 1/3, b = 2/3
    # c2 -> b = 1;  c3 -> a = 0.5, rest 0.5
    # a: contacts 1/3 + 1/2 = 0.8333 -> 0.833; minutes (600/3)/60 = 3.333 -> 3.33;
    #    cost 2/3 + 1 = 1.6667 (166.67 cents)
    # b: contacts 5/3 -> 1.667; minutes (400 + 300)/60 = 11.667 -> 11.67;
    #    cost 4/3 + 1 = 2.3333 (233.33 cents)
    # unattributed: 0.500 contacts, 0.00 min, cost 1.00 (100 cents exactly)
    # floors 166 + 233 + 100 = 499 of 500 -> the cent goes to the largest remainder, a (.67)
    ws, contacts = workspace(tmp_path, RULES_TWO_DECISIONS, TWO_DECISION_CONTACTS)
    assert ledger(ws, contacts) == [
        ("2026-01", "billing", "CC-2", "b", "1.667", "11.67", "2.33", "0.00", "-2.33"),
        ("2026-01", "ops", "CC-1", "a", "0.833", "3.33", "1.67", "0.00", "-1.67"),
        ("2026-01", "unattributed", "", "unattributed", "0.500", "0.00", "1.00", "0.00", "-1.00"),
    ]


def test_split_max_within_decision_then_normalise(tmp_path: Path) -> None:
    # x has two rules (share 0.6 and 0.3): within a decision the largest wins -> 0.6
    # c1 also matches y (0.9): S = 1.5 -> x = 0.4, y = 0.6; c1 costs 10.00 -> 4.00 / 6.00
    # c2 matches only x's rules -> 0.6 -> 6.00, rest 0.4 -> 4.00
    ws, contacts = workspace(
        tmp_path,
        """
        departments:
          - {id: d1, name: D1, cost_center: CC-1}
          - {id: d2, name: D2, cost_center: CC-2}
        decisions:
          - {id: x, title: X, kind: other, department: d1, effective: 2026-05-01}
          - {id: y, title: Y, kind: other, department: d2, effective: 2026-05-01}
        costs:
          method: rates
          channels: {}
          default: {per_contact: 10.00}
        rules:
          - {id: x1, decision: x, match: {tags: [fee, late]}, share: 0.6}
          - {id: x2, decision: x, match: {text: ["LATE FEE"]}, share: 0.3}
          - {id: y1, decision: y, match: {text_regex: "refund(s|ed)?\\\\b"}, share: 0.9}
        """,
        [
            c("c1", "2026-05-02T00:00:00", "sms", tags=" late | x ", text="Late fee Refunded"),
            c("c2", "2026-05-03T00:00:00", "sms", tags="fee||", text="no late fees please"),
            c("c3", "2026-05-04T00:00:00", "sms", tags="|", text="refundable"),  # no match
        ],
    )
    assert ledger(ws, contacts) == [
        ("2026-05", "d1", "CC-1", "x", "1.000", "0.00", "10.00", "0.00", "-10.00"),
        ("2026-05", "d2", "CC-2", "y", "0.600", "0.00", "6.00", "0.00", "-6.00"),
        ("2026-05", "unattributed", "", "unattributed", "1.400", "0.00", "14.00", "0.00", "-14.00"),
    ]


def test_pool_with_zero_handle_seconds(tmp_path: Path) -> None:
    # pool monthly 100.00.
    # 2026-01: three contacts with 0 / missing handle seconds -> 100/3 each
    #   decision (c1): 3333.33 cents, unattributed 6666.67 cents, floors 3333 + 6666 = 9999,
    #   one cent to the larger remainder (2/3, unattributed) -> 33.33 / 66.67
    # 2026-02: 30 s and 90 s -> 25.00 and 75.00; the 90 s contact matches -> 75.00
    ws, contacts = workspace(
        tmp_path,
        """
        departments: [{id: ops, name: Ops, cost_center: CC-9}]
        decisions: [{id: d, title: D, kind: outage, department: ops, effective: 2026-01-01}]
        costs: {method: pool, pool: {monthly: 100.00}}
        rules: [{id: r, decision: d, match: {outcome: escalated}}]
        """,
        [
            c("c1", "2026-01-05T10:00:00", "phone", outcome="escalated", handle_seconds="0"),
            c("c2", "2026-01-06T10:00:00", "phone", outcome="resolved"),
            c("c3", "2026-01-07T10:00:00", "phone", handle_seconds="0"),
            c("c4", "2026-02-05T10:00:00", "phone", outcome="resolved", handle_seconds="30"),
            c("c5", "2026-02-06T10:00:00", "phone", outcome="escalated", handle_seconds="90"),
        ],
    )
    assert ledger(ws, contacts) == [
        ("2026-01", "ops", "CC-9", "d", "1.000", "0.00", "33.33", "0.00", "-33.33"),
        ("2026-01", "unattributed", "", "unattributed", "2.000", "0.00", "66.67", "0.00", "-66.67"),
        ("2026-02", "ops", "CC-9", "d", "1.000", "1.50", "75.00", "0.00", "-75.00"),
        ("2026-02", "unattributed", "", "unattributed", "1.000", "0.50", "25.00", "0.00", "-25.00"),
    ]


@pytest.mark.parametrize(
    ("dept_a", "dept_b", "winner"),
    [
        # x in dept "zeta", y in dept "alpha": equal remainders -> dept "alpha" (y) wins,
        # even though decision id "x" < "y"
        ("zeta", "alpha", "y"),
        ("alpha", "zeta", "x"),
    ],
)
def test_largest_remainder_tie_by_department(
    tmp_path: Path, dept_a: str, dept_b: str, winner: str
) -> None:
    # one contact costing 0.01, matched by x and y at share 0.5 each: S = 1, no normalising
    # exact: x 0.5 cent, y 0.5 cent, unattributed 0 -> floors 0, total 1 cent
    ws, contacts = workspace(
        tmp_path,
        f"""
        departments:
          - {{id: {dept_a}, name: A, cost_center: CC-A}}
          - {{id: {dept_b}, name: B, cost_center: CC-B}}
        decisions:
          - {{id: x, title: X, kind: other, department: {dept_a}, effective: 2026-01-01}}
          - {{id: y, title: Y, kind: other, department: {dept_b}, effective: 2026-01-01}}
        costs: {{method: rates, channels: {{}}, default: {{per_contact: 0.01}}}}
        rules:
          - {{id: rx, decision: x, match: {{channel: web}}, share: 0.5}}
          - {{id: ry, decision: y, match: {{channel: "w*"}}, share: 0.5}}
        """,
        [c("c1", "2026-01-02T00:00:00", "web")],
    )
    rows = oracle_ledger(ws, contacts)
    cost = {r["decision_id"]: r["cost"] for r in rows}
    assert cost == {
        "x": "0.01" if winner == "x" else "0.00",
        "y": "0.01" if winner == "y" else "0.00",
        "unattributed": "0.00",
    }
    assert [r["department_id"] for r in rows] == sorted([dept_a, dept_b, "unattributed"])


def test_unattributed_takes_part_in_the_tie(tmp_path: Path) -> None:
    # one contact costing 0.01, one decision at share 0.5: remainders 0.5 and 0.5;
    # dept "zz" > "unattributed" -> unattributed wins; dept "aa" < "unattributed" -> aa wins
    results = {}
    for dept in ("zz", "aa"):
        ws, contacts = workspace(
            tmp_path / dept,
            f"""
            departments: [{{id: {dept}, name: D, cost_center: CC}}]
            decisions: [{{id: d, title: D, kind: other, department: {dept}, effective: 2026-01-01}}]
            costs: {{method: rates, channels: {{web: {{per_contact: 0.01}}}}}}
            rules: [{{id: r, decision: d, match: {{channel: web}}, share: 0.5}}]
            """,
            [c("c1", "2026-01-02T00:00:00", "web")],
        )
        results[dept] = {r["department_id"]: r["cost"] for r in oracle_ledger(ws, contacts)}
    assert results["zz"] == {"zz": "0.00", "unattributed": "0.01"}
    assert results["aa"] == {"aa": "0.01", "unattributed": "0.00"}


def test_timezone_window_ends_revenue_and_zero_weight_priority(tmp_path: Path) -> None:
    # timezone America/New_York (EST, -05:00, until 2026-03-08).
    # c1 "2026-02-01T03:00:00Z" is 2026-01-31 22:00 local -> period 2026-01
    # c2 "2026-02-01T06:00:00+01:00" is 2026-02-01 00:00 local -> period 2026-02
    # c3 naive "2026-02-10T23:30:00" stays local -> 2026-02-10
    # decision old: effective 2026-01-20, ends 2026-01-31; rule window offset 1 -> [01-21, ...)
    #   so c1 (01-31) matches; revenue by_period has only 2026-02 -> 2026-01 revenue 0;
    #   in 2026-02 old is not in force (ends 01-31), so its 2026-02 revenue of 50 is ignored.
    # decision new: effective 2026-02-01, revenue monthly 7.5 (in force only in Feb);
    #   rule "hi" (priority 5, baseline) and rule "lo" (priority 0) for decision old2...
    # hi: match channel chat, lookback 1 day -> [01-31, 02-01): c1 is chat -> B = 1, b = 1;
    #   Feb window open-ended from 02-01: D = 28, E = 28, A = 2 (c2, c3) -> f = 0.
    #   Weight 0, but with overlap priority it still shuts out "lo" (which would give 1).
    # Every contact costs 3.00. Jan: c1 -> old 3.00. Feb: c2, c3 unattributed 6.00;
    #   "new" keeps a row for its revenue (0.000 contacts), "old" has none.
    ws, contacts = workspace(
        tmp_path,
        """
        departments:
          - {id: cs, name: CS, cost_center: CC-7}
        decisions:
          - id: old
            title: Old
            kind: policy
            department: cs
            effective: 2026-01-20
            ends: 2026-01-31
            revenue: {by_period: {"2026-02": 50.00}}
          - {id: new, title: New, kind: pricing, department: cs, effective: 2026-02-01,
             revenue: {monthly: 7.5}}
          - {id: other, title: O, kind: other, department: cs, effective: 2026-02-01}
        costs: {method: rates, channels: {chat: {per_contact: 3}}}
        rules:
          - {id: r-old, decision: old, match: {channel: chat}, window: {start_offset_days: 1}}
          - id: hi
            decision: new
            match: {channel: chat}
            priority: 5
            baseline: {lookback_days: 1}
          - {id: lo, decision: other, match: {fields: {plan: ["gold*"]}}}
        """,
        [
            {**c("c1", "2026-02-01T03:00:00Z", "chat"), "plan": "gold"},
            {**c("c2", "2026-02-01T06:00:00+01:00", "chat"), "plan": "gold-plus"},
            {**c("c3", "2026-02-10T23:30:00", "chat"), "plan": "golden"},
        ],
        settings_yaml="timezone: America/New_York\noverlap: priority\n",
        header=["contact_id", "started_at", "channel", "plan"],
    )
    assert ledger(ws, contacts) == [
        ("2026-01", "cs", "CC-7", "old", "1.000", "0.00", "3.00", "0.00", "-3.00"),
        ("2026-01", "unattributed", "", "unattributed", "0.000", "0.00", "0.00", "0.00", "0.00"),
        ("2026-02", "cs", "CC-7", "new", "0.000", "0.00", "0.00", "7.50", "7.50"),
        ("2026-02", "unattributed", "", "unattributed", "2.000", "0.00", "6.00", "0.00", "-6.00"),
    ]
    # with split, "lo" gives decision other weight 1 for c2 and c3 in February
    (ws / "chargeback.yaml").write_text("timezone: America/New_York\n", encoding="utf-8")
    feb = [r for r in ledger(ws, contacts) if r[0] == "2026-02"]
    assert feb == [
        ("2026-02", "cs", "CC-7", "new", "0.000", "0.00", "0.00", "7.50", "7.50"),
        ("2026-02", "cs", "CC-7", "other", "2.000", "0.00", "6.00", "0.00", "-6.00"),
        ("2026-02", "unattributed", "", "unattributed", "0.000", "0.00", "0.00", "0.00", "0.00"),
    ]


def test_columns_mapping_and_period_selection(tmp_path: Path) -> None:
    # headers "Ticket ID" / "Created at" / "Via" mapped through chargeback.yaml columns:
    # only 2026-02 is reported, but the January contact still feeds the baseline:
    # lookback 31 days -> [01-01, 02-01): B = 1 -> b = 1/31; Feb window from 02-01:
    # D = 28, E = 28/31, A = 2 -> f = (2 - 28/31) / 2 = 17/31; 2 * 17/31 = 1.0968 contacts
    # cost per contact 1.00 -> 34/31 = 1.096774 -> 109.68 cents; rest 0.903 / 0.90...
    #   floors 109 + 90 = 199 of 200; remainders .677 vs .323 -> decision gets it: 1.10 / 0.90
    ws, contacts = workspace(
        tmp_path,
        """
        departments: [{id: ops, name: Ops, cost_center: CC-1}]
        decisions: [{id: d, title: D, kind: other, department: ops, effective: 2026-02-01}]
        costs: {method: rates, channels: {phone: {per_contact: 1.00}}}
        rules: [{id: r, decision: d, match: {channel: phone}, baseline: {lookback_days: 31}}]
        """,
        [
            {"Ticket ID": "t1", "Created at": "2026-01-15T10:00:00", "Via": "phone"},
            {"Ticket ID": "t2", "Created at": "2026-02-15T10:00:00", "Via": "phone"},
            {"Ticket ID": "t3", "Created at": "2026-02-16T10:00:00", "Via": "phone"},
        ],
        settings_yaml="""
        columns:
          contact_id: "Ticket ID"
          started_at: "Created at"
          channel: Via
        """,
        header=["Ticket ID", "Created at", "Via"],
    )
    assert ledger(ws, contacts, ["2026-02"]) == [
        ("2026-02", "ops", "CC-1", "d", "1.097", "0.00", "1.10", "0.00", "-1.10"),
        ("2026-02", "unattributed", "", "unattributed", "0.903", "0.00", "0.90", "0.00", "-0.90"),
    ]
