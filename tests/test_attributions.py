"""attributions.parquet (SPEC 5): every contact's weight and cost per decision.

Three layers: a hand-computed workspace read back row by row (split and
priority overlaps, shares, a baseline, the unattributed rest, rates and pool);
the rounding itself (half-up on the exact value, and the Python fallback for
integers too large for Int128); and a differential test against the row-by-row
oracle (tests/oracle.py) on generated workspaces, through the real CLI.
"""

from __future__ import annotations

import csv
import random
import tempfile
from collections import defaultdict
from dataclasses import replace
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import oracle
import polars as pl
import pytest
from conftest import RATES, write_workspace
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_differential import Scenario, scenarios, write_scenario
from typer.testing import CliRunner, Result

from chargeback.engine import drilldown
from chargeback.engine.drilldown import micro_cost, rounding_terms
from chargeback.report import FORMATS, KNOWN_FORMATS, ReportOptions
from cli import app

UN = "unattributed"
SCHEMA = {
    "contact_id": pl.String(),
    "period": pl.String(),
    "department_id": pl.String(),
    "decision_id": pl.String(),
    "weight": pl.Float64(),
    "cost": pl.Decimal(38, 6),
}

# ------------------------------------------------------------- the hand-computed workspace

RULES = """
decisions:
  - {id: fee, title: Fee, kind: fee, department: billing, effective: 2026-03-01}
  - {id: app, title: App, kind: launch, department: product, effective: 2026-03-01}
  - {id: promo, title: Promo, kind: campaign, department: product, effective: 2026-03-01}
rules:
  - {id: r-fee, decision: fee, match: {reason: [billing.fee]}, share: 0.6, priority: 1}
  - {id: r-tiny, decision: fee, match: {channel: [social]}, share: 0.0000000005}
  - {id: r-app, decision: app, match: {channel: [phone]}, share: 0.8}
  - id: r-promo
    decision: promo
    match: {reason: [promo]}
    priority: 1
    baseline: {lookback_days: 31}
"""
CONTACTS = """
contact_id,started_at,channel,reason,handle_seconds
b1,2026-02-10T10:00:00,email,promo,
c1,2026-03-02T10:00:00,phone,billing.fee,120
c2,2026-03-03T10:00:00,chat,billing.fee,600
c3,2026-03-04T10:00:00,email,promo,
c4,2026-03-05T10:00:00,email,promo,
c5,2026-03-06T10:00:00,email,promo,
c6,2026-03-07T10:00:00,sms,other,
c7,2026-03-08T10:00:00,phone,promo,60
c8,2026-03-09T10:00:00,social,,
"""
POOL = """
costs:
  currency: USD
  method: pool
  pool: {monthly: 100.00}
"""

