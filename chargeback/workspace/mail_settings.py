"""`smtp:` in chargeback.yaml, each value checked at its line when the workspace loads.

The mailer (chargeback.operations.smtp) merges these with CHARGEBACK_SMTP_* from
the environment and checks the merged values again; checking the file's own
values here names the line to fix, and refuses a password, which is only ever
read from the environment (SPEC 8).
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from chargeback.workspace.fields import BadValue, Item, as_text, suggest
from chargeback.workspace.limits import host_problem, mailbox_problem, shown
from chargeback.workspace.model import SMTP_KEYS
from chargeback.workspace.yamlio import YList, YMap

SECURITY = ("starttls", "ssl", "none", "auto")
_SECRET = re.compile(r"pass|secret|token|credential", re.IGNORECASE)
# the same ranges as the mailer's own check of the merged settings
_NUMBERS: dict[str, tuple[Decimal, Decimal, bool]] = {
    "port": (Decimal(1), Decimal(65535), True),
    "timeout": (Decimal("0.1"), Decimal(3600), False),
    "retries": (Decimal(0), Decimal(20), True),
    "retry_delay_seconds": (Decimal(0), Decimal(600), False),
}


def check_smtp(item: Item) -> tuple[tuple[str, str], ...]:
    """The smtp values as text; a problem at the line of each one that cannot be used as it is."""
    good: list[tuple[str, str]] = []
    for key, value in item.node.items():
        name = str(key)
        if _SECRET.search(name):
            item.error(
                key,
                f"'{shown(name)}': the mail password is never kept in a file: set the "
                "environment variable CHARGEBACK_SMTP_PASSWORD instead",
            )
        elif name not in SMTP_KEYS:
            item.error(
                key,
                f"unknown smtp setting '{shown(name)}'{suggest(name, SMTP_KEYS)}"
                f" (known: {', '.join(SMTP_KEYS)})",
            )
        elif value is None or isinstance(value, YMap | YList):
            item.error(key, f"'{name}' must be a single value")
        else:
            try:
                good.append((name, _check(name, value)))
            except BadValue as exc:
                item.error(key, f"{name}: {exc}")
    return tuple(good)


def _check(name: str, value: Any) -> str:
    if name in _NUMBERS:
        low, high, whole = _NUMBERS[name]
        if isinstance(value, bool) or not isinstance(value, int | Decimal):
            raise BadValue(f"'{shown(value)}' must be a number")
        if whole and not isinstance(value, int):
            raise BadValue(f"'{shown(value)}' must be a whole number")
        if not low <= value <= high:
            raise BadValue(f"must be from {low} to {high} (got {shown(value)})")
        return str(value)
    text = as_text(value, 253)
    if name == "host":
        problem = host_problem(text)
        if problem:
            raise BadValue(f"'{shown(text)}' {problem}")
    elif name == "from":
        problem = mailbox_problem(text)
        if problem:
            raise BadValue(f"'{shown(text)}' {problem}")
    elif name == "security" and text.lower() not in SECURITY:
        raise BadValue(f"'{shown(text)}' must be one of starttls, ssl, none")
    elif name == "user" and (not text or any(ch.isspace() for ch in text)):
        raise BadValue("must be a login name without blanks")
    return text
