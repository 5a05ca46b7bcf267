"""Differential test: a platform-shaped export, mapped, bills exactly as the canonical data.

A canonical workspace and contacts file (the random and fixed scenarios of
tests/test_differential.py) are reshaped the way a help desk exports them: its
own headers, tags joined by spaces, its channel words (one channel left as it
is, since `values:` leaves unlisted words alone), some tags in its spelling, and
its timestamp layout (local wall-clock time, or UTC with an offset). The
platform-shaped workspace says how to read it with `columns:`, `tags_separator`,
`values:` and `timestamp_format`. Both run through `chargeback report --format
csv`; the two ledger.csv files must be identical byte for byte, and both equal
to the independent implementation (tests/oracle.py) run on the canonical data.
"""

from __future__ import annotations

import csv
import random
import shutil
import tempfile
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from oracle import LEDGER_COLUMNS, oracle_ledger, split_tags
from test_differential import (
    CANONICAL_HEADER,
    EXACT_COLUMNS,
    TOLERANT_COLUMNS,
    Scenario,
    fixed_scenario,
    read_ledger,
    run_engine,
    scenarios,
    unpriced,
    write_scenario,
)

HEADERS = {
    "contact_id": "Ticket ID",
    "started_at": "Created at",
    "channel": "Via",
    "reason": "Contact reason",
    "tags": "Tags",
    "text": "Subject",
    "handle_seconds": "Handle time (s)",
    "customer_id": "Requester id",
    "product": "Product line",
    "region": "Region name",
    "outcome": "Resolution",
    "revenue": "Revenue (USD)",
    "plan": "Plan Name",  # an extra column, renamed too: rules' `fields` use `plan`
}
CHANNEL_WORDS = {  # sms is left as it is: a value values: does not list stays
    "phone": "Phone Call (Incoming)",
    "chat": "Web Widget",
    "email": "Mail",
    "social": "Facebook Post",
}
TAG_WORDS = {"fee-waived": "fee_waived", "vip": "VIP"}
LAYOUTS = {  # the platform's timestamp layout, and whether it writes local time or UTC
    "day-first": ("%d/%m/%Y %H:%M:%S", "local"),
    "us-clock": ("%m/%d/%Y %I:%M:%S %p", "local"),
    "utc-offset": ("%Y-%m-%d %H:%M:%S %z", "utc"),
}


def platform_stamp(stamp: str, tz: ZoneInfo, layout: str) -> str:
    """The same moment in the platform's layout (naive stamps are wall-clock time in tz)."""
    fmt, kind = LAYOUTS[layout]
    moment = datetime.fromisoformat(stamp.strip())
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=tz)
    moment = moment.astimezone(tz) if kind == "local" else moment.astimezone(ZoneInfo("UTC"))
    return moment.strftime(fmt)


def reshape(sc: Scenario, canon_ws: Path, root: Path, layout: str, seed: int) -> tuple[Path, Path]:
    """The platform-shaped twin of a written canonical scenario: its workspace and export."""
    ws = root / "platform" / "ws"
    shutil.copytree(canon_ws / "rules", ws / "rules")
    doc: dict[str, Any] = dict(sc.settings or {})
    tz = ZoneInfo(doc.get("timezone", "UTC"))
    doc["columns"] = HEADERS
    doc["tags_separator"] = " "
    doc["timestamp_format"] = LAYOUTS[layout][0]
    doc["values"] = {
        "channel": {word: channel for channel, word in CHANNEL_WORDS.items()},
        "tags": {word: tag for tag, word in TAG_WORDS.items()},
    }
    (ws / "chargeback.yaml").write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    rnd = random.Random(seed)
    export = root / "platform" / "export.csv"
    with export.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow([HEADERS[c] for c in CANONICAL_HEADER])
        for contact in sc.contacts:
            cells = dict(contact)
            cells["started_at"] = platform_stamp(contact["started_at"], tz, layout)
            cells["channel"] = CHANNEL_WORDS.get(contact["channel"], contact["channel"])
            tags = split_tags(contact.get("tags") or None) or []
            joiner = rnd.choice([" ", " ", "  "])
            cells["tags"] = joiner.join(TAG_WORDS.get(t, t) for t in tags)
            writer.writerow([cells.get(c, "") for c in CANONICAL_HEADER])
    return ws, export


def differences(actual: list[dict[str, str]], expected: list[dict[str, str]]) -> list[str]:
    """Where a ledger departs from the oracle's (SPEC 4: counts within one last unit)."""
    keys_a = [(r["period"], r["department_id"], r["decision_id"]) for r in actual]
    keys_e = [(r["period"], r["department_id"], r["decision_id"]) for r in expected]
    if keys_a != keys_e:
        return [f"row keys differ:\n engine {keys_a}\n oracle {keys_e}"]
    out = []
    for key, a, e in zip(keys_a, actual, expected, strict=True):
        out += [f"{key} {c}: {a[c]!r} != {e[c]!r}" for c in EXACT_COLUMNS if a[c] != e[c]]
        out += [
            f"{key} {c}: {a[c]!r} vs {e[c]!r}"
            for c, unit in TOLERANT_COLUMNS.items()
            if abs(Decimal(a[c]) - Decimal(e[c])) > unit
        ]
    return out


def compare(sc: Scenario, root: Path, layout: str, seed: int) -> None:
    canon_ws, canon_csv = write_scenario(sc, root / "canonical")
    canon = run_engine(canon_ws, canon_csv, root / "canonical" / "out")
    ws, export = reshape(sc, canon_ws, root, layout, seed)
    shaped = run_engine(ws, export, root / "platform" / "out")
    missing = unpriced(sc)
    if missing:  # both refuse, naming the channels by your words (the mapped ones)
        assert canon.returncode == shaped.returncode == 1, shaped.stderr
        for channel in missing:
            assert f"channel '{channel}' has no rate" in shaped.stderr, shaped.stderr
        return
    assert canon.returncode == 0, canon.stderr[-2000:]
    assert shaped.returncode == 0, shaped.stderr[-2000:]
    canon_bytes = (root / "canonical" / "out" / "ledger.csv").read_bytes()
    shaped_bytes = (root / "platform" / "out" / "ledger.csv").read_bytes()
    header, actual = read_ledger(root / "platform" / "out" / "ledger.csv")
    assert header == LEDGER_COLUMNS
    problems = differences(actual, oracle_ledger(canon_ws, canon_csv))
    if shaped_bytes != canon_bytes:
        problems.append(f"ledger.csv differs:\ncanonical:\n{canon_bytes.decode()}")
        problems.append(f"shaped:\n{shaped_bytes.decode()}")
    if problems:
        kept = Path(tempfile.gettempdir()) / "chargeback-exports-differential"
        shutil.rmtree(kept, ignore_errors=True)
        shutil.copytree(root, kept, ignore=shutil.ignore_patterns("out"))
        pytest.fail("\n".join([*problems, f"workspaces kept in {kept}"]), pytrace=False)


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(sc=scenarios())
def test_a_mapped_export_bills_as_the_canonical_data(sc: Scenario) -> None:
    seed = len(sc.contacts)
    layout = sorted(LAYOUTS)[seed % len(LAYOUTS)]
    with tempfile.TemporaryDirectory() as tmp:
        compare(sc, Path(tmp), layout, seed)


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
@pytest.mark.parametrize(("overlap", "method"), [("split", "rates"), ("priority", "pool")])
def test_fixed_scenarios_bill_the_same_from_the_export(
    tmp_path: Path, layout: str, overlap: str, method: str
) -> None:
    compare(fixed_scenario(7, overlap, method, {}), tmp_path, layout, 7)
