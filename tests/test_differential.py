"""Differential test: the real CLI against the independent oracle (tests/oracle.py).

Random small workspaces and contact files are written to a temporary folder, the
engine runs as a subprocess (``python -m chargeback report ... --format csv``), and
its ledger.csv must equal the oracle's: period, department_id, cost_center,
decision_id, cost, revenue and net exactly as strings; contacts and handle_minutes
within one unit of their last decimal (SPEC 4). Each period's cost column must also
add up exactly to the period's total cost rounded half-up to cents.

When a comparison fails, the workspace is copied to
``$TMPDIR/chargeback-differential/last-failure`` (the last copy is the shrunk
example) so it can be replayed by hand.

The whole module is skipped while ``python -m chargeback report`` does not yet work
on a tiny workspace.
"""

from __future__ import annotations

import csv
import random
import shutil
import subprocess
import sys
import tempfile
from calendar import monthrange
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

# tests/ has no __init__.py, so pytest puts it on sys.path
from oracle import (
    LEDGER_COLUMNS,
    oracle_ledger,
    oracle_period_totals,
)

REPO = Path(__file__).resolve().parents[1]
FAILURE_DIR = Path(tempfile.gettempdir()) / "chargeback-differential" / "last-failure"

# ------------------------------------------------------------------ vocabularies

CHANNELS = ["phone", "chat", "email", "sms", "social"]
REASONS = [
    "billing.late_fee",
    "billing.refund",
    "billing",
    "billing.late_fee.waiver",
    "tech.outage",
    "tech.login",
    "account.close",
]
PRODUCTS = ["basic", "plus", "pro"]
REGIONS = ["north", "south", "eu-west"]
OUTCOMES = ["resolved", "unresolved", "escalated", "saved", "sale"]
TAGS = ["fee", "late", "vip", "refund", "bug", "fee-waived"]
PLANS = ["gold", "silver", "gold-plus", "bronze"]
TEXTS = [
    "Late fee on my bill",
    "LATE FEES again!",
    "late   fee charged twice",
    "refund please",
    "Refunded twice?",
    "cannot login to app",
    "Outage in my area",
    "question about my plan",
    "bill too high",
]

PATTERNS: dict[str, list[str]] = {
    "reason": [*REASONS, "billing*", "billing.late_fee*", "tech*", "*"],
    "channel": [*CHANNELS, "s*", "ph*"],
    "product": [*PRODUCTS, "p*"],
    "region": [*REGIONS, "eu*"],
    "outcome": [*OUTCOMES, "s*", "un*"],
    "tags": [*TAGS, "fee*", "re*"],
    "text": ["late fee", "REFUND", "login", "Outage", "plan", "twice"],
    "text_regex": [r"late\s+fees?", r"refund(ed)?\b", r"^cannot", r"out(age)?", r"plan|bill"],
    "plan": [*PLANS, "gold*"],
}
MATCH_KEYS = [
    "reason",
    "channel",
    "product",
    "region",
    "outcome",
    "tags",
    "text",
    "text_regex",
    "fields",
]

DEPARTMENT_IDS = [
    "billing",
    "ops",
    "sales-x",
    "it_2",
    "web",
    "zz-vendor",
]  # some sort after "unattributed"
DECISION_IDS = ["late-fee-2026", "app_v2", "price-up", "z-outage", "a1"]
KINDS = ["fee", "launch", "campaign", "policy", "pricing", "outage", "process", "other"]
TIMEZONES = ["UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata"]
OFFSETS = ["", "", "", "Z", "+02:00", "-05:00", "+05:30", "+00:00"]
MONEY = ["0.15", "0.40", "1", "3.80", "0.33", "2.05", "12.5", "0.07"]
SHARES = [None, None, 1.0, 0.75, 0.5, 0.3, 0.25, 0.8]
# "coarse" scenarios price contacts per contact only and use shares of 1/2 and 1/4,
# so that exact remainder ties happen and the largest-remainder tie-break is exercised
COARSE_MONEY = ["0.01", "0.05", "0.15", "0.25", "1"]
COARSE_SHARES = [None, 1.0, 0.5, 0.5, 0.25]

