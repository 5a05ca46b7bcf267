"""Fuzzing `chargeback report` with hostile workspaces and contact tables (issue 12, part 3).

The inputs (tests/fuzz_inputs.py) start from a known-good workspace and break a
few of its YAML values, files or contact cells. Two properties hold for every one:

1. The run never crashes: no exception but SystemExit (the run goes with
   CHARGEBACK_DEBUG=1, so what only console.SafeGroup's last net would catch
   shows as the crash it is), no traceback, exit 0 or 1; on 1 the message names
   a file of the workspace (or a path in it that a setting names), and the
   output folder is exactly as it was (absent, or a previous run's files
   untouched), with no temporary left anywhere in the workspace.
2. A run that succeeds conserves cost to the cent: in every period the ledger's
   lines add up to the period's total, and that total is the sum over the
   period's contacts of their price, computed here from the contacts file and
   the rates alone (SPEC 3: per_contact + per_minute x handle_seconds / 60, or
   the pool; summed exactly, rounded half-up to cents once per period).

CI runs a fixed, modest set of examples (derandomized, no example database).
Explore with many more, freshly random on each run:

    FUZZ_EXAMPLES=2000 .venv/bin/python -m pytest tests/test_fuzz.py -x -p no:cacheprovider

(`FUZZ_SEED=<int>` repeats one such exploration.) A failure prints the case as
the changes made to the good workspace, and the contacts file's bytes.

Known, still open classes (KNOWN below) are tolerated by the properties, each
with a strict xfail test that reproduces it: when one is fixed its xfail passes,
the suite fails, and the entry is to be removed.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import signal
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation, localcontext
from fractions import Fraction
from functools import cache
from pathlib import Path
from types import FrameType
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml
from fuzz_inputs import (
    Case,
    base_docs,
    extreme_but_valid,
    good_table,
    hostile_contact_workspaces,
    hostile_workspaces,
    render,
    write_case,
)
from hostile import GOOD_CONTACTS, GOOD_RULES, TEMP_NAME, run, snapshot, workspace
from hypothesis import HealthCheck, event, given, seed, settings
from typer.testing import Result

from chargeback.engine.ledger import half_up, largest_remainder

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "0")) or None
FUZZ = settings(
    max_examples=EXAMPLES or 60,
    deadline=None,
    derandomize=EXAMPLES is None,  # CI: the same examples on every run
    database=None,
    print_blob=True,
    suppress_health_check=list(HealthCheck),
)
RUN_SECONDS = 60  # longer is a hang (a run takes about 0.1 s)

# Classes of failure found by this fuzzing and still open, tolerated by the properties
# (each has a strict xfail reproducer at the end of this module).
KNOWN = {
    "handle-microseconds": "chargeback/data reads handle_seconds as a float and keeps whole "
    "microseconds (tables.py: hs_us), so a handle time with more than 6 decimals is priced "
    "off SPEC 3's exact per_minute x handle_seconds / 60",
    "leap-second-next-day": "chargeback/data reads a leap second (23:59:60) as the next "
    "day's 00:00:00, so a contact at 2026-03-31T23:59:60 falls in April, not on its own "
    "date in March (SPEC 2: the local calendar date decides the period)",
}


def fuzz_seed(test: Any) -> Any:
    return seed(int(os.environ["FUZZ_SEED"]))(test) if "FUZZ_SEED" in os.environ else test


class Hang(BaseException):
    """Raised in the run when it outlives RUN_SECONDS (a BaseException: nothing swallows it)."""


@contextmanager
def time_limit(seconds: int) -> Iterator[None]:
    def fire(signum: int, frame: FrameType | None) -> None:
        raise Hang(f"the run took more than {seconds} s")

    old = signal.signal(signal.SIGALRM, fire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def report(root: Path) -> Result:
    """The CLI run, with CHARGEBACK_DEBUG=1 so that an exception no check caught comes
    out of console.SafeGroup's last net as the crash it is, with its traceback."""
    before = os.environ.get("CHARGEBACK_DEBUG")
    os.environ["CHARGEBACK_DEBUG"] = "1"
    try:
        with time_limit(RUN_SECONDS):
            args = ["report", "--workspace", str(root), "--out", str(root / "out")]
            return run([*args, "--format", "csv,json"])
    finally:
        if before is None:
            del os.environ["CHARGEBACK_DEBUG"]
        else:
            os.environ["CHARGEBACK_DEBUG"] = before


