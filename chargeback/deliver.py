"""Mail each department its statement, once, and survive a flaky mail server.

- Settings: `smtp:` in chargeback.yaml, overridden by CHARGEBACK_SMTP_* in the
  environment; the password comes from the environment only and is never
  printed, logged or written anywhere.
- Idempotent: every recipient a server accepts is appended to
  `<out>/deliveries.jsonl` (flushed and fsynced) the moment the server says
  yes. A later run sends only what has no record (`--resend` sends all again),
  so a run killed half-way and started again completes the rest.
- Faults: connection failures, timeouts and 4xx replies are retried with
  exponential backoff; a 5xx refusal of one recipient is reported without
  stopping the others. When the server cannot be reached at all, the rest are
  not tried one by one: they are reported undelivered at once.
"""

from __future__ import annotations

import hashlib
import html
import json
import os
import smtplib
import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from typing import Any

from .errors import ChargebackError, Problem, WorkspaceError
from .ledger import LedgerLine
from .model import SMTP_KEYS, Workspace

SECURITY = ("starttls", "ssl", "none")
DEFAULT_PORTS = {"starttls": 587, "ssl": 465, "none": 25}
ENV = "CHARGEBACK_SMTP_"
LOG_NAME = "deliveries.jsonl"


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    security: str
    user: str | None
    password: str | None = field(repr=False)  # never shown
    sender: str
    timeout: float = 30.0
    retries: int = 3  # attempts after the first
    retry_delay: float = 1.0  # seconds before the first retry; doubles each time
    ca_file: str | None = None  # a private CA for the server's certificate

    def tls(self) -> ssl.SSLContext:
        """Verified TLS: the system's CAs, or the company's own CA file."""
        return ssl.create_default_context(cafile=self.ca_file)


def smtp_settings(ws: Workspace, environ: Mapping[str, str] = os.environ) -> SmtpSettings:
    """chargeback.yaml's `smtp:` with CHARGEBACK_SMTP_* on top; errors name where each came from."""
    given = dict(ws.settings.smtp)
    for key in SMTP_KEYS:
        env_key = ENV + key.upper().replace("RETRY_DELAY_SECONDS", "RETRY_DELAY")
        if environ.get(env_key):
            given[key] = environ[env_key]
    problems: list[Problem] = []
    security = given.get("security", "starttls").lower()
    if security not in SECURITY:
        problems.append(Problem(f"smtp security '{security}' must be one of {', '.join(SECURITY)}"))
        security = "starttls"

    def number(key: str, default: float, kind: type = int) -> Any:
        text = given.get(key)
        if text is None:
            return default
        try:
            value = kind(text)
        except ValueError:
            problems.append(Problem(f"smtp {key} '{text}' is not a number"))
            return default
        if value < 0:
            problems.append(Problem(f"smtp {key} must not be negative"))
            return default
        return value

    host = given.get("host", "")
    if not host:
        problems.append(
            Problem(
                "no mail server: set smtp: host in chargeback.yaml or CHARGEBACK_SMTP_HOST "
                "(or use --dry-run to write the messages as .eml files)"
            )
        )
    sender = given.get("from", "")
    user = given.get("user") or None
    if not sender:
        sender = user if user and "@" in user else ""
    if not sender:
        sender = "chargeback@localhost"  # most relays want a real one: set smtp: from
    password = environ.get(ENV + "PASSWORD") or None
    if user and password is None:
        problems.append(
            Problem(
                f"smtp user '{user}' is set but CHARGEBACK_SMTP_PASSWORD is not (the password "
                "is read from the environment only)"
            )
        )
    settings = SmtpSettings(
        host=host,
        port=number("port", DEFAULT_PORTS[security]),
        security=security,
        user=user,
        password=password,
        sender=sender,
        timeout=number("timeout", 30.0, float),
        retries=number("retries", 3),
        retry_delay=number("retry_delay_seconds", 1.0, float),
        ca_file=given.get("ca_file") or None,
    )
    if settings.ca_file and not Path(settings.ca_file).is_file():
        problems.append(Problem(f"smtp ca_file '{settings.ca_file}' is not a file"))
    if problems:
        raise WorkspaceError(problems)
    return settings


