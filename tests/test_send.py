"""`chargeback send` against a real SMTP server on loopback (aiosmtpd in this process).

Two departments with charges in 2026-03, each with recipients, and a summary
recipient: three messages. The server can refuse a recipient (550), fail for a
while (451), or not be there at all.
"""

from __future__ import annotations

import email
import email.policy
import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from conftest import write_workspace
from pg_server import free_port
from typer.testing import CliRunner

from cli import app

runner = CliRunner()

DEPARTMENTS = """
departments:
  - {id: billing, name: Billing, cost_center: CC-100,
     recipients: [bill@example.com, cfo@example.com]}
  - {id: product, name: Product, cost_center: CC-200, recipients: [prod@example.com]}
  - {id: quiet, name: Quiet, cost_center: CC-300, recipients: [quiet@example.com]}
"""
RULES = """\
decisions:
  - {id: fee, title: Fee, kind: fee, department: billing, effective: 2026-03-01,
     revenue: {monthly: 1.00}}
  - {id: app, title: App, kind: launch, department: product, effective: 2026-03-01}
rules:
  - {id: r1, decision: fee, match: {reason: [fee]}}
  - {id: r2, decision: app, match: {reason: [app]}}
"""
CONTACTS = """\
contact_id,started_at,channel,reason,handle_seconds
c1,2026-03-02T10:00:00,phone,fee,60
c2,2026-03-03T10:00:00,phone,app,120
c3,2026-03-04T10:00:00,chat,other,0
"""


class Handler:
    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self.reject: set[str] = set()
        self.busy = 0  # answer 451 to this many DATA commands
        self.greylist: set[str] = set()  # answer 451 to these recipients
        self.slow = 0.0  # seconds to wait before answering DATA
        self.received = 0  # DATA commands that reached the handler

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        if address in self.reject:
            return "550 5.1.1 no such mailbox"
        if address in self.greylist:
            return "451 4.7.1 greylisted, try later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.received += 1
        if self.slow:
            import asyncio

            await asyncio.sleep(self.slow)
        if self.busy:
            self.busy -= 1
            return "451 4.3.0 try again later"
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        self.messages.append(message)
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        return "250 Message accepted"


@pytest.fixture
def smtp() -> Iterator[tuple[Handler, int]]:
    handler = Handler()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    yield handler, port
    controller.stop()


def env(port: int, **extra: str) -> dict[str, str]:
    return {
        "CHARGEBACK_SMTP_HOST": "127.0.0.1",
        "CHARGEBACK_SMTP_PORT": str(port),
        "CHARGEBACK_SMTP_SECURITY": "none",
        "CHARGEBACK_SMTP_FROM": "chargeback@example.com",
        "CHARGEBACK_SMTP_RETRY_DELAY": "0",
        "CHARGEBACK_SMTP_TIMEOUT": "5",
        **extra,
    }


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    return write_workspace(
        tmp_path / "ws",
        RULES,
        CONTACTS,
        settings="timezone: UTC\nsummary_recipients: [ceo@example.com]\n",
        departments=DEPARTMENTS,
    )


def send(ws: Path, port: int, *extra: str, **environ: str) -> tuple[int, str]:
    result = runner.invoke(
        app,
        ["send", "--workspace", str(ws), "--period", "2026-03", "--out", str(ws / "out"), *extra],
        env=env(port, **environ),
    )
    return result.exit_code, result.output


