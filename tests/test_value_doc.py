"""The CS-value document: levers that are honest advice, counts that say what they count,
and the after-a-contact pages drawn from the cohorts.

Levers workspace (UTC, chat 0.15 a contact, phone 0.40 + 1.05/min, others 1.00), 2026-03:
  earner  revenue 1000.00/month, 10 email contacts    cost 10.00, net +990.00: no lever
  outage  no revenue, 1 phone contact of 60 s          cost 1.45: a cost, worth fixing
  thin    revenue 0.10/month, 3 chat contacts          cost 0.45, net -0.35: worth fixing
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

from conftest import write_workspace
from test_value_cohorts import SETTINGS
from test_value_cohorts import make as make_cohorts
from typer.testing import CliRunner

from chargeback.documents.value_doc import ValueBuilder
from chargeback.report import ReportOptions
from chargeback.run import run_report
from cli import app

DECISIONS = {
    "earner": "revenue: {monthly: 1000.00}",
    "outage": "",
    "thin": "revenue: {monthly: 0.10}",
}
CONTACTS = {
    "earner": [("email", 0)] * 10,
    "outage": [("phone", 60)],
    "thin": [("chat", 0)] * 3,
}


def levers_workspace(root: Path, decisions: tuple[str, ...]) -> Path:
    rules = ["decisions:"]
    for d in decisions:
        extra = f", {DECISIONS[d]}" if DECISIONS[d] else ""
        rules.append(
            f"  - {{id: {d}, title: {d.title()}, kind: fee, department: billing, "
            f"effective: 2026-03-01{extra}}}"
        )
    rules.append("rules:")
    rules += [f"  - {{id: r-{d}, decision: {d}, match: {{reason: [{d}]}}}}" for d in decisions]
    lines = ["contact_id,started_at,channel,handle_seconds,reason"]
    for d in decisions:
        for i, (channel, seconds) in enumerate(CONTACTS[d]):
            lines.append(f"{d}{i},2026-03-{i + 2:02d}T10:00:00,{channel},{seconds},{d}")
    return write_workspace(
        root, "\n".join(rules) + "\n", "\n".join(lines) + "\n", "timezone: UTC\n"
    )


def context(root: Path, period: str) -> dict[str, Any]:
    """The CS-value document's context, as documents/compose.py builds it."""
    result = run_report(ReportOptions(workspace=root, out=root / "out", formats=("json",)))
    assert result.value is not None
    doc = ValueBuilder(result.workspace, result.value, result.ledger).document(period, {})
    return doc.context


def test_a_decision_lever_only_when_it_costs_more_than_it_brings(tmp_path: Path) -> None:
    ctx = context(levers_workspace(tmp_path / "all", ("earner", "outage", "thin")), "2026-03")
    [lever] = ctx["levers"]  # no outcome or customer column: the decision is the only lever
    assert lever["name"] == "A decision that costs more than it brings"
    assert lever["amount"] == Decimal("1.45")  # outage, not the costlier earner (10.00)
    assert "“Outage”" in lever["text"] and "no revenue is declared" in lever["text"]
    assert ctx["lever_note"] == ""

    ctx = context(levers_workspace(tmp_path / "thin", ("earner", "thin")), "2026-03")
    [lever] = ctx["levers"]
    assert lever["amount"] == Decimal("0.45")
    assert "“Thin”" in lever["text"]
    assert "brings 0.10 in revenue, 0.35 less than it costs" in lever["text"]


def test_no_decision_lever_when_every_decision_pays_its_way(tmp_path: Path) -> None:
    ctx = context(levers_workspace(tmp_path / "ws", ("earner",)), "2026-03")
    assert ctx["levers"] == []
    assert "brings in more revenue than its service cost" in ctx["lever_note"]


def test_lever_counts_say_what_they_count(tmp_path: Path) -> None:
    # the cohort workspace: March has one save (k5), January one sale (k3); without
    # orders a save is worth the save value setting, so it is a lever
    root = make_cohorts(tmp_path / "ws", SETTINGS.replace("orders: orders.csv\n", ""))
    march = {lever["name"]: lever["text"] for lever in context(root, "2026-03")["levers"]}
    assert march["Saves"] == (
        "1 save, each a contact in which a customer who meant to leave stayed. "
        "The amount is saves times the save value setting."
    )
    january = {lever["name"]: lever["text"] for lever in context(root, "2026-01")["levers"]}
    assert january["Revenue won in contacts"] == "1 contact ended in a sale."


