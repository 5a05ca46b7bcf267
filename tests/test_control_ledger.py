"""`baseline: {method: control}` through the whole run: ledger, range, explain.

A world with a yearly season and a weekly pattern, a control series the rule's
background follows, and a decision that adds a known, decaying number of
contacts in its window. The ledger charges about that number, each month's
range holds the truth, the month still adds up to the cent, the same inputs
give the same figures, and explain shows the fit behind a contact's factor.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import platform
import random
import shutil
import subprocess
import sys
import textwrap
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from cli import app

runner = CliRunner()

RULES = """
departments:
  - {id: billing, name: Billing, cost_center: CC-1}
decisions:
  - {id: fee, title: Fee, kind: fee, department: billing, effective: 2026-06-01}
costs:
  currency: USD
  method: rates
  channels: {phone: {per_contact: 2.00, per_minute: 0.10}}
rules:
  - id: fee-calls
    decision: fee
    match: {reason: [billing.fee]}
    window: {days: 61}
    baseline: {method: control, lookback_days: 150}
"""
EFFECTIVE = date(2026, 6, 1)


def world(root: Path) -> dict[str, int]:
    """The workspace; returns the injected extra contacts per month (the truth)."""
    rng = random.Random(3)
    (root / "rules").mkdir(parents=True)
    (root / "rules" / "main.yaml").write_text(textwrap.dedent(RULES))
    (root / "chargeback.yaml").write_text("contacts: contacts.csv\n")
    rows = ["contact_id,started_at,channel,reason,handle_seconds"]
    truth: dict[str, int] = {}
    n, day = 0, date(2025, 12, 1)
    while day <= date(2026, 8, 31):
        season = 1 + 0.4 * math.sin(day.timetuple().tm_yday / 365 * 2 * math.pi)
        base = 120 * season * (1.2, 1.1, 1.0, 1.0, 0.9, 0.6, 0.5)[day.weekday()]
        control = max(0, round(rng.gauss(base, math.sqrt(base))))
        fee = max(0, round(rng.gauss(base * 0.1, math.sqrt(base * 0.1))))
        extra = 0
        if EFFECTIVE <= day < EFFECTIVE + timedelta(days=61):
            extra = round(25 * math.exp(-(day - EFFECTIVE).days / 20))
            truth[f"{day:%Y-%m}"] = truth.get(f"{day:%Y-%m}", 0) + extra
        for reason, count in (("other", control), ("billing.fee", fee + extra)):
            for _ in range(count):
                n += 1
                rows.append(f"c{n},{day}T10:00:00,phone,{reason},{rng.randint(60, 600)}")
        day += timedelta(days=1)
    (root / "contacts.csv").write_text("\n".join(rows) + "\n")
    return truth


def report(ws: Path, out: Path) -> dict[str, Any]:
    result = runner.invoke(
        app, ["report", "--workspace", str(ws), "--out", str(out), "--format", "csv,json"]
    )
    assert result.exit_code == 0, result.output
    doc: dict[str, Any] = json.loads((out / "ledger.json").read_text())
    return doc


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, int], dict[str, Any]]:
    root = tmp_path_factory.mktemp("control")
    truth = world(root / "ws")
    return root, truth, report(root / "ws", root / "out")


def fee_lines(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {ln["period"]: ln for ln in doc["lines"] if ln["decision_id"] == "fee"}


def test_the_excess_over_the_control_is_charged(
    run: tuple[Path, dict[str, int], dict[str, Any]],
) -> None:
    _, truth, doc = run
    lines = fee_lines(doc)
    assert set(lines) == {"2026-06", "2026-07"}
    charged = sum(Decimal(ln["contacts"]) for ln in lines.values())
    injected = sum(truth.values())
    assert abs(charged - injected) <= Decimal("0.15") * injected, (charged, injected)


def test_each_months_range_holds_the_truth_and_the_charge(
    run: tuple[Path, dict[str, int], dict[str, Any]],
) -> None:
    _, truth, doc = run
    for period, line in fee_lines(doc).items():
        r = line["range"]
        assert r["level"] == 0.8
        low, high = (Decimal(v) for v in r["contacts"])
        assert low <= Decimal(line["contacts"]) <= high
        assert low <= truth[period] <= high, (period, truth[period], r)
        cost_low, cost_high = (Decimal(v) for v in r["cost"])
        assert cost_low <= Decimal(line["cost"]) <= cost_high
    assert all("range" not in ln for ln in doc["lines"] if ln["decision_id"] != "fee")


def test_every_month_still_adds_up_to_the_cent(
    run: tuple[Path, dict[str, int], dict[str, Any]],
) -> None:
    root, _, doc = run
    rows = list(csv.DictReader(io.StringIO((root / "out" / "ledger.csv").read_text())))
    for period, totals in doc["periods"].items():
        lines = sum(Decimal(r["cost"]) for r in rows if r["period"] == period)
        assert lines == Decimal(totals["cost"])


def test_same_inputs_same_figures(
    run: tuple[Path, dict[str, int], dict[str, Any]], tmp_path: Path
) -> None:
    root, _, doc = run
    again = report(root / "ws", tmp_path / "again")
    assert again["lines"] == doc["lines"]


@pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"), reason="OpenBLAS x86 kernels")
def test_same_figures_on_another_blas_kernel(
    run: tuple[Path, dict[str, int], dict[str, Any]], tmp_path: Path
) -> None:
    """The range is drawn from a seed, so it must not depend on the machine's BLAS kernel:
    OpenBLAS's Zen kernel once returned eigenvectors that Prescott's (plain SSE3, on every
    x86-64 CPU) negated, and the same workspace printed another range."""
    root, _, doc = run
    out = tmp_path / "prescott"
    env = {**os.environ, "OPENBLAS_CORETYPE": "Prescott"}
    command = [sys.executable, "-m", "chargeback", "report", "--workspace", str(root / "ws")]
    command += ["--out", str(out), "--format", "json"]
    subprocess.run(command, env=env, check=True, capture_output=True)
    assert json.loads((out / "ledger.json").read_text())["lines"] == doc["lines"]


def test_explain_shows_the_fit_and_agrees_with_the_ledger(
    run: tuple[Path, dict[str, int], dict[str, Any]],
) -> None:
    root, _, doc = run
    contacts = (root / "ws" / "contacts.csv").read_text().splitlines()
    contact = next(ln.split(",")[0] for ln in contacts if "2026-06-03" in ln and "fee" in ln)
    result = runner.invoke(
        app, ["explain", contact, "--workspace", str(root / "ws"), "--format", "json"]
    )
    assert result.exit_code == 0, result.output
    (rule,) = json.loads(result.stdout)["rules"]
    base = rule["baseline"]
    assert base["method"] == "control" and base["fit_days"] == 150
    june = fee_lines(doc)["2026-06"]
    assert Decimal(base["X"]).quantize(Decimal("0.001")) == Decimal(june["contacts"])
    assert base["range"] == june["range"]["contacts"]
    assert float(rule["factor"]) == pytest.approx(float(base["X"]) / base["A"], abs=1e-5)


SHARED = """
departments:
  - {id: billing, name: Billing, cost_center: CC-1}
