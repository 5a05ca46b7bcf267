"""The output folder is a book (SPEC 5, issue 13 part 2).

A report run rewrites the months it reports and keeps every other month in
ledger.csv and ledger.json as it was, each month with the fingerprint of the
inputs that produced it; a book chargeback cannot vouch for is refused, never
overwritten; the summary's trend reads the book; statements on disk and the
book's lines agree.

timezone UTC; phone 1.00 a contact + 0.35 a minute, chat 0.70, anything else 2.00.
fee (billing, 1.00 revenue a month) matches reason fee; app (product) reason app;
promo (billing, from April) every chat contact, so a chat fee contact is split.
"""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path
from typing import Any

import pytest
from oracle import oracle_ledger
from typer.testing import CliRunner

from cli import app

runner = CliRunner()

RULES = """\
departments:
  - {id: billing, name: Billing, cost_center: CC-1}
  - {id: product, name: Product, cost_center: CC-2}
decisions:
  - {id: fee, title: Fee, kind: fee, department: billing, effective: 2026-03-01,
     revenue: {monthly: 1.00}}
  - {id: app, title: App, kind: launch, department: product, effective: 2026-03-01}
  - {id: promo, title: Promo, kind: campaign, department: billing, effective: 2026-04-01}
rules:
  - {id: r, decision: fee, match: {reason: [fee]}}
  - {id: a, decision: app, match: {reason: [app]}}
  - {id: p, decision: promo, match: {channel: [chat]}}
costs:
  currency: USD
  method: rates
  channels:
    phone: {per_contact: 1.00, per_minute: 0.35}
    chat: {per_contact: 0.70}
  default: {per_contact: 2.00}
"""
# the rule change of the re-run tests: app also takes the fee contacts (split with fee)
CHANGED = RULES.replace("match: {reason: [app]}", "match: {reason: [app, fee]}")
CONTACTS = """\
contact_id,started_at,channel,reason,handle_seconds
c1,2026-03-02T10:00:00,phone,fee,125
c2,2026-03-05T11:00:00,chat,app,
c3,2026-03-09T09:30:00,email,x,
c4,2026-04-02T10:00:00,phone,fee,61
c5,2026-04-03T10:00:00,chat,fee,
c6,2026-04-04T10:00:00,phone,app,200
c7,2026-05-03T10:00:00,phone,app,33
c8,2026-05-04T10:00:00,chat,x,
"""


def workspace(tmp_path: Path, rules: str = RULES, contacts: str = CONTACTS) -> Path:
    root = tmp_path / "ws"
    (root / "rules").mkdir(parents=True)
    (root / "rules" / "all.yaml").write_text(rules)
    (root / "contacts.csv").write_text(contacts)
    (root / "chargeback.yaml").write_text("timezone: UTC\ncontacts: contacts.csv\n")
    return root


def cb(root: Path, *args: str, out: str = "out") -> tuple[int, str]:
    result = runner.invoke(app, [*args, "--workspace", str(root), "--out", str(root / out)])
    return result.exit_code, " ".join(result.output.split())  # unwrapped


def report(root: Path, *args: str, out: str = "out") -> str:
    code, output = cb(root, "report", *args, out=out)
    assert code == 0, output
    return output


def book(root: Path, out: str = "out") -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((root / out / "ledger.json").read_text())
    return doc


def rows(root: Path, out: str = "out") -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO((root / out / "ledger.csv").read_text())))