CANONICAL_HEADER = [
    "contact_id",
    "started_at",
    "channel",
    "reason",
    "tags",
    "text",
    "handle_seconds",
    "customer_id",
    "product",
    "region",
    "outcome",
    "revenue",
    "plan",
]


# ------------------------------------------------------------------------ model


@dataclass
class Scenario:
    departments: list[dict[str, Any]]
    decisions: list[dict[str, Any]]
    costs: dict[str, Any]
    rules: list[dict[str, Any]]
    contacts: list[dict[str, str]]
    settings: dict[str, Any] | None = None
    # canonical name -> platform header, written to chargeback.yaml `columns:`
    header_map: dict[str, str] = field(default_factory=dict)


def money(s: str) -> float | int:
    """A YAML number for a decimal literal (PyYAML writes the shortest repr)."""
    return float(s) if "." in s else int(s)


def write_scenario(sc: Scenario, root: Path) -> tuple[Path, Path]:
    ws = root / "ws"
    (ws / "rules" / "attribution").mkdir(parents=True)

    def dump(path: Path, data: dict[str, Any]) -> None:
        path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")

    # spread over several files (and both extensions) to exercise the merge
    dump(ws / "rules" / "org.yaml", {"departments": sc.departments})
    dump(ws / "rules" / "decisions.yml", {"decisions": sc.decisions})
    dump(ws / "rules" / "costs.yaml", {"costs": sc.costs})
    dump(ws / "rules" / "attribution" / "rules.yaml", {"rules": sc.rules})
    settings_doc = dict(sc.settings or {})
    if sc.header_map:
        settings_doc["columns"] = dict(sc.header_map)
    if settings_doc:
        dump(ws / "chargeback.yaml", settings_doc)

    csv_path = root / "contacts.csv"
    header = [sc.header_map.get(col, col) for col in CANONICAL_HEADER]
    with csv_path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        for row in sc.contacts:
            writer.writerow([row.get(col, "") for col in CANONICAL_HEADER])
    return ws, csv_path


# ---------------------------------------------------------------- running both


def run_engine(ws: Path, contacts: Path, out: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "chargeback",
            "report",
            "--workspace",
            str(ws),
            "--contacts",
            str(contacts),
            "--out",
            str(out),
            "--format",
            "csv",
        ],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=REPO,
    )


