"""Contacts in every supported shape give the same ledger (SPEC 1-2).

The reference contact set (timezone UTC unless a test says otherwise):

  id  started_at            channel reason             tags        hs    cost
  c1  2026-03-02T09:00:00   phone   billing.late_fee   fee|late    120   0.40 + 1.05 x 2 = 2.50
  c2  2026-03-15T12:00:00   chat    billing.other                  300   0.15 + 0.55 x 5 = 2.90
  c3  2026-04-01T08:00:00   phone   billing.late_fee   late         60   0.40 + 1.05     = 1.45
  c4  2026-04-20T16:30:00   email   account                       (none) 3.80 (per contact only)

The rule charges tag `late` to decision late-fee (billing, effective 2026-03-01):
  2026-03  late-fee 1 contact, 2.00 min, 2.50;  unattributed 1, 5.00 min, 2.90
  2026-04  late-fee 1 contact, 1.00 min, 1.45;  unattributed 1, 0.00 min, 3.80
"""

from __future__ import annotations

import csv
import gzip
import json
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner, Result

from cli import app

RULES = """\
departments:
  - id: billing
    name: Billing
    cost_center: CC-4100
decisions:
  - id: late-fee
    title: Late fee
    kind: fee
    department: billing
    effective: 2026-03-01
costs:
  currency: USD
  method: rates
  channels:
    phone: {per_contact: 0.40, per_minute: 1.05}
    chat: {per_contact: 0.15, per_minute: 0.55}
    email: {per_contact: 3.80}
rules:
  - id: late-tag
    decision: late-fee
    match:
      tags: [late]
"""

HEADER = ["contact_id", "started_at", "channel", "reason", "tags", "handle_seconds"]
ROWS = [
    ["c1", "2026-03-02T09:00:00", "phone", "billing.late_fee", "fee|late", "120"],
    ["c2", "2026-03-15T12:00:00", "chat", "billing.other", "", "300"],
    ["c3", "2026-04-01T08:00:00", "phone", "billing.late_fee", "late", "60"],
    ["c4", "2026-04-20T16:30:00", "email", "account", "", ""],
]

EXPECTED_LEDGER = """\
period,department_id,cost_center,decision_id,contacts,handle_minutes,cost,revenue,net
2026-03,billing,CC-4100,late-fee,1.000,2.00,2.50,0.00,-2.50
2026-03,unattributed,,unattributed,1.000,5.00,2.90,0.00,-2.90
2026-04,billing,CC-4100,late-fee,1.000,1.00,1.45,0.00,-1.45
2026-04,unattributed,,unattributed,1.000,0.00,3.80,0.00,-3.80
"""


def csv_text(header: list[str], rows: list[list[str]]) -> str:
    lines = [",".join(header)] + [",".join(row) for row in rows]
    return "\n".join(lines) + "\n"


def frame(rows: list[list[str]] = ROWS) -> pl.DataFrame:
    """The reference set with real types: numbers as numbers, blanks as nulls."""
    columns = list(zip(*rows, strict=True))
    return pl.DataFrame(
        {
            "contact_id": columns[0],
            "started_at": columns[1],
            "channel": columns[2],
            "reason": columns[3],
            "tags": [t or None for t in columns[4]],
            "handle_seconds": [float(h) if h else None for h in columns[5]],
        }
    )


@pytest.fixture
def ws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "main.yaml").write_text(RULES)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def settings(root: Path, text: str) -> None:
    (root / "chargeback.yaml").write_text(text)


def report(contacts: str, *extra: str, out: str = "out") -> Result:
    result = CliRunner().invoke(
        app, ["report", "--workspace", ".", "--contacts", contacts, "--out", out, *extra]
    )
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    assert "Traceback" not in result.output
    return result


def ledger(root: Path, out: str = "out") -> str:
    return (root / out / "ledger.csv").read_text()


def ledger_rows(root: Path, out: str = "out") -> list[dict[str, str]]:
    with (root / out / "ledger.csv").open(newline="") as handle:
        return list(csv.DictReader(handle))


