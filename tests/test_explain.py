"""`chargeback explain`: one contact's charge, hand-computed and against the oracle.

The hand-computed cases cover an overlap under both policies, a baseline (its
A, D, E and factor), a share, a rule that matches but is dropped by priority,
and the unattributed rest. The differential test draws whole workspaces from
test_differential's strategies and compares every contact's decision weights
and costs with tests/oracle.py, which shares no code with the engine.
"""

from __future__ import annotations

import json
import tempfile
from fractions import Fraction
from pathlib import Path
from typing import Any

from conftest import write_workspace
from hypothesis import HealthCheck, given, settings
from oracle import oracle_contact
from test_differential import scenarios, unpriced, write_scenario
from typer.testing import CliRunner

from cli import app

runner = CliRunner()

RULES = """
decisions:
  - {id: fee, title: Late fee, kind: fee, department: billing, effective: 2026-03-01}
  - {id: app, title: App v5, kind: launch, department: product, effective: 2026-03-01}
rules:
  - id: fee-disputes
    decision: fee
    match: {reason: [billing.fee]}
    share: 0.8
  - id: fee-baseline
    decision: fee
    match: {reason: [billing.question]}
    baseline: {lookback_days: 10}
    priority: 1
  - id: app-logins
    decision: app
    match: {reason: [billing.fee, app.login], channel: [phone]}
"""
# billing.question: 5 contacts in the 10 days before (B=5, b=1/2 a day); in March
# 4 matched (A=4), D=31, E=15.5 > A, so the factor is 0. billing.fee on the phone
# matches fee-disputes (0.8) and app-logins (1): S = 1.8 > 1 under split.
CONTACTS = """
contact_id,started_at,channel,reason,handle_seconds
b1,2026-02-20T10:00:00,chat,billing.question,60
b2,2026-02-21T10:00:00,chat,billing.question,60
b3,2026-02-22T10:00:00,chat,billing.question,60
b4,2026-02-23T10:00:00,chat,billing.question,60
b5,2026-02-24T10:00:00,chat,billing.question,60
q1,2026-03-02T10:00:00,chat,billing.question,60
q2,2026-03-03T10:00:00,chat,billing.question,60
q3,2026-03-04T10:00:00,chat,billing.question,60
q4,2026-03-05T10:00:00,chat,billing.question,60
x1,2026-03-06T10:00:00,phone,billing.fee,600
x2,2026-03-07T10:00:00,chat,billing.fee,0
x3,2026-03-08T10:00:00,email,other.thing,0
"""


def explain(ws: Path, contact_id: str, *args: str) -> dict[str, Any]:
    result = runner.invoke(
        app, ["explain", contact_id, "--workspace", str(ws), "--format", "json", *args]
    )
    assert result.exit_code == 0, result.output
    doc: dict[str, Any] = json.loads(result.stdout)
    return doc


def rule(doc: dict[str, Any], rule_id: str) -> dict[str, Any]:
    (found,) = [r for r in doc["rules"] if r["id"] == rule_id]
    return found


def test_an_overlap_split_is_scaled_to_one_contact(ws: Path) -> None:
    write_workspace(ws, RULES, CONTACTS)
    doc = explain(ws, "x1")
    # phone: 0.40 + 1.05 x 10 minutes = 10.90
    assert doc["cost"] == "10.900000" and doc["period"] == "2026-03"
    assert rule(doc, "fee-disputes")["weight"] == "0.800000000"
    assert rule(doc, "app-logins")["conditions"] == {"reason": True, "channel": True}
    assert doc["decisions"] == {
        "fee": {
            "weight": "0.444444444",  # 0.8 / 1.8
            "cost": "4.844444",
            "department": "billing",
            "before_normalising": "0.800000000",
        },
        "app": {
            "weight": "0.555555556",  # 1 / 1.8
            "cost": "6.055556",
            "department": "product",
            "before_normalising": "1.000000000",
        },
    }
    assert doc["unattributed"] == {"weight": "0.000000000", "cost": "0.000000"}
    assert len(doc["rules"]) == 3  # every rule of the workspace


