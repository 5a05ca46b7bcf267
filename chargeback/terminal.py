"""How a run looks in a terminal: rich tables built from its result.

They are returned, never printed: cli.py decides where they go (the library
never prints), and tests can read them.
"""

from __future__ import annotations

import io
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from rich import box
from rich.console import Console
from rich.table import Column, Table
from rich.text import Text

from chargeback import plain_table
from chargeback.documents.wording import plural
from chargeback.engine.ledger import Ledger, LedgerLine, PeriodSummary, half_up
from chargeback.errors import display_path
from chargeback.report import RunResult

if TYPE_CHECKING:  # check's and send's types: a report need not import them
    from chargeback.operations.deliver import SendResult
    from chargeback.review.check import CheckReport


def money(value: object) -> str:
    return f"{value:,.2f}"


SUMMARY_TOP = 5  # decision rows per period before "+N more" (flagged ones always show)
# Columns a narrow terminal loses first, in this order: the figures that stay are never cut.
NARROW_DROPS = ("department", "revenue", "contacts")


def summary_tables(
    ledger: Ledger, color: bool, top: int | None = SUMMARY_TOP, width: int = 80
) -> list[Table]:
    """A table per period: what it cost, how much is explained, the biggest drivers.

    `top` decision rows (every one when None), plus any later one that is
    flagged (LedgerLine.net_negative, marked ▲ beside its net). A table wider than
    `width` loses its department column, then revenue, then contacts, before a
    figure would be cut; only a decision id longer than what is left is shortened.
    """
    tables = []
    for period, shown, decisions, unattributed in _periods(ledger, top):
        for n in range(len(NARROW_DROPS) + 1):
            spec = _period_rows(
                ledger.currency, period, shown, decisions, unattributed, NARROW_DROPS[:n]
            )
            table = _period_table(spec, color)
            needed = _natural_width(table)
            if needed <= width:
                break
        else:
            # still too wide: only the decision ids (the user's text) give way, with an ellipsis
            ids = table.columns[0]
            ids.max_width = max(8, _natural_width(table, ids) - (needed - width))
        # as wide as its title where the terminal allows, so the title is one line
        table.min_width = min(width, len(str(table.title)))
        tables.append(table)
    return tables


def summary_text(ledger: Ledger, top: int | None = SUMMARY_TOP, width: int = 80) -> str | None:
    """summary_tables without colour, each followed by a blank line, as plain text
    (plain_table.py: the same characters, without rich's cost); None when a cell
    needs rich (a wide character, markup, an id to shorten)."""
    out: list[str] = []
    for period, shown, decisions, unattributed in _periods(ledger, top):
        for n in range(len(NARROW_DROPS) + 1):
            spec = _period_rows(
                ledger.currency, period, shown, decisions, unattributed, NARROW_DROPS[:n]
            )
            cells = spec.cells()
            if plain_table.natural_width(spec.headers, cells) <= width:
                right = [name not in ("decision", "department") for name in spec.names]
                lines = plain_table.render(
                    spec.title, spec.headers, right, cells, spec.caption, width
                )
                if lines is None:
                    return None
                out += [*lines, ""]
                break
        else:
            return None
    return "".join(line + "\n" for line in out)


def _periods(
    ledger: Ledger, top: int | None
) -> Iterator[tuple[PeriodSummary, list[LedgerLine], int, LedgerLine]]:
    """Per period: the decision lines shown, how many there are, and the unattributed line."""
    for period in ledger.periods:
        lines = [ln for ln in ledger.lines_for(period.period) if not ln.is_unattributed]
        lines.sort(key=lambda ln: (-ln.cost, ln.decision_id))
        shown = lines[:top]  # every line when top is None
        shown += [ln for ln in lines[len(shown) :] if ln.net_negative]
        unattributed = next(ln for ln in ledger.lines_for(period.period) if ln.is_unattributed)
        yield period, shown, len(lines), unattributed


@dataclass(frozen=True)
class _Period:
    """One month's table as text: what both the rich and the plain drawing show."""

    title: str
    names: list[str]  # the columns kept, of COLUMNS
    headers: list[str]
    rows: list[dict[str, str]]
    flagged: list[bool]  # per row: its net is marked (LedgerLine.net_negative)
    caption: str | None
    lines: int  # the first rows are ledger lines ("+N more" and unattributed follow)

    def cells(self) -> list[list[str]]:
        return [[row.get(n, "") for n in self.names] for row in self.rows]


COLUMNS = ("decision", "department", "contacts", "cost", "revenue", "net")
NO_REVENUE = "no revenue"