# ------------------------------------------------------------------------ the oracle
#
# Independent of chargeback: PyYAML's BaseLoader (every scalar as its text, so a
# number is read from its digits), the csv module, datetime and zoneinfo.

# What the engine's trimming removes: Unicode White_Space (str.strip also takes \x1c-\x1f)
WHITE_SPACE = "\t\n\x0b\x0c\r \x85\xa0\u1680" + "".join(map(chr, range(0x2000, 0x200B)))
WHITE_SPACE += "\u2028\u2029\u202f\u205f\u3000"
# SPEC 2: ISO 8601, a space may stand for the T, with an offset or none. What the
# engine also reads, and so does this: a year's sign (ISO 8601's expanded years),
# fields without their leading zero (2026-3-1T9:5:0) and blanks before the offset,
# none of which can be misread.
STAMP = re.compile(
    r"\+?(\d{4})-(\d\d?)-(\d\d?)"
    r"(?:[T ](\d\d?):(\d\d?)(?::(\d\d?)(?:\.(\d+))?)?[ \t]*(Z|z|[+-]\d\d(?::?\d\d)?)?)?"
)
US = 10**6  # microseconds in a second


class OracleCannot(Exception):
    """The oracle does not read this input (damaged bytes, a form it does not know)."""


def text_of(node: Any) -> str | None:
    """A YAML scalar as text, null as None."""
    if node is None or node in ("", "~", "null", "Null", "NULL"):
        return None
    if not isinstance(node, str):
        raise OracleCannot(f"not a scalar: {node!r}")
    return node


def number(node: Any) -> Fraction:
    text = text_of(node)
    if text is None:
        return Fraction(0)
    try:
        return Fraction(Decimal(text.strip()))
    except (InvalidOperation, ValueError) as exc:
        raise OracleCannot(f"not a number: {text!r}") from exc


def read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=yaml.BaseLoader)
    except (yaml.YAMLError, UnicodeDecodeError, OSError) as exc:
        raise OracleCannot(str(exc)) from exc
    return data if isinstance(data, dict) else {}


def local_date(stamp: str, tz: ZoneInfo) -> tuple[date, date]:
    """The contact's calendar date in the workspace's timezone (SPEC 2); and the date
    the engine gives it, which differs for a leap second (KNOWN 'leap-second-next-day')."""
    m = STAMP.fullmatch(stamp)
    if not m:
        raise OracleCannot(f"timestamp {stamp!r}")
    y, mo, d, hh, mm, ss, frac, off = m.groups()
    micro = int((frac or "0")[:6].ljust(6, "0"))
    leap = int(ss or 0) == 60  # 23:59:60 is the last second of its own day
    second = 59 if leap else int(ss or 0)
    naive = datetime(int(y), int(mo), int(d), int(hh or 0), int(mm or 0), second, micro)
    moments = [naive, naive + timedelta(seconds=1) if leap else naive]
    if off is None:
        return moments[0].date(), moments[1].date()
    digits = "0000" if off in ("Z", "z") else off[1:].replace(":", "")
    delta = timedelta(hours=int(digits[:2]), minutes=int(digits[2:4] or 0))
    offset = timezone(-delta if off[0] == "-" else delta)
    spec, engine = (t.replace(tzinfo=offset).astimezone(tz).date() for t in moments)
    return spec, engine


def in_microseconds(hs: Fraction, text: str) -> list[Fraction]:
    """What the engine may make of a handle time (KNOWN 'handle-microseconds'): the
    float's microseconds, rounded half to even or half away from zero."""
    scaled = float(text) * US
    away = int(abs(scaled) + 0.5) * (1 if scaled >= 0 else -1)
    return [Fraction(round(scaled), US), Fraction(away, US)]


