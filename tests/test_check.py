"""`chargeback check` against the data: a workspace with one of each problem planted.

A leaking rule (matches as much before its decision as after), a dead rule, a
rule whose window misses the data, two decisions sharing contacts, an unpriced
channel, a tags column split on spaces, a misspelt match value and unexplained
contacts with a telling phrase: each found with its code and place, the healthy
rules left alone.
"""

from __future__ import annotations

import json
import tempfile
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import write_workspace
from hypothesis import HealthCheck, given, settings
from test_differential import scenarios, write_scenario
from typer.testing import CliRunner

from chargeback.engine.attribute import attribute
from chargeback.engine.polars_engine import aggregate
from chargeback.engine.review_counts import MatchFrame
from chargeback.report import ReportOptions, Steps
from chargeback.run import prepare
from cli import app

runner = CliRunner()

RULES = """
decisions:
  - {id: fee, title: Late fee, kind: fee, department: billing, effective: 2026-03-01}
  - {id: app, title: App v5, kind: launch, department: product, effective: 2026-03-01}
  - {id: future, title: Next year, kind: other, department: product, effective: 2027-06-01}
rules:
  - id: fee-disputes
    decision: fee
    match: {reason: [billing.fee_dispute]}
  - id: everyday-questions
    decision: fee
    match: {reason: [billing.question]}
  - id: app-logins
    decision: app
    match: {reason: [app.login, billing.fee_dispute]}
  - id: misspelt
    decision: app
    match: {reason: [app.logn]}
  - id: next-year
    decision: future
    match: {channel: [phone]}
"""
COSTS = """
costs:
  currency: USD
  method: rates
  channels:
    phone: {per_contact: 2.00}
    chat: {per_contact: 1.00}
"""


def contacts(fax: bool = True) -> str:
    """Feb to April 2026: questions every day all along, disputes and logins from March."""
    rows = ["contact_id,started_at,channel,reason,tags,text"]
    day = date(2026, 2, 1)
    n = 0
    while day <= date(2026, 4, 30):
        stamp = f"{day.isoformat()}T10:00:00"
        for _ in range(2):
            n += 1
            rows.append(f"q{n},{stamp},chat,billing.question,fee late,about my bill")
        if day >= date(2026, 3, 1):
            n += 1
            rows.append(f"d{n},{stamp},phone,billing.fee_dispute,,dispute the late fee")
            n += 1
            rows.append(f"l{n},{stamp},chat,app.login,,cannot log in to the app")
        n += 1
        rows.append(f"u{n},{stamp},chat,tech.router,,my router keeps blinking red")
        day += timedelta(days=1)
    if fax:
        rows.append("f1,2026-03-10T10:00:00,fax,other,,a fax")
    return "\n".join(rows) + "\n"


def check(ws: Path, *args: str) -> tuple[int, dict[str, Any]]:
    result = runner.invoke(app, ["check", "--workspace", str(ws), "--format", "json", *args])
    assert "Traceback" not in result.output
    return result.exit_code, json.loads(result.stdout)


def codes(doc: dict[str, Any], code: str) -> list[dict[str, Any]]:
    return [f for f in doc["findings"] if f["code"] == code]


@pytest.fixture
def planted(ws: Path) -> Path:
    return write_workspace(ws, RULES, contacts(), costs=COSTS)


def test_every_planted_problem_is_found_with_its_code(planted: Path) -> None:
    code, doc = check(planted)
    assert code == 1  # the unpriced channel is an error
    (unpriced,) = codes(doc, "unpriced-channel")
    assert unpriced["severity"] == "error" and "'fax'" in unpriced["message"]
    assert unpriced["file"].endswith("costs.yaml") and unpriced["line"] == 3  # `costs:`

    (leaky,) = codes(doc, "leaky-rule")
    assert leaky["rule"] == "everyday-questions" and leaky["decision"] == "fee"
    assert leaky["file"].endswith("main.yaml") and leaky["line"] == 10
    # 2 a day in the 28 days of February the data covers (of the 56 before), 2 a day since
    assert leaky["before_per_day"] == 2.0 and leaky["in_window_per_day"] == 2.0
    assert leaky["message"] == (
        "rule 'everyday-questions' matched 2 contacts a day in the 56 days before fee took "
        "effect, 2 a day since: it is probably charging everyday demand; add a baseline "
        "or narrow it"
    )

    (dead,) = codes(doc, "dead-rule")
    assert dead["rule"] == "misspelt"
    (outside,) = codes(doc, "window-outside-data")
    assert outside["rule"] == "next-year"
    (overlap,) = codes(doc, "overlap")
    assert overlap["decisions"] == ["app", "fee"]
    # 61 disputes on the phone in March and April, 2.00 each
    assert overlap["contacts"] == 61 and overlap["cost"] == "122.00"