def contacts_per_period(root: Path, out: str = "out") -> dict[str, int]:
    doc = json.loads((root / out / "ledger.json").read_text())
    return {p: t["contacts"] for p, t in doc["periods"].items()}


# --------------------------------------------------------------------------- formats


def write_csv(root: Path) -> str:
    (root / "contacts.csv").write_text(csv_text(HEADER, ROWS))
    return "contacts.csv"


def write_csv_gz(root: Path) -> str:
    with gzip.open(root / "contacts.csv.gz", "wt") as handle:
        handle.write(csv_text(HEADER, ROWS))
    return "contacts.csv.gz"


def write_parquet(root: Path) -> str:
    frame().write_parquet(root / "contacts.parquet")
    return "contacts.parquet"


def write_ndjson(root: Path) -> str:
    frame().write_ndjson(root / "contacts.ndjson")
    return "contacts.ndjson"


def write_glob(root: Path) -> str:
    (root / "exports").mkdir()
    (root / "exports" / "march.csv").write_text(csv_text(HEADER, ROWS[:2]))
    (root / "exports" / "april.csv").write_text(csv_text(HEADER, ROWS[2:]))
    return "exports/*.csv"


def write_folder(root: Path) -> str:
    (root / "drop").mkdir()
    (root / "drop" / "part-1.csv").write_text(csv_text(HEADER, ROWS[:1]))
    frame(ROWS[1:3]).write_parquet(root / "drop" / "part-2.parquet")
    frame(ROWS[3:]).write_ndjson(root / "drop" / "part-3.ndjson")
    return "drop"


@pytest.mark.parametrize(
    "write",
    [write_csv, write_csv_gz, write_parquet, write_ndjson, write_glob, write_folder],
    ids=["csv", "csv.gz", "parquet", "ndjson", "glob", "folder"],
)
def test_every_format_gives_the_same_ledger(ws: Path, write) -> None:  # type: ignore[no-untyped-def]
    result = report(write(ws))
    assert result.exit_code == 0, result.output
    assert ledger(ws) == EXPECTED_LEDGER


def test_typed_parquet_timestamps_and_list_tags(ws: Path) -> None:
    # A Parquet export with a real timestamp column (UTC) and tags as a list column.
    df = frame().with_columns(
        pl.col("started_at").str.to_datetime().dt.replace_time_zone("UTC"),
        pl.Series("tags", [[" fee ", "late", ""], None, ["late"], []], dtype=pl.List(pl.String)),
        pl.col("handle_seconds").cast(pl.Int64),
    )
    df.write_parquet(ws / "typed.parquet")
    result = report("typed.parquet")
    assert result.exit_code == 0, result.output
    assert ledger(ws) == EXPECTED_LEDGER


def test_platform_export_with_a_columns_mapping(ws: Path) -> None:
    settings(
        ws,
        """\
columns:
  contact_id: "Ticket ID"
  started_at: "Created at"
  channel: "Channel"
  handle_seconds: "Handle Time (s)"
""",
    )
    header = ["Ticket ID", "Created at", "Channel", "reason", "tags", "Handle Time (s)", "Agent"]
    rows = [[*row, "ana"] for row in ROWS]
    (ws / "export.csv").write_text(csv_text(header, rows))
    result = report("export.csv")
    assert result.exit_code == 0, result.output
    assert ledger(ws) == EXPECTED_LEDGER


def test_columns_mapping_to_a_missing_header_names_it(ws: Path) -> None:
    settings(ws, 'columns:\n  contact_id: "Ticket ID"\n')
    write_csv(ws)
    result = report("contacts.csv")
    assert result.exit_code == 1
    assert "Ticket ID" in result.output
    assert "contacts.csv" in result.output
    assert not (ws / "out").exists()


# --------------------------------------------------------------------------- timestamps


def one_phone_contact_each(stamps: list[str]) -> str:
    rows = [[f"t{i}", s, "phone", "", "", "60"] for i, s in enumerate(stamps, start=1)]
    return csv_text(HEADER, rows)