def oracle_totals(root: Path) -> tuple[dict[str, tuple[int, list[Fraction]]], set[str]]:
    """Per period: the number of contacts, and their exact cost (SPEC 3); after it,
    the costs with the handle times in whole microseconds where that changes them.
    And the periods a leap second may move a contact between."""
    settings_doc: dict[str, Any] = {}
    costs: dict[str, Any] | None = None
    for path in sorted((root / "rules").rglob("*.y*ml")):
        if path.is_file():
            doc = read_yaml(path)
            costs = doc.get("costs", costs)
            settings_doc.update(doc.get("settings") or {})
    settings_doc.update(read_yaml(root / "chargeback.yaml"))
    if not isinstance(costs, dict):
        raise OracleCannot("no costs")
    tz = ZoneInfo(text_of(settings_doc.get("timezone")) or "UTC")
    rename = {v: k for k, v in (settings_doc.get("columns") or {}).items()}
    channel_map = ((settings_doc.get("values") or {}).get("channel")) or {}  # SPEC 1's values:
    spec = text_of(settings_doc.get("contacts")) or "contacts.csv"  # SPEC 1's default
    try:
        data = (root / spec.strip()).read_bytes()
        rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))
    except (csv.Error, OSError, UnicodeDecodeError) as exc:
        raise OracleCannot(str(exc)) from exc
    header = [rename.get(h.strip(WHITE_SPACE), h.strip(WHITE_SPACE)) for h in rows[0]]

    members: dict[str, list[tuple[str, list[Fraction]]]] = {}  # period -> (channel, hs)
    shifted: set[str] = set()
    for row in rows[1:]:
        if not any(c.strip(WHITE_SPACE) for c in row):  # a blank line, or only commas
            continue
        cell = {h: row[i].strip(WHITE_SPACE) if i < len(row) else "" for i, h in enumerate(header)}
        hs_text = cell.get("handle_seconds", "")
        hs = Fraction(Decimal(hs_text)) if hs_text else Fraction(0)
        variants = [hs]
        if (hs * US).denominator != 1:
            variants += in_microseconds(hs, hs_text)
        day, engine_day = local_date(cell["started_at"], tz)
        if (day.year, day.month) != (engine_day.year, engine_day.month):
            shifted |= {f"{t.year:04d}-{t.month:02d}" for t in (day, engine_day)}
        channel = channel_map.get(cell["channel"], cell["channel"])
        members.setdefault(f"{day.year:04d}-{day.month:02d}", []).append((channel, variants))

    out: dict[str, tuple[int, list[Fraction]]] = {}
    method = text_of(costs.get("method")) or "rates"
    for period, contacts in members.items():
        if method == "pool":  # the whole pool, however it is spread (SPEC 3)
            pool = costs["pool"]
            if text_of(pool.get("monthly")) is not None:
                out[period] = (len(contacts), [number(pool["monthly"])])
            else:
                out[period] = (len(contacts), [number((pool.get("by_period") or {}).get(period))])
            continue
        channels = costs.get("channels") or {}
        totals = [Fraction(0)] * 3
        for channel, variants in contacts:
            rate = (channels[channel] if channel in channels else costs.get("default")) or {}
            per_contact, per_minute = (
                number(rate.get("per_contact")),
                number(rate.get("per_minute")),
            )
            for k in range(3):
                hs = variants[min(k, len(variants) - 1)]
                totals[k] += per_contact + per_minute * hs / 60
        out[period] = (len(contacts), list(dict.fromkeys(totals)))
    return out, shifted


def cents(value: Fraction) -> Decimal:
    """Half-up to cents (a cost is never negative)."""
    return Decimal(f"{int(value * 100 + Fraction(1, 2))}E-2")


# ------------------------------------------------------------------------ the checks


def known(name: str) -> None:
    """A failure of a KNOWN class: counted (hypothesis' statistics), not failed."""
    assert name in KNOWN
    event(f"known: {name}")


def known_crash(exc: BaseException) -> str | None:
    """The KNOWN class a crash belongs to, if any."""
    del exc  # none open now; a new class gets its test here (see KNOWN)
    return None


