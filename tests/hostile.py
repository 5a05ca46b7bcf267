"""The bad-input matrix's harness (issue 12): one way to refuse, checked the same way.

Every hostile case runs the CLI through Typer's runner and must end with:
- exit code 1 (2 for a wrong command line), raised as a clean exit, never a crash;
- no "Traceback" anywhere in what was printed;
- a message that names the place (a file, file:line, row, column, option);
- the output folder exactly as it was (a file already in it is untouched, no new
  file, no temporary left behind anywhere in the workspace).
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Sequence
from pathlib import Path

from typer.testing import CliRunner, Result

from cli import app

GOOD_RULES = """\
departments:
  - {id: billing, name: Billing, cost_center: CC-100}
decisions:
  - id: late-fee
    title: Late fee
    kind: fee
    department: billing
    effective: 2026-03-01
    revenue: {monthly: 1000.00}
costs:
  currency: USD
  method: rates
  channels:
    phone: {per_contact: 0.40, per_minute: 1.05}
    chat: {per_contact: 0.15}
  default: {per_contact: 1.00}
rules:
  - id: late-fee-calls
    decision: late-fee
    match:
      reason: ["billing.late_fee*"]
"""

GOOD_CONTACTS = """\
contact_id,started_at,channel,reason,handle_seconds
c1,2026-03-02T09:00:00,phone,billing.late_fee,300
c2,2026-03-03T10:00:00,chat,billing.late_fee,120
c3,2026-03-04T11:00:00,email,account.other,0
c4,2026-04-01T08:30:00,phone,billing.late_fee_dispute,600
"""


def workspace(
    root: Path,
    rules: str = GOOD_RULES,
    contacts: str | bytes = GOOD_CONTACTS,
    settings: str = "",
) -> Path:
    """A small good workspace (one rules file, contacts.csv, chargeback.yaml) to break."""
    (root / "rules").mkdir(parents=True, exist_ok=True)
    (root / "rules" / "main.yaml").write_text(rules, encoding="utf-8")
    target = root / "contacts.csv"
    if isinstance(contacts, bytes):
        target.write_bytes(contacts)
    else:
        target.write_text(contacts, encoding="utf-8")
    (root / "chargeback.yaml").write_text(
        "contacts: contacts.csv\n" + textwrap.dedent(settings), encoding="utf-8"
    )
    return root


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under folder (hidden ones too) with its bytes."""
    if not folder.exists():
        return {}
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def run(args: Sequence[str]) -> Result:
    return CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=True)


TEMP_NAME = re.compile(r"\.tmp-\d+|\.staging|\.partial")


def assert_refused(
    result: Result,
    place: str | re.Pattern[str],
    *,
    code: int = 1,
    untouched: tuple[Path, dict[str, bytes]] | None = None,
) -> None:
    """The run refused cleanly: exit code, no traceback, the place named, nothing written."""
    text = result.output  # stdout and stderr, as a terminal shows them
    assert result.exit_code == code, f"exit {result.exit_code}, wanted {code}:\n{text}"
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        f"crashed with {result.exception!r}:\n{text}"
    )
    assert "Traceback" not in text, text
    if isinstance(place, re.Pattern):
        assert place.search(text), f"{place.pattern!r} not in:\n{text}"
    else:
        assert place in text, f"{place!r} not in:\n{text}"
    if untouched is not None:
        folder, before = untouched
        after = snapshot(folder)
        assert after == before, f"{folder} changed: {sorted(set(after) ^ set(before))}"
        leftovers = [p for p in folder.rglob("*") if TEMP_NAME.search(p.name)]
        assert not leftovers, f"temporaries left behind: {leftovers}"