def test_timestamp_forms_in_utc(ws: Path) -> None:
    settings(ws, "timezone: UTC\n")
    stamps = [
        "2026-03-31T23:30:00-05:00",  # = 2026-04-01 04:30 UTC -> April
        "2026-03-10T10:00:00Z",  # March
        "2026-03-05",  # date only -> March
        "2026-03-06 10:15:00",  # space separator -> March
        "2026-03-31T23:30:00",  # naive, read in UTC -> March
        "2026-04-01T00:30:00+02:00",  # = 2026-03-31 22:30 UTC -> March
    ]
    (ws / "stamps.csv").write_text(one_phone_contact_each(stamps))
    result = report("stamps.csv")
    assert result.exit_code == 0, result.output
    assert contacts_per_period(ws) == {"2026-03": 5, "2026-04": 1}


def test_naive_timestamps_are_read_in_the_workspace_timezone(ws: Path) -> None:
    settings(ws, "timezone: America/New_York\n")
    stamps = [
        "2026-04-01T00:30:00",  # naive: New York wall clock -> April
        "2026-04-01T02:30:00Z",  # = 2026-03-31 22:30 in New York (EDT, -4) -> March
        "2026-04-01T03:59:00+00:00",  # = 2026-03-31 23:59 New York -> March
        "2026-04-01T04:00:00+00:00",  # = 2026-04-01 00:00 New York -> April
    ]
    (ws / "stamps.csv").write_text(one_phone_contact_each(stamps))
    result = report("stamps.csv")
    assert result.exit_code == 0, result.output
    assert contacts_per_period(ws) == {"2026-03": 2, "2026-04": 2}


def test_local_date_decides_the_window(ws: Path) -> None:
    # Effective 2026-03-01 in Berlin: 2026-02-28T23:30Z is 00:30 on 1 March there, in
    # force; 2026-02-28T22:30Z is 23:30 on 28 February there, not yet.
    settings(ws, "timezone: Europe/Berlin\n")
    rows = [
        ["in", "2026-02-28T23:30:00Z", "phone", "", "late", "60"],
        ["out", "2026-02-28T22:30:00Z", "phone", "", "late", "60"],
    ]
    (ws / "edge.csv").write_text(csv_text(HEADER, rows))
    result = report("edge.csv")
    assert result.exit_code == 0, result.output
    got = [(r["period"], r["decision_id"], r["contacts"]) for r in ledger_rows(ws)]
    assert got == [
        ("2026-02", "unattributed", "1.000"),
        ("2026-03", "late-fee", "1.000"),
        ("2026-03", "unattributed", "0.000"),
    ]


# --------------------------------------------------------------------------- tags


def test_tags_string_is_split_on_bars_and_trimmed(ws: Path) -> None:
    rows = [
        ["a", "2026-03-02T09:00:00", "phone", "", " fee | late ||", "60"],  # has `late`
        ["b", "2026-03-02T10:00:00", "phone", "", "lately|later", "60"],  # no `late` tag
        ["c", "2026-03-02T11:00:00", "phone", "", "|||", "60"],  # no tags at all
    ]
    (ws / "tags.csv").write_text(csv_text(HEADER, rows))
    result = report("tags.csv")
    assert result.exit_code == 0, result.output
    got = [(r["decision_id"], r["contacts"], r["cost"]) for r in ledger_rows(ws)]
    # Each phone minute costs 0.40 + 1.05 = 1.45; one charged, two not.
    assert got == [("late-fee", "1.000", "1.45"), ("unattributed", "2.000", "2.90")]


# --------------------------------------------------------------------------- bad rows

BAD_A = [
    ["g1", "2026-03-01T10:00:00", "phone", "", "", "60"],  # row 1 good  1.45
    ["", "2026-03-02T10:00:00", "phone", "", "", "60"],  # row 2 missing contact_id
    ["b3", "03/02/2026", "phone", "", "", "60"],  # row 3 unparsable timestamp
    ["b4", "2026-03-04T10:00:00", "phone", "", "", "-5"],  # row 4 negative
    ["b5", "2026-03-05T10:00:00", "phone", "", "", "abc"],  # row 5 not a number
    ["g6", "2026-03-06T10:00:00", "chat", "", "late", "60"],  # row 6 good  0.70
]
BAD_B = [
    ["g7", "2026-04-07T10:00:00", "email", "", "", ""],  # row 1 good  3.80
    ["g1", "2026-04-08T10:00:00", "phone", "", "", "60"],  # row 2 duplicate of a.csv row 1
]
BAD = [  # (file, data row, column)
    ("a.csv", 2, "contact_id"),
    ("a.csv", 3, "started_at"),
    ("a.csv", 4, "handle_seconds"),
    ("a.csv", 5, "handle_seconds"),
    ("b.csv", 2, "contact_id"),
]
GOOD_ROWS = 3