# Rates (conftest.RATES): phone 0.40 + 1.05/min, chat 0.15, anything else 1.00.
#   b1 1.00, c1 0.40 + 1.05 x 2 = 2.50, c2 0.15, c3-c6 and c8 1.00, c7 0.40 + 1.05 = 1.45
# r-promo's baseline: B = 1 (b1) in [01-29, 03-01) -> b = 1/31; March has 31 window
#   days -> E = 1; A = 4 (c3, c4, c5, c7) -> f = 3/4.
# Split:
#   c1 fee 0.6 + app 0.8 = 1.4 > 1 -> 3/7 = 0.428571428|57 and 4/7 = 0.571428571|43;
#      costs 2.50 x 3/7 = 1.071428|57 and 2.50 x 4/7 = 1.428571|43; no rest
#   c2 fee 0.6 -> 0.09, rest 0.4 -> 0.06
#   c3-c5 promo 3/4 -> 0.75, rest 1/4 -> 0.25
#   c7 app 0.8 + promo 0.75 = 1.55 -> 16/31 = 0.516129032|26 and 15/31 = 0.483870967|74;
#      costs 1.45 x 16/31 = 0.748387|10 and 1.45 x 15/31 = 0.701612|90
#   c8 fee 5e-10, exactly half a unit of the 9th decimal -> 0.000000001 (half-up,
#      where half-even would give 0); its cost 5e-10 -> 0.000000; rest 0.9999999995 -> 1
SPLIT_RATES = [
    ("b1", "2026-02", UN, UN, 1.0, "1.000000"),
    ("c1", "2026-03", "billing", "fee", 0.428571429, "1.071429"),
    ("c1", "2026-03", "product", "app", 0.571428571, "1.428571"),
    ("c2", "2026-03", "billing", "fee", 0.6, "0.090000"),
    ("c2", "2026-03", UN, UN, 0.4, "0.060000"),
    *[
        row
        for c in ("c3", "c4", "c5")
        for row in (
            (c, "2026-03", "product", "promo", 0.75, "0.750000"),
            (c, "2026-03", UN, UN, 0.25, "0.250000"),
        )
    ],
    ("c6", "2026-03", UN, UN, 1.0, "1.000000"),
    ("c7", "2026-03", "product", "app", 0.516129032, "0.748387"),
    ("c7", "2026-03", "product", "promo", 0.483870968, "0.701613"),
    ("c8", "2026-03", "billing", "fee", 0.000000001, "0.000000"),
    ("c8", "2026-03", UN, UN, 1.0, "1.000000"),
]
# Priority: r-fee and r-promo have priority 1, the others 0.
#   c1 keeps r-fee only: 0.6 -> 1.50, rest 0.4 -> 1.00
#   c7 keeps r-promo only (its f is still 3/4: A counts before overlap): 0.75 -> 1.0875,
#      rest 0.25 -> 0.3625
PRIORITY_RATES = [
    *SPLIT_RATES[:1],
    ("c1", "2026-03", "billing", "fee", 0.6, "1.500000"),
    ("c1", "2026-03", UN, UN, 0.4, "1.000000"),
    *SPLIT_RATES[3:12],
    ("c7", "2026-03", "product", "promo", 0.75, "1.087500"),
    ("c7", "2026-03", UN, UN, 0.25, "0.362500"),
    *SPLIT_RATES[14:],
]
# Pool of 100.00 a month, spread by handle time: March has 120 + 600 + 60 = 780 s, so
#   c1 200/13, c2 1000/13, c7 100/13, every other March contact 0; February's 0 s
#   spread evenly: b1 100.00.
#   c1 3/7 x 200/13 = 6.593406|59, 4/7 x 200/13 = 8.791208|79
#   c2 0.6 x 1000/13 = 46.153846|15, 0.4 x 1000/13 = 30.769230|77
#   c7 16/31 x 100/13 = 3.970223|33, 15/31 x 100/13 = 3.722084|37
SPLIT_POOL = [
    ("b1", "2026-02", UN, UN, 1.0, "100.000000"),
    ("c1", "2026-03", "billing", "fee", 0.428571429, "6.593407"),
    ("c1", "2026-03", "product", "app", 0.571428571, "8.791209"),
    ("c2", "2026-03", "billing", "fee", 0.6, "46.153846"),
    ("c2", "2026-03", UN, UN, 0.4, "30.769231"),
    *[(*row[:5], "0.000000") for row in SPLIT_RATES[5:12]],
    ("c7", "2026-03", "product", "app", 0.516129032, "3.970223"),
    ("c7", "2026-03", "product", "promo", 0.483870968, "3.722084"),
    *[(*row[:5], "0.000000") for row in SPLIT_RATES[14:]],
]


