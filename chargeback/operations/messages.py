"""The messages: each department its statement, finance the summary (text, HTML, PDF)."""

from __future__ import annotations

import hashlib
import html
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from email.message import EmailMessage
from email.utils import formatdate

from chargeback.documents.wording import range_words
from chargeback.engine.ledger import LedgerLine
from chargeback.report import RunResult


@dataclass(frozen=True)
class Outgoing:
    """One message: a department's statement or the summary, to its recipients."""

    key: str  # "2026-03/departments/billing" or "2026-03/summary": what was sent
    period: str
    department_id: str | None
    recipients: tuple[str, ...]
    subject: str
    text: str
    html: str
    attachment_name: str
    attachment: bytes
    figures: str = ""  # the figures the document shows (ledger lines as CSV)

    @property
    def figures_hash(self) -> str:
        """Stable across days: the PDF's bytes change with its date, the figures do not."""
        return hashlib.sha256(self.figures.encode()).hexdigest()

    @property
    def content_hash(self) -> str:
        digest = hashlib.sha256()
        for part in (self.subject, self.text, self.html, self.attachment_name):
            digest.update(part.encode())
            digest.update(b"\0")
        digest.update(self.attachment)
        return digest.hexdigest()

    def message(self, sender: str, to: list[str], message_id: str) -> EmailMessage:
        msg = EmailMessage()
        msg["Subject"] = " ".join(self.subject.split())  # no line breaks from data in headers
        msg["From"] = sender
        msg["To"] = ", ".join(to)
        msg["Date"] = formatdate(localtime=False)
        msg["Message-ID"] = message_id
        msg["X-Chargeback-Document"] = self.key
        msg["X-Chargeback-Content-SHA256"] = self.content_hash
        msg.set_content(self.text)
        msg.add_alternative(self.html, subtype="html")
        msg.add_attachment(
            self.attachment, maintype="application", subtype="pdf", filename=self.attachment_name
        )
        return msg


def _m(value: Decimal) -> str:
    return f"{value:.2f}"


def _bodies(
    heading: tuple[str, str],
    rows: list[tuple[str, str]],
    width: int,
    currency: str,
    flagged: list[tuple[str, str, Decimal, str]],
    tail: tuple[str, str],
    ranged: Sequence[tuple[str, str, Decimal, str]] = (),
) -> tuple[str, str]:
    """The text and HTML body: a heading, a table of totals, the flagged decisions.

    `heading` and `tail` are (text, HTML) pairs, the HTML already escaped;
    `flagged` holds (title, whose, net, range words) for "costs more than it
    collects"; `ranged` (title, whose, cost, range words) the lines charged
    against a control baseline (SPEC 4b), whose cost is an estimate with a range.
    """
    text = [heading[0], ""]
    text += [f"{label + ':':{width}} {value:>14} {currency}" for label, value in rows]
    body = [
        heading[1],
        "<table>",
        *[
            f'<tr><td>{label}</td><td style="text-align:right">{value} {html.escape(currency)}'
            "</td></tr>"
            for label, value in rows
        ],
        "</table>",
    ]
    if ranged:
        text += ["", "Charged over a control baseline (an estimate, with its range):"]
        text += [
            f"  - {title} ({whose}): {_m(cost)}, {words}" for title, whose, cost, words in ranged
        ]
        body.append(
            "<p><b>Charged over a control baseline (an estimate, with its range):</b></p><ul>"
        )
        body += [
            f"<li>{html.escape(title)} ({html.escape(whose)}): {_m(cost)}, "
            f"{html.escape(words)}</li>"
            for title, whose, cost, words in ranged
        ]
        body.append("</ul>")
    if flagged:
        text += ["", "Costs more in customer service than it collects:"]
        text += [
            f"  - {title} ({whose}): net {_m(net)}" + (f"; cost {words}" if words else "")
            for title, whose, net, words in flagged
        ]
        body.append("<p><b>Costs more in customer service than it collects:</b></p><ul>")
        body += [
            f"<li>{html.escape(title)} ({html.escape(whose)}): net {_m(net)}"
            + (f"; cost {html.escape(words)}" if words else "")
            + "</li>"
            for title, whose, net, words in flagged
        ]
        body.append("</ul>")
    text += ["", tail[0], "", "-- chargeback"]
    body.append(tail[1])
    return "\n".join(text) + "\n", "<html><body>" + "".join(body) + "</body></html>"


