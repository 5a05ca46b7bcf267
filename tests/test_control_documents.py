"""A control baseline on the bill (SPEC 4b, issue 11): what the documents show.

tests/test_control_ledger.py's seasonal world, with a second department whose
decision has a plain rule: the control line's charge carries its range on the
statement, the summary and the e-mail, and the plain line carries none; the
decision's chart draws the expected line and its band only for the control
rule; the method section names the control series, the fit and the warnings.
"""

from __future__ import annotations

import json
import re
import textwrap
from datetime import date, timedelta
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from pypdf import PdfReader
from test_control_ledger import world

from chargeback.documents.control_doc import control_method, series_words
from chargeback.documents.wording import RANGE_DASH as DASH
from chargeback.documents.wording import range_words
from chargeback.engine.attribute import Attribution
from chargeback.engine.control import ControlFit, DailySeries, Excess
from chargeback.engine.control_factor import ControlResult
from chargeback.engine.ledger import LedgerLine
from chargeback.operations.messages import statement_message, summary_message
from chargeback.report import ReportOptions, RunResult
from chargeback.run import run_report
from chargeback.workspace.load import load_workspace

PERIOD = "2026-06"
RULES = """
departments:
  - {id: billing, name: Billing, cost_center: CC-1}
  - {id: logistics, name: Logistics, cost_center: CC-2}
decisions:
  - {id: fee, title: Fee, kind: fee, department: billing, effective: 2026-06-01,
     revenue: {monthly: 600}}
  - {id: carrier, title: New carrier, kind: process, department: logistics,
     effective: 2026-06-01}
costs:
  currency: USD
  method: rates
  channels: {phone: {per_contact: 2.00, per_minute: 0.10}}
rules:
  - id: fee-calls
    decision: fee
    match: {reason: [billing.fee]}
    window: {days: 61}
    baseline: {method: control, lookback_days: LOOKBACK CONTROL}
  - id: late-parcels
    decision: carrier
    match: {reason: [orders.late]}
    window: {days: 61}
"""
EXPECTED_STROKE = 'stroke="#b85c00"'
BAND_FILL = 'fill="#e08a1e"'


def workspace(root: Path, lookback: int = 150, control: str = "") -> Path:
    """The seasonal world, plus late parcels in June that a plain rule charges to logistics."""
    world(root)
    text = RULES.replace("LOOKBACK", str(lookback)).replace(" CONTROL", control)
    (root / "rules" / "main.yaml").write_text(textwrap.dedent(text))
    extra = [
        f"p{k},{date(2026, 6, 1) + timedelta(days=k % 30)}T11:00:00,phone,orders.late,300"
        for k in range(90)
    ]
    with (root / "contacts.csv").open("a") as contacts:
        contacts.write("\n".join(extra) + "\n")
    return root


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[RunResult, Path, dict[str, Any]]:
    root = tmp_path_factory.mktemp("bill")
    ws = workspace(root / "ws")
    out = root / "out"
    options = ReportOptions(
        workspace=ws, period=PERIOD, out=out, formats=("csv", "json", "html", "pdf")
    )
    result = run_report(options)
    return result, out, json.loads((out / "ledger.json").read_text())


def line(doc: dict[str, Any], decision_id: str) -> dict[str, Any]:
    (found,) = [
        ln for ln in doc["lines"] if ln["decision_id"] == decision_id and ln["period"] == PERIOD
    ]
    return found


def range_text(ledger_line: dict[str, Any]) -> str:
    low, high = ledger_line["range"]["cost"]
    return f"80% range {low} {DASH} {high}"


def page(out: Path, name: str) -> str:
    return (out / PERIOD / f"{name}.html").read_text(encoding="utf-8")