@cache
def previous_output() -> dict[str, bytes]:
    """A good run's output folder, for the cases that run over an existing one."""
    rows = [
        ["p1", "2025-12-30T10:00:00", "phone", "billing.late_fee", "", "", "60", "k1", "", "", ""],
        ["p2", "2026-03-02T10:00:00", "chat", "tech.login", "app", "", "30", "k2", "sale", "5", ""],
    ]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        table = good_table(rows)
        write_case(root, Case(render(base_docs(), table), table, []))
        result = report(root)
        assert result.exit_code == 0, result.output
        return snapshot(root / "out")


def walks_outside(root: Path) -> bool:
    """Contacts or orders naming a folder outside the workspace (say `/`): the run
    would read the whole disk. Not a case for a test that runs it."""
    try:
        doc = yaml.load((root / "chargeback.yaml").read_text("utf-8"), Loader=yaml.BaseLoader)
    except Exception:  # unreadable: the run must refuse it
        return False
    for key in ("contacts", "orders") if isinstance(doc, dict) else ():
        spec = doc.get(key)
        if not isinstance(spec, str) or not spec.strip():
            continue
        try:
            target = (root / Path(spec.strip()).expanduser()).resolve()
            if target.is_dir() and not target.is_relative_to(root.resolve().parent):
                return True
        except (OSError, ValueError):  # too long a name, a NUL: the run must refuse it
            continue
    return False


