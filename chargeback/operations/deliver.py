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

from chargeback.engine.ledger import LedgerLine
from chargeback.errors import ChargebackError, Problem, WorkspaceError
from chargeback.workspace.model import SMTP_KEYS, Workspace

SECURITY = ("starttls", "ssl", "none")
DEFAULT_PORTS = {"starttls": 587, "ssl": 465, "none": 25, "auto": 587}
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


def sender_of(given: Mapping[str, str]) -> str:
    """`from`, else a user that is an address, else a placeholder most relays refuse."""
    user = given.get("user") or ""
    return given.get("from") or (user if "@" in user else "") or "chargeback@localhost"


def _given(ws: Workspace, environ: Mapping[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    """chargeback.yaml's smtp: with CHARGEBACK_SMTP_* on top, and where each value came from."""
    given = dict(ws.settings.smtp)
    source = {key: "smtp: in chargeback.yaml" for key in given}
    for key in SMTP_KEYS:
        env_key = ENV + key.upper().replace("RETRY_DELAY_SECONDS", "RETRY_DELAY")
        if environ.get(env_key):
            given[key] = environ[env_key]
            source[key] = env_key
    return given, source


def smtp_settings(ws: Workspace, environ: Mapping[str, str] = os.environ) -> SmtpSettings:
    """chargeback.yaml's `smtp:` with CHARGEBACK_SMTP_* on top; errors name where each came from."""
    given, source = _given(ws, environ)
    problems: list[Problem] = []
    # unset: STARTTLS when the server offers it; plain only without a login
    security = given.get("security", "auto").lower()
    if security not in (*SECURITY, "auto"):
        problems.append(
            Problem(
                f"smtp security '{security}' ({source['security']}) must be one of "
                f"{', '.join(SECURITY)}"
            )
        )
        security = "auto"

    def number(
        key: str, default: float, kind: type = int, low: float = 0, high: float = 1e9
    ) -> Any:
        text = given.get(key)
        if text is None:
            return default
        try:
            value = kind(text)
        except ValueError:
            problems.append(Problem(f"smtp {key} '{text}' ({source[key]}) is not a number"))
            return default
        if not low <= value <= high:  # also refuses nan
            problems.append(
                Problem(f"smtp {key} '{text}' ({source[key]}) must be between {low:g} and {high:g}")
            )
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
    sender = sender_of(given)
    user = given.get("user") or None
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
        port=number("port", DEFAULT_PORTS.get(security, 587), int, 1, 65535),
        security=security,
        user=user,
        password=password,
        sender=sender,
        timeout=number("timeout", 30.0, float, 0.1, 3600),
        retries=number("retries", 3, int, 0, 20),
        retry_delay=number("retry_delay_seconds", 1.0, float, 0, 600),
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
    flagged: list[tuple[str, str, Decimal]],
    tail: tuple[str, str],
) -> tuple[str, str]:
    """The text and HTML body: a heading, a table of totals, the flagged decisions.

    `heading` and `tail` are (text, HTML) pairs, the HTML already escaped;
    `flagged` holds (title, whose, net) for "costs more than it collects".
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
    if flagged:
        text += ["", "Costs more in customer service than it collects:"]
        text += [f"  - {title} ({whose}): net {_m(net)}" for title, whose, net in flagged]
        body.append("<p><b>Costs more in customer service than it collects:</b></p><ul>")
        body += [
            f"<li>{html.escape(title)} ({html.escape(whose)}): net {_m(net)}</li>"
            for title, whose, net in flagged
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
        [(ln.title, ln.decision_id, ln.net) for ln in lines if ln.costs_more_than_it_collects],
        (
            f"The statement is attached ({name}); its lines ride inside the PDF as CSV.",
            f"<p>The statement is attached ({html.escape(name)}).</p>",
        ),
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
        [(ln.title, ln.department_id, ln.net) for ln in flagged],
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


# --------------------------------------------------------------------------- the log


class DeliveryLog:
    """deliveries.jsonl: one line per accepted recipient, written as it happens.

    A line cut short by a crash (the last one) is ignored: that recipient was
    not recorded, so it is sent again, which is the safe side of a crash that
    happened before the record was complete.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.done: dict[tuple[str, str], dict[str, Any]] = {}
        try:
            text = path.read_text(encoding="utf-8") if path.exists() else ""
        except (OSError, UnicodeDecodeError) as exc:
            raise ChargebackError(
                Problem(f"cannot read the delivery records: {exc}", path)
            ) from None
        self.torn = bool(text) and not text.endswith("\n")
        lines = text.splitlines()
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
                self.done[entry["document"], entry["recipient"]] = entry
            except (json.JSONDecodeError, KeyError, TypeError):
                if number == len(lines) and self.torn:
                    continue
                raise ChargebackError(
                    Problem("not a delivery record (JSON lines)", path, number)
                ) from None

    def delivered(self, document: str, recipient: str) -> dict[str, Any] | None:
        return self.done.get((document, recipient.lower()))

    def record(
        self, out: Outgoing, recipients: list[str], message_id: str, status: str = "delivered"
    ) -> None:
        stamp = datetime.now(UTC).isoformat(timespec="seconds")
        lines = []
        for recipient in recipients:
            entry = {
                "period": out.period,
                "document": out.key,
                "recipient": recipient.lower(),
                "sha256": out.content_hash,
                "figures_sha256": out.figures_hash,
                "message_id": message_id,
                "status": status,
                "delivered_at": stamp,
            }
            self.done[out.key, recipient.lower()] = entry
            lines.append(json.dumps(entry, sort_keys=True))
        text = "\n".join(lines) + "\n"
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if self.torn:  # drop the fragment a crash left, so the file stays JSON lines
                whole = self.path.read_bytes()
                os.truncate(self.path, whole.rfind(b"\n") + 1)
            with self.path.open("a", encoding="utf-8") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
        except OSError as exc:
            raise ChargebackError(
                Problem(
                    f"cannot record that {out.key} was delivered to {', '.join(recipients)} "
                    f"({exc.strerror}); stopped so it is not sent twice: fix the file, "
                    "then run again",
                    self.path,
                )
            ) from None
        self.torn = False


# --------------------------------------------------------------------------- sending


@dataclass
class Attempt:
    accepted: list[str] = field(default_factory=list)
    refused: dict[str, str] = field(default_factory=dict)  # not delivered, per recipient: why
    uncertain: dict[str, str] = field(default_factory=dict)  # may have been delivered: why
    failed: str | None = None  # the whole message was not delivered: why
    unreachable: bool = False  # the server itself could not be reached
    fatal: bool = False  # a settings problem (login, certificate): no use trying the others
    message_id: str = ""


class _Transient(Exception):
    def __init__(self, why: str, unreachable: bool = False) -> None:
        super().__init__(why)
        self.why = why
        self.unreachable = unreachable


class _Fatal(Exception):
    """A settings problem: every message would fail the same way."""


def _connect(s: SmtpSettings) -> smtplib.SMTP:
    if s.security == "ssl":
        conn: smtplib.SMTP = smtplib.SMTP_SSL(s.host, s.port, timeout=s.timeout, context=s.tls())
    else:
        conn = smtplib.SMTP(s.host, s.port, timeout=s.timeout)
        conn.ehlo()
        if s.security == "starttls" or (s.security == "auto" and conn.has_extn("starttls")):
            if not conn.has_extn("starttls"):
                conn.close()
                raise _Fatal(
                    f"{s.host}:{s.port} does not offer STARTTLS; set smtp security to ssl, "
                    "or to none for a relay that takes plain SMTP"
                )
            conn.starttls(context=s.tls())
            conn.ehlo()
        elif s.user and s.security == "auto":
            conn.close()
            raise _Fatal(
                f"{s.host}:{s.port} offers no TLS, and the password is never sent in clear; "
                "set smtp security to none to allow it"
            )
    if s.user:
        try:
            conn.login(s.user, s.password or "")
        except UnicodeEncodeError:
            conn.close()
            raise _Fatal(
                "the login or password has characters SMTP login cannot carry (ASCII only)"
            ) from None
        except smtplib.SMTPNotSupportedError:
            conn.close()
            raise _Fatal(
                f"{s.host}:{s.port} offers no login here; check smtp security and port"
            ) from None
    return conn


def _reply(exc: smtplib.SMTPResponseException) -> str:
    return _text(exc.smtp_code, exc.smtp_error)


def _text(code: int, reply: bytes | str) -> str:
    text = reply.decode(errors="replace") if isinstance(reply, bytes) else str(reply)
    return f"{code} {text}".strip()


def _as_bytes(reply: bytes | str) -> bytes:
    return reply if isinstance(reply, bytes) else reply.encode()


def _give_up(result: Attempt, pending: list[str], why: str) -> Attempt:
    result.failed = why
    for rcpt in pending:
        result.refused.setdefault(rcpt, why)
    return result


def _close(conn: smtplib.SMTP) -> None:
    try:
        conn.quit()
    except (OSError, smtplib.SMTPException):
        conn.close()


def deliver(
    s: SmtpSettings,
    out: Outgoing,
    to: list[str],
    sleep: Callable[[float], None] = time.sleep,
    on_accepted: Callable[[list[str], str], None] | None = None,
) -> Attempt:
    """Send one message to `to`, retrying what may pass later; never raises for SMTP.

    The SMTP steps are taken one by one so the outcome is known per step:
    refusals before the message text is sent are safe to retry; a timeout or a
    dropped connection while the server takes the text is not (it may have been
    delivered), so it is reported, never sent again on its own. Accepted
    recipients go to `on_accepted` at once, before any retry of the others.
    """
    result = Attempt()
    pending = list(to)
    domain = s.sender.rsplit("@", 1)[-1] if "@" in s.sender else "chargeback.local"
    result.message_id = make_msgid(idstring=out.key.replace("/", "."), domain=domain)
    last_problem = ""
    for attempt in range(s.retries + 1):
        if attempt:
            sleep(s.retry_delay * 2 ** (attempt - 1))
        try:
            try:
                conn = _connect(s)
            except _Fatal as exc:
                result.fatal = True
                return _give_up(result, pending, str(exc))
            except smtplib.SMTPAuthenticationError as exc:
                result.fatal = True
                return _give_up(result, pending, f"login refused: {_reply(exc)}")
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
            retry: list[str] = []
            try:
                code, reply = conn.mail(s.sender)
                if code != 250:
                    if 400 <= code < 500:
                        raise _Transient(_text(code, reply))
                    return _give_up(result, pending, f"sender refused: {_text(code, reply)}")
                taken = []
                for rcpt in pending:
                    code, reply = conn.rcpt(rcpt)
                    if code in (250, 251):
                        taken.append(rcpt)
                    elif 400 <= code < 500:
                        retry.append(rcpt)
                        last_problem = _text(code, reply)
                    else:
                        result.refused[rcpt] = _text(code, reply)
                if taken:
                    msg = out.message(s.sender, taken, result.message_id)
                    data = msg.as_bytes(policy=msg.policy.clone(linesep="\r\n"))  # SMTP wants CRLF
                    try:
                        code, reply = conn.data(data)
                    except (OSError, smtplib.SMTPServerDisconnected) as exc:
                        why = (
                            f"the connection failed while the server took the message ({exc}); "
                            "it may have been delivered, so it is not sent again by itself "
                            "(--resend sends it)"
                        )
                        result.uncertain.update({r: why for r in taken})
                        taken = []
                        code, reply = 0, b""
                    except smtplib.SMTPDataError as exc:
                        code, reply = exc.smtp_code, _as_bytes(exc.smtp_error)
                    if taken and code == 250:
                        result.accepted += taken
                        if on_accepted is not None:
                            on_accepted(taken, result.message_id)
                    elif taken and 400 <= code < 500:
                        retry += taken
                        last_problem = _text(code, reply)
                    elif taken:
                        result.refused.update({r: _text(code, reply) for r in taken})
            except smtplib.SMTPServerDisconnected as exc:
                raise _Transient(f"connection lost: {exc}") from None
            except (OSError, smtplib.SMTPException) as exc:
                raise _Transient(f"connection failed: {exc}") from None
            finally:
                _close(conn)
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

    from chargeback.engine.attribute import shift_month

    today = (now or datetime.now(UTC)).astimezone(ZoneInfo(timezone)).date()
    return shift_month(f"{today:%Y-%m}", -1)


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
        if not any(ln.cost != 0 or ln.contacts != 0 for ln in mine):
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

    from chargeback.operations.lock import locked
    from chargeback.run import run_report
    from chargeback.workspace.load import find_workspace, load_workspace

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
                    if before.get("figures_sha256") not in (None, out.figures_hash):
                        send.warnings.append(
                            f"the figures of {out.key} changed since it was sent to {rcpt} on "
                            f"{before.get('delivered_at', '?')[:10]}; not sent again "
                            "(--resend sends it)"
                        )
                else:
                    todo.append(rcpt)
            if not todo:
                continue
            if dry_run:
                stem = "summary" if out.department_id is None else f"statement-{out.department_id}"
                path = result.out_dir / period / "outbox" / f"{stem}.eml"
                path.parent.mkdir(parents=True, exist_ok=True)
                sender = sender_of(_given(ws, environ)[0])  # as a real send would use
                msg = out.message(sender, todo, make_msgid(domain="chargeback.local"))
                path.write_bytes(bytes(msg))
                send.written.append(path)
                continue
            assert settings is not None
            if unreachable:
                send.undelivered += [(out.key, r, unreachable) for r in todo]
                continue

            def accepted(recipients: list[str], message_id: str, out: Outgoing = out) -> None:
                log.record(out, recipients, message_id)  # the moment the server says yes
                send.sent += [(out.key, r) for r in recipients]

            attempt = deliver(settings, out, todo, sleep, on_accepted=accepted)
            if attempt.uncertain:
                log.record(out, list(attempt.uncertain), attempt.message_id, status="uncertain")
            for rcpt, why in [*attempt.refused.items(), *attempt.uncertain.items()]:
                send.undelivered.append((out.key, rcpt, why))
            if attempt.failed and (attempt.unreachable or attempt.fatal):
                unreachable = f"not tried: {attempt.failed}"
    return send