def log(ws: Path) -> list[dict[str, Any]]:
    path = ws / "out" / "deliveries.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_one_message_per_department_with_its_pdf_and_nothing_twice(
    ws: Path, smtp: tuple[Handler, int]
) -> None:
    handler, port = smtp
    code, output = send(ws, port)
    assert code == 0, output
    by_subject = {m["Subject"]: m for m in handler.messages}
    assert sorted(by_subject) == [
        "Chargeback executive summary 2026-03",
        "Chargeback statement 2026-03: Billing (CC-100)",
        "Chargeback statement 2026-03: Product (CC-200)",
    ]  # the quiet department has no charges: no message
    billing = by_subject["Chargeback statement 2026-03: Billing (CC-100)"]
    assert sorted(handler.envelopes[handler.messages.index(billing)][1]) == [
        "bill@example.com",
        "cfo@example.com",
    ]
    pdfs = [p for p in billing.iter_attachments() if p.get_content_type() == "application/pdf"]
    assert len(pdfs) == 1
    assert pdfs[0].get_content() == (ws / "out/2026-03/departments/billing.pdf").read_bytes()
    body = billing.get_body(("plain",))
    assert body is not None
    text = body.get_content()
    assert "1.45" in text and "costs more in customer service" in text.lower()
    assert billing.get_body(("html",)) is not None
    assert {(e["document"], e["recipient"]) for e in log(ws)} == {
        ("2026-03/departments/billing", "bill@example.com"),
        ("2026-03/departments/billing", "cfo@example.com"),
        ("2026-03/departments/product", "prod@example.com"),
        ("2026-03/summary", "ceo@example.com"),
    }
    assert all(e["message_id"] and len(e["sha256"]) == 64 for e in log(ws))

    code, output = send(ws, port)
    assert code == 0, output
    assert len(handler.messages) == 3  # a second run sends nothing
    assert "4 delivered before" in output


def test_server_down_names_every_undelivered_then_delivers_exactly_those(
    ws: Path, smtp: tuple[Handler, int]
) -> None:
    handler, port = smtp
    down = free_port()
    code, output = send(ws, down)
    assert code == 1
    for document in ("departments/billing", "departments/product", "summary"):
        assert f"2026-03/{document}" in output
    assert "Traceback" not in output
    assert log(ws) == []

    code, output = send(ws, port)
    assert code == 0, output
    assert len(handler.messages) == 3
    assert len(log(ws)) == 4


def test_a_refused_recipient_does_not_stop_the_others(ws: Path, smtp: tuple[Handler, int]) -> None:
    handler, port = smtp
    handler.reject = {"cfo@example.com"}
    code, output = send(ws, port)
    assert code == 1
    assert "cfo@example.com" in output and "550" in output
    assert len(handler.messages) == 3  # billing still reached bill@, and the others went
    assert ("2026-03/departments/billing", "bill@example.com") in {
        (e["document"], e["recipient"]) for e in log(ws)
    }

    handler.reject = set()
    code, output = send(ws, port)
    assert code == 0, output
    assert handler.envelopes[-1][1] == ["cfo@example.com"]  # only the one that was missing
    assert len(handler.messages) == 4


def test_temporary_failures_are_retried(ws: Path, smtp: tuple[Handler, int]) -> None:
    handler, port = smtp
    handler.busy = 2
    code, output = send(ws, port, CHARGEBACK_SMTP_RETRIES="2")
    assert code == 0, output
    assert len(handler.messages) == 3

    handler.busy = 10
    code, output = send(ws, port, "--resend", CHARGEBACK_SMTP_RETRIES="1")
    assert code == 1 and "451" in output and "gave up after 2 attempts" in output