def statement_message(
    period: str,
    dept_id: str,
    dept_name: str,
    cost_center: str,
    recipients: tuple[str, ...],
    lines: list[LedgerLine],
    currency: str,
    pdf: bytes,
) -> Outgoing:
    from chargeback.documents.ledger_files import lines_csv

    cost = sum((ln.cost for ln in lines), Decimal("0.00"))
    revenue = sum((ln.revenue for ln in lines), Decimal("0.00"))
    center = f" ({cost_center})" if cost_center else ""
    name = f"chargeback-{period}-{dept_id}.pdf"
    text, body = _bodies(
        (
            f"Chargeback statement {period} for {dept_name}{center}",
            f"<p>Chargeback statement <b>{period}</b> for <b>{html.escape(dept_name)}</b>"
            f"{html.escape(center)}</p>",
        ),
        [
            ("Service cost charged", _m(cost)),
            ("Revenue the decisions brought in", _m(revenue)),
            ("Net", _m(revenue - cost)),
        ],
        34,
        currency,
        [(ln.title, ln.decision_id, ln.net, range_words(ln)) for ln in lines if ln.net_negative],
        (
            f"The statement is attached ({name}); its lines ride inside the PDF as CSV.",
            f"<p>The statement is attached ({html.escape(name)}).</p>",
        ),
        [(ln.title, ln.decision_id, ln.cost, range_words(ln)) for ln in lines if ln.range],
    )
    return Outgoing(
        key=f"{period}/departments/{dept_id}",
        period=period,
        department_id=dept_id,
        recipients=recipients,
        subject=f"Chargeback statement {period}: {dept_name}{center}",
        text=text,
        html=body,
        attachment_name=name,
        attachment=pdf,
        figures=lines_csv(lines),
    )


def summary_message(
    period: str,
    company: str,
    recipients: tuple[str, ...],
    cost: Decimal,
    attributed: Decimal,
    flagged: list[LedgerLine],
    currency: str,
    pdf: bytes,
) -> Outgoing:
    name = f"chargeback-{period}-summary.pdf"
    text, body = _bodies(
        (
            f"Chargeback executive summary {period}, {company}",
            f"<p>Chargeback executive summary <b>{period}</b>, {html.escape(company)}</p>",
        ),
        [
            ("Total service cost", _m(cost)),
            ("Caused by decisions", _m(attributed)),
            ("Unattributed", _m(cost - attributed)),
        ],
        22,
        currency,
        [(ln.title, ln.department_id, ln.net, range_words(ln)) for ln in flagged],
        (f"The summary is attached ({name}).", ""),
    )
    figures = f"{cost:.2f}|{attributed:.2f}|" + "|".join(
        f"{ln.decision_id}:{ln.net:.2f}" for ln in flagged
    )
    return Outgoing(
        key=f"{period}/summary",
        period=period,
        department_id=None,
        recipients=recipients,
        subject=f"Chargeback executive summary {period}",
        text=text,
        html=body,
        attachment_name=name,
        attachment=pdf,
        figures=figures,
    )


def has_charges(lines: list[LedgerLine]) -> bool:
    """A department gets a statement for a month with charges or credits (revenue alone: no)."""
    return any(ln.cost != 0 or ln.contacts != 0 for ln in lines)


def outgoing(result: RunResult) -> tuple[list[Outgoing], list[str]]:
    """The period's messages: one per department with charges, and the summary."""
    ws = result.workspace
    period = result.periods[0]
    folder = result.out_dir / period
    messages: list[Outgoing] = []
    notes: list[str] = []
    lines = result.ledger.lines_for(period)
    for dept in ws.departments:
        mine = [ln for ln in lines if ln.department_id == dept.id]
        if not has_charges(mine):
            continue  # no charges (or credits) this month
        if not dept.recipients:
            notes.append(f"department '{dept.id}' has no recipients; its statement was not sent")
            continue
        pdf = (folder / "departments" / f"{dept.id}.pdf").read_bytes()
        messages.append(
            statement_message(
                period,
                dept.id,
                dept.name,
                dept.cost_center,
                dept.recipients,
                mine,
                result.ledger.currency,
                pdf,
            )
        )
    summary = next(p for p in result.ledger.periods if p.period == period)
    if ws.settings.summary_recipients:
        flagged = [ln for ln in lines if ln.net_negative]
        messages.append(
            summary_message(
                period,
                ws.settings.company or ws.root.name,
                ws.settings.summary_recipients,
                summary.cost,
                summary.attributed_cost,
                flagged,
                result.ledger.currency,
                (folder / "summary.pdf").read_bytes(),
            )
        )
    return messages, notes