def check_run(case: Case) -> None:
    """Property 1 for every case; property 2 for those that succeed."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "ws"
        write_case(root, case)
        if walks_outside(root):
            return
        if case.existing_out:
            for name, data in previous_output().items():
                (root / "out" / name).parent.mkdir(parents=True, exist_ok=True)
                (root / "out" / name).write_bytes(data)
        before = snapshot(root / "out")
        result = report(root)
        text = result.output + (result.stderr if result.stderr_bytes is not None else "")
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            crash = known_crash(result.exception)
            if crash is not None:
                return known(crash)
            raise AssertionError(f"crashed: {result.exception!r}\n{text[-3000:]}") from (
                result.exception
            )
        assert "Traceback" not in text, text[-3000:]
        assert "unexpected internal error" not in text, text[-3000:]
        assert result.exit_code in (0, 1), f"exit {result.exit_code}:\n{text[-3000:]}"
        leftovers = [p for p in root.rglob("*") if TEMP_NAME.search(p.name)]
        assert not leftovers, f"temporaries left behind: {leftovers}"
        if result.exit_code == 1:
            files = {p.name for p in root.rglob("*") if "out" not in p.relative_to(root).parts}
            named = [n for n in files if n in text] or str(root) in text
            assert named, f"no file named in:\n{text[-3000:]}"
            after = snapshot(root / "out")
            assert after == before, f"out changed: {sorted(set(after) ^ set(before))}"
            return
        check_conservation(root, case)


def check_conservation(root: Path, case: Case) -> None:
    out = root / "out"
    rows = list(csv.DictReader(io.StringIO((out / "ledger.csv").read_text("utf-8"))))
    periods = json.loads((out / "ledger.json").read_text("utf-8"))["periods"]
    try:
        expected, shifted = oracle_totals(root)
    except OracleCannot:
        if case.table.clean:  # a file written cleanly, which the oracle must read
            raise
        expected, shifted = {}, set()
    missing = set(expected) - set(periods)
    if missing and missing <= shifted:
        known("leap-second-next-day")
    else:
        assert not missing, (sorted(expected), sorted(periods))
    for period, figures in periods.items():
        lines = [Decimal(r["cost"]) for r in rows if r["period"] == period]
        assert all(c >= 0 for c in lines), (period, lines)
        assert sum(lines, Decimal(0)) == Decimal(figures["cost"]), (period, lines, figures)
        if period not in expected:
            continue
        n, totals = expected[period]
        got = Decimal(figures["cost"])
        if period in shifted and (figures["contacts"] != n or got != cents(totals[0])):
            known("leap-second-next-day")
            continue
        assert figures["contacts"] == n, (period, figures, n)
        if got != cents(totals[0]) and got in [cents(t) for t in totals[1:]]:
            known("handle-microseconds")
            continue
        assert got == cents(totals[0]), (period, figures, [cents(t) for t in totals])


# ------------------------------------------------------------------------ properties


@fuzz_seed
@FUZZ
@given(hostile_workspaces())
def test_hostile_yaml_is_refused_cleanly_or_adds_up(case: Case) -> None:
    check_run(case)


@fuzz_seed
@FUZZ
@given(hostile_contact_workspaces())
def test_hostile_contacts_are_refused_cleanly_or_add_up(case: Case) -> None:
    check_run(case)


@fuzz_seed
@FUZZ
@given(extreme_but_valid())
def test_extreme_but_valid_inputs_conserve_cost_to_the_cent(case: Case) -> None:
    check_run(case)


# ------------------------------------------------------- what the fuzzing has found


def test_ledger_rounding_is_exact_past_the_decimal_context() -> None:
    """Cents are placed in integers and money built from its digits: the default
    decimal context (28 digits) once rounded a large total, and largest_remainder
    then had cents it could not place (an ArithmeticError)."""
    with localcontext() as ctx:
        ctx.prec = 6  # any context: the ledger's figures must not depend on it
        assert half_up(Fraction(10**30) + Fraction(5, 1000), 2) == Decimal(
            "1000000000000000000000000000000.01"
        )
        assert str(half_up(Fraction(-1, 200), 2)) == "-0.01"
    amounts = [
        (("a", "x"), Fraction(10**29, 3)),
        (("unattributed", "unattributed"), Fraction(10**29, 3) * 2),
    ]
    placed = largest_remainder(amounts, 10**31)
    assert sum(placed.values()) == 10**31


def test_a_month_priced_past_what_a_ledger_carries_is_refused_at_the_costs(tmp_path: Path) -> None:
    rules = GOOD_RULES.replace("per_minute: 1.05", "per_minute: 900000000000000")
    root = workspace(tmp_path / "ws", rules=rules)
    result = report(root)
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "main.yaml:11" in result.output and "2026-03" in result.output, result.output
    assert not (root / "out").exists()


@pytest.mark.xfail(strict=True, reason=KNOWN["handle-microseconds"])
def test_known_handle_time_is_priced_exactly_past_microseconds(tmp_path: Path) -> None:
    """0.4999996 s at 0.60 a minute is 0.004999996: 0.00 (SPEC 3). In whole
    microseconds it is 0.5 s, 0.005, and the ledger says 0.01."""
    rules = GOOD_RULES.replace("per_contact: 0.40, per_minute: 1.05", "per_minute: 0.60")
    contacts = GOOD_CONTACTS.splitlines()[0] + "\nc1,2026-03-02T09:00:00,phone,x,0.4999996\n"
    root = workspace(tmp_path / "ws", rules=rules, contacts=contacts)
    result = report(root)
    assert result.exit_code == 0, result.output
    ledger = json.loads((root / "out" / "ledger.json").read_text())
    assert ledger["periods"]["2026-03"]["cost"] == "0.00"


def test_header_not_utf8_with_a_short_row_is_a_located_error(tmp_path: Path) -> None:
    contacts = b"contact_id,started_at,channel,x\xff\nc1,2026-03-02T09:00:00,phone\n"
    root = workspace(tmp_path / "ws", contacts=contacts)
    result = report(root)
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert result.exit_code == 1 and "contacts.csv:1" in result.output, result.output


@pytest.mark.xfail(strict=True, reason=KNOWN["leap-second-next-day"])
def test_known_leap_second_counts_on_its_own_day(tmp_path: Path) -> None:
    contacts = b"contact_id,started_at,channel\nc1,2026-03-31T23:59:60,phone\n"
    root = workspace(tmp_path / "ws", contacts=contacts)
    result = report(root)
    assert result.exit_code == 0, result.output
    ledger = json.loads((root / "out" / "ledger.json").read_text())
    assert list(ledger["periods"]) == ["2026-03"]
