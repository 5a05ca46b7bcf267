"""From matched to charged (issue 14): every statement says, in one line that adds
up as printed, how a decision's rule matches became the contacts it is charged.

Hand-made workspaces, March 2026, timezone UTC, overlap split unless said:

  fee     fee-a (reason billing.fee) and fee-b (billing.fee on phone):
          f1-f3 phone: both rules -> 3 counted once; f4, f5 chat: also bundle-r
          -> weights 1 + 1 scaled to 1/2 each; f6 email: fee-a only.
          9 rule matches - 3 = 6 contacts - 1.000 split with bundle (2 shared) = 5.000
  bundle  bundle-r (every chat contact): f4, f5, c1 and p10-p12 (promo's chats).
          promo's chats: promo 5/36, bundle 1 -> /41/36: bundle 36/41, promo 5/41.
          6 - 1.000 split with fee (2 shared) - 0.366 (3 x 5/41) split with promo
          (3 shared) = 4.634 (exactly 6 - 1 - 15/41 = 190/41 = 4.634146...)
  promo   promo-r (reason promo.code), flat baseline over 3 days: one contact on
          2026-02-27 -> b = 1/3, E = 31/3 over March's 31 window days; A = 12 ->
          f = (12 - 31/3) / 12 = 5/36.  Nine alone weigh 5/36, three (p10-p12,
          chat) 5/41: 12 - 10.333 (12 x 31/36 = 31/3) - 0.051 (3 x (5/36 - 5/41)
          = 75/1476) = 1.616 (exactly 5/4 + 15/41 = 265/164 = 1.615853...)
  app     app-r (reason app.crash), share 0.5: 3 matches - 1.500 = 1.500.
"""

from __future__ import annotations

import html
import re
from fractions import Fraction
from pathlib import Path

import pytest
from conftest import write_workspace
from pypdf import PdfReader
from typer.testing import CliRunner

from chargeback.documents.charts import LABEL_BAND, daily_chart, label_every, line_chart
from chargeback.documents.reconcile_doc import reconciliation
from chargeback.engine.reconcile import Reconciliation, Step
from cli import app

runner = CliRunner()
MINUS = "\u2212"

DEPARTMENTS = """
departments:
  - {id: billing, name: Billing, cost_center: CC-100}
  - {id: product, name: Product, cost_center: CC-200}
"""
COSTS = """
costs:
  currency: USD
  method: rates
  channels: {phone: {per_contact: 1.00}, chat: {per_contact: 1.00}, email: {per_contact: 1.00}}
"""
RULES = """\
decisions:
  - {id: fee, title: Fee, kind: fee, department: billing, effective: 2026-03-01,
     revenue: {monthly: 1.00}}
  - {id: bundle, title: Bundle, kind: launch, department: product, effective: 2026-03-01}
  - {id: promo, title: Promo, kind: campaign, department: product, effective: 2026-03-01}
  - {id: app, title: App, kind: launch, department: product, effective: 2026-03-01}
rules:
  - {id: fee-a, decision: fee, match: {reason: [billing.fee]}}
  - {id: fee-b, decision: fee, match: {reason: [billing.fee], channel: [phone]}}
  - {id: bundle-r, decision: bundle, match: {channel: [chat]}}
  - {id: promo-r, decision: promo, match: {reason: [promo.code]}, baseline: {lookback_days: 3}}
  - {id: app-r, decision: app, match: {reason: [app.crash]}, share: 0.5}
"""


def contacts() -> str:
    rows = ["contact_id,started_at,channel,reason,handle_seconds,text"]
    rows.append("p0,2026-02-27T10:00:00,phone,promo.code,60,before")
    rows += [f"f{k},2026-03-0{k}T10:00:00,phone,billing.fee,60,fee" for k in (1, 2, 3)]
    rows += [f"f{k},2026-03-0{k}T10:00:00,chat,billing.fee,60,fee" for k in (4, 5)]
    rows.append("f6,2026-03-06T10:00:00,email,billing.fee,60,fee")
    rows.append("c1,2026-03-07T10:00:00,chat,other,60,hello")
    rows += [f"p{k},2026-03-{k + 10}T10:00:00,phone,promo.code,60,code" for k in range(1, 10)]
    rows += [f"p{k},2026-03-{k + 10}T10:00:00,chat,promo.code,60,code" for k in (10, 11, 12)]
    rows += [f"a{k},2026-03-2{k}T10:00:00,phone,app.crash,60,crash" for k in (1, 2, 3)]
    return "\n".join(rows) + "\n"


def report(root: Path, *formats: str) -> Path:
    out = root / "out"
    args = ["report", "--workspace", str(root), "--out", str(out), "--period", "2026-03"]
    result = runner.invoke(app, [*args, "--format", ",".join(formats)])
    assert result.exit_code == 0, result.output
    return out / "2026-03"