def test_a_run_killed_half_way_completes_without_duplicates(
    ws: Path, smtp: tuple[Handler, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    import chargeback.operations.deliver as deliver_module

    handler, port = smtp
    real = deliver_module.deliver
    calls = {"n": 0}

    def dies_after_first(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt  # the process is killed here
        return real(*args, **kwargs)

    monkeypatch.setattr(deliver_module, "deliver", dies_after_first)
    for key, value in env(port).items():
        monkeypatch.setenv(key, value)
    from chargeback.report import ReportOptions
    from chargeback.run import run_send

    opts = ReportOptions(workspace=ws, period="2026-03", out=ws / "out")
    with pytest.raises(KeyboardInterrupt):
        run_send(opts)
    assert len(handler.messages) == 1
    monkeypatch.setattr(deliver_module, "deliver", real)
    result = run_send(opts)
    assert len(handler.messages) == 3
    assert not result.undelivered and len(result.already) == 2  # billing's two recipients
    subjects = [m["Subject"] for m in handler.messages]
    assert len(subjects) == len(set(subjects))


def test_dry_run_writes_eml_and_sends_nothing(ws: Path, smtp: tuple[Handler, int]) -> None:
    handler, port = smtp
    code, output = send(ws, port, "--dry-run")
    assert code == 0, output
    outbox = sorted(p.name for p in (ws / "out/2026-03/outbox").iterdir())
    assert outbox == ["statement-billing.eml", "statement-product.eml", "summary.eml"]
    message = email.message_from_bytes(
        (ws / "out/2026-03/outbox/statement-product.eml").read_bytes(), policy=email.policy.default
    )
    assert message["To"] == "prod@example.com"
    assert message["From"] == "chargeback@example.com"  # the sender a real send would use
    assert handler.messages == [] and log(ws) == []


def test_the_password_comes_from_the_environment_and_is_never_shown(
    ws: Path, smtp: tuple[Handler, int]
) -> None:
    _, port = smtp
    (ws / "chargeback.yaml").write_text(
        (ws / "chargeback.yaml").read_text() + "smtp:\n  password: hunter2\n"
    )
    code, output = send(ws, port)
    assert code == 1 and "CHARGEBACK_SMTP_PASSWORD" in output and "hunter2" not in output

    (ws / "chargeback.yaml").write_text(
        (ws / "chargeback.yaml").read_text().replace("  password: hunter2\n", "  user: bot\n")
    )
    code, output = send(ws, port)
    assert code == 1 and "CHARGEBACK_SMTP_PASSWORD is not" in output
    # the loopback server offers no login: the run fails cleanly, without the secret
    code, output = send(ws, port, CHARGEBACK_SMTP_PASSWORD="s3cret-pw")
    assert code == 1 and "s3cret-pw" not in output
    assert "s3cret-pw" not in "".join(
        p.read_text(errors="replace") for p in (ws / "out").rglob("*.json*")
    )


def test_a_second_run_on_the_same_folder_waits_its_turn(
    ws: Path, smtp: tuple[Handler, int]
) -> None:
    _, port = smtp
    (ws / "out").mkdir()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                f"""
                import sys, time
                from pathlib import Path
                from chargeback.operations.lock import locked
                with locked(Path({str(ws / "out")!r})):
                    print("locked", flush=True)
                    time.sleep(30)
                """
            ),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        code, output = send(ws, port)
        assert code == 1 and "another chargeback run" in output
    finally:
        holder.kill()
        holder.wait()
    code, output = send(ws, port)
    assert code == 0, output


def test_period_last_is_the_previous_month_in_the_workspace_timezone() -> None:
    from datetime import UTC, datetime

    from chargeback.operations.deliver import last_period

    now = datetime(2026, 4, 1, 2, 0, tzinfo=UTC)  # still 31 March in New York
    assert last_period("America/New_York", now) == "2026-02"
    assert last_period("UTC", now) == "2026-03"
    assert last_period("UTC", datetime(2026, 1, 15, tzinfo=UTC)) == "2025-12"


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (its own CA), made with openssl."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


def tls_server(handler: Handler, cert: Path, key: Path, implicit: bool) -> tuple[Controller, int]:
    import ssl

    from aiosmtpd.smtp import AuthResult, LoginPassword

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)

    def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> Any:
        ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
            b"bot",
            b"s3cret-pw",
        )
        return AuthResult(success=ok, handled=ok)  # a failure: the server sends the 535

    port = free_port()
    options: dict[str, Any] = {
        "authenticator": authenticator,
        "auth_required": True,
        # smtplib falls back from PLAIN to LOGIN, which aiosmtpd answers differently
        "auth_exclude_mechanism": ["LOGIN"],
    }
    if implicit:  # aiosmtpd cannot tell this session is TLS, so it must be told
        options |= {"ssl_context": context, "auth_require_tls": False}
    else:
        options |= {"tls_context": context, "require_starttls": True}
    controller = Controller(handler, hostname="127.0.0.1", port=port, **options)
    controller.start()
    return controller, port


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
@pytest.mark.parametrize("security", ["starttls", "ssl"])
def test_tls_and_login(ws: Path, certificate: tuple[Path, Path], security: str) -> None:
    cert, key = certificate
    handler = Handler()
    controller, port = tls_server(handler, cert, key, implicit=security == "ssl")
    try:
        login = {
            "CHARGEBACK_SMTP_SECURITY": security,
            "CHARGEBACK_SMTP_USER": "bot",
            "CHARGEBACK_SMTP_RETRIES": "0",
        }
        # the server's certificate is not trusted yet: a clear error, once
        code, output = send(ws, port, **login, CHARGEBACK_SMTP_PASSWORD="s3cret-pw")
        assert code == 1 and "not trusted" in output and "ca_file" in output
        assert handler.messages == []
        trusted = {**login, "CHARGEBACK_SMTP_CA_FILE": str(cert)}
        code, output = send(ws, port, **trusted, CHARGEBACK_SMTP_PASSWORD="wrong")
        assert code == 1 and "login refused" in output and "wrong" not in output
        code, output = send(ws, port, **trusted, CHARGEBACK_SMTP_PASSWORD="s3cret-pw")
        assert code == 0, output
        assert len(handler.messages) == 3
        assert "s3cret-pw" not in output
        assert "s3cret-pw" not in (ws / "out" / "deliveries.jsonl").read_text()
    finally:
        controller.stop()


