"""SMTP: settings from chargeback.yaml and the environment, and one message delivered.

- Settings: `smtp:` in chargeback.yaml, overridden by CHARGEBACK_SMTP_* in the
  environment; the password comes from the environment only and is never
  printed, logged or written anywhere.
- Faults: connection failures, timeouts and 4xx replies are retried with
  exponential backoff; a 5xx refusal of one recipient is reported without
  stopping the others. A recipient is reported accepted (on_accepted) the
  moment the server says yes, so the caller can record it before retrying
  the rest.
"""

from __future__ import annotations

import os
import smtplib
import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from email.utils import make_msgid
from pathlib import Path
from typing import Any

from chargeback.errors import Problem, WorkspaceError
from chargeback.operations.messages import Outgoing
from chargeback.workspace.limits import host_problem, mailbox_problem, shown
from chargeback.workspace.model import SMTP_KEYS, Workspace

SECURITY = ("starttls", "ssl", "none")
DEFAULT_PORTS = {"starttls": 587, "ssl": 465, "none": 25, "auto": 587}
ENV = "CHARGEBACK_SMTP_"


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


def configured_sender(ws: Workspace, environ: Mapping[str, str] = os.environ) -> str:
    """The sender a real send would use (for dry runs, which read no other setting)."""
    given, source = _given(ws, environ)
    problem = _sender_problem(given, source)
    if problem is not None:
        raise WorkspaceError(problem)
    return sender_of(given)


def _sender_problem(given: Mapping[str, str], source: Mapping[str, str]) -> Problem | None:
    """A sender that is not one address (a CR/LF would write headers into every message)."""
    sender = sender_of(given)
    why = mailbox_problem(sender)
    if why is None:
        return None
    where = source.get("from") or source.get("user") or "smtp: in chargeback.yaml"
    return Problem(f"smtp sender '{shown(sender)}' ({where}) {why}")


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
    if host and (why := host_problem(host)):
        problems.append(Problem(f"smtp host '{shown(host)}' ({source['host']}) {why}"))
    if not host:
        problems.append(
            Problem(
                "no mail server: set smtp: host in chargeback.yaml or CHARGEBACK_SMTP_HOST "
                "(or use --dry-run to write the messages as .eml files)"
            )
        )
    sender = sender_of(given)
    if (problem := _sender_problem(given, source)) is not None:
        problems.append(problem)
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
