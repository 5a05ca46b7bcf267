"""Conservation on random workspaces: nothing is lost, everything adds up to the cent."""

from __future__ import annotations

import csv
import io
from decimal import Decimal
from pathlib import Path
from tempfile import TemporaryDirectory

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chargeback.report import ReportOptions
from chargeback.run import run_report

REASONS = ["billing.fee", "billing.late", "tech.setup", "promo.code"]
CHANNELS = ["phone", "chat", "email", "sms"]


@st.composite
def workspaces(draw: st.DrawFn) -> tuple[str, str, str]:
    n_decisions = draw(st.integers(1, 4))
    decisions, rules = [], []
    for d in range(n_decisions):
        day = draw(st.integers(1, 28))
        ends = draw(st.one_of(st.none(), st.integers(1, 28)))
        end_txt = f", ends: 2026-04-{ends:02d}" if ends else ""
        rev = draw(st.one_of(st.none(), st.decimals("0", "500", places=2)))
        rev_txt = f", revenue: {{monthly: {rev}}}" if rev is not None else ""
        decisions.append(
            f"  - {{id: d{d}, title: D{d}, kind: fee, department: dep{d % 2}, "
            f"effective: 2026-03-{day:02d}{end_txt}{rev_txt}}}"
        )
    for r in range(draw(st.integers(1, 6))):
        key = draw(st.sampled_from(["reason", "channel"]))
        values = draw(
            st.lists(st.sampled_from(REASONS if key == "reason" else CHANNELS), min_size=1,
                     max_size=2, unique=True)
        )
        share = draw(st.sampled_from(["1", "0.5", "0.33", "0.8"]))
        extra = ""
        if draw(st.booleans()):
            extra += f", window: {{start_offset_days: {draw(st.integers(-5, 10))}, days: "
            extra += f"{draw(st.integers(1, 60))}}}"
        if draw(st.booleans()):
            extra += f", baseline: {{lookback_days: {draw(st.integers(1, 20))}}}"
        rules.append(
            f"  - {{id: r{r}, decision: d{draw(st.integers(0, n_decisions - 1))}, "
            f"match: {{{key}: [{', '.join(values)}]}}, share: {share}, "
            f"priority: {draw(st.integers(0, 2))}{extra}}}"
        )
    method = draw(st.sampled_from(["rates", "pool"]))
    costs = (
        "costs:\n  method: rates\n  channels:\n    phone: {per_contact: 0.43, per_minute: 1.07}\n"
        "    chat: {per_contact: 0.17, per_minute: 0.31}\n  default: {per_contact: 3.33}\n"
        if method == "rates"
        else "costs:\n  method: pool\n  pool: {monthly: 1000.01}\n"
    )
    yaml_text = (
        "departments:\n  - {id: dep0, name: A, cost_center: C0}\n"
        "  - {id: dep1, name: B, cost_center: C1}\n"
        "decisions:\n" + "\n".join(decisions) + "\nrules:\n" + "\n".join(rules) + "\n" + costs
    )
    rows = ["contact_id,started_at,channel,reason,handle_seconds"]
    for i in range(draw(st.integers(1, 60))):
        month = draw(st.sampled_from(["02", "03", "04"]))
        day = draw(st.integers(1, 28))
        rows.append(
            f"c{i},2026-{month}-{day:02d}T{draw(st.integers(0, 23)):02d}:00:00,"
            f"{draw(st.sampled_from(CHANNELS))},{draw(st.sampled_from(REASONS))},"
            f"{draw(st.sampled_from(['', '0', '59', '61.5', '3600']))}"
        )
    overlap = draw(st.sampled_from(["split", "priority"]))
    return yaml_text, "\n".join(rows) + "\n", overlap


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(workspaces())
def test_lines_add_up_and_no_contact_is_lost(case: tuple[str, str, str]) -> None:
    yaml_text, contacts, overlap = case
    with TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "rules").mkdir()
        (root / "rules" / "ws.yaml").write_text(yaml_text)
        (root / "contacts.csv").write_text(contacts)
        (root / "chargeback.yaml").write_text(f"contacts: contacts.csv\noverlap: {overlap}\n")
        result = run_report(ReportOptions(workspace=root, out=root / "out", formats=("csv",)))
        rows = list(csv.DictReader(io.StringIO((root / "out" / "ledger.csv").read_text())))
    n_contacts = len(contacts.strip().splitlines()) - 1
    assert sum(p.contacts for p in result.ledger.periods) == n_contacts
    for period in result.ledger.periods:
        lines = [r for r in rows if r["period"] == period.period]
        assert sum(Decimal(r["cost"]) for r in lines) == period.cost  # to the cent
        assert sum(1 for r in lines if r["decision_id"] == "unattributed") == 1
        assert all(Decimal(r["cost"]) >= 0 for r in lines)
        # exact weights: decision contacts plus unattributed is every contact
        exact = [ln.contacts for ln in result.ledger.lines_for(period.period)]
        assert sum(exact) == period.contacts
        for r in lines:
            assert Decimal(r["net"]) == Decimal(r["revenue"]) - Decimal(r["cost"])
