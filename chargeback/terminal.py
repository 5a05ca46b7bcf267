"""How a run looks in a terminal: rich tables built from its result.

They are returned, never printed: cli.py decides where they go (the library
never prints), and tests can read them.
"""

from __future__ import annotations

import textwrap
from decimal import Decimal
from typing import Any

from rich.table import Table
from rich.text import Text

from chargeback.engine.ledger import Ledger, LedgerLine
from chargeback.errors import display_path
from chargeback.report import RunResult
from chargeback.review.check import CheckReport


def money(value: object) -> str:
    return f"{value:,.2f}"


def summary_tables(ledger: Ledger, color: bool, top: int = 5) -> list[Table]:
    """A table per period: what it cost, how much is explained, the biggest drivers.

    Net-negative decisions are marked only where the decision declares revenue
    (LedgerLine.costs_more_than_it_collects).
    """
    cur = ledger.currency
    tables = []
    for period in ledger.periods:
        share = float(period.attributed_share) * 100
        table = Table(
            title=f"{period.period}  ·  {period.contacts:,} contacts  ·  "
            f"{money(period.cost)} {cur} service cost  ·  {share:.1f}% attributed",
            title_justify="left",
            show_edge=False,
        )
        table.add_column("decision", no_wrap=True)
        table.add_column("department")
        table.add_column("contacts", justify="right")
        table.add_column(f"cost {cur}", justify="right")
        table.add_column(f"revenue {cur}", justify="right")
        table.add_column(f"net {cur}", justify="right")
        table.add_column("", width=1)  # ▲ for decisions that cost more than they collect
        lines = [ln for ln in ledger.lines_for(period.period) if not ln.is_unattributed]
        lines.sort(key=lambda ln: (-ln.cost, ln.decision_id))

        def flagged(line: LedgerLine) -> bool:
            return line.costs_more_than_it_collects

        shown = lines[:top] + [ln for ln in lines[top:] if flagged(ln)]
        for line in shown:
            table.add_row(
                Text(line.decision_id),  # ids are the user's text, never markup
                line.department_id,
                f"{float(line.contacts):,.1f}",
                money(line.cost),
                money(line.revenue),
                money(line.net),
                "▲" if flagged(line) else "",
                style="bold red" if flagged(line) and color else None,
            )
        if len(lines) > len(shown):
            table.add_row(f"+{len(lines) - len(shown)} more", "", "", "", "", "", "")
        table.add_row("unattributed", "", "", money(period.unattributed_cost), "", "", "")
        if any(flagged(ln) for ln in lines):
            table.caption = "▲ costs more in service than it collects"
            table.caption_justify = "left"
        tables.append(table)
    return tables


def value_table(result: RunResult) -> Table | None:
    """Per month: what service cost, what it won and kept, and the net."""
    report = result.value
    if report is None:
        return None
    cur = result.ledger.currency
    table = Table(title=f"CS value ({cur})", title_justify="left", show_edge=False)
    for name in (
        "month",
        "contacts",
        "cost",
        "per contact",
        "avoidable",
        "revenue won",
        "saves",
        "save value",
        "repeat rate",
        "net value",
    ):
        table.add_column(name, justify="left" if name == "month" else "right", no_wrap=True)
    for period in result.periods:
        e = report.periods[period]
        rate = e.get("repeat_rate")
        table.add_row(
            period,
            f"{e['contacts']:,}",
            money(Decimal(e["cost"])),
            e.get("cost_per_contact") or "",
            money(Decimal(e["avoidable_cost"])),
            money(Decimal(e["revenue_won"])) if "revenue_won" in e else "n/a",
            f"{e['saves']:,}" if "saves" in e else "n/a",
            money(Decimal(e["save_value_total"])) if "save_value_total" in e else "n/a",
            f"{rate * 100:.1f}%" if rate is not None else "n/a",
            money(Decimal(e["net_value"])) if "net_value" in e else "n/a",
        )
    return table