def test_no_false_alarm_on_healthy_rules(planted: Path) -> None:
    _, doc = check(planted)
    flagged = {f.get("rule") for f in doc["findings"] if f["severity"] != "info"}
    assert "fee-disputes" not in flagged and "app-logins" not in flagged


def test_shape_mismatches_are_warned_with_a_did_you_mean(planted: Path) -> None:
    _, doc = check(planted)
    (tags,) = codes(doc, "tags-separator")
    assert tags["separator"] == " " and "tags_separator" in tags["message"]
    values = codes(doc, "unknown-value")
    assert [(v["rule"], v["value"]) for v in values] == [("misspelt", "app.logn")]
    assert "did you mean 'app.login'?" in values[0]["message"]
    # fax is an unpriced-channel error here, not also an unnamed-channel warning
    assert codes(doc, "unnamed-channel") == []


def test_unexplained_contacts_suggest_reasons_and_phrases(planted: Path) -> None:
    _, doc = check(planted)
    found = codes(doc, "unattributed-reason")
    reasons = [f for f in found if "reason" in f]
    assert reasons[0]["reason"] == "tech.router"  # 89 days x 1 chat, 1.00 each
    assert reasons[0]["contacts"] == 89 and reasons[0]["cost"] == "89.00"
    phrases = [f["phrase"] for f in found if "phrase" in f]
    assert any("router" in p or "blinking" in p for p in phrases), phrases
    assert len([p for p in phrases if "router" in p or "blinking" in p]) == 1  # said once


def test_coverage_adds_up(planted: Path) -> None:
    _, doc = check(planted)
    c = doc["coverage"]
    assert c["contacts"] == 89 * 3 + 61 * 2 + 1
    # attributed: the questions from March (leaky, but charged), disputes, logins
    assert c["attributed_contacts"] == f"{61 * 2 + 61 * 2:.3f}"  # March and April
    assert c["cost"] == f"{89 * 2 * 1 + 61 * 2 + 61 * 1 + 89 * 1:.2f}"  # fax priced 0 here


def test_warnings_pass_unless_strict(ws: Path) -> None:
    write_workspace(ws, RULES, contacts(), costs=COSTS + "  default: {per_contact: 0}\n")
    code, doc = check(ws)
    assert not codes(doc, "unpriced-channel")
    assert [c["channel"] for c in codes(doc, "unnamed-channel")] == ["fax"]  # the default
    assert code == 0
    code, _ = check(ws, "--strict")
    assert code == 1


def test_text_output_names_places_and_counts_per_rule(planted: Path) -> None:
    result = runner.invoke(app, ["check", "--workspace", str(planted)])
    assert result.exit_code == 1
    assert "error unpriced-channel" in result.output
    assert "warning leaky-rule" in result.output and "main.yaml:10" in result.output
    assert "everyday-questions" in result.output  # the per-rule table
    assert "Found: 1 error, " in result.output


def test_report_refuses_an_unpriced_channel(planted: Path) -> None:
    result = runner.invoke(
        app, ["report", "--workspace", str(planted), "--format", "csv", "--out", str(planted / "o")]
    )
    assert result.exit_code == 1
    assert "channel 'fax' has no rate and costs has no 'default' (1 contact uses it)" in (
        result.output
    )
    assert not (planted / "o" / "ledger.csv").exists()


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sc=scenarios())
def test_check_attributes_exactly_as_the_ledger_does(sc: Any) -> None:
    """check's one-pass bits give the same aggregates as the engine's own pass."""
    if not sc.contacts:
        return
    with tempfile.TemporaryDirectory() as tmp:
        ws_dir, contacts_csv = write_scenario(sc, Path(tmp))
        ws, loaded = prepare(ReportOptions(workspace=ws_dir, contacts=str(contacts_csv)), Steps())
        assert MatchFrame(ws, loaded.frame).aggregates() == aggregate(ws, loaded.frame)
        month = loaded.frame.get_column("period")[0]
        whole = attribute(ws, aggregate(ws, loaded.frame))
        alone = attribute(ws, aggregate(ws, loaded.frame, {month}))
        assert alone.periods[month].contacts == whole.periods[month].contacts
        assert {k: v for k, v in whole.lines.items() if k[0] == month} == alone.lines