def text_of(page: str) -> str:
    """The HTML's text, tags dropped and whitespace folded."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())


@pytest.fixture(scope="module")
def split_world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("reconcile") / "ws"
    write_workspace(root, RULES, contacts(), "timezone: UTC\n", DEPARTMENTS, COSTS)
    return report(root, "html", "pdf", "csv")


def line_of(page: str, decision: str) -> str:
    """The evidence's reconciliation line of a decision."""
    found = re.search(
        rf"\b{decision} · \w+ · effective .*?Contacts in Mar 2026: (.*?charged)\.", text_of(page)
    )
    assert found, decision
    return found.group(1)


def adds_up(line: str) -> bool:
    """Each `a - b = c` (a minus sign) and `x + y = z` in the line holds as printed."""
    numbers = r"\d+(?:\.\d+)?"
    tokens = re.findall(rf"({numbers})|([+{MINUS}=])", line)
    total: Fraction | None = None
    op = "="
    for number, sign in tokens:
        if sign:
            op = sign
            continue
        value = Fraction(number)
        if not op:  # numbers inside words, "(2 contacts shared)", "100%", do not count
            continue
        if op == "=":
            if total is not None and total != value:
                return False
            total = value
        elif op == "+":
            total = (total or Fraction(0)) + value
        else:
            total = (total or Fraction(0)) - value
        op = ""
    return True


def test_two_rules_of_one_decision_and_a_split(split_world: Path) -> None:
    page = (split_world / "departments" / "billing.html").read_text()
    line = line_of(page, "fee")
    assert line == (
        f"6 + 3 = 9 rule matches {MINUS} 3 matched by two or more of its rules, counted once"
        f" = 6 contacts matched {MINUS} 1.000 split with bundle (2 contacts shared) = 5.000 charged"
    )
    assert adds_up(line)


def test_splits_with_two_decisions_name_each(split_world: Path) -> None:
    page = (split_world / "departments" / "product.html").read_text()
    line = line_of(page, "bundle")
    assert line == (
        f"6 rule matches {MINUS} 1.000 split with fee (2 contacts shared)"
        f" {MINUS} 0.366 split with promo (3 contacts shared) = 4.634 charged"
    )
    assert adds_up(line)


def test_a_flat_baseline_rounds_so_the_line_adds_up(split_world: Path) -> None:
    page = (split_world / "departments" / "product.html").read_text()
    line = line_of(page, "promo")
    assert line == (
        f"12 rule matches {MINUS} 10.333 at the usual level before the decision (baseline)"
        f" {MINUS} 0.051 split with bundle (3 contacts shared) = 1.616 charged"
    )
    assert adds_up(line)
    # the charged figure is the ledger's, exactly as printed there
    assert "1.616" in (split_world.parent / "ledger.csv").read_text()


def test_a_share_below_100_percent(split_world: Path) -> None:
    page = (split_world / "departments" / "product.html").read_text()
    line = line_of(page, "app")
    assert (
        line == f"3 rule matches {MINUS} 1.500 left out by rule shares below 100% = 1.500 charged"
    )


def test_the_method_and_the_summary_carry_it(split_world: Path) -> None:
    billing = text_of((split_world / "departments" / "billing.html").read_text())
    method = billing.split("Rules applied in", 1)[1]
    assert "From matched to charged." in method
    assert f"fee : 6 + 3 = 9 rule matches {MINUS} 3 matched by two" in method
    summary = text_of((split_world / "summary.html").read_text())
    short = (
        f"Contacts: 12 rule matches {MINUS} 10.333 baseline {MINUS} 0.051 split with bundle"
        " = 1.616 charged"
    )
    assert summary.count(short) == 2  # ranked by cost and by net
    assert adds_up(short)


def test_evidence_stays_with_its_heading_and_provenance_with_the_method(
    split_world: Path,
) -> None:
    pages = [
        " ".join((p.extract_text() or "").split())
        for p in PdfReader(split_world / "departments" / "product.pdf").pages
    ]
    headings = [f"{t} {t.lower()} ·" for t in ("Bundle", "Promo", "App")]
    for text in pages:  # a page showing a decision's tables shows its heading above them
        assert text.count("Top reasons") <= sum(text.count(h) for h in headings), text
    last = pages[-1]
    assert "Provenance" in last and "From matched to charged" in last


def test_priority_names_the_decision_that_took_the_contacts(tmp_path: Path) -> None:
    rules = """\
    decisions:
      - {id: x, title: X, kind: fee, department: billing, effective: 2026-03-01}
      - {id: y, title: Y, kind: fee, department: billing, effective: 2026-03-01}
    rules:
      - {id: x-r, decision: x, match: {reason: [a]}, priority: 2}
      - {id: y-r, decision: y, match: {channel: [phone]}, priority: 1}
    """
    rows = "contact_id,started_at,channel,reason,handle_seconds,text\n"
    rows += "".join(f"k{k},2026-03-1{k}T10:00:00,phone,a,60,t\n" for k in (1, 2))
    rows += "k3,2026-03-13T10:00:00,phone,b,60,t\n"
    root = write_workspace(
        tmp_path / "ws", rules, rows, "timezone: UTC\noverlap: priority\n", DEPARTMENTS, COSTS
    )
    page = (report(root, "html") / "departments" / "billing.html").read_text()
    assert line_of(page, "y") == (
        f"3 rule matches {MINUS} 2 taken by higher-priority rules of x = 1.000 charged"
    )