def test_the_statement_prints_the_range_beside_a_control_line_only(
    run: tuple[RunResult, Path, dict[str, Any]],
) -> None:
    _, out, doc = run
    fee = line(doc, "fee")
    assert "range" not in line(doc, "carrier")
    billing = page(out, "departments/billing")
    # the central charge, then its range in the same cell
    assert re.search(
        rf">{re.escape(fee['cost'])}<span class=\"sub range\">{re.escape(range_text(fee))}<",
        billing,
    ), range_text(fee)
    low, high = fee["range"]["contacts"]
    assert f"contacts {low} {DASH} {high}" in billing  # the evidence heading
    logistics = page(out, "departments/logistics")
    assert "% range" not in logistics
    summary = page(out, "summary")
    assert summary.count(range_text(fee)) == 3  # by cost, by net, and flagged
    carrier_row = summary.split("New carrier", 1)[1].split("</tr>", 1)[0]
    assert "range" not in carrier_row


def test_the_chart_draws_the_expected_line_and_band_only_for_a_control_rule(
    run: tuple[RunResult, Path, dict[str, Any]],
) -> None:
    _, out, _ = run
    billing = page(out, "departments/billing")
    chart = billing.split('<svg class="chart daily"', 1)[1].split("</svg>", 1)[0]
    assert EXPECTED_STROKE in chart and BAND_FILL in chart
    legend = billing.split('<div class="legend">', 1)[1].split("</div>", 1)[0]
    assert "expected without the decision" in legend and "80% band" in legend
    assert "baseline (usual level before)" not in legend  # no flat baseline is drawn
    logistics = page(out, "departments/logistics")
    assert EXPECTED_STROKE not in logistics and BAND_FILL not in logistics
    assert "expected without the decision" not in logistics
    assert "baseline (usual level before)" not in logistics  # each legend names what it draws


def test_the_method_names_the_control_series_the_fit_and_the_ratio(
    run: tuple[RunResult, Path, dict[str, Any]],
) -> None:
    result, out, _ = run
    billing = page(out, "departments/billing")
    method = billing.split("<h3>Control baselines</h3>", 1)[1].split("</table>", 1)[0]
    ((_, fitted),) = result.attribution.control.items()
    assert "contacts no rule matches and no rule&#39;s evidence names" in method
    first = fitted.series.days[fitted.fit.first_fit_day].isoformat()
    last = fitted.series.days[fitted.fit.last_fit_day].isoformat()
    assert f"150 days, {first} to {last}" in method
    assert "of a 150-day lookback" in method
    assert f">{fitted.fit.ratio:.4f}<" in method
    got = fitted.excess[PERIOD]
    assert f">{got.actual}<" in method and f">{got.expected:.1f}<" in method
    assert "control series (below)" in billing  # the rules table points at it
    assert "Control baselines" not in page(out, "departments/logistics")


def test_the_pdf_reads_back_with_the_range_and_the_method(
    run: tuple[RunResult, Path, dict[str, Any]],
) -> None:
    _, out, doc = run
    text = " ".join(
        p.extract_text() for p in PdfReader(out / PERIOD / "departments" / "billing.pdf").pages
    )
    flat = " ".join(text.split())
    low, high = line(doc, "fee")["range"]["cost"]
    assert f"80% range {low} {DASH} {high}" in flat
    assert "Control baselines" in flat and "150-day lookback" in flat
    other = " ".join(
        p.extract_text() for p in PdfReader(out / PERIOD / "departments" / "logistics.pdf").pages
    )
    assert "% range" not in other and "Control baselines" not in other


def test_the_emails_carry_the_range(run: tuple[RunResult, Path, dict[str, Any]]) -> None:
    result, _, doc = run
    lines = result.ledger.lines_for(PERIOD)
    billing = [ln for ln in lines if ln.department_id == "billing"]
    message = statement_message(
        PERIOD, "billing", "Billing", "CC-1", ("a@example.com",), billing, "USD", b"%PDF"
    )
    words = range_text(line(doc, "fee"))
    assert words in message.text and words in message.html
    assert f"Fee (fee): {line(doc, 'fee')['cost']}, {words}" in message.text
    logistics = [ln for ln in lines if ln.department_id == "logistics"]
    plain = statement_message(
        PERIOD, "logistics", "Logistics", "CC-2", ("b@example.com",), logistics, "USD", b"%PDF"
    )
    assert "range" not in plain.text and "range" not in plain.html
    flagged = [ln for ln in lines if ln.net_negative]
    assert [ln.decision_id for ln in flagged] == ["fee"]
    summary = summary_message(
        PERIOD, "Co", ("c@example.com",), Decimal(1), Decimal(1), flagged, "USD", b"%PDF"
    )
    assert f"; cost {words}" in summary.text and words in summary.html