def read_ledger(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        return list(reader.fieldnames or []), list(reader)


def table(rows: list[dict[str, str]]) -> str:
    return "\n".join(",".join(r.get(c, "?") for c in LEDGER_COLUMNS) for r in rows)


EXACT_COLUMNS = ["period", "department_id", "cost_center", "decision_id", "cost", "revenue", "net"]
TOLERANT_COLUMNS = {"contacts": Decimal("0.001"), "handle_minutes": Decimal("0.01")}


def unpriced(sc: Scenario) -> list[str]:
    """Channels of the contacts that `rates` leaves without a price (SPEC 3: an error)."""
    if sc.costs.get("method") != "rates" or "default" in sc.costs:
        return []
    listed = set(sc.costs.get("channels", {}))
    return sorted({c["channel"] for c in sc.contacts if c.get("channel")} - listed)


def compare(sc: Scenario, root: Path) -> None:
    ws, contacts = write_scenario(sc, root)
    out = root / "out"
    proc = run_engine(ws, contacts, out)
    missing = unpriced(sc)
    if missing:  # the run must refuse, naming each channel, and write nothing
        assert proc.returncode == 1, proc.stdout
        for channel in missing:
            assert f"channel '{channel}' has no rate" in proc.stderr, proc.stderr
        assert not (out / "ledger.csv").exists()
        return
    problems: list[str] = []
    expected = oracle_ledger(ws, contacts)
    totals = oracle_period_totals(ws, contacts)
    if proc.returncode != 0:
        problems.append(f"engine exited {proc.returncode}:\n{proc.stderr[-3000:]}")
    elif not (out / "ledger.csv").exists():
        problems.append("engine wrote no ledger.csv")
    else:
        header, actual = read_ledger(out / "ledger.csv")
        if header != LEDGER_COLUMNS:
            problems.append(f"header {header} != {LEDGER_COLUMNS}")
        keys_e = [(r["period"], r["department_id"], r["decision_id"]) for r in expected]
        keys_a = [(r.get("period"), r.get("department_id"), r.get("decision_id")) for r in actual]
        if keys_a != keys_e:
            problems.append(f"row keys differ:\n engine {keys_a}\n oracle {keys_e}")
        else:
            for key, e, a in zip(keys_e, expected, actual, strict=True):
                for col in EXACT_COLUMNS:
                    if a.get(col) != e[col]:
                        problems.append(f"{key} {col}: engine {a.get(col)!r} oracle {e[col]!r}")
                for col, unit in TOLERANT_COLUMNS.items():
                    try:
                        gap = abs(Decimal(a.get(col) or "nan") - Decimal(e[col]))
                        close = gap <= unit
                    except ArithmeticError:
                        close = False
                    if not close:
                        problems.append(f"{key} {col}: engine {a.get(col)!r} oracle {e[col]!r}")
        # every period's lines add up, to the cent, to its total cost
        for period, total in totals.items():
            try:
                got = sum(
                    (Decimal(r["cost"]) for r in actual if r.get("period") == period),
                    Decimal(0),
                )
            except (ArithmeticError, KeyError):
                got = Decimal("NaN")
            if got != Decimal(total):
                problems.append(f"{period}: engine costs add up to {got}, total is {total}")
        if problems:
            problems.append(f"engine ledger:\n{table(actual)}")
    if problems:
        problems.append(f"oracle ledger:\n{table(expected)}")
        shutil.rmtree(FAILURE_DIR, ignore_errors=True)
        shutil.copytree(root, FAILURE_DIR, ignore=shutil.ignore_patterns("out"))
        problems.append(f"workspace kept in {FAILURE_DIR}")
        pytest.fail("\n".join(problems), pytrace=False)


# ------------------------------------------------------------ readiness check


@pytest.fixture(scope="module")
def engine_ready() -> None:
    sc = Scenario(
        departments=[{"id": "ops", "name": "Ops", "cost_center": "CC-1"}],
        decisions=[
            {
                "id": "d",
                "title": "D",
                "kind": "other",
                "department": "ops",
                "effective": date(2026, 1, 1),
            }
        ],
        costs={
            "currency": "USD",
            "method": "rates",
            "channels": {"phone": {"per_contact": 1.0}, "chat": {"per_contact": 0.5}},
        },
        rules=[{"id": "r", "decision": "d", "match": {"channel": "phone"}}],
        contacts=[
            {"contact_id": "c1", "started_at": "2026-01-02T10:00:00", "channel": "phone"},
            {"contact_id": "c2", "started_at": "2026-01-03T10:00:00", "channel": "chat"},
        ],
    )
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        ws, contacts = write_scenario(sc, root)
        try:
            proc = run_engine(ws, contacts, root / "out")
        except subprocess.TimeoutExpired:
            pytest.fail("the engine did not answer: `python -m chargeback report` timed out")
        if proc.returncode != 0:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
            pytest.fail(
                f"the engine failed a two-contact workspace: `python -m chargeback report` exited "
                f"{proc.returncode}: {' | '.join(tail)}"
            )
        if not (root / "out" / "ledger.csv").exists():
            pytest.fail("the engine wrote no ledger.csv for a two-contact workspace")


# ------------------------------------------------------------------ strategies


def month_span(first_month: int, n_months: int) -> tuple[date, date]:
    last = first_month + n_months - 1
    return date(2026, first_month, 1), date(2026, last, monthrange(2026, last)[1])


def pick_values(draw: st.DrawFn, key: str) -> str | list[str]:
    values = draw(st.lists(st.sampled_from(PATTERNS[key]), min_size=1, max_size=3, unique=True))
    if len(values) == 1 and draw(st.booleans()):
        return values[0]  # a scalar instead of a list
    return values


@st.composite
def rules_strategy(
    draw: st.DrawFn, decision_ids: list[str], overlap: str, coarse: bool
) -> list[dict[str, Any]]:
    rules = []
    for i in range(draw(st.integers(1, 6))):
        max_keys = 1 if coarse else 3
        keys = draw(
            st.lists(st.sampled_from(MATCH_KEYS), min_size=1, max_size=max_keys, unique=True)
        )
        match: dict[str, Any] = {}
        for key in keys:
            if key == "fields":
                col = draw(st.sampled_from(["plan", "plan", "product", "region"]))
                match["fields"] = {col: pick_values(draw, col)}
            elif key == "text_regex":
                match["text_regex"] = draw(st.sampled_from(PATTERNS["text_regex"]))
            else:
                match[key] = pick_values(draw, key)
        rule: dict[str, Any] = {
            "id": f"rule-{i}",
            "decision": draw(st.sampled_from(decision_ids)),
            "match": match,
        }
        window: dict[str, int] = {}
        if draw(st.booleans()):
            window["start_offset_days"] = draw(st.integers(0, 20))
        if draw(st.booleans()):
            window["days"] = draw(st.integers(1, 75))
        if window:
            rule["window"] = window
        share = draw(st.sampled_from(COARSE_SHARES if coarse else SHARES))
        if share is not None:
            rule["share"] = share
        if overlap == "priority" or draw(st.integers(0, 3)) == 0:
            priority = draw(st.sampled_from([None, 0, 1, 1, 2]))
            if priority is not None:
                rule["priority"] = priority
        if not coarse and draw(st.integers(0, 2)) == 0:
            rule["baseline"] = {"lookback_days": draw(st.integers(1, 45))}
        rules.append(rule)
    return rules


@st.composite
def contacts_strategy(draw: st.DrawFn, start: date, end: date) -> list[dict[str, str]]:
    n = draw(st.integers(20, 200))
    span = (end - start).days
    # most of the generation is driven by one seeded Random: fast, and still
    # reproducible from the hypothesis example (the seed and n shrink)
    rnd = random.Random(draw(st.integers(0, 2**32 - 1)))
    null_rate = draw(st.sampled_from([0.0, 0.1, 0.3]))

    def opt(value: str) -> str:
        return "" if rnd.random() < null_rate else value

    rows = []
    for i in range(n):
        day = start + timedelta(days=rnd.randint(0, span))
        hour = rnd.choice([0, 0, 1, 2, 3, 12, 20, 22, 23, rnd.randint(0, 23)])
        stamp = f"{day.isoformat()}T{hour:02d}:{rnd.randint(0, 59):02d}:{rnd.randint(0, 59):02d}"
        tags = rnd.sample(TAGS, rnd.randint(0, 3))
        sep = rnd.choice(["|", "|", " | ", "||"])
        hs = rnd.choice(
            [str(rnd.randint(0, 1800)), str(rnd.randint(0, 1800)), "0", f"{rnd.randint(0, 900)}.5"]
        )
        rows.append(
            {
                "contact_id": f"C{i:05d}",
                "started_at": stamp + rnd.choice(OFFSETS),
                "channel": rnd.choice(CHANNELS),
                "reason": opt(rnd.choice(REASONS)),
                "tags": opt(sep.join(tags)),
                "text": opt(rnd.choice(TEXTS)),
                "handle_seconds": opt(hs),
                "customer_id": opt(f"K{rnd.randint(1, 40)}"),
                "product": opt(rnd.choice(PRODUCTS)),
                "region": opt(rnd.choice(REGIONS)),
                "outcome": opt(rnd.choice(OUTCOMES)),
                "revenue": opt(rnd.choice(["0", "19.99", "120.00"])),
                "plan": opt(rnd.choice(PLANS)),
            }
        )
    return rows


def periods_between(start: date, end: date) -> list[str]:
    return [f"2026-{m:02d}" for m in range(start.month, end.month + 1)]


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    start, end = month_span(draw(st.integers(1, 9)), draw(st.integers(2, 4)))
    periods = periods_between(start, end)
    span = (end - start).days

    dept_ids = draw(st.lists(st.sampled_from(DEPARTMENT_IDS), min_size=1, max_size=3, unique=True))
    departments = [
        {
            "id": d,
            "name": d.title(),
            "cost_center": f"CC-{4100 + i}",
            "recipients": [f"{d}@example.com"],
        }
        for i, d in enumerate(dept_ids)
    ]
    decision_ids = draw(
        st.lists(st.sampled_from(DECISION_IDS), min_size=1, max_size=4, unique=True)
    )
    decisions = []
    for dec_id in decision_ids:
        effective = start + timedelta(days=draw(st.integers(-5, span)))
        dec: dict[str, Any] = {
            "id": dec_id,
            "title": dec_id.upper(),
            "kind": draw(st.sampled_from(KINDS)),
            "department": draw(st.sampled_from(dept_ids)),
            "effective": effective,
        }
        if draw(st.integers(0, 2)) == 0:
            dec["ends"] = effective + timedelta(days=draw(st.integers(0, 70)))
        revenue = draw(st.sampled_from([None, None, "monthly", "by_period"]))
        if revenue == "monthly":
            dec["revenue"] = {"monthly": money(draw(st.sampled_from(["85000.00", "10.5", "0.99"])))}
        elif revenue == "by_period":
            months = draw(st.lists(st.sampled_from(periods), min_size=1, unique=True))
            dec["revenue"] = {
                "by_period": {p: money(draw(st.sampled_from(MONEY))) for p in sorted(months)}
            }
        decisions.append(dec)

    coarse = draw(st.integers(0, 2)) == 0
    if coarse:
        costs: dict[str, Any] = {
            "currency": "USD",
            "method": "rates",
            "channels": {
                ch: {"per_contact": money(draw(st.sampled_from(COARSE_MONEY)))}
                for ch in draw(st.lists(st.sampled_from(CHANNELS), max_size=3, unique=True))
            },
            "default": {"per_contact": money(draw(st.sampled_from(COARSE_MONEY)))},
        }
    elif draw(st.booleans()):
        # a default block, or at least one listed channel (the engine rightly refuses
        # a rates block that prices nothing)
        with_default = draw(st.booleans())
        listed = draw(
            st.lists(
                st.sampled_from(CHANNELS),
                min_size=0 if with_default else 1,
                max_size=4,
                unique=True,
            )
        )
        channels = {}
        for ch in listed:
            rates: dict[str, float | int] = {}
            if draw(st.booleans()):
                rates["per_contact"] = money(draw(st.sampled_from(MONEY)))
            if not rates or draw(st.booleans()):
                rates["per_minute"] = money(draw(st.sampled_from(MONEY)))
            channels[ch] = rates
        costs = {"currency": "USD", "method": "rates", "channels": channels}
        if with_default:
            costs["default"] = {
                "per_contact": money(draw(st.sampled_from(MONEY))),
                "per_minute": money(draw(st.sampled_from(MONEY))),
            }
    else:
        if draw(st.booleans()):
            pool: dict[str, Any] = {
                "monthly": money(draw(st.sampled_from(["1000.00", "1250000.00", "333.33"])))
            }
        else:
            months = draw(st.lists(st.sampled_from(periods), min_size=1, unique=True))
            pool = {
                "by_period": {
                    p: money(draw(st.sampled_from(["999.99", "100", "0.05"])))
                    for p in sorted(months)
                }
            }
        costs = {"currency": "USD", "method": "pool", "pool": pool}

    overlap = draw(st.sampled_from(["split", "priority"]))
    tz = draw(st.sampled_from(TIMEZONES))
    settings_doc: dict[str, Any] | None = {"timezone": tz, "overlap": overlap}
    if tz == "UTC" and overlap == "split" and draw(st.booleans()):
        settings_doc = None  # no chargeback.yaml at all: the defaults
    return Scenario(
        departments=departments,
        decisions=decisions,
        costs=costs,
        rules=draw(rules_strategy(decision_ids, overlap, coarse)),
        contacts=draw(contacts_strategy(start, end)),
        settings=settings_doc,
    )


# ------------------------------------------------------------------------ tests


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,
    ],
)
@given(sc=scenarios())
def test_engine_matches_oracle(engine_ready: None, sc: Scenario) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        compare(sc, Path(tmp))