def write_bad(root: Path) -> str:
    (root / "in").mkdir()
    (root / "in" / "a.csv").write_text(csv_text(HEADER, BAD_A))
    (root / "in" / "b.csv").write_text(csv_text(HEADER, BAD_B))
    return "in/*.csv"


def names_place(text: str, file: str, row: int, column: str) -> bool:
    """file + row + column on one line; a CSV row may be given as its line (row + 1)."""
    for line in text.splitlines():
        here = f"in/{file}" in line and f"'{column}'" in line
        if here and (f"row {row}" in line or f"in/{file}:{row + 1}" in line):
            return True
    return False


def test_bad_rows_stop_the_run_naming_each(ws: Path) -> None:
    result = report(write_bad(ws))
    assert result.exit_code == 1, result.output
    for file, row, column in BAD:
        assert names_place(result.output, file, row, column), (file, row, column, result.output)
    assert "03/02/2026" in result.output  # the bad value is quoted
    assert "abc" in result.output
    assert not (ws / "out").exists()


def test_quarantine_sets_bad_rows_aside_and_keeps_every_good_row(ws: Path) -> None:
    result = report(write_bad(ws), "--on-bad-rows", "quarantine")
    assert result.exit_code == 0, result.output
    assert "5 bad rows" in result.output

    with (ws / "out" / "rejected.csv").open(newline="") as handle:
        rejected = list(csv.DictReader(handle))
    assert len(rejected) == len(BAD)
    reasons = " ".join(" ".join(r.values()) for r in rejected)
    for word in ("missing", "timestamp", "negative", "number", "duplicate"):
        assert word in reasons, word
    ids = sorted(r["contact_id"] for r in rejected)
    assert ids == ["", "b3", "b4", "b5", "g1"]

    # Good rows: g1 phone 1.45 and g6 chat 0.70 (tag late -> late-fee) in March;
    # g7 email 3.80 in April. Every one of them is in the ledger.
    assert contacts_per_period(ws) == {"2026-03": 2, "2026-04": 1}
    assert sum(contacts_per_period(ws).values()) == GOOD_ROWS
    got = [(r["period"], r["decision_id"], r["contacts"], r["cost"]) for r in ledger_rows(ws)]
    assert got == [
        ("2026-03", "late-fee", "1.000", "0.70"),
        ("2026-03", "unattributed", "1.000", "1.45"),
        ("2026-04", "unattributed", "1.000", "3.80"),
    ]


def test_a_clean_rerun_removes_stale_rejects(ws: Path) -> None:
    spec = write_bad(ws)
    assert report(spec, "--on-bad-rows", "quarantine").exit_code == 0
    assert (ws / "out" / "rejected.csv").exists()
    assert report(write_csv(ws)).exit_code == 0
    assert not (ws / "out" / "rejected.csv").exists()


def test_bad_row_in_parquet_is_named_by_row(ws: Path) -> None:
    df = frame().with_columns(
        pl.Series("handle_seconds", [120.0, -1.0, 60.0, None], dtype=pl.Float64)
    )
    df.write_parquet(ws / "contacts.parquet")
    result = report("contacts.parquet")
    assert result.exit_code == 1, result.output
    assert "contacts.parquet" in result.output
    assert "row 2" in result.output
    assert "'handle_seconds'" in result.output


def test_missing_contacts_file_is_a_user_error(ws: Path) -> None:
    result = report("nope.csv")
    assert result.exit_code == 1
    assert "nope.csv" in result.output
