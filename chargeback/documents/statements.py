"""What each document says, as plain values: the context templates receive.

Templates get dicts, lists, strings and Decimals (money, formatted by the one
`money` filter), never DataFrames; every other number arrives here already
formatted, exactly as ledger.csv prints it, so a figure on a statement can be
found in the ledger character for character. docs/templates.md lists every
key; keep it in step with this module.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any

from chargeback import __version__
from chargeback.documents.book import Month
from chargeback.documents.charts import (
    Baseline,
    Expected,
    daily_chart,
    month_label,
)
from chargeback.documents.control_doc import (
    chart_legend,
    control_method,
    decision_legend,
    expected_lines,
    line_range,
)
from chargeback.documents.ledger_files import lines_csv
from chargeback.documents.reconcile_doc import reconciliation
from chargeback.documents.trend import trend
from chargeback.documents.wording import (
    Document,
    count,
    describe_match,
    describe_window,
    minutes,
    pct,
    rate,
    statement_number,
)
from chargeback.engine.attribute import Attribution
from chargeback.engine.dates import days_in_window, month_bounds, window_bounds
from chargeback.engine.evidence import Evidence, Part
from chargeback.engine.ledger import (
    UNATTRIBUTED,
    Ledger,
    LedgerLine,
    flags_net,
    half_up,
)
from chargeback.engine.reconcile import Reconciliation, Sums, month_sums, reconcile
from chargeback.workspace.model import Decision, Rule, Workspace

TOP_LINES = 40  # decision rows on a statement before "other decisions" (flagged ones always show)
TOP_EVIDENCE = 8  # decisions with an evidence section per statement
TOP_PARTS = 5  # reasons / channels per evidence table before "other"
TOP_RANKED = 15  # rows in the summary's rankings
TOP_UNATTRIBUTED = 10  # reasons shown for the unattributed line
CHART_BEFORE_DAYS = 28  # days of history before the effective date, at least
CHART_MAX_DAYS = 366

OVERLAP_TEXT = {
    "split": "A contact matched by several decisions is shared between them: each "
    "decision takes its rule's weight, and when the weights add up to more than "
    "one they are scaled down so the contact is charged once.",
    "priority": "A contact matched by several rules goes to the rules of the highest "
    "priority only; lower-priority rules do not charge it.",
}


def _part_rows(parts: list[Part], line_cost: Decimal, top: int = TOP_PARTS) -> list[dict[str, Any]]:
    shown = parts[:top]
    rows = [
        {
            "label": p.label,
            "contacts": count(p.contacts),
            "cost": p.cost,
            "share": pct(p.cost, line_cost),
            "other": False,
        }
        for p in shown
    ]
    rest = parts[top:]
    if rest:
        cost = sum((p.cost for p in rest), Decimal("0.00"))
        rows.append(
            {
                "label": f"{len(rest)} other",
                "contacts": count(sum((p.contacts for p in rest), Fraction(0))),
                "cost": cost,
                "share": pct(cost, line_cost),
                "other": True,
            }
        )
    return rows


def _line_row(line: LedgerLine, whole: Decimal) -> dict[str, Any]:
    return {
        "decision_id": line.decision_id,
        "department_id": line.department_id,
        "title": line.title,
        "kind": line.kind,
        "contacts": count(line.contacts),
        "handle_minutes": minutes(line.handle_minutes),
        "cost": line.cost,
        "revenue": line.revenue,
        "net": line.net,
        "share": pct(line.cost, whole),
        "has_revenue": line.has_revenue,
        "net_negative": line.net_negative,
        "range": line_range(line),
    }


def _sums(lines: list[LedgerLine]) -> dict[str, Any]:
    """Contacts and minutes (formatted), cost, revenue and net of some lines together."""
    cost = sum((ln.cost for ln in lines), Decimal("0.00"))
    revenue = sum((ln.revenue for ln in lines), Decimal("0.00"))
    return {
        "contacts": count(sum((ln.contacts for ln in lines), Fraction(0))),
        "handle_minutes": minutes(sum((ln.handle_minutes for ln in lines), Fraction(0))),
        "cost": cost,
        "revenue": revenue,
        "net": revenue - cost,
        "net_negative": flags_net(revenue, cost),  # the lines' own flag, on their sum
    }


def _other_row(lines: list[LedgerLine], whole: Decimal, label: str) -> dict[str, Any] | None:
    if not lines:
        return None
    sums = _sums(lines)
    return {"label": label, "count": len(lines), **sums, "share": pct(sums["cost"], whole)}


class Builder:
    """Builds every document's context for one run."""

    def __init__(
        self,
        ws: Workspace,
        attribution: Attribution,
        ledger: Ledger,
        evidence: Evidence,
        meta: dict[str, Any],
        generated_on: date,
        leaky: dict[str, str] | None = None,
        book: Mapping[str, Month] | None = None,
    ) -> None:
        self.ws = ws
        self.book = dict(book or {})  # months already reported: the trend draws them as kept
        self.leaky = leaky or {}  # rule id -> `check`'s leaky-rule message
        self.attribution = attribution
        self.ledger = ledger
        self.evidence = evidence
        self.meta = meta
        self.generated_on = generated_on
        self.seed = meta["fingerprint"]
        self._reconciled: dict[str, dict[str, Reconciliation]] = {}
        self._month_sums: dict[str, Sums] | None = None
        self._worded: dict[tuple[str, str], dict[str, Any] | None] = {}

    def reconciled(self, period: str, line: LedgerLine) -> dict[str, Any] | None:
        """The line's matched-to-charged steps (reconcile_doc.py), worked out once a month
        and worded once a line (the summary and the department's statement both show it)."""
        if (period, line.decision_id) in self._worded:
            return self._worded[period, line.decision_id]
        if period not in self._reconciled:
            if self._month_sums is None:  # every month's, in one pass over the groups
                self._month_sums = month_sums(self.attribution.groups)
            sums = self._month_sums.get(period, {})
            self._reconciled[period] = reconcile(self.ws, self.attribution, period, sums)
        matches = [
            stats.matched.get(period, 0)
            for r in self.ws.rules
            if r.decision == line.decision_id and (stats := self.attribution.rules.get(r.id))
        ]
        found = self._reconciled[period].get(line.decision_id)
        worded = self._worded[period, line.decision_id] = reconciliation(
            found, line.contacts, matches
        )
        return worded

    def common(self, period: str) -> dict[str, Any]:
        ws = self.ws
        return {
            "company": ws.settings.company or ws.root.name,
            "currency": ws.costs.currency,
            "period": period,
            "period_label": month_label(period),
            "generated_on": self.generated_on.isoformat(),
            "fingerprint": self.meta["fingerprint"],
            "version": __version__,
            "timezone": ws.settings.timezone,
        }

    def documents(self, periods: list[str]) -> list[Document]:
        docs: list[Document] = []
        for period in periods:
            docs.append(self.summary(period))
            lines = self.ledger.lines_for(period)
            for dept in self.ws.departments:
                mine = [ln for ln in lines if ln.department_id == dept.id]
                if mine:
                    docs.append(self.statement(period, dept.id, mine))
        return docs

    # ------------------------------------------------------------------ statement

    def statement(self, period: str, department_id: str, lines: list[LedgerLine]) -> Document:
        ws = self.ws
        dept = ws.department(department_id)
        totals = _sums(lines)
        cost = totals["cost"]
        ranked = sorted(lines, key=lambda ln: (-ln.cost, ln.net, ln.decision_id))
        # a decision that costs more than it collects is never folded into "other"
        shown = ranked[:TOP_LINES] + [ln for ln in ranked[TOP_LINES:] if ln.net_negative]
        folded = [ln for ln in ranked if ln not in shown]
        evidenced = [ln for ln in ranked if ln.kind != "adjustment"]  # no contacts of their own
        number = statement_number(self.seed, period, department_id)
        decisions = [self.decision_evidence(period, ln) for ln in evidenced[:TOP_EVIDENCE]]
        context = {
            **self.common(period),
            "kind": "statement",
            "department": {"id": dept.id, "name": dept.name, "cost_center": dept.cost_center},
            "statement_number": number,
            "totals": {
                **totals,
                "decisions": len(lines),
                "flagged": sum(1 for ln in lines if ln.net_negative),
            },
            "lines": [_line_row(ln, cost) for ln in shown],
            "flagged_lines": [_line_row(ln, cost) for ln in ranked if ln.net_negative],
            "other_lines": _other_row(folded, cost, "other decisions"),
            "decisions": decisions,
            "legend": chart_legend(decisions, ws),
            "more_evidence": max(0, len(evidenced) - TOP_EVIDENCE),
            "method": self.method(period, {ln.decision_id for ln in evidenced}),
            "adjustments": [_line_row(ln, cost) for ln in lines if ln.kind == "adjustment"],
            "attachment_name": f"chargeback-{period}-{department_id}.csv",
        }
        return Document(
            period=period,
            name=f"{period}/departments/{department_id}",
            template="statement.html.j2",
            context=context,
            title=f"Chargeback statement {number}: {dept.name}, {month_label(period)}",
            subject=f"Customer-service cost charged back to {dept.name}"
            + (f" (cost center {dept.cost_center})" if dept.cost_center else "")
            + f" for {period}",
            attachment=(context["attachment_name"], lines_csv(lines)),
        )

    def decision_evidence(self, period: str, line: LedgerLine) -> dict[str, Any]:
        ws = self.ws
        decision = ws.decision(line.decision_id)
        ev = self.evidence.lines.get((period, line.decision_id))
        rules = [r for r in ws.rules if r.decision == decision.id]
        chart, expected, legend = self.chart(period, decision, rules)
        return {
            "decision_id": decision.id,
            "title": decision.title,
            "kind": decision.kind,
            "effective": decision.effective.isoformat(),
            "ends": decision.ends.isoformat() if decision.ends else "",
            "cost": line.cost,
            "revenue": line.revenue,
            "net": line.net,
            "has_revenue": line.has_revenue,
            "net_negative": line.net_negative,
            "range": line_range(line),
            "matched": ev.matched if ev else 0,
            "chart": chart,
            "expected": bool(expected),
            "baseline": bool(legend.get("baselines")),
            "legend": legend,
            "reasons": _part_rows(ev.reasons, line.cost) if ev else [],
            "channels": _part_rows(ev.channels, line.cost) if ev else [],
            "examples": [
                {
                    "contact_id": e.contact_id,
                    "when": e.when,
                    "channel": e.channel,
                    "reason": e.reason,
                    "text": e.text,
                }
                for e in (ev.examples if ev else [])
            ],
            "rules": [r.id for r in rules],
            "reconcile": self.reconciled(period, line),
        }

    def chart(
        self, period: str, decision: Decision, rules: list[Rule]
    ) -> tuple[str, list[Expected], dict[str, Any]]:
        """The decision's daily chart, the expected lines it draws, and its own legend:
        only what this chart draws (control_doc.decision_legend)."""
        counts = self.evidence.daily.get(decision.id)
        first, last = self.evidence.first_date, self.evidence.last_date
        if not counts or first is None or last is None:
            return "", [], {}
        p0, p1 = month_bounds(period)
        end = min(p1, last)
        lookbacks = [
            r.control.lookback_days if r.control else r.baseline_lookback_days or 0 for r in rules
        ]
        start = decision.effective - timedelta(days=max([CHART_BEFORE_DAYS, *lookbacks]))
        start = max(start, first, end - timedelta(days=CHART_MAX_DAYS - 1))
        if start > end:
            return "", [], {}
        windows = [window_bounds(r, decision) for r in rules]
        w0 = min(w[0] for w in windows)
        w1 = None if any(w[1] is None for w in windows) else max(w[1] for w in windows if w[1])
        baselines = []
        for rule in rules:
            stats = self.attribution.rules.get(rule.id)
            if stats and stats.baseline_daily is not None and rule.baseline_lookback_days:
                baselines.append(
                    Baseline(
                        label=f"baseline (usual level before): {float(stats.baseline_daily):.1f}"
                        f"/day ({rule.id})",
                        daily=stats.baseline_daily,
                        start=decision.effective - timedelta(days=rule.baseline_lookback_days),
                    )
                )
        expected = expected_lines(self.ws, self.attribution, decision.id, start, end)
        chart = daily_chart(
            counts, start, end, decision.effective, (w0, w1), (p0, p1), baselines, expected=expected
        )
        shown = (start, end)
        legend = decision_legend(self.ws, decision, rules, shown, (w0, w1), expected, baselines)
        return chart, expected, legend

    def method(self, period: str, decision_ids: set[str]) -> dict[str, Any]:
        ws = self.ws
        costs = ws.costs
        rules = []
        for index, rule in enumerate(ws.rules):
            if rule.decision not in decision_ids:
                continue
            decision = ws.decision(rule.decision)
            first, last = window_bounds(rule, decision)
            if days_in_window(first, last, period) == 0:
                continue  # its window does not reach this month
            stats = self.attribution.rules.get(rule.id)
            matched = stats.matched.get(period, 0) if stats else 0
            baseline = None
            if rule.baseline_lookback_days is not None and stats is not None:
                daily = stats.baseline_daily or Fraction(0)
                days = days_in_window(first, last, period)
                factor = stats.factor.get(period)
                baseline = {
                    "lookback_days": rule.baseline_lookback_days,
                    "contacts": stats.baseline_contacts or 0,
                    "daily": str(half_up(daily, 2)),
                    "days": days,
                    "expected": str(half_up(daily * days, 1)),
                    "factor": pct(factor, 1) if factor is not None else "—",
                }
            rules.append(
                {
                    "id": rule.id,
                    "decision_id": rule.decision,
                    "match": describe_match(rule.match),
                    "window": describe_window(rule, decision),
                    "share": pct(Fraction(rule.share), 1),
                    "priority": rule.priority,
                    "matched": matched,
                    "baseline": baseline,
                    "leaky": self.leaky.get(rule.id),
                    "control": control_method(ws, self.attribution, index, period),
                }
            )
        rates = [
            {"channel": ch, "per_contact": rate(r.per_contact), "per_minute": rate(r.per_minute)}
            for ch, r in costs.channels
        ]
        default = costs.default
        return {
            "overlap": ws.settings.overlap,
            "overlap_text": OVERLAP_TEXT[ws.settings.overlap],
            "cost_method": costs.method,
            "rates": rates,
            "default_rate": (
                {"per_contact": rate(default.per_contact), "per_minute": rate(default.per_minute)}
                if default
                else None
            ),
            "pool": costs.pool_for(period) if costs.method == "pool" else None,
            "rules": rules,
        }

    # ------------------------------------------------------------------ summary

    def summary(self, period: str) -> Document:
        ws = self.ws
        totals = next(p for p in self.ledger.periods if p.period == period)
        lines = self.ledger.lines_for(period)
        decisions = [ln for ln in lines if not ln.is_unattributed]
        unattributed = next(ln for ln in lines if ln.is_unattributed)
        by_cost = sorted(decisions, key=lambda ln: (-ln.cost, ln.decision_id))
        by_net = sorted(decisions, key=lambda ln: (ln.net, ln.decision_id))
        rows = {
            ln.decision_id: {**_line_row(ln, totals.cost), "reconcile": self.reconciled(period, ln)}
            for ln in [*by_cost[:TOP_RANKED], *by_net[:TOP_RANKED]]
        }
        departments: list[dict[str, Any]] = []
        for dept in ws.departments:
            mine = [ln for ln in decisions if ln.department_id == dept.id]
            if not mine:
                continue
            sums = _sums(mine)
            departments.append(
                {
                    "id": dept.id,
                    "name": dept.name,
                    "cost_center": dept.cost_center,
                    "decisions": len(mine),
                    **sums,
                    "share": pct(sums["cost"], totals.cost),
                    "flagged": sum(1 for ln in mine if ln.net_negative),
                }
            )
        departments.sort(key=lambda d: (-Decimal(d["cost"]), str(d["id"])))
        ev = self.evidence.lines.get((period, UNATTRIBUTED))
        context = {
            **self.common(period),
            "kind": "summary",
            "totals": {
                "contacts": str(totals.contacts),
                "handle_minutes": minutes(totals.handle_minutes),
                "cost": totals.cost,
                "attributed_cost": totals.attributed_cost,
                "attributed_share": pct(totals.attributed_cost, totals.cost),
                "unattributed_cost": totals.unattributed_cost,
                "unattributed_share": pct(totals.unattributed_cost, totals.cost),
                "unattributed_contacts": count(unattributed.contacts),
                "unattributed_handle_minutes": minutes(unattributed.handle_minutes),
                "revenue": totals.revenue,
                "net": totals.net,
                "net_negative": flags_net(totals.revenue, totals.cost),
                "decisions": len(decisions),
            },
            "unattributed_reasons": (
                _part_rows(ev.reasons, unattributed.cost, TOP_UNATTRIBUTED) if ev else []
            ),
            "by_cost": [rows[ln.decision_id] for ln in by_cost[:TOP_RANKED]],
            "by_cost_other": _other_row(by_cost[TOP_RANKED:], totals.cost, "other decisions"),
            "by_net": [rows[ln.decision_id] for ln in by_net[:TOP_RANKED]],
            "by_net_other": _other_row(by_net[TOP_RANKED:], totals.cost, "other decisions"),
            "flagged": [_line_row(ln, totals.cost) for ln in by_net if ln.net_negative],
            "departments": departments,
            "trend": self.trend(period),
        }
        return Document(
            period=period,
            name=f"{period}/summary",
            template="summary.html.j2",
            context=context,
            title=f"Chargeback executive summary, {month_label(period)}",
            subject=f"What decisions cost in customer service, by department, for {period}",
            attachment=(f"chargeback-{period}.csv", lines_csv(lines)),
        )

    def trend(self, period: str) -> dict[str, Any]:
        """The summary's 12 months, read from the book (documents/trend.py)."""
        return trend(self.ws, self.attribution, self.book, period)