def fixed_scenario(seed: int, overlap: str, method: str, header_map: dict[str, str]) -> Scenario:
    """A deterministic scenario covering most features at once."""
    start, end = date(2026, 2, 1), date(2026, 4, 30)
    rnd = random.Random(seed)
    departments = [
        {"id": "billing", "name": "Billing", "cost_center": "CC-4100"},
        {"id": "ops", "name": "Ops", "cost_center": "CC-4200"},
        {"id": "sales-x", "name": "Sales", "cost_center": "CC-4300"},
    ]
    decisions = [
        {
            "id": "late-fee-2026",
            "title": "Late fee",
            "kind": "fee",
            "department": "billing",
            "effective": date(2026, 3, 1),
            "ends": date(2026, 4, 10),
            "revenue": {"monthly": 85000.0},
        },
        {
            "id": "app_v2",
            "title": "App v2",
            "kind": "launch",
            "department": "ops",
            "effective": date(2026, 2, 20),
            "revenue": {"by_period": {"2026-03": 12.5}},
        },
        {
            "id": "price-up",
            "title": "Price",
            "kind": "pricing",
            "department": "sales-x",
            "effective": date(2026, 3, 15),
        },
    ]
    if method == "rates":
        costs: dict[str, Any] = {
            "currency": "USD",
            "method": "rates",
            "channels": {
                "phone": {"per_contact": 0.4, "per_minute": 1.05},
                "chat": {"per_contact": 0.15, "per_minute": 0.55},
                "email": {"per_contact": 3.8},
            },
            "default": {"per_contact": 5.0, "per_minute": 0.0},
        }
    else:
        costs = {
            "currency": "USD",
            "method": "pool",
            "pool": {"by_period": {"2026-02": 1000.0, "2026-03": 1250000.0, "2026-04": 333.33}},
        }
    rules = [
        {
            "id": "late-fee-disputes",
            "decision": "late-fee-2026",
            "match": {
                "reason": ["billing.refund", "billing.late_fee*"],
                "channel": ["phone", "chat"],
            },
            "window": {"start_offset_days": 0, "days": 30},
            "share": 1.0,
            "priority": 1,
            "baseline": {"lookback_days": 14},
        },
        {
            "id": "late-fee-text",
            "decision": "late-fee-2026",
            "match": {"text": ["late fee", "LATE charge"], "tags": ["fee", "late"]},
            "share": 0.5,
        },
        {
            "id": "app-login",
            "decision": "app_v2",
            "match": {"text_regex": r"login|out(age)?", "fields": {"plan": ["gold*"]}},
            "window": {"start_offset_days": 3},
            "priority": 2,
        },
        {"id": "app-any", "decision": "app_v2", "match": {"product": "pro"}, "share": 0.25},
        {
            "id": "price-sales",
            "decision": "price-up",
            "match": {"outcome": ["sale", "saved"], "region": "eu*"},
            "share": 0.8,
            "baseline": {"lookback_days": 20},
        },
    ]
    contacts = []
    for i in range(150):
        day = start + timedelta(days=rnd.randint(0, (end - start).days))
        stamp = f"{day.isoformat()}T{rnd.randint(0, 23):02d}:{rnd.randint(0, 59):02d}:00"
        contacts.append(
            {
                "contact_id": f"T-{i}",
                "started_at": stamp + rnd.choice(OFFSETS),
                "channel": rnd.choice(CHANNELS),
                "reason": rnd.choice([*REASONS, ""]),
                "tags": rnd.choice(["fee|late", " late ", "vip", "", "refund | bug"]),
                "text": rnd.choice([*TEXTS, ""]),
                "handle_seconds": rnd.choice(["", "0", "45", "301", "1200", "17.5"]),
                "customer_id": f"K{rnd.randint(1, 30)}",
                "product": rnd.choice([*PRODUCTS, ""]),
                "region": rnd.choice([*REGIONS, ""]),
                "outcome": rnd.choice([*OUTCOMES, ""]),
                "revenue": "",
                "plan": rnd.choice([*PLANS, ""]),
            }
        )
    return Scenario(
        departments=departments,
        decisions=decisions,
        costs=costs,
        rules=rules,
        contacts=contacts,
        settings={"timezone": "Europe/Berlin", "overlap": overlap},
        header_map=header_map,
    )