def written_summary(result: RunResult) -> str:
    """Top-level files by name; documents counted, not listed (there can be hundreds)."""
    top = [p for p in result.written if p.parent == result.out_dir and not p.name.startswith(".")]
    docs = [p for p in result.written if p.parent != result.out_dir]
    parts = [display_path(p) for p in top]
    for suffix in (".pdf", ".html"):
        n = sum(1 for p in docs if p.suffix == suffix)
        if n:
            parts.append(f"{n} {suffix[1:].upper()} document{'s' if n != 1 else ''}")
    where = f" in {display_path(result.out_dir)}/<period>/" if docs else ""
    return ", ".join(parts) + where


def report_done(result: RunResult) -> list[str]:
    """The lines after the tables: rows set aside, the run's totals, what was written."""
    lines = []
    if result.loaded.rejected_count:
        lines.append(
            f"{result.loaded.rejected_count:,} bad rows set aside in "
            f"{display_path(result.out_dir / 'rejected.csv')}"
        )
    total = sum((p.cost for p in result.ledger.periods), start=Decimal(0))
    contacts_in_periods = sum(p.contacts for p in result.ledger.periods)
    lines.append(
        f"{len(result.periods)} period(s), {contacts_in_periods:,} contacts, "
        f"{float(total):,.2f} {result.ledger.currency} in total. Wrote " + written_summary(result)
    )
    return lines


def value_done(result: RunResult) -> list[str]:
    """The CS-value notes (what data would add a metric), then what was written."""
    notes = [f"note: {note}" for note in (result.value.notes if result.value else [])]
    return [*notes, f"{len(result.periods)} period(s). Wrote " + written_summary(result)]


def check_view(report: CheckReport, width: int) -> list[Text | Table]:
    """check for a person: problems with their places, then overlaps, candidates, rules."""
    parts: list[Text | Table] = [Text(report.subject + ".")]
    serious = [f for f in report.findings if f.severity != "info"]
    for f in serious:
        parts.append(Text(f"{f.severity} {f.code}  {f.place()}".rstrip()))
        parts.append(
            Text(
                textwrap.fill(
                    f.message, max(40, width - 1), initial_indent="    ", subsequent_indent="    "
                )
            )
        )
    overlaps = [f for f in report.findings if f.code == "overlap"]
    if overlaps:
        table = Table(
            title="Decisions sharing contacts (overlap)", title_justify="left", show_edge=False
        )
        for name in ("decisions", "contacts", f"cost {report.currency}"):
            table.add_column(name, justify="left" if name == "decisions" else "right")
        for f in overlaps:
            pair = " + ".join(f.decisions or ())
            table.add_row(Text(pair), f"{f.extra['contacts']:,}", money(Decimal(f.extra["cost"])))
        parts.append(table)
    candidates = [f for f in report.findings if f.code == "unattributed-reason"]
    if candidates:
        table = Table(
            title="No rule matches these: candidates for new rules",
            title_justify="left",
            show_edge=False,
        )
        for name in ("reason or phrase", "contacts", f"cost {report.currency}"):
            table.add_column(name, justify="left" if name.startswith("reason") else "right")
        for f in candidates:
            label = (
                f"reason {f.extra['reason']}" if "reason" in f.extra else (f"“{f.extra['phrase']}”")
            )
            table.add_row(Text(label), f"{f.extra['contacts']:,}", money(Decimal(f.extra["cost"])))
        parts.append(table)
    parts.append(rule_table(report))
    c = report.coverage
    share = c["attributed_share"]
    parts.append(
        Text(
            f"Coverage: {Decimal(c['attributed_contacts']):,.3f} of {c['contacts']:,} contacts "
            f"and {money(Decimal(c['attributed_cost']))} of {money(Decimal(c['cost']))} "
            f"{report.currency} "
            f"({'n/a' if share is None else f'{share * 100:.1f}%'}) of the cost are attributed."
        )
    )
    errors, warnings = report.errors, report.warnings
    notes = len(report.findings) - errors - warnings
    verdict = "OK" if not errors and not warnings else "Found"
    parts.append(
        Text(
            f"{verdict}: {errors} error{'s' if errors != 1 else ''}, "
            f"{warnings} warning{'s' if warnings != 1 else ''}, "
            f"{notes} note{'s' if notes != 1 else ''}."
        )
    )
    return parts