def month(doc: dict[str, Any], period: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A month of ledger.json as it stands: its periods entry and its lines."""
    return doc["periods"][period], [ln for ln in doc["lines"] if ln["period"] == period]


def csv_month(root: Path, period: str, out: str = "out") -> list[str]:
    """A month's rows of ledger.csv, as text."""
    text = (root / out / "ledger.csv").read_text().splitlines()
    return [line for line in text[1:] if line.startswith(f"{period},")]


def agrees(out: Path) -> None:
    """Every month with documents on disk is in the book, with a statement per department."""
    doc = json.loads((out / "ledger.json").read_text())
    for folder in sorted(p for p in out.iterdir() if re.fullmatch(r"\d{4}-\d{2}", p.name)):
        for ext in ("html", "pdf"):
            statements = {p.stem for p in folder.glob(f"departments/*.{ext}")}
            if (folder / f"summary.{ext}").exists() or statements:
                assert folder.name in doc["periods"], f"{folder.name} has documents, no lines"
                _, lines = month(doc, folder.name)
                charged = {ln["department_id"] for ln in lines} - {"unattributed"}
                assert statements == charged, (folder.name, ext, statements, charged)


# --------------------------------------------------------------------------- the book


def test_two_one_month_runs_are_one_run_over_both_months(tmp_path: Path) -> None:
    root = workspace(tmp_path)
    report(root, "--period", "2026-03", "--format", "csv")
    report(root, "--period", "2026-04", "--format", "csv")
    report(root, "--from", "2026-03", "--to", "2026-04", "--format", "csv", out="both")
    assert (root / "out/ledger.csv").read_bytes() == (root / "both/ledger.csv").read_bytes()
    one, two = book(root), book(root, "both")
    assert one["lines"] == two["lines"]
    assert one["periods"] == two["periods"]  # totals and per-month fingerprints
    assert list(one["periods"]) == ["2026-03", "2026-04"]
    # to the cent, against the independent oracle
    expected = oracle_ledger(root, root / "contacts.csv", ["2026-03", "2026-04"])
    assert rows(root) == expected
    # sorted per SPEC 5 across months
    keys = [(r["period"], r["department_id"], r["decision_id"]) for r in rows(root)]
    assert keys == sorted(keys)


def test_rerunning_one_month_with_changed_rules_changes_only_that_month(tmp_path: Path) -> None:
    root = workspace(tmp_path)
    report(root, "--format", "csv")
    before = book(root)
    first = before["meta"]["fingerprint"]
    assert {p: t["fingerprint"] for p, t in before["periods"].items()} == dict.fromkeys(
        ("2026-03", "2026-04", "2026-05"), first
    )
    kept_csv = {p: csv_month(root, p) for p in ("2026-03", "2026-05")}

    (root / "rules" / "all.yaml").write_text(CHANGED)
    report(root, "--period", "2026-04", "--format", "csv")
    after = book(root)
    for period in ("2026-03", "2026-05"):  # exactly as they were, bytes and fingerprint
        assert month(after, period) == month(before, period)
        assert csv_month(root, period) == kept_csv[period]
    totals, lines = month(after, "2026-04")
    assert totals["fingerprint"] == after["meta"]["fingerprint"] != first
    assert month(after, "2026-04") != month(before, "2026-04")
    # April is what a run of April alone with the new rules gives, and the oracle too
    report(root, "--period", "2026-04", "--format", "csv", out="fresh")
    assert month(book(root, "fresh"), "2026-04") == (totals, lines)
    april = [r for r in rows(root) if r["period"] == "2026-04"]
    assert april == oracle_ledger(root, root / "contacts.csv", ["2026-04"])
    # and March, had it been re-run, would have changed: the book kept it on purpose
    march_now = oracle_ledger(root, root / "contacts.csv", ["2026-03"])
    assert [r for r in rows(root) if r["period"] == "2026-03"] != march_now


def test_ledger_json_on_every_run_and_ledger_csv_kept_in_step(tmp_path: Path) -> None:
    root = workspace(tmp_path)
    out = root / "out"
    report(root, "--period", "2026-03", "--format", "html")
    assert (out / "ledger.json").is_file() and not (out / "ledger.csv").exists()
    report(root, "--period", "2026-04", "--format", "csv")
    assert sorted({r["period"] for r in rows(root)}) == ["2026-03", "2026-04"]
    report(root, "--period", "2026-05", "--format", "html")  # ledger.csv exists: kept in step
    doc = book(root)
    assert list(doc["periods"]) == ["2026-03", "2026-04", "2026-05"]
    assert [list(r.values()) for r in rows(root)] == [
        [ln[c] for c in rows(root)[0]] for ln in doc["lines"]
    ]
    agrees(out)


# --------------------------------------------------------------------------- damaged, foreign, old


def _other_currency(text: str) -> str:
    return text.replace('"currency": "USD"', '"currency": "EUR"', 1)


def _cost_edited(text: str) -> str:
    doc = json.loads(text)
    doc["lines"][0]["cost"] = "99.99"
    return json.dumps(doc, indent=2)


def _line_twice(text: str) -> str:
    doc = json.loads(text)
    doc["lines"].append(doc["lines"][0])
    return json.dumps(doc, indent=2)


def _infinite(text: str) -> str:
    doc = json.loads(text)
    doc["periods"]["2026-03"]["net"] = "Infinity"
    return json.dumps(doc, indent=2)


def _line_nan(text: str) -> str:
    doc = json.loads(text)
    doc["lines"][0]["revenue"] = "NaN"
    return json.dumps(doc, indent=2)


def _no_lines(text: str) -> str:
    doc = json.loads(text)
    del doc["lines"]
    return json.dumps(doc, indent=2)


@pytest.mark.parametrize(
    ("damage", "says"),
    [
        (lambda text: text[: len(text) // 2], "is not valid JSON"),
        (lambda text: '{"rows": [1, 2]}\n', "was not written by chargeback"),
        (lambda text: "[]\n", "was not written by chargeback"),
        (_other_currency, "is a book in 'EUR' and this workspace charges in 'USD'"),
        (_cost_edited, "is damaged (2026-03's lines add up to"),
        (_line_twice, "is damaged (two lines for 2026-03 billing fee)"),
        (_no_lines, "is damaged (no 'lines')"),
        (_infinite, "is damaged (2026-03: 'net' is 'Infinity', not an amount)"),
        (_line_nan, "is damaged (2026-03: 'revenue' is 'NaN', not an amount)"),
    ],
    ids=[
        "truncated",
        "foreign",
        "not-an-object",
        "currency",
        "figures",
        "twice",
        "no-lines",
        "infinity",
        "nan",
    ],
)
def test_a_damaged_or_foreign_book_is_refused_not_overwritten(
    tmp_path: Path, damage: Any, says: str
) -> None:
    root = workspace(tmp_path)
    report(root, "--period", "2026-03", "--format", "csv")
    path = root / "out" / "ledger.json"
    path.write_text(damage(path.read_text()))
    kept, kept_csv = path.read_bytes(), (root / "out" / "ledger.csv").read_bytes()
    code, output = cb(root, "report", "--period", "2026-04", "--format", "html,csv")
    assert code == 1, output
    assert "ledger.json" in output and says in output
    assert "move it away to start a new book here, or report into another --out" in output
    assert path.read_bytes() == kept  # nothing written: not the book, not the documents
    assert (root / "out" / "ledger.csv").read_bytes() == kept_csv
    assert not (root / "out" / "2026-04").exists()
    # moved away, the folder starts a new book
    path.rename(root / "out" / "old-ledger.json")
    report(root, "--period", "2026-04", "--format", "csv")
    assert list(book(root)["periods"]) == ["2026-04"]


def test_a_book_from_before_month_fingerprints_is_upgraded(tmp_path: Path) -> None:
    root = workspace(tmp_path)
    report(root, "--format", "csv")
    path = root / "out" / "ledger.json"
    old = json.loads(path.read_text())
    for totals in old["periods"].values():
        del totals["fingerprint"]  # as 0.1.0's first ledger.json wrote it
    path.write_text(json.dumps(old, indent=2, ensure_ascii=False) + "\n")

    (root / "rules" / "all.yaml").write_text(CHANGED)
    report(root, "--period", "2026-05", "--format", "csv")
    new = book(root)
    for period in ("2026-03", "2026-04"):
        totals, lines = month(new, period)
        assert totals == {**old["periods"][period], "fingerprint": old["meta"]["fingerprint"]}
        assert lines == month(old, period)[1]
    assert new["periods"]["2026-05"]["fingerprint"] == new["meta"]["fingerprint"]
    assert new["meta"]["fingerprint"] != old["meta"]["fingerprint"]


def test_statements_an_earlier_version_left_outside_the_book_are_named(tmp_path: Path) -> None:
    root = workspace(tmp_path)
    out = root / "out"
    report(root, "--period", "2026-03", "--format", "html,csv")
    (out / "ledger.json").unlink()  # what a `--format html,csv` run of 0.1.0 left: no book
    output = report(root, "--period", "2026-04", "--format", "csv")
    assert "has no lines for 2026-03" in output
    assert "report it again to put it in the book (chargeback report --period 2026-03)" in output
    assert sorted(book(root)["periods"]) == ["2026-04"]
    assert {r["period"] for r in rows(root)} == {"2026-04"}  # ledger.csv tells the book's story
    output = report(root, "--period", "2026-03", "--format", "html")
    assert "has no lines" not in output
    assert sorted(book(root)["periods"]) == ["2026-03", "2026-04"]
    agrees(out)


# --------------------------------------------------------------------------- documents and trend


def trend_totals(summary: Path) -> dict[str, str]:
    """The summary's "Trend in figures" table: month -> total."""
    table = summary.read_text().split("Trend in figures", 1)[1].split("</table>", 1)[0]
    found = {}
    for period, cells in re.findall(r'<td class="nowrap">(\d{4}-\d{2})</td>(.*?)</tr>', table):
        found[period] = re.findall(r'<td class="num">([^<]*)</td>', cells)[-1]
    return found


def test_the_summary_trend_reads_the_book(tmp_path: Path) -> None:
    root = workspace(tmp_path)
    report(root, "--format", "csv")
    totals = {p: t["cost"] for p, t in book(root)["periods"].items()}
    may = root / "may.csv"
    may.write_text("".join(CONTACTS.splitlines(keepends=True)[i] for i in (0, 7, 8)))
    # a one-month run whose contacts hold only May: the earlier months come from the book
    report(root, "--period", "2026-05", "--format", "html", "--contacts", str(may))
    assert trend_totals(root / "out/2026-05/summary.html") == totals
    # the book, not the data: a rule change does not redraw months the run did not report
    (root / "rules" / "all.yaml").write_text(CHANGED)
    report(root, "--period", "2026-05", "--format", "html")
    shown = trend_totals(root / "out/2026-05/summary.html")
    assert {p: shown[p] for p in ("2026-03", "2026-04")} == {
        p: totals[p] for p in ("2026-03", "2026-04")
    }


def test_a_month_without_contacts_now_agrees_with_its_documents(tmp_path: Path) -> None:
    root = workspace(tmp_path)
    out = root / "out"
    report(root, "--format", "html,csv")
    assert (out / "2026-03/departments/product.html").exists()
    without = "".join(
        line for line in CONTACTS.splitlines(keepends=True) if ",2026-03-" not in line
    )
    (root / "contacts.csv").write_text(without)
    report(root)  # the months with contacts: March is not reported, so it stays as it was
    assert book(root)["periods"]["2026-03"]["contacts"] == 3
    agrees(out)
    report(root, "--period", "2026-03", "--format", "html,csv")  # asked for: March is now empty
    totals, lines = month(book(root), "2026-03")
    assert totals["contacts"] == 0 and totals["cost"] == "0.00"
    assert [(ln["decision_id"], ln["revenue"]) for ln in lines] == [
        ("fee", "1.00"),  # the fee's revenue still counts
        ("unattributed", "0.00"),
    ]
    assert not (out / "2026-03/departments/product.html").exists()
    assert not (out / "2026-03/departments/product.pdf").exists()  # drawn from other figures
    agrees(out)


def test_closed_months_are_in_the_book_as_closed(tmp_path: Path) -> None:
    root = workspace(tmp_path)
    out = root / "out"
    code, output = cb(root, "close", "--period", "2026-03")
    assert code == 0, output
    manifest = json.loads((out / "closed/2026-03/manifest.json").read_text())
    closed = month(book(root), "2026-03")
    assert closed[0]["fingerprint"] == manifest["fingerprint"]
    # late March contacts: April carries the adjustment, March stays as closed, byte for byte
    with (root / "contacts.csv").open("a") as handle:
        handle.write("c9,2026-03-20T10:00:00,phone,fee,60\n")
    output = report(root, "--period", "2026-04", "--format", "csv")
    assert "posted as prior-period adjustments in 2026-04" in output
    assert month(book(root), "2026-03") == closed
    assert any(ln["kind"] == "adjustment" for ln in month(book(root), "2026-04")[1])
    # a book that lost March gets it back from closed/, with the close's fingerprint
    (out / "ledger.json").unlink()
    (out / "ledger.csv").unlink()
    output = report(root, "--period", "2026-05", "--format", "csv")
    assert "has no lines" not in output
    doc = book(root)
    assert list(doc["periods"]) == ["2026-03", "2026-05"]
    assert doc["periods"]["2026-03"]["fingerprint"] == manifest["fingerprint"]
    assert [r for r in rows(root) if r["period"] == "2026-03"] == [
        {k: v for k, v in r.items() if k in rows(root)[0]} for r in manifest["lines"]
    ]