PLATFORM_HEADERS = {
    "contact_id": "Ticket ID",
    "started_at": "Created at",
    "channel": "Via",
    "reason": "Contact reason",
    "handle_seconds": "Handle time (s)",
}


@pytest.mark.parametrize(
    ("seed", "overlap", "method", "header_map"),
    [
        pytest.param(1, "split", "rates", PLATFORM_HEADERS, id="split-rates-columns-mapping"),
        pytest.param(2, "priority", "pool", {}, id="priority-pool"),
        pytest.param(
            3,
            "split",
            "pool",
            {"contact_id": "Ticket ID", "started_at": "Created at"},
            id="split-pool-columns-mapping",
        ),
        pytest.param(4, "priority", "rates", {}, id="priority-rates"),
    ],
)
def test_fixed_regressions(
    engine_ready: None,
    tmp_path: Path,
    seed: int,
    overlap: str,
    method: str,
    header_map: dict[str, str],
) -> None:
    compare(fixed_scenario(seed, overlap, method, header_map), tmp_path)


def tie_scenario() -> Scenario:
    """Exact remainder ties where the tie-break order decides who gets the cent.

    Every contact costs 0.01 and is split into halves or thirds of a cent:
    - 2026-01: one sms contact, decision app_v2 (dept "web") at share 0.5: web and
      unattributed both hold 0.5 cent -> "unattributed" < "web" takes the cent.
    - 2026-02: one chat contact, a1 (dept "zz-vendor") and z-outage (dept "billing") at
      0.5 each -> the department decides ("billing"), not the decision id ("a1").
    - 2026-03: one email contact, three decisions at share 1 -> 1/3 cent each,
      normalised; "billing" takes the cent.
    """
    departments = [
        {"id": d, "name": d, "cost_center": f"CC-{i}"}
        for i, d in enumerate(["billing", "web", "zz-vendor"])
    ]
    owners = {"app_v2": "web", "a1": "zz-vendor", "z-outage": "billing"}
    decisions = [
        {
            "id": dec,
            "title": dec,
            "kind": "other",
            "department": dept,
            "effective": date(2026, 1, 1),
        }
        for dec, dept in owners.items()
    ]
    rules: list[dict[str, Any]] = [
        {"id": "web-sms", "decision": "app_v2", "match": {"channel": "sms"}, "share": 0.5},
        {"id": "a1-chat", "decision": "a1", "match": {"channel": "chat"}, "share": 0.5},
        {"id": "z-chat", "decision": "z-outage", "match": {"channel": "chat"}, "share": 0.5},
        *[{"id": f"{dec}-email", "decision": dec, "match": {"channel": "email"}} for dec in owners],
    ]
    contacts = [
        {"contact_id": "t1", "started_at": "2026-01-10T10:00:00", "channel": "sms"},
        {"contact_id": "t2", "started_at": "2026-02-10T10:00:00", "channel": "chat"},
        {"contact_id": "t3", "started_at": "2026-03-10T10:00:00", "channel": "email"},
    ]
    return Scenario(
        departments=departments,
        decisions=decisions,
        costs={"currency": "USD", "method": "rates", "default": {"per_contact": 0.01}},
        rules=rules,
        contacts=contacts,
    )


def test_fixed_largest_remainder_ties(engine_ready: None, tmp_path: Path) -> None:
    sc = tie_scenario()
    ws, contacts = write_scenario(sc, tmp_path / "pinned")
    # pin the oracle too, so that this test also documents the expected ledger
    cents = {(r["period"], r["decision_id"]): r["cost"] for r in oracle_ledger(ws, contacts)}
    assert cents == {
        ("2026-01", "app_v2"): "0.00",
        ("2026-01", "unattributed"): "0.01",
        ("2026-02", "a1"): "0.00",
        ("2026-02", "z-outage"): "0.01",
        ("2026-02", "unattributed"): "0.00",
        ("2026-03", "a1"): "0.00",
        ("2026-03", "app_v2"): "0.00",
        ("2026-03", "z-outage"): "0.01",
        ("2026-03", "unattributed"): "0.00",
    }
    compare(sc, tmp_path / "run")
