"""Mail each department its statement, once, and survive a flaky mail server.

- Idempotent: every recipient a server accepts is appended to
  `<out>/deliveries.jsonl` (flushed and fsynced) the moment the server says
  yes. A later run sends only what has no record (`--resend` sends all again),
  so a run killed half-way and started again completes the rest.
- When the server cannot be reached at all, the rest are not tried one by
  one: they are reported undelivered at once.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import make_msgid
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from chargeback.engine.dates import shift_month
from chargeback.errors import ChargebackError, Problem
from chargeback.operations.lock import locked
from chargeback.operations.messages import Outgoing, has_charges, outgoing
from chargeback.operations.smtp import configured_sender, deliver, smtp_settings
from chargeback.report import RunResult

LOG_NAME = "deliveries.jsonl"


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
    idle: str = ""  # why nothing was (or, dry, would be) sent, when nothing was


def why_nothing(result: RunResult, messages: list[Outgoing], send: SendResult) -> str:
    """Why a send has nothing to send, in words a newcomer can act on; "" when it has."""
    if send.sent or send.written or send.undelivered:
        return ""
    if messages:
        return "every message was delivered before (--resend sends them again)"
    period = send.period
    lines = result.ledger.lines_for(period)
    charged = [
        d.id
        for d in result.workspace.departments
        if has_charges([ln for ln in lines if ln.department_id == d.id])
    ]
    if not charged:
        why = f"no department has charges in {period}"
    else:
        why = (
            f"no department with charges has recipients ({', '.join(charged)}: add "
            "`recipients:` to the department in its rules file)"
        )
    return why + ", and chargeback.yaml has no `summary_recipients:` for the executive summary"


def last_period(timezone: str, now: datetime | None = None) -> str:
    """The calendar month before the current one, in the workspace's time zone."""
    today = (now or datetime.now(UTC)).astimezone(ZoneInfo(timezone)).date()
    return shift_month(f"{today:%Y-%m}", -1)


def send_period(
    result: RunResult,
    dry_run: bool = False,
    resend: bool = False,
    environ: Mapping[str, str] = os.environ,
    sleep: Callable[[float], None] = time.sleep,
) -> SendResult:
    """Mail what is missing of a rendered period: each recipient at most once."""
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
            # one mailbox once, however often (or in whatever case) the YAML lists it
            first: dict[str, str] = {}
            for rcpt in out.recipients:
                first.setdefault(rcpt.lower(), rcpt)
            for rcpt in first.values():
                before = log.delivered(out.key, rcpt)
                if before and not resend:
                    send.already.append((out.key, rcpt))
                    if before.get("figures_sha256") not in (None, out.figures_hash):
                        send.warnings.append(
                            f"the figures of {out.key} changed since it was sent to {rcpt} on "
                            f"{str(before.get('delivered_at', '?'))[:10]}; not sent again "
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
                sender = configured_sender(ws, environ)
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
    send.idle = why_nothing(result, messages, send)
    return send