def explain_lines(doc: dict[str, Any]) -> list[str]:
    """One contact's charge, told in the order the engine computes it."""
    cur = doc["currency"]
    mark = {True: "✓", False: "✗"}
    lines = [
        f"Contact {doc['contact_id']}: {doc['date']} ({doc['period']}), {doc['channel']}, "
        f"{Decimal(doc['handle_minutes']):.2f} min, cost {doc['cost']} {cur}"
    ]
    lines += [f"  {key}: {value}" for key, value in doc["contact"].items()]
    matched = [r for r in doc["rules"] if r["matched"]]
    lines.append(f"Rules: {len(matched)} of {len(doc['rules'])} match (overlap: {doc['overlap']})")
    for r in doc["rules"]:
        held = "  ".join(f"{k} {mark[v]}" for k, v in r["conditions"].items()) or "every contact"
        until = r["window"]["to"] or "open-ended"
        window = f"window {r['window']['from']} to {until} {mark[r['in_window']]}"
        lines.append(f"  {mark[r['matched']]} {r['id']} -> {r['decision']}")
        lines.append(f"      {held};  {window}")
        if not r["matched"]:
            continue
        base = r.get("baseline")
        if base and base.get("method") == "control":
            low, high = base["range"]
            lines.append(
                f"      control baseline: fit on {base['fit_days']} days, "
                f"ratio {base['ratio']} to the control"
            )
            lines.append(
                f"      {doc['period']}: A={base['A']}, expected {base['expected']}, "
                f"X={base['X']}, {base['level']:.0%} range {low} - {high}"
            )
            lines += [f"      warning: {w}" for w in base["warnings"]]
        elif base:
            lines.append(
                f"      baseline: B={base['B']} in {base['lookback_days']} days "
                f"(b={Decimal(base['b']):.4f}/day); {doc['period']}: A={base['A']}, "
                f"D={base['D']}, E={Decimal(base['E']):.4f}"
            )
        kept = "kept" if r["kept"] else f"dropped (priority {r['priority']} is not the top)"
        lines.append(
            f"      factor {r['factor']} x share {r['share']} = weight {r['weight']}, {kept}"
        )
    lines.append("Charged:")
    for decision, d in doc["decisions"].items():
        scaled = (
            f" (scaled from {d['before_normalising']})"
            if d["before_normalising"] != d["weight"]
            else ""
        )
        lines.append(
            f"  {decision} ({d['department']}): weight {d['weight']}{scaled}, {d['cost']} {cur}"
        )
    rest = doc["unattributed"]
    lines.append(f"  unattributed: weight {rest['weight']}, {rest['cost']} {cur}")
    return lines


def rule_table(report: CheckReport) -> Table:
    """Per rule: contacts matched inside its window, and the daily rates leaky-rule compares."""
    table = Table(
        title="Rules: contacts matched in the window; per day before and since the decision",
        title_justify="left",
        show_edge=False,
    )
    table.add_column("rule", no_wrap=True)
    table.add_column("decision", no_wrap=True)
    table.add_column("matched", justify="right")
    table.add_column("/day before", justify="right")
    table.add_column("/day since", justify="right")

    def rate(value: float | None) -> str:
        return "n/a" if value is None else f"{value:,.1f}"

    for r in report.rules:
        table.add_row(
            Text(r.rule),
            Text(r.decision),
            f"{r.in_window:,}",
            rate(r.before_per_day),
            rate(r.in_window_per_day),
        )
    return table