def test_tags_separator_makes_space_separated_tags_match(ws: Path) -> None:
    rules = RULES + "  - {id: by-tag, decision: fee, match: {tags: [late]}}\n"
    costs = COSTS + "  default: {per_contact: 0}\n"
    write_workspace(ws, rules, contacts(), costs=costs)
    _, before = check(ws)
    assert codes(before, "tags-separator")
    assert [f["rule"] for f in codes(before, "dead-rule")] == ["misspelt", "by-tag"]
    write_workspace(ws, rules, contacts(), costs=costs, settings='tags_separator: " "\n')
    _, after = check(ws)
    assert not codes(after, "tags-separator")
    assert [f["rule"] for f in codes(after, "dead-rule")] == ["misspelt"]
    counts = {r["rule"]: r["in_window"] for r in after["rules"]}
    assert counts["by-tag"] == 61 * 2  # the questions of March and April: "fee late"


def test_a_tags_separator_outside_the_four_is_a_located_error(ws: Path) -> None:
    write_workspace(ws, RULES, contacts(), costs=COSTS, settings='tags_separator: "/"\n')
    result = runner.invoke(app, ["check", "--workspace", str(ws)])
    assert result.exit_code == 1
    assert "chargeback.yaml:2" in result.output and "tags_separator" in result.output
    assert '"|", " " (a space), ",", ";"' in result.output


MINI = """
decisions:
  - {id: fee, title: Fee, kind: fee, department: billing, effective: 2026-03-01}
rules:
  - {id: r, decision: fee, match: {reason: [a]}}
"""


def test_no_phrase_qualifies_and_data_is_never_markup(ws: Path) -> None:
    rows = "contact_id,started_at,channel,reason,text\n"
    rows += "1,2026-03-02T10:00:00,phone,a,hello\n2,2026-03-02T11:00:00,phone,[/],hello\n"
    rows += "3,2026-03-02T12:00:00,phone,[red]x,hello\n"
    write_workspace(ws, MINI, rows)
    result = runner.invoke(app, ["check", "--workspace", str(ws)])
    assert result.exit_code == 0, result.output
    assert "reason [/]" in result.output and "reason [red]x" in result.output
    assert "1 decision, 1 rule; 3 contacts" in result.output


def test_a_pool_prices_every_channel(ws: Path) -> None:
    pool = "costs:\n  currency: USD\n  method: pool\n  pool: {monthly: 100}\n"
    write_workspace(
        ws, MINI, "contact_id,started_at,channel,reason\n1,2026-03-02,fax,a\n", costs=pool
    )
    _, doc = check(ws)
    assert not codes(doc, "unnamed-channel") and not codes(doc, "unpriced-channel")


def test_a_missing_column_is_said_once_not_as_unknown_values(ws: Path) -> None:
    write_workspace(ws, MINI, "contact_id,started_at,channel\n1,2026-03-02,phone\n")
    _, doc = check(ws)
    (missing,) = codes(doc, "missing-column")
    assert missing["column"] == "reason"
    assert not codes(doc, "unknown-value")


def test_explain_refuses_an_unpriced_channel_as_report_does(ws: Path) -> None:
    write_workspace(
        ws, MINI, "contact_id,started_at,channel,reason\n1,2026-03-02,fax,a\n", costs=COSTS
    )
    result = runner.invoke(app, ["explain", "1", "--workspace", str(ws)])
    assert result.exit_code == 1
    assert "channel 'fax' has no rate" in result.output


def test_the_tags_warning_names_the_separator_that_is_set(ws: Path) -> None:
    rows = "contact_id,started_at,channel,reason,tags\n1,2026-03-02,phone,a,fee late\n"
    write_workspace(ws, MINI, rows, settings='tags_separator: ","\n')
    _, doc = check(ws)
    (tags,) = codes(doc, "tags-separator")
    assert "split on a comma" in tags["message"] and tags["separator"] == " "