def test_accepted_recipients_are_recorded_before_the_others_are_retried(
    ws: Path, smtp: tuple[Handler, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    from chargeback.report import ReportOptions
    from chargeback.run import run_send

    handler, port = smtp
    handler.greylist = {"cfo@example.com"}
    for key, value in env(port, CHARGEBACK_SMTP_RETRIES="1").items():
        monkeypatch.setenv(key, value)
    seen: list[set[str]] = []

    def sleep(_: float) -> None:  # a kill -9 during this pause must not lose bill@
        seen.append({e["recipient"] for e in log(ws)})

    result = run_send(ReportOptions(workspace=ws, period="2026-03", out=ws / "out"), sleep=sleep)
    assert seen and "bill@example.com" in seen[0]
    assert [(d, r) for d, r, _ in result.undelivered] == [
        ("2026-03/departments/billing", "cfo@example.com")
    ]


def test_a_timeout_while_the_server_takes_the_message_is_not_resent(
    ws: Path, smtp: tuple[Handler, int]
) -> None:
    handler, port = smtp
    handler.slow = 2.5
    code, output = send(ws, port, CHARGEBACK_SMTP_TIMEOUT="1", CHARGEBACK_SMTP_RETRIES="2")
    assert code == 1 and "may have been delivered" in output
    assert handler.received == 3  # once per message: never retried on its own
    assert {e["status"] for e in log(ws)} == {"uncertain"}
    handler.slow = 0
    code, output = send(ws, port)
    assert code == 0 and handler.received == 3  # recorded, so not sent twice


def test_a_record_cut_short_by_a_crash_does_not_block_later_runs(
    ws: Path, smtp: tuple[Handler, int]
) -> None:
    handler, port = smtp
    (ws / "out").mkdir()
    (ws / "out" / "deliveries.jsonl").write_text('{"document": "2026-03/summary", "recip')
    assert send(ws, port)[0] == 0
    assert len(handler.messages) == 3  # the torn record counted for nothing
    code, output = send(ws, port)
    assert code == 0, output
    assert len(handler.messages) == 3
    assert len((ws / "out/deliveries.jsonl").read_text().splitlines()) == 4  # fragment dropped


@pytest.mark.parametrize(
    ("name", "value"),
    [("TIMEOUT", "0"), ("TIMEOUT", "nan"), ("PORT", "99999"), ("RETRIES", "x")],
)
def test_bad_mail_settings_name_where_they_came_from(
    ws: Path, smtp: tuple[Handler, int], name: str, value: str
) -> None:
    _, port = smtp
    code, output = send(ws, port, **{f"CHARGEBACK_SMTP_{name}": value})
    assert code == 1 and f"CHARGEBACK_SMTP_{name}" in output and "Traceback" not in output


def test_line_breaks_in_names_do_not_reach_the_headers(ws: Path, smtp: tuple[Handler, int]) -> None:
    handler, port = smtp
    rules = ws / "rules" / "org.yaml"
    rules.write_text(
        rules.read_text().replace("name: Product,", 'name: "Product\\nBcc: x@evil.example",')
    )
    code, output = send(ws, port)
    # refused where it is written (issue 12): a name is one line of text
    assert code == 1, output
    assert "org.yaml:" in output and "Traceback" not in output
    assert handler.envelopes == []