# --------------------------------------------------------------------------- messages


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
        msg["Subject"] = self.subject
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
    cost = sum((ln.cost for ln in lines), Decimal("0.00"))
    revenue = sum((ln.revenue for ln in lines), Decimal("0.00"))
    flagged = [ln for ln in lines if ln.costs_more_than_it_collects]
    center = f" ({cost_center})" if cost_center else ""
    rows = [
        ("Service cost charged", _m(cost)),
        ("Revenue the decisions brought in", _m(revenue)),
        ("Net", _m(revenue - cost)),
    ]
    text = [f"Chargeback statement {period} for {dept_name}{center}", ""]
    text += [f"{label + ':':34} {value:>14} {currency}" for label, value in rows]
    body = [
        f"<p>Chargeback statement <b>{period}</b> for <b>{html.escape(dept_name)}</b>"
        f"{html.escape(center)}</p>",
        "<table>",
        *[
            f'<tr><td>{label}</td><td style="text-align:right">{value} {html.escape(currency)}'
            "</td></tr>"
            for label, value in rows
        ],
        "</table>",
    ]
    if flagged:
        text += ["", "Costs more in customer service than it collects:"]
        text += [f"  - {ln.title} ({ln.decision_id}): net {_m(ln.net)}" for ln in flagged]
        body.append("<p><b>Costs more in customer service than it collects:</b></p><ul>")
        body += [
            f"<li>{html.escape(ln.title)} ({html.escape(ln.decision_id)}): net {_m(ln.net)}</li>"
            for ln in flagged
        ]
        body.append("</ul>")
    name = f"chargeback-{period}-{dept_id}.pdf"
    text += [
        "",
        f"The statement is attached ({name}); its lines ride inside the PDF as CSV.",
        "",
        "-- chargeback",
    ]
    body.append(f"<p>The statement is attached ({html.escape(name)}).</p>")
    return Outgoing(
        key=f"{period}/departments/{dept_id}",
        period=period,
        department_id=dept_id,
        recipients=recipients,
        subject=f"Chargeback statement {period}: {dept_name}{center}",
        text="\n".join(text) + "\n",
        html="<html><body>" + "".join(body) + "</body></html>",
        attachment_name=name,
        attachment=pdf,
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
    rows = [
        ("Total service cost", _m(cost)),
        ("Caused by decisions", _m(attributed)),
        ("Unattributed", _m(cost - attributed)),
    ]
    text = [f"Chargeback executive summary {period}, {company}", ""]
    text += [f"{label + ':':22} {value:>14} {currency}" for label, value in rows]
    body = [
        f"<p>Chargeback executive summary <b>{period}</b>, {html.escape(company)}</p><table>",
        *[
            f'<tr><td>{label}</td><td style="text-align:right">{value} {html.escape(currency)}'
            "</td></tr>"
            for label, value in rows
        ],
        "</table>",
    ]
    if flagged:
        text += ["", "Costs more in customer service than it collects:"]
        text += [f"  - {ln.title} ({ln.department_id}): net {_m(ln.net)}" for ln in flagged]
        body.append("<p><b>Costs more in customer service than it collects:</b></p><ul>")
        body += [
            f"<li>{html.escape(ln.title)} ({html.escape(ln.department_id)}): net {_m(ln.net)}</li>"
            for ln in flagged
        ]
        body.append("</ul>")
    name = f"chargeback-{period}-summary.pdf"
    text += ["", f"The summary is attached ({name}).", "", "-- chargeback"]
    return Outgoing(
        key=f"{period}/summary",
        period=period,
        department_id=None,
        recipients=recipients,
        subject=f"Chargeback executive summary {period}",
        text="\n".join(text) + "\n",
        html="<html><body>" + "".join(body) + "</body></html>",
        attachment_name=name,
        attachment=pdf,
    )


# --------------------------------------------------------------------------- the log


class DeliveryLog:
    """deliveries.jsonl: one line per accepted recipient, written as it happens."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.done: dict[tuple[str, str], dict[str, Any]] = {}
        if path.exists():
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                if not line.strip():
                    continue
                try:
                    entry = json.loads(line)
                    self.done[entry["document"], entry["recipient"]] = entry
                except (json.JSONDecodeError, KeyError, TypeError):
                    if number == len(path.read_text(encoding="utf-8").splitlines()):
                        continue  # a line cut short by a crash: that recipient was not recorded
                    raise ChargebackError(
                        Problem("not a delivery record (JSON lines)", path, number)
                    ) from None

    def delivered(self, document: str, recipient: str) -> dict[str, Any] | None:
        return self.done.get((document, recipient.lower()))

    def record(self, out: Outgoing, recipients: list[str], message_id: str) -> None:
        stamp = datetime.now(UTC).isoformat(timespec="seconds")
        lines = []
        for recipient in recipients:
            entry = {
                "period": out.period,
                "document": out.key,
                "recipient": recipient.lower(),
                "sha256": out.content_hash,
                "message_id": message_id,
                "delivered_at": stamp,
            }
            self.done[out.key, recipient.lower()] = entry
            lines.append(json.dumps(entry, sort_keys=True))
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write("\n".join(lines) + "\n")
            handle.flush()
            os.fsync(handle.fileno())


# --------------------------------------------------------------------------- sending


@dataclass
class Attempt:
    accepted: list[str] = field(default_factory=list)
    refused: dict[str, str] = field(default_factory=dict)  # permanent, per recipient
    failed: str | None = None  # the whole message was not delivered: why
    unreachable: bool = False  # the server itself could not be reached
    fatal: bool = False  # a settings problem (login, certificate): no use trying the others
    message_id: str = ""


class _Transient(Exception):
    def __init__(self, why: str, unreachable: bool = False) -> None:
        super().__init__(why)
        self.why = why
        self.unreachable = unreachable


def _connect(s: SmtpSettings) -> smtplib.SMTP:
    if s.security == "ssl":
        conn: smtplib.SMTP = smtplib.SMTP_SSL(s.host, s.port, timeout=s.timeout, context=s.tls())
    else:
        conn = smtplib.SMTP(s.host, s.port, timeout=s.timeout)
        if s.security == "starttls":
            conn.starttls(context=s.tls())
    if s.user:
        conn.login(s.user, s.password or "")
    return conn


def _reply(exc: smtplib.SMTPResponseException) -> str:
    text = (
        exc.smtp_error.decode(errors="replace")
        if isinstance(exc.smtp_error, bytes)
        else str(exc.smtp_error)
    )
    return f"{exc.smtp_code} {text}".strip()


def _give_up(result: Attempt, pending: list[str], why: str) -> Attempt:
    result.failed = why
    for rcpt in pending:
        result.refused.setdefault(rcpt, why)
    return result


def deliver(
    s: SmtpSettings,
    out: Outgoing,
    to: list[str],
    sleep: Callable[[float], None] = time.sleep,
) -> Attempt:
    """Send one message to `to`, retrying what may pass later; never raises for SMTP."""
    result = Attempt()
    pending = list(to)
    domain = s.sender.rsplit("@", 1)[-1] if "@" in s.sender else "chargeback.local"
    result.message_id = make_msgid(idstring=out.key.replace("/", "."), domain=domain)
    last_problem = ""
    for attempt in range(s.retries + 1):
        if attempt:
            sleep(s.retry_delay * 2 ** (attempt - 1))
        try:
            msg = out.message(s.sender, pending, result.message_id)
            try:
                conn = _connect(s)
            except smtplib.SMTPAuthenticationError as exc:
                result.fatal = True
                return _give_up(result, pending, f"login refused: {_reply(exc)}")
            except smtplib.SMTPNotSupportedError:
                result.fatal = True
                return _give_up(
                    result,
                    pending,
                    f"{s.host}:{s.port} offers no login here; check smtp security and port",
                )
            except ssl.SSLCertVerificationError as exc:
                result.fatal = True
                return _give_up(
                    result,
                    pending,
                    f"the certificate of {s.host} is not trusted ({exc.verify_message}); "
                    "for a private CA set smtp: ca_file",
                )
            except smtplib.SMTPResponseException as exc:
                if 400 <= exc.smtp_code < 500:
                    raise _Transient(_reply(exc)) from None
                return _give_up(result, pending, _reply(exc))
            except (OSError, smtplib.SMTPException) as exc:
                raise _Transient(
                    f"cannot reach {s.host}:{s.port}: {exc}", unreachable=True
                ) from None
            try:
                refused = conn.send_message(msg, from_addr=s.sender, to_addrs=pending)
            except smtplib.SMTPRecipientsRefused as exc:
                refused = exc.recipients
            except smtplib.SMTPResponseException as exc:  # sender or data refused
                if 400 <= exc.smtp_code < 500:
                    raise _Transient(_reply(exc)) from None
                return _give_up(result, pending, _reply(exc))
            except (OSError, smtplib.SMTPException) as exc:
                raise _Transient(f"connection lost: {exc}") from None
            finally:
                try:
                    conn.quit()
                except (OSError, smtplib.SMTPException):
                    conn.close()
            accepted = [r for r in pending if r not in refused]
            result.accepted += accepted
            retry = []
            for rcpt, (code, text) in refused.items():
                reply = (
                    f"{code} {text.decode(errors='replace') if isinstance(text, bytes) else text}"
                )
                if 400 <= code < 500:
                    retry.append(rcpt)
                    last_problem = reply
                else:
                    result.refused[rcpt] = reply
            pending = retry
            if not pending:
                return result
        except _Transient as exc:
            last_problem = exc.why
            result.unreachable = exc.unreachable
    result.failed = f"gave up after {s.retries + 1} attempts: {last_problem}"
    for rcpt in pending:
        result.refused.setdefault(rcpt, result.failed)
    return result


# --------------------------------------------------------------------------- a send run


@dataclass
class SendResult:
    period: str
    out_dir: Path
    sent: list[tuple[str, str]] = field(default_factory=list)  # (document, recipient)
    already: list[tuple[str, str]] = field(default_factory=list)  # delivered before
    undelivered: list[tuple[str, str, str]] = field(default_factory=list)  # + why
    written: list[Path] = field(default_factory=list)  # .eml files of a dry run
    warnings: list[str] = field(default_factory=list)


def last_period(timezone: str, now: datetime | None = None) -> str:
    """The calendar month before the current one, in the workspace's time zone."""
    from zoneinfo import ZoneInfo

    today = (now or datetime.now(UTC)).astimezone(ZoneInfo(timezone)).date()
    year, month = (today.year - 1, 12) if today.month == 1 else (today.year, today.month - 1)
    return f"{year:04d}-{month:02d}"


def outgoing(result: Any) -> tuple[list[Outgoing], list[str]]:
    """The period's messages: one per department with charges, and the summary."""
    ws = result.workspace
    period = result.periods[0]
    folder = result.out_dir / period
    messages: list[Outgoing] = []
    notes: list[str] = []
    lines = result.ledger.lines_for(period)
    for dept in ws.departments:
        mine = [ln for ln in lines if ln.department_id == dept.id]
        if not any(ln.cost > 0 or ln.contacts > 0 for ln in mine):
            continue  # no charges this month
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
        flagged = [ln for ln in lines if ln.costs_more_than_it_collects]
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


def run_send(
    report_options: Any,
    dry_run: bool = False,
    resend: bool = False,
    steps: Any = None,
    environ: Mapping[str, str] = os.environ,
    sleep: Callable[[float], None] = time.sleep,
) -> SendResult:
    """Render the period's statements (or serve the frozen ones), then mail what is missing."""
    from dataclasses import replace

    from .lock import locked
    from .run import run_report
    from .workspace import find_workspace, load_workspace

    opts = report_options
    if opts.period == "last":
        ws = load_workspace(find_workspace(opts.workspace))
        opts = replace(opts, period=last_period(ws.settings.timezone))
    opts = replace(opts, formats=("pdf",))
    result = run_report(opts, steps)
    ws = result.workspace
    settings = None if dry_run else smtp_settings(ws, environ)
    period = result.periods[0]
    send = SendResult(period=period, out_dir=result.out_dir, warnings=list(result.warnings))
    messages, notes = outgoing(result)
    send.warnings += notes
    with locked(result.out_dir):
        log = DeliveryLog(result.out_dir / LOG_NAME)
        unreachable = ""
        for out in messages:
            todo = []
            for rcpt in out.recipients:
                before = log.delivered(out.key, rcpt)
                if before and not resend:
                    send.already.append((out.key, rcpt))
                    if before.get("sha256") != out.content_hash:
                        send.warnings.append(
                            f"{out.key} changed since it was sent to {rcpt} on "
                            f"{before.get('delivered_at', '?')[:10]}; not sent again "
                            "(--resend sends it)"
                        )
                else:
                    todo.append(rcpt)
            if not todo:
                continue
            if dry_run:
                path = result.out_dir / period / "outbox" / (out.key.split("/")[-1] + ".eml")
                path.parent.mkdir(parents=True, exist_ok=True)
                sender = (
                    dict(ws.settings.smtp).get("from")
                    or environ.get(ENV + "FROM")
                    or "chargeback@localhost"
                )
                msg = out.message(sender, todo, make_msgid(domain="chargeback.local"))
                path.write_bytes(bytes(msg))
                send.written.append(path)
                continue
            assert settings is not None
            if unreachable:
                send.undelivered += [(out.key, r, unreachable) for r in todo]
                continue
            attempt = deliver(settings, out, todo, sleep)
            if attempt.accepted:
                log.record(out, attempt.accepted, attempt.message_id)
                send.sent += [(out.key, r) for r in attempt.accepted]
            for rcpt, why in attempt.refused.items():
                send.undelivered.append((out.key, rcpt, why))
            if attempt.failed and attempt.unreachable:
                unreachable = f"not tried: {settings.host}:{settings.port} could not be reached"
            if attempt.fatal and attempt.failed:
                unreachable = f"not tried: {attempt.failed}"
    return send