decisions:
  - {id: late-fee, title: Late fee, kind: fee, department: billing, effective: 2026-06-01}
  - {id: paper-fee, title: Paper fee, kind: fee, department: billing, effective: 2026-06-01}
costs:
  currency: USD
  method: rates
  channels: {phone: {per_contact: 1.00}}
rules:
  - id: late-fee-calls
    decision: late-fee
    match: {reason: [billing.fee]}
    window: {days: 61}
    baseline: {method: control, lookback_days: 150, evidence: {text: ["late fee"]}}
  - id: paper-fee-calls
    decision: paper-fee
    match: {reason: [billing.fee]}
    window: {days: 61}
    baseline: {method: control, lookback_days: 150, evidence: {text: [paper]}}
"""


def write_shared_world(ws: Path) -> tuple[list[str], int, int]:
    """SHARED in `ws` with nine months of contacts and a wave from EFFECTIVE that both fees'
    rules match: the contact rows, the injected contacts, and those naming the late fee."""
    rng = random.Random(5)
    (ws / "rules").mkdir(parents=True)
    (ws / "rules" / "main.yaml").write_text(textwrap.dedent(SHARED))
    (ws / "chargeback.yaml").write_text("contacts: contacts.csv\n")
    rows = ["contact_id,started_at,channel,reason,text"]
    n, injected, late, day = 0, 0, 0, date(2025, 12, 1)
    while day <= date(2026, 8, 31):
        base = 150 * (1.2, 1.1, 1.0, 1.0, 0.9, 0.6, 0.5)[day.weekday()]
        events = [("other", "hello")] * max(0, round(rng.gauss(base, math.sqrt(base))))
        events += [("billing.fee", "a question")] * max(0, round(rng.gauss(base / 10, 3)))
        if EFFECTIVE <= day < EFFECTIVE + timedelta(days=61):
            extra = round(30 * math.exp(-(day - EFFECTIVE).days / 15))
            injected += extra
            late += sum(1 for k in range(extra) if k % 5 < 3)
            events += [
                ("billing.fee", "late fee again" if k % 5 < 3 else "paper bill")
                for k in range(extra)
            ]
        for reason, text in events:
            n += 1
            rows.append(f"c{n},{day}T10:00:00,phone,{reason},{text}")
        day += timedelta(days=1)
    (ws / "contacts.csv").write_text("\n".join(rows) + "\n")
    return rows, injected, late


def test_an_excess_two_decisions_share_is_estimated_once_and_split_by_evidence(
    tmp_path: Path,
) -> None:
    """Both rules match the same contacts: one excess, split by which fee the contacts name."""
    ws = tmp_path / "ws"
    rows, injected, late = write_shared_world(ws)
    doc = report(ws, tmp_path / "out")
    charged = {d: Decimal(0) for d in ("late-fee", "paper-fee")}
    for line in doc["lines"]:
        if line["decision_id"] in charged:
            charged[line["decision_id"]] += Decimal(line["contacts"])
    total = sum(charged.values())
    assert abs(total - injected) <= Decimal("0.15") * injected, (charged, injected)
    share = Decimal(late) / injected  # the injected contacts naming the late fee
    assert abs(charged["late-fee"] / total - share) <= Decimal("0.01"), (charged, share)
    contact = next(r.split(",")[0] for r in rows if "2026-06-02" in r and "paper" in r)
    result = runner.invoke(app, ["explain", contact, "--workspace", str(ws), "--format", "json"])
    assert result.exit_code == 0, result.output
    explained = json.loads(result.stdout)
    (late,) = [r for r in explained["rules"] if r["id"] == "late-fee-calls"]
    assert late["baseline"]["cell"] == ["late-fee-calls", "paper-fee-calls"]
    weights = {d: Decimal(v["weight"]) for d, v in explained["decisions"].items()}
    june = {
        ln["decision_id"]: Decimal(ln["contacts"])
        for ln in doc["lines"]
        if ln["period"] == "2026-06" and ln["decision_id"] in charged
    }  # every June contact of the cell carries the same two weights
    ratio = weights["late-fee"] / weights["paper-fee"]
    assert ratio == pytest.approx(june["late-fee"] / june["paper-fee"], rel=Decimal("0.001"))


def test_a_range_wider_than_half_the_excess_is_a_run_warning(
    run: tuple[Path, dict[str, int], dict[str, Any]],
) -> None:
    from dataclasses import replace

    from chargeback.engine.attribute import _wide
    from chargeback.engine.control import Excess
    from chargeback.engine.polars_engine import aggregate
    from chargeback.report import ReportOptions, Steps
    from chargeback.run import prepare

    root, _, _ = run
    ws, loaded = prepare(ReportOptions(workspace=root / "ws"), Steps())
    from chargeback.engine.attribute import attribute

    (result,) = attribute(ws, aggregate(ws, loaded.frame)).control.values()
    assert _wide(result) == []  # the real fit: a tight range
    wide = replace(result, excess={"2026-07": Excess(100, 80.0, 20.0, 5.0, 40.0)})
    assert _wide(wide) == ["the 80% range of the excess in 2026-07 is wider than +/-50% of it"]


def test_a_marker_rule_beside_a_control_rule_counts_inside_the_excess(
    run: tuple[Path, dict[str, int], dict[str, Any]], tmp_path: Path
) -> None:
    """Issue 11: a plain rule of the same decision on the same contacts adds nothing."""
    root, _, doc = run
    marked = tmp_path / "ws"
    shutil.copytree(root / "ws", marked)
    rules = (marked / "rules" / "main.yaml").read_text()
    rules += (
        "  - {id: fee-marker, decision: fee, match: {reason: [billing.fee]}, window: {days: 61}}\n"
    )
    (marked / "rules" / "main.yaml").write_text(rules)
    again = report(marked, tmp_path / "out")
    assert fee_lines(again) == fee_lines(doc)