def test_priority_keeps_the_top_rules_only(ws: Path) -> None:
    write_workspace(
        ws,
        RULES.replace(
            "match: {reason: [billing.fee, app.login], channel: [phone]}",
            "match: {reason: [billing.fee, app.login], channel: [phone]}\n    priority: 3",
        ),
        CONTACTS,
        settings="overlap: priority\n",
    )
    doc = explain(ws, "x1")
    assert rule(doc, "fee-disputes")["kept"] is False
    assert rule(doc, "fee-disputes")["matched"] is True
    assert rule(doc, "app-logins")["kept"] is True
    assert list(doc["decisions"]) == ["app"]
    assert doc["decisions"]["app"]["weight"] == "1.000000000"
    assert doc["decisions"]["app"]["cost"] == "10.900000"


def test_a_baseline_factor_of_zero_leaves_the_contact_unattributed(ws: Path) -> None:
    write_workspace(ws, RULES, CONTACTS)
    doc = explain(ws, "q2")
    r = rule(doc, "fee-baseline")
    assert r["matched"] and r["kept"]
    assert r["factor"] == "0.000000000" and r["weight"] == "0.000000000"
    assert r["baseline"] == {
        "method": "flat",
        "lookback_days": 10,
        "B": 5,
        "b": "0.500000000",
        "A": 4,
        "D": 31,
        "E": "15.500000000",
    }
    assert doc["decisions"]["fee"]["weight"] == "0.000000000"  # matched, weight 0
    # chat is listed with a per_contact rate only: 0.15 however long the chat
    assert doc["unattributed"] == {"weight": "1.000000000", "cost": "0.150000"}


def test_a_contact_no_rule_matches_is_unattributed_with_each_condition_shown(ws: Path) -> None:
    write_workspace(ws, RULES, CONTACTS)
    doc = explain(ws, "x3")
    assert all(not r["matched"] and r["factor"] is None for r in doc["rules"])
    assert rule(doc, "app-logins")["conditions"] == {"reason": False, "channel": False}
    assert doc["decisions"] == {}
    assert doc["unattributed"] == {"weight": "1.000000000", "cost": "1.000000"}  # default 1.00


def test_text_output_tells_the_story(ws: Path) -> None:
    write_workspace(ws, RULES, CONTACTS)
    result = runner.invoke(app, ["explain", "x1", "--workspace", str(ws)])
    assert result.exit_code == 0, result.output
    assert "fee (billing): weight 0.444444444 (scaled from 0.800000000), 4.844444 USD" in (
        result.output
    )
    assert "✓ app-logins -> app" in result.output


def test_an_unknown_contact_is_a_located_error(ws: Path) -> None:
    write_workspace(ws, RULES, CONTACTS)
    result = runner.invoke(app, ["explain", "nobody", "--workspace", str(ws)])
    assert result.exit_code == 1
    assert "contact 'nobody' is not in the contacts (12 loaded)" in result.output
    assert "Traceback" not in result.output


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(sc=scenarios())
def test_explain_matches_the_oracle_for_every_contact(sc: Any) -> None:
    if unpriced(sc) or not sc.contacts:
        return
    with tempfile.TemporaryDirectory() as tmp:
        ws, contacts = write_scenario(sc, Path(tmp))
        for contact in sc.contacts[:6]:
            cid = contact["contact_id"]
            weights, cost = oracle_contact(ws, contacts, cid)
            doc = explain(ws, cid, "--contacts", str(contacts))
            assert Fraction(doc["cost"]) == round(cost, 6) or abs(
                Fraction(doc["cost"]) - cost
            ) <= Fraction(1, 2_000_000), (doc["cost"], cost)
            got = {d: Fraction(v["weight"]) for d, v in doc["decisions"].items()}
            assert set(got) == set(weights), (got, weights)
            for d, w in weights.items():
                assert abs(got[d] - w) <= Fraction(1, 2 * 10**9), (d, got[d], w)
                assert abs(Fraction(doc["decisions"][d]["cost"]) - w * cost) <= Fraction(
                    1, 2 * 10**6
                )