def test_a_control_baseline_takes_away_the_expected_count(tmp_path: Path) -> None:
    from test_control_documents import workspace

    out = report_period(workspace(tmp_path / "ws"), "2026-06")
    page = text_of((out / "departments" / "billing.html").read_text())
    found = re.search(
        rf"Contacts in Jun 2026: (\d+) rule matches {MINUS} (\d+\.\d{{3}}) expected anyway"
        r" \(control baseline\) = (\d+\.\d{3}) charged",
        page,
    )
    assert found, page
    matches, expected, charged = (Fraction(g) for g in found.groups())
    assert matches - expected == charged
    # the method's control table: the same matched count, the expected count to 1 decimal
    table = page.split("Control baselines", 1)[1]
    assert re.search(rf"{int(matches)} {float(expected):.1f} ", table), table


def report_period(root: Path, period: str) -> Path:
    out = root / "out"
    args = ["report", "--workspace", str(root), "--out", str(out), "--period", period]
    result = runner.invoke(app, [*args, "--format", "html"])
    assert result.exit_code == 0, result.output
    return out / period


def test_rounding_lands_on_the_printed_charge() -> None:
    """Three steps of 1/3 each: 3 - 1 = 2 exactly, so the thousandths must add to 1.000."""
    rec = Reconciliation(matches=3, contacts=3, charged=Fraction(2))
    for k, kind in enumerate(("baseline", "share", "split")):
        rec.steps[kind, ()] = Step(kind, Fraction(1, 3), shared=k)
    shown = reconciliation(rec, Fraction(2))
    assert shown is not None
    assert [s["contacts"] for s in shown["steps"]] == ["0.334", "0.333", "0.333"]
    assert shown["charged"] == "2.000"
    assert reconciliation(rec, Fraction(1)) is None  # not the line's contacts: not printed


def test_many_small_splits_are_added_up_into_one_and_the_line_still_adds_up() -> None:
    """A decision sharing contacts with others in seven combinations: the four largest are
    worded one by one, the other three as one step naming how many, and the printed
    numbers still take the matches to the charge to the last digit."""
    rec = Reconciliation(matches=40, contacts=40)
    others = [("b",), ("c",), ("b", "c"), ("d",), ("b", "d"), ("c", "d"), ("e",)]
    amounts = [Fraction(7, 3), Fraction(5, 2), Fraction(1, 7), Fraction(3), Fraction(2, 9)]
    amounts += [Fraction(1, 11), Fraction(4)]
    for k, (names, amount) in enumerate(zip(others, amounts, strict=True)):
        rec.steps["split", names] = Step("split", amount, names, shared=k + 1)
    rec.charged = 40 - sum(amounts, Fraction(0))
    shown = reconciliation(rec, rec.charged)
    assert shown is not None
    rows = shown["steps"]
    assert [r["others"] for r in rows[:4]] == [["b"], ["c"], ["d"], ["e"]]  # in their order
    assert rows[4]["others"] == ["b", "c", "d"] and rows[4]["shared"] == 3 + 5 + 6
    assert "split with 3 other decisions in 3 combinations (14 contacts shared)" in shown["text"]
    assert "split with 3 others" in shown["short"]
    assert 40_000 - sum(r["units"] for r in rows) == int(shown["charged"].replace(".", ""))
    assert shown["text"].endswith(f"= {shown['charged']} charged")
    assert len(rows) == 5


def test_a_chart_draws_its_effective_label_above_the_plot() -> None:
    from datetime import date, timedelta

    start = date(2026, 1, 1)
    counts = {start + timedelta(days=k): 100 for k in range(120)}
    svg = str(
        daily_chart(
            counts,
            start,
            date(2026, 4, 30),
            date(2026, 2, 1),
            (date(2026, 2, 1), None),
            (date(2026, 4, 1), date(2026, 4, 30)),
        )
    )
    label = re.search(r'<text[^>]*y="([\d.]+)"[^>]*>effective 2026-02-01</text>', svg)
    assert label and float(label.group(1)) < LABEL_BAND  # its baseline is above the plot's top
    assert "baseline" not in svg  # named in the legend, never written over the bars


def test_24_month_axes_thin_their_labels() -> None:
    months = [
        f"{m} {y}"
        for y in ("25", "26")
        for m in (
            "Jan",
            "Feb",
            "Mar",
            "Apr",
            "May",
            "Jun",
            "Jul",
            "Aug",
            "Sep",
            "Oct",
            "Nov",
            "Dec",
        )
    ]
    slot = (640 - 90 - 46) / 24
    assert label_every(months, slot) == 2
    svg = str(line_chart(months, [("#000", "cost", [1.0] * 24)]))
    drawn = re.findall(r'text-anchor="middle">([A-Z][a-z]{2} \d\d)</text>', svg)
    assert len(drawn) == 12 and drawn[-1] == "Dec 26"
    assert label_every(months[:12], (640 - 46 - 6) / 12) == 1  # 12 months: every label