def test_after_a_contact_blocks_and_the_cohort_table(tmp_path: Path) -> None:
    cohorts = context(make_cohorts(tmp_path / "ws"), "2026-03")["cohorts"]
    assert cohorts["available"] and cohorts["first"] == "Jan 2026"
    ten, forty = cohorts["blocks"]
    assert ten["heading"] == "10 days on: contacts in Mar 2026"  # not "10 days after" again
    assert ten["verdict"] == (
        "Contacted customers: +13.50 USD per customer vs. customers who did not contact "
        "(100.0% ordered at all, against 66.7%)."
    )
    assert [(r["name"], r["customers"], r["per_customer"], r["lift"]) for r in ten["rows"]] == [
        ("resolved", "1", Decimal("10.00"), "+6.00"),
        ("saved", "1", Decimal("25.00"), "+21.00"),
        ("All contacted customers", "2", Decimal("17.50"), "+13.50"),
        ("Customers who did not contact", "3", Decimal("4.00"), ""),
    ]
    # the latest observable month at 40 days (Feb, cs_value.json's `latest`) has no
    # contacted customers: the block shows January, the latest one that has
    assert forty["month"] == "2026-01" and forty["heading"] == "40 days on: contacts in Jan 2026"
    assert forty["verdict"].startswith("Contacted customers: +41.68 USD per customer")
    assert [h["header"] for h in cohorts["horizons"]] == ["10 days", "40 days"]
    assert not cohorts["not_yet"]
    assert [(row["month"], [c["text"] for c in row["cells"]]) for row in cohorts["table"]] == [
        ("Jan 2026", ["-8.83", "+41.68"]),
        ("Feb 2026", ["no contacts", "no contacts"]),
        ("Mar 2026", ["+13.50", "not yet"]),
    ]
    assert [c["loss"] for c in cohorts["table"][0]["cells"]] == [True, False]
    assert "USD ordered per customer" in cohorts["chart"]


def test_the_report_renders_the_cohorts(tmp_path: Path) -> None:
    root = make_cohorts(tmp_path / "ws")
    out = tmp_path / "out"
    result = CliRunner().invoke(
        app,
        ["report", "--workspace", str(root), "--out", str(out), "--format", "html",
         "--period", "2026-03"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    page = (out / "2026-03" / "cs-value.html").read_text(encoding="utf-8")
    assert "10 days on: contacts in Mar 2026" in page and "10 days after" not in page
    assert "+13.50 USD per customer vs. customers who did not contact" in page
    assert "USD ordered per customer" in page and "orders per customer" not in page.lower()
    assert "not yet" in page and "no contacts" in page
    assert "3 contacts ·" in page and "1 contacts" not in page


def test_horizons_in_words_are_never_repeated() -> None:
    from chargeback.documents.value_cohort_doc import horizon_header, horizon_words

    words = {d: horizon_words(d) for d in (1, 7, 30, 40, 180, 365, 540, 730)}
    assert words == {
        1: "1 day",
        7: "7 days",
        30: "1 month",
        40: "40 days",
        180: "6 months",
        365: "1 year",
        540: "18 months",
        730: "2 years",
    }
    assert horizon_header(180) == "6 months (180 days)"
    assert horizon_header(365) == "1 year (365 days)"
    assert horizon_header(7) == "7 days"


def test_the_cohort_chart_says_why_a_bar_is_missing(tmp_path: Path) -> None:
    """n/a only for a horizon not yet observable; an empty group says "no customers"."""
    from chargeback.documents.value_cohort_doc import cohort_view

    root = make_cohorts(tmp_path / "ws")
    result = run_report(ReportOptions(workspace=root, out=root / "out", formats=("json",)))
    assert result.value is not None
    real = result.value.periods["2026-03"]["cohorts"]
    view = cohort_view(real, (10, 40), "USD")
    assert ">n/a<" not in view["chart"] and not view["not_yet"]
    # March (10 days) has resolved and saved, January (40 days) resolved and unresolved:
    # each block lacks one outcome, drawn as "no customers" (twice), never as n/a
    assert view["chart"].count(">no customers<") == 2
    # 40 days not yet observable anywhere: its bars are n/a, and the legend names it
    later = {
        **real,
        "latest": {**real["latest"], "40": None},
        "cells": {m: {**c, "40": None} for m, c in real["cells"].items()},
    }
    view = cohort_view(later, (10, 40), "USD")
    assert view["not_yet"] and ">n/a<" in view["chart"]
    assert ">no customers<" not in view["chart"]  # only March is shown: all its groups