def _period_rows(
    cur: str,
    period: PeriodSummary,
    shown: list[LedgerLine],
    decisions: int,
    unattributed: LedgerLine,
    dropped: tuple[str, ...],
) -> _Period:
    share = float(period.attributed_share) * 100
    title = (
        f"{period.period} · {plural(period.contacts, 'contact')} · "
        f"{money(period.cost)} {cur} service cost · {share:.1f}% attributed"
    )
    names = [n for n in COLUMNS if n not in dropped]
    headers = [f"{n} {cur}" if n in ("cost", "revenue", "net") else n for n in names]
    rows: list[dict[str, str]] = []
    flagged: list[bool] = []
    for line in shown:
        rows.append(
            {
                "decision": line.decision_id,
                "department": line.department_id,
                "contacts": contacts(line),
                "cost": money(line.cost),
                # a line without revenue is a cost, not a bad bargain: said, never flagged
                "revenue": money(line.revenue) if line.has_revenue else NO_REVENUE,
                "net": money(line.net) + (" ▲" if line.net_negative else "  "),
            }
        )
        flagged.append(line.net_negative)
    if decisions > len(shown):
        rows.append({"decision": f"+{decisions - len(shown)} more (--all)"})
        flagged.append(False)
    rows.append(
        {
            "decision": "unattributed",
            "contacts": contacts(unattributed),
            "cost": money(unattributed.cost),
        }
    )
    flagged.append(False)
    caption = "▲ costs more in service than it collects" if any(flagged) else None
    return _Period(title, names, headers, rows, flagged, caption, len(shown))


def _period_table(spec: _Period, color: bool) -> Table:
    table = Table(
        # text, never markup or emoji codes: a currency is the user's words
        title=Text(spec.title, style="table.title"),
        title_justify="left",
        # columns apart by spaces, not rules: the whole sample fits 80 columns
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
        collapse_padding=True,
    )
    for name, header in zip(spec.names, spec.headers, strict=True):
        table.add_column(
            Text(header),
            justify="left" if name in ("decision", "department") else "right",
            no_wrap=True,
            overflow="ellipsis",
        )
    for k, (row, flagged) in enumerate(zip(spec.rows, spec.flagged, strict=True)):
        cells: list[str | Text] = [row.get(name, "") for name in spec.names]
        if k < spec.lines:  # a ledger line's ids are the user's text, never markup
            for name in ("decision", "department"):
                if name in spec.names:
                    cells[spec.names.index(name)] = Text(row[name])
            if row["revenue"] == NO_REVENUE and "revenue" in spec.names:
                cells[spec.names.index("revenue")] = Text(NO_REVENUE, style="dim" if color else "")
        table.add_row(*cells, style="bold red" if flagged and color else None)
    if spec.caption:
        table.caption = spec.caption
        table.caption_justify = "left"
    return table


def contacts(line: LedgerLine) -> str:
    """Contacts to 3 decimals, half-up, as ledger.csv prints them (with thousands commas)."""
    return f"{half_up(line.contacts, 3):,.3f}"


def _natural_width(table: Table, column: Column | None = None) -> int:
    """How wide the table (or one column's content) is when nothing is cut."""
    console = Console(width=10_000, file=io.StringIO(), color_system=None)
    if column is None:
        return console.measure(table).maximum
    return max(
        (console.measure(Text(str(cell))).maximum for cell in [column.header, *column.cells]),
        default=0,
    )


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
            parts.append(plural(n, f"{suffix[1:].upper()} document"))
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
        f"{plural(len(result.periods), 'period')}, {plural(contacts_in_periods, 'contact')}, "
        f"{float(total):,.2f} {result.ledger.currency} in total. Wrote " + written_summary(result)
    )
    return lines


def send_done(result: SendResult, dry_run: bool) -> str:
    """The line after a send: what went (a dry run: what was written), or why nothing did."""
    period = result.period
    if dry_run:
        if not result.written:
            return f"{period}: dry run, nothing would be sent: {result.idle}."
        return (
            f"{period}: dry run, nothing sent. Wrote {plural(len(result.written), 'message')}: "
            + ", ".join(display_path(p) for p in result.written)
        )
    if result.idle and not result.already:
        return f"{period}: nothing sent: {result.idle}."
    documents = {doc for doc, _ in result.sent}
    return (
        f"{period}: sent {plural(len(documents), 'message')} to "
        f"{plural(len(result.sent), 'recipient')}; {len(result.already)} delivered before, "
        "not sent again."
    )


def value_done(result: RunResult) -> list[str]:
    """The CS-value notes (what data would add a metric), then what was written."""
    notes = [f"note: {note}" for note in (result.value.notes if result.value else [])]
    return [*notes, f"{plural(len(result.periods), 'period')}. Wrote " + written_summary(result)]


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
            f"Coverage: {Decimal(c['attributed_contacts']):,.3f} of "
            f"{plural(c['contacts'], 'contact')} "
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
            f"{verdict}: {plural(errors, 'error')}, {plural(warnings, 'warning')}, "
            f"{plural(notes, 'note')}."
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