def invoke(*args: str) -> Result:
    result = CliRunner().invoke(app, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result


def report(root: Path, *args: str, formats: str = "csv,attributions") -> Result:
    return invoke(
        "report", "--workspace", str(root), "--out", str(root / "out"), "--format", formats, *args
    )


def read_rows(path: Path) -> list[tuple[Any, ...]]:
    frame = pl.read_parquet(path)
    assert dict(frame.schema) == SCHEMA
    return frame.rows()


def expected(rows: list[tuple[str, str, str, str, float, str]]) -> list[tuple[Any, ...]]:
    return [(*row[:5], Decimal(row[5])) for row in rows]


@pytest.mark.parametrize(
    ("overlap", "costs", "rows"),
    [
        pytest.param("split", RATES, SPLIT_RATES, id="split-rates"),
        pytest.param("priority", RATES, PRIORITY_RATES, id="priority-rates"),
        pytest.param("split", POOL, SPLIT_POOL, id="split-pool"),
    ],
)
def test_hand_computed_rows(
    ws: Path, overlap: str, costs: str, rows: list[tuple[str, str, str, str, float, str]]
) -> None:
    write_workspace(ws, RULES, CONTACTS, settings=f"overlap: {overlap}\n", costs=costs)
    done = report(ws)
    assert done.exit_code == 0, done.output
    assert read_rows(ws / "out" / "attributions.parquet") == expected(rows)
    assert (ws / "out" / "ledger.csv").exists()  # alongside the other formats asked for


def test_rows_add_up_per_contact_and_to_the_ledger(ws: Path) -> None:
    write_workspace(ws, RULES, CONTACTS)
    assert report(ws).exit_code == 0
    frame = pl.read_parquet(ws / "out" / "attributions.parquet")
    per_contact = frame.group_by("contact_id").agg(pl.col("weight").sum())
    assert per_contact.get_column("weight").to_list() == pytest.approx([1.0] * 9, abs=2e-9)
    with (ws / "out" / "ledger.csv").open(newline="") as handle:
        ledger = {
            (r["period"], r["decision_id"]): Decimal(r["cost"]) for r in csv.DictReader(handle)
        }
    sums = frame.group_by("period", "decision_id").agg(pl.col("cost").sum(), pl.len()).rows()
    assert {(p, d) for p, d, _, _ in sums} == set(ledger)
    for period, decision, cost, n in sums:
        # each row within half a micro-unit; largest remainder moves a line by < 1 cent
        assert abs(cost - ledger[period, decision]) < Decimal("0.01") + n * Decimal("0.0000005")


def test_period_writes_only_that_months_contacts(ws: Path) -> None:
    write_workspace(ws, RULES, CONTACTS)
    assert report(ws, "--period", "2026-02").exit_code == 0
    assert read_rows(ws / "out" / "attributions.parquet") == expected(SPLIT_RATES[:1])
    assert report(ws, "--period", "2026-03").exit_code == 0
    assert read_rows(ws / "out" / "attributions.parquet") == expected(SPLIT_RATES[1:])
    assert report(ws, "--period", "2026-05").exit_code == 0  # a month without contacts
    assert read_rows(ws / "out" / "attributions.parquet") == []


def test_an_extra_format_never_a_default(ws: Path) -> None:
    assert FORMATS == ("pdf", "html", "csv", "json")
    assert ReportOptions().formats == FORMATS
    assert "attributions" in KNOWN_FORMATS and "attributions" not in FORMATS
    write_workspace(ws, RULES, CONTACTS)
    assert report(ws, formats="csv").exit_code == 0
    assert not (ws / "out" / "attributions.parquet").exists()
    assert report(ws, formats="attributions").exit_code == 0
    assert (ws / "out" / "attributions.parquet").exists()
    wrong = report(ws, formats="csv,parquet")
    assert wrong.exit_code == 2
    assert "pdf, html, csv, json, attributions" in wrong.output
    value = invoke("value", "--workspace", str(ws), "--format", "json,attributions")
    assert value.exit_code == 2
    assert "attributions is the ledger's" in value.output


# ----------------------------------------------------------------------------- rounding


def half_up_micro(value: Fraction) -> int:
    """The reference rounding: decimal ROUND_HALF_UP on the exact value."""
    exact = Decimal(value.numerator) / Decimal(value.denominator)  # ample precision below
    return int((exact * 10**6).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def test_costs_round_half_up_on_the_exact_value() -> None:
    from decimal import localcontext

    rnd = random.Random(7)
    cases: list[tuple[Fraction, Fraction, Fraction, int]] = [
        (Fraction(1), Fraction(5, 10**7), Fraction(0), 0),  # 0.0000005 -> 0.000001
        (Fraction(1, 2), Fraction(3, 10**6), Fraction(0), 0),  # 0.0000015 -> 0.000002
        (Fraction(1, 3), Fraction(0), Fraction(21, 20 * 60_000_000), 7_000_000),
    ]
    for _ in range(2000):
        w = Fraction(rnd.randint(1, 10**6), rnd.randint(1, 10**6))
        w = min(w, Fraction(1))
        f0 = Fraction(rnd.randint(0, 10**4), rnd.choice([1, 100, 10**4]))
        f1 = Fraction(rnd.randint(0, 10**6), rnd.choice([60_000_000, 10**13 + 7]))
        cases.append((w, f0, f1, rnd.randint(0, 10**10)))
    with localcontext() as ctx:
        ctx.prec = 80
        for w, f0, f1, hs in cases:
            want = half_up_micro(w * (f0 + f1 * hs))
            a0, a1, b0, b1, e = rounding_terms(w, f0, f1)
            assert a0 + a1 * hs + (b0 + b1 * hs) // e == want
            assert micro_cost(w, f0, f1, hs) == want
    assert half_up_micro(Fraction(5, 10**7)) == 1  # the tie goes up


def test_python_fallback_gives_the_same_file(ws: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Terms too large for Int128 are priced in Python fractions; force that path."""
    write_workspace(ws, RULES, CONTACTS, settings="overlap: split\n", costs=POOL)
    assert report(ws).exit_code == 0
    normal = (ws / "out" / "attributions.parquet").read_bytes()
    monkeypatch.setattr(drilldown, "INT128_ROOM", 0)
    assert report(ws).exit_code == 0
    assert pl.read_parquet(ws / "out" / "attributions.parquet").equals(pl.read_parquet(normal))
    assert read_rows(ws / "out" / "attributions.parquet") == expected(SPLIT_POOL)


# ------------------------------------------------------------------ against the oracle


def oracle_attributions(
    root: Path, contacts_csv: Path, period: str | None
) -> dict[tuple[str, str], tuple[str, str, Fraction, Fraction]]:
    """(contact_id, decision_id) -> (period, department_id, exact weight, exact cost)."""
    ws = oracle.load_workspace(root)
    contacts, header = oracle.load_contacts(contacts_csv, ws)
    oracle.assign_costs(contacts, ws.costs)
    matched = {
        c.contact_id: {
            r.id
            for r in ws.rules
            if r.in_window(c.local_date) and oracle.satisfies(c, r.match, header)
        }
        for c in contacts
    }
    factors = oracle.baseline_factors(ws, contacts, header, matched)
    out: dict[tuple[str, str], tuple[str, str, Fraction, Fraction]] = {}
    for c in contacts:
        if period is not None and c.period != period:
            continue
        weights = oracle.contact_weights(ws, c, matched[c.contact_id], factors)
        for decision, w in weights.items():
            if w > 0:
                out[c.contact_id, decision] = (
                    c.period,
                    ws.decisions[decision].department,
                    w,
                    w * c.cost,
                )
        rest = 1 - sum(weights.values(), Fraction(0))
        if rest > 0:
            out[c.contact_id, UN] = (c.period, UN, rest, rest * c.cost)
    return out


def priced(sc: Scenario) -> Scenario:
    """Every channel priced (a `default` when rates list only some): SPEC 3 refuses the rest."""
    if sc.costs.get("method") == "pool" or "default" in sc.costs:
        return sc
    return replace(sc, costs={**sc.costs, "default": {"per_contact": 0.33, "per_minute": 0.07}})


def compare_with_oracle(sc: Scenario, root: Path, period: str | None) -> None:
    ws, contacts = write_scenario(sc, root)
    out = root / "out"
    args = ["report", "--workspace", str(ws), "--contacts", str(contacts), "--out", str(out)]
    args += ["--format", "csv,attributions", *(["--period", period] if period else [])]
    done = invoke(*args)
    assert done.exit_code == 0, done.output
    want = oracle_attributions(ws, contacts, period)
    frame = pl.read_parquet(out / "attributions.parquet")
    assert dict(frame.schema) == SCHEMA
    got = {(r[0], r[3]): r for r in frame.rows()}
    assert len(got) == frame.height  # one row per contact and decision
    assert sorted(got) == sorted(want)
    weight_sums: dict[str, float] = defaultdict(float)
    cost_sums: dict[tuple[str, str], list[Any]] = defaultdict(lambda: [Decimal(0), Fraction(0), 0])
    for key, (p, department, w, cost) in want.items():
        _, period_got, department_got, _, weight, cost_got = got[key]
        assert (period_got, department_got) == (p, department), key
        # the exact oracle value rounded half-up: 9 decimals as a float, 6 as a decimal
        assert weight == float(oracle.fmt(w, 9)), (key, weight, w)
        assert cost_got == Decimal(oracle.fmt(cost, 6)), (key, cost_got, cost)
        assert abs(Fraction(weight) - w) <= Fraction(1, 2 * 10**9) + Fraction(1, 10**15)
        assert abs(Fraction(cost_got) - cost) <= Fraction(1, 2 * 10**6)
        weight_sums[key[0]] += weight
        sums = cost_sums[p, key[1]]
        sums[0] += cost_got
        sums[1] += cost
        sums[2] += 1
    for contact_id, total in weight_sums.items():
        assert abs(total - 1) <= 5e-9, contact_id
    # per period and decision, the rows give the ledger's exact line (the oracle's sum)
    for key, (rounded, exact, n) in cost_sums.items():
        assert abs(Fraction(rounded) - exact) <= Fraction(n, 2 * 10**6), key


@st.composite
def scenario_and_period(draw: st.DrawFn) -> tuple[Scenario, str | None]:
    sc = priced(draw(scenarios()))
    months = sorted({row["started_at"][:7] for row in sc.contacts})
    return sc, draw(st.one_of(st.none(), st.sampled_from(months)))


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(case=scenario_and_period())
def test_weights_and_costs_equal_the_oracle(case: tuple[Scenario, str | None]) -> None:
    sc, period = case
    with tempfile.TemporaryDirectory() as tmp:
        compare_with_oracle(sc, Path(tmp), period)