def test_a_control_block_and_a_short_fit_are_named_with_their_warning(tmp_path: Path) -> None:
    ws = workspace(tmp_path / "ws", lookback=40, control=", control: {reason: [other]}")
    out = tmp_path / "out"
    run_report(ReportOptions(workspace=ws, period=PERIOD, out=out, formats=("json", "html")))
    billing = page(out, "departments/billing")
    assert "contacts where reason is other" in billing
    assert "of a 40-day lookback" in billing
    warning = billing.split("a charge to read with care:</strong>", 1)[1].split("</div>", 1)[0]
    assert "usable fit days (fewer than 56)" in warning


def fake(series: DailySeries, excess: Excess, warnings: tuple[str, ...] = ()) -> ControlResult:
    fit = ControlFit(
        fit_days=60,
        log_ratio=-2.0,
        weekday=(0.0,) * 7,
        covariance=tuple(tuple(0.0 for _ in range(8)) for _ in range(8)),
        dispersion=1.0,
        walk_sd=0.0,
        warnings=warnings,
        first_fit_day=0,
        last_fit_day=59,
    )
    return ControlResult(frozenset({0}), fit, {PERIOD: excess}, Decimal("0.9"), series, 1)


def test_a_wide_range_is_a_warning_and_a_narrow_one_is_not(tmp_path: Path) -> None:
    root = workspace(tmp_path / "ws", control=", interval: 0.9")
    ws = load_workspace(root)
    days = tuple(date(2026, 3, 1) + timedelta(days=k) for k in range(122))
    series = DailySeries(days, (1,) * len(days), (10,) * len(days))

    def method(excess: Excess, warnings: tuple[str, ...] = ()) -> dict[str, Any]:
        attribution = Attribution(
            {}, {}, {}, [], control={frozenset({0}): fake(series, excess, warnings)}
        )
        found = control_method(ws, attribution, 0, PERIOD)
        assert found is not None
        return found

    narrow = method(Excess(100, 60.0, 40.0, 30.0, 50.0))
    assert narrow["warnings"] == [] and narrow["level"] == "90%"
    (fit,) = narrow["fits"]
    assert (fit["excess"], fit["excess_low"], fit["excess_high"]) == ("40.0", "30.0", "50.0")
    assert fit["fit_from"] == "2026-03-01" and fit["fit_to"] == "2026-04-29"
    assert fit["ratio"] == "0.1353" and fit["contacts"] == "its contacts"
    wide = method(Excess(100, 60.0, 40.0, 10.0, 50.0), ("only 30 usable fit days",))
    assert wide["warnings"][0] == "only 30 usable fit days"
    assert "wider than ±50% of its central 40.0" in wide["warnings"][1]
    assert control_method(ws, Attribution({}, {}, {}, []), 1, PERIOD) is None  # a plain rule
    assert (
        series_words(ws, frozenset({0})) == "contacts no rule matches and no rule's evidence names"
    )
    family = series_words(ws, frozenset({0}), "billing")
    assert family.endswith("evidence names, with a reason in the billing family (billing.*)")


def test_a_line_without_a_range_reads_as_before() -> None:
    plain = LedgerLine(PERIOD, "d", "", "x", Fraction(1), Fraction(1), Decimal("1.00"), Decimal(0))
    assert range_words(plain) == ""
    ranged = LedgerLine(
        PERIOD,
        "d",
        "",
        "x",
        Fraction(1),
        Fraction(1),
        Decimal("1.00"),
        Decimal(0),
        range=(
            Decimal("0.8"),
            (Fraction(1, 2), Fraction(3, 2)),
            (Fraction(1, 200), Fraction(9, 5)),
        ),
    )
    assert range_words(ranged) == f"80% range 0.01 {DASH} 1.80"  # half-up to cents
