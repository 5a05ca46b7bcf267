"""Hostile contacts and orders files (issue 12, data input).

Every broken input ends the same way (tests/hostile.py): exit code 1, no
traceback, a message naming the file and the line (CSV, NDJSON) or the row and
column, and the output folder exactly as it was. The cases are grouped by
class: the file's structure, its encoding, its header, timestamps, numbers,
text values, the other formats, which files a setting names, and orders.
"""

from __future__ import annotations

import csv
import gzip
import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pytest
from hostile import GOOD_CONTACTS, assert_refused, run, snapshot, workspace
from hypothesis import given, settings
from hypothesis import strategies as st

from chargeback.data import diagnose

H = "contact_id,started_at,channel,reason,handle_seconds\n"
G1 = "c1,2026-03-02T09:00:00,phone,billing.late_fee,300\n"
G2 = "c2,2026-03-03T10:00:00,chat,billing.late_fee,120\n"
G3 = "c3,2026-03-04T11:00:00,email,account.other,0\n"
HR = "contact_id,started_at,channel,reason,handle_seconds,revenue\n"
HT = "contact_id,started_at,channel,text,handle_seconds\n"
ORDERS_H = "customer_id,ordered_at,amount\n"
ORDERS_GOOD = ORDERS_H + "A,2026-03-01T10:00:00,12.50\nB,2026-03-02T10:00:00,8.00\n"
CONTACTS_WITH_CUSTOMERS = (
    "contact_id,started_at,channel,reason,handle_seconds,customer_id,outcome\n"
    "c1,2026-03-02T09:00:00,phone,billing.late_fee,300,A,saved\n"
    "c2,2026-03-03T10:00:00,chat,billing.late_fee,120,B,resolved\n"
)


def contacts_row(**values: str) -> str:
    """G2 with some fields replaced: the row under test, on line 3 of contacts.csv."""
    row = dict(zip(H.strip().split(","), G2.strip().split(","), strict=True)) | values
    return H + G1 + ",".join(row.values()) + "\n" + G3


def row_error(column: str, line: int = 3) -> str:
    """contacts.csv:LINE, row LINE-1, column 'X': the place of a bad value."""
    return f"contacts.csv:{line}, row {line - 1}, column '{column}'"


def write(name: str, data: str | bytes) -> Callable[[Path], None]:
    def setup(ws: Path) -> None:
        target = ws / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(data, bytes):
            target.write_bytes(data)
        else:
            target.write_text(data, encoding="utf-8")

    return setup


def parquet(name: str, frame: pl.DataFrame) -> Callable[[Path], None]:
    def setup(ws: Path) -> None:
        frame.write_parquet(ws / name)

    return setup


def good_frame(**columns: pl.Series) -> pl.DataFrame:
    base = pl.read_csv(GOOD_CONTACTS.encode(), infer_schema=False)
    return base.with_columns(*[s.alias(n) for n, s in columns.items()])


def good_parquet_bytes() -> bytes:
    path = Path(os.environ.get("TMPDIR", "/tmp")) / f"cb-good-{os.getpid()}.parquet"
    good_frame().write_parquet(path)
    data = path.read_bytes()
    path.unlink()
    return data


@dataclass(frozen=True)
class Case:
    place: str | re.Pattern[str]
    contacts: str | bytes = GOOD_CONTACTS
    settings: str = ""
    setup: Callable[[Path], None] | None = None
    command: str = "report"
    also: str | None = None  # a second text the output must hold
    source: str | None = None  # --contacts, in the workspace (else contacts.csv)


NDJSON = "contacts.ndjson"
PARQUET = "contacts.parquet"
ORDERS = "orders: orders.csv\n"
BIG = "x" * 1_000_000

CASES: dict[str, Case] = {
    # --- structure: each CSV row on its physical line
    "too-many-fields": Case(
        "contacts.csv:3, row 2", H + G1 + "c2,2026-03-03T10:00:00,chat,x,1,extra\n" + G3
    ),
    "too-few-fields": Case("contacts.csv:3, row 2", H + G1 + "c2,2026-03-03T10:00:00,chat\n" + G3),
    "too-few-fields-after-a-multi-line-field": Case(
        "contacts.csv:4, row 2",
        HT + 'c1,2026-03-02T09:00:00,phone,"two\nlines",300\nc2,2026-03-03T10:00:00,chat\n',
    ),
    "bad-value-after-a-multi-line-field": Case(
        "contacts.csv:5, row 2, column 'handle_seconds'",
        HT + 'c1,2026-03-02T09:00:00,phone,"three\nline\ntext",300\nc2,2026-03-03,chat,x,-4\n',
    ),
    "unterminated-quote": Case(
        "contacts.csv:3", H + G1 + 'c2,2026-03-03T10:00:00,"chat,x,1\n' + G3, also="never closed"
    ),
    "unterminated-quote-on-the-last-line": Case(
        "contacts.csv:4", H + G1 + G2 + 'c3,2026-03-04T11:00:00,email,"account,0\n'
    ),
    "text-after-a-closing-quote": Case("contacts.csv:3", H + G1 + 'c2,2026-03-03,"chat"x,a,1\n'),
    # --- encoding
    "latin-1": Case(
        "contacts.csv:3",
        (H + G1 + "c2,2026-03-03T10:00:00,chat,caf\xe9,120\n").encode("latin-1"),
        also="UTF-8",
    ),
    "utf-16": Case("contacts.csv:1", GOOD_CONTACTS.encode("utf-16"), also="UTF-8"),
    "nul-byte-in-a-value": Case(row_error("channel"), contacts_row(channel="ch\x00at")),
    "utf-16-without-bom": Case("contacts.csv:1", GOOD_CONTACTS.encode("utf-16-le"), also="UTF-16"),
    "excel-workbook-named-csv": Case(
        "contacts.csv:1", b"PK\x03\x04\x14\x00\x06\x00\x08\x00\xc7\xa3" * 50, also="Excel"
    ),
    "cr-only-line-ends": Case("contacts.csv:1", GOOD_CONTACTS.replace("\n", "\r")),
    # --- the header
    "duplicate-header": Case(
        "contacts.csv:1",
        "contact_id,started_at,channel,reason,reason\nc1,2026-03-02T09:00:00,phone,a,b\n",
        also="columns 4 and 5",
    ),
    "mapping-makes-a-duplicate": Case(
        "contacts.csv:1",
        "Ticket ID,contact_id,started_at,channel\nT1,c1,2026-03-02T09:00:00,phone\n",
        settings='columns:\n  contact_id: "Ticket ID"\n',
        also="Ticket ID",
    ),
    "header-only": Case(re.compile(r"contacts\.csv.*no rows"), H),
    "empty-file": Case(re.compile(r"contacts\.csv.*empty"), ""),
    "blank-lines-only": Case(re.compile(r"contacts\.csv.*(empty|no rows)"), "\n\n\n"),
    # --- timestamps
    "offset-past-year-9999": Case(
        row_error("started_at"), contacts_row(started_at="9999-12-31T23:30:00-05:00")
    ),
    "offset-before-year-1": Case(
        row_error("started_at"), contacts_row(started_at="0001-01-01T00:10:00+01:00")
    ),
    "year-1850": Case(row_error("started_at"), contacts_row(started_at="1850-06-01T10:00:00")),
    "year-2500": Case(row_error("started_at"), contacts_row(started_at="2500-06-01")),
    "huge-timestamp-text": Case(row_error("started_at"), contacts_row(started_at="2026-" + BIG)),
    "timestamp-format-polars-refuses": Case(
        re.compile(r"chargeback\.yaml:\d+|column 'started_at'"),
        settings='timestamp_format: "%H"\n',
    ),
    # --- numbers
    "handle-seconds-1e308": Case(row_error("handle_seconds"), contacts_row(handle_seconds="1e308")),
    "handle-seconds-inf": Case(row_error("handle_seconds"), contacts_row(handle_seconds="inf")),
    "handle-seconds-nan": Case(row_error("handle_seconds"), contacts_row(handle_seconds="NaN")),
    "handle-seconds-negative": Case(row_error("handle_seconds"), contacts_row(handle_seconds="-1")),
    "handle-seconds-over-30-days": Case(
        row_error("handle_seconds"), contacts_row(handle_seconds="2592001"), also="2,592,000"
    ),
    "handle-seconds-forty-digits": Case(
        row_error("handle_seconds"), contacts_row(handle_seconds="1" * 40)
    ),
    "revenue-1e15": Case(
        "contacts.csv:3, row 2, column 'revenue'",
        HR + G1.strip() + ",\n" + G2.strip() + ",1e15\n",
        also="1,000,000,000,000",
    ),
    "revenue-near-float-max": Case(
        "contacts.csv:2, row 1, column 'revenue'", HR + G1.strip() + ",1.7976931348623157e308\n"
    ),
    "revenue-minus-inf": Case(
        "contacts.csv:2, row 1, column 'revenue'", HR + G1.strip() + ",-inf\n"
    ),
    "revenue-many-digits": Case(
        "contacts.csv:2, row 1, column 'revenue'", HR + G1.strip() + ",0." + "1" * 40 + "\n"
    ),
    "revenue-sum-too-large": Case(
        re.compile(r"contacts\.csv, column 'revenue'"),
        HR + "".join(f"c{i},2026-03-02T09:00:00,phone,a,1,999999999999\n" for i in range(1100)),
    ),
    # --- text values
    "escape-sequence-in-contact-id": Case(
        row_error("contact_id"), contacts_row(contact_id="c\x1b[31m2"), also="\\x1b"
    ),
    "bell-in-channel": Case(row_error("channel"), contacts_row(channel="ch\x07at")),
    "vertical-tab-in-reason": Case(row_error("reason"), contacts_row(reason="billing\x0bfee")),
    "one-megabyte-text": Case(
        "contacts.csv:2, row 1, column 'text'", HT + f"c1,2026-03-02T09:00:00,phone,{BIG},300\n"
    ),
    "one-megabyte-reason": Case(row_error("reason"), contacts_row(reason=BIG)),
    "blank-contact-id": Case(row_error("contact_id"), contacts_row(contact_id="   ")),
    "control-character-in-tags": Case(
        "contacts.csv:2, row 1, column 'tags'",
        "contact_id,started_at,channel,tags\nc1,2026-03-02T09:00:00,phone,a|b\x02c\n",
    ),
    # --- NDJSON and Parquet
    "ndjson-malformed-line": Case(
        "contacts.ndjson:3",
        source=NDJSON,
        setup=write(
            "contacts.ndjson",
            '{"contact_id":"c1","started_at":"2026-03-02T09:00:00","channel":"phone"}\n\n'
            '{"contact_id":"c2","started_at": }\n',
        ),
    ),
    "ndjson-nan": Case(
        "contacts.ndjson:2",
        source=NDJSON,
        setup=write(
            "contacts.ndjson",
            '{"contact_id":"c1","started_at":"2026-03-02T09:00:00","channel":"phone"}\n'
            '{"contact_id":"c2","started_at":"2026-03-02T09:00:00","channel":"phone",'
            '"handle_seconds":NaN}\n',
        ),
    ),
    "json-array-not-ndjson": Case(
        "contacts.json:1",
        source="contacts.json",
        setup=write("contacts.json", '[{"contact_id":"c1"},{"contact_id":"c2"}]\n'),
        also="one object per line",
    ),
    "ndjson-latin-1": Case(
        "contacts.ndjson:2",
        source=NDJSON,
        setup=write(
            "contacts.ndjson",
            '{"contact_id":"c1","started_at":"2026-03-02T09:00:00","channel":"phone"}\n'
            '{"contact_id":"c2","started_at":"2026-03-02T09:00:00","channel":"t\xe9l"}\n'.encode(
                "latin-1"
            ),
        ),
    ),
    "ndjson-object-for-channel": Case(
        "contacts.ndjson, column 'channel'",
        source=NDJSON,
        setup=write(
            "contacts.ndjson",
            '{"contact_id":"c1","started_at":"2026-03-02T09:00:00","channel":{"a":1}}\n',
        ),
    ),
    "ndjson-bad-row-names-its-line": Case(
        "contacts.ndjson:4, row 2, column 'handle_seconds'",
        source=NDJSON,
        setup=write(
            "contacts.ndjson",
            '{"contact_id":"c1","started_at":"2026-03-02T09:00:00","channel":"phone"}\n\n\n'
            '{"contact_id":"c2","started_at":"2026-03-02T09:00:00","channel":"phone",'
            '"handle_seconds":-3}\n',
        ),
    ),
    "parquet-list-for-channel": Case(
        "contacts.parquet, column 'channel'",
        source=PARQUET,
        setup=parquet("contacts.parquet", good_frame(channel=pl.Series([["a"], ["b"], [], ["c"]]))),
    ),
    "parquet-struct-for-reason": Case(
        "contacts.parquet, column 'reason'",
        source=PARQUET,
        setup=parquet("contacts.parquet", good_frame(reason=pl.Series([{"x": 1}] * 4))),
    ),
    "parquet-int-contact-id": Case(
        "contacts.parquet, column 'contact_id'",
        source=PARQUET,
        setup=parquet("contacts.parquet", good_frame(contact_id=pl.Series([1, 2, 3, 4]))),
    ),
    "parquet-bad-value-by-row": Case(
        "contacts.parquet, row 3, column 'handle_seconds'",
        source=PARQUET,
        setup=parquet(
            "contacts.parquet", good_frame(handle_seconds=pl.Series([1.0, 2.0, float("inf"), 4.0]))
        ),
    ),
    "parquet-datetime-past-2199": Case(
        "contacts.parquet, row 2, column 'started_at'",
        source=PARQUET,
        setup=parquet(
            "contacts.parquet",
            good_frame(
                started_at=pl.Series(
                    ["2026-03-02T09:00:00", "9999-12-31T23:00:00", "2026-03-04", "2026-04-01"]
                ).str.to_datetime(time_unit="us")
            ),
        ),
    ),
    "corrupt-parquet": Case(
        "contacts.parquet",
        source=PARQUET,
        setup=write("contacts.parquet", b"PAR1" + b"\x00" * 64 + b"PAR1"),
    ),
    "truncated-parquet": Case(
        "contacts.parquet",
        source=PARQUET,
        setup=lambda ws: (ws / "contacts.parquet").write_bytes(good_parquet_bytes()[:-40]),
    ),
    "corrupt-gzip": Case(
        "contacts.csv.gz", source="contacts.csv.gz", setup=write("contacts.csv.gz", b"\x1f\x8bnot")
    ),
    "plain-text-named-csv-gz-too-few-fields": Case(
        "contacts.csv.gz:3, row 2",
        source="contacts.csv.gz",
        setup=write("contacts.csv.gz", H + G1 + "c2,2026-03-03T10:00:00,chat\n" + G3),
    ),
    "gzip-latin-1": Case(
        "contacts.csv.gz:2",
        source="contacts.csv.gz",
        setup=write(
            "contacts.csv.gz", gzip.compress((H + "c1,2026-03-02,t\xe9l,a,1\n").encode("latin-1"))
        ),
    ),
    "tsv-too-many-fields": Case(
        "contacts.tsv:3, row 2",
        source="contacts.tsv",
        setup=write("contacts.tsv", (H + G1 + G2.replace(",", ",x,", 1)).replace(",", "\t")),
    ),
    # --- which files
    "glob-matches-nothing": Case(
        "exports/*.csv", source="exports/*.csv", setup=write("exports/README", "x")
    ),
    "folder-without-data-files": Case("drop", source="drop", setup=write("drop/notes.txt", "x")),
    "every-file-of-a-glob-empty": Case(
        re.compile(r"exports/a\.csv.*no rows(.|\n)*exports/b\.csv.*no rows"),
        source="exports/*.csv",
        setup=lambda ws: (write("exports/a.csv", H)(ws), write("exports/b.csv", H)(ws)),
    ),
    "contacts-path-is-a-fifo": Case(
        re.compile(r"pipe\.csv.*FIFO"),
        source="pipe.csv",
        setup=lambda ws: os.mkfifo(ws / "pipe.csv"),
    ),
    "bad-row-in-the-second-file-of-a-glob": Case(
        "exports/b.csv:3, row 2, column 'handle_seconds'",
        source="exports/*.csv",
        setup=lambda ws: (
            write("exports/a.csv", H + G1)(ws),
            write("exports/b.csv", H + G2 + "c9,2026-03-05,phone,a,1e400\n")(ws),
        ),
    ),
    # --- orders (the value report)
    "orders-too-few-fields": Case(
        "orders.csv:3",
        CONTACTS_WITH_CUSTOMERS,
        settings=ORDERS,
        setup=write("orders.csv", ORDERS_H + "A,2026-03-01,1\nB,2026-03-02\n"),
        command="value",
    ),
    "orders-amount-1e300": Case(
        "orders.csv:3, row 2, column 'amount'",
        CONTACTS_WITH_CUSTOMERS,
        settings=ORDERS,
        setup=write("orders.csv", ORDERS_H + "A,2026-03-01,1\nB,2026-03-02,1e300\n"),
        command="value",
    ),
    "orders-latin-1": Case(
        "orders.csv:2",
        CONTACTS_WITH_CUSTOMERS,
        settings=ORDERS,
        setup=write("orders.csv", (ORDERS_H + "Andr\xe9,2026-03-01,1\n").encode("latin-1")),
        command="value",
    ),
    "orders-year-0": Case(
        "orders.csv:2, row 1, column 'ordered_at'",
        CONTACTS_WITH_CUSTOMERS,
        settings=ORDERS,
        setup=write("orders.csv", ORDERS_H + "A,0001-01-01T00:10:00+01:00,1\n"),
        command="value",
    ),
    "orders-header-only": Case(
        re.compile(r"orders\.csv.*no rows"),
        CONTACTS_WITH_CUSTOMERS,
        settings=ORDERS,
        setup=write("orders.csv", ORDERS_H),
        command="value",
    ),
    "orders-nan-amount-in-the-report": Case(
        "orders.csv:2, row 1, column 'amount'",
        CONTACTS_WITH_CUSTOMERS,
        settings=ORDERS,
        setup=write("orders.csv", ORDERS_H + "A,2026-03-01,nan\n"),
    ),
}


@pytest.mark.parametrize("case", list(CASES.values()), ids=list(CASES))
def test_hostile_data_is_refused_with_its_place(tmp_path: Path, case: Case) -> None:
    ws = workspace(tmp_path, contacts=case.contacts, settings=case.settings)
    if case.setup is not None:
        case.setup(ws)
    out = ws / "out"
    out.mkdir()
    (out / "keep.txt").write_text("kept\n")
    before = snapshot(out)
    formats = "csv,json" if case.command == "report" else "json"
    source = [] if case.source is None else ["--contacts", ws / case.source]
    result = run([case.command, "--workspace", ws, "--out", out, "--format", formats, *source])
    assert_refused(result, case.place, untouched=(out, before))
    if case.also is not None:
        assert case.also in result.output, result.output
    assert len(result.output) < 20_000, "a hostile value must not be echoed whole"


@pytest.mark.parametrize(
    ("name", "contacts", "place"),
    [
        ("latin-1", (H + "c1,2026-03-02,phone,caf\xe9,1\n").encode("latin-1"), "contacts.csv:2"),
        ("ragged", H + G1 + "c2,2026-03-03,chat\n", "contacts.csv:3"),
        ("year", contacts_row(started_at="9999-12-31T23:30:00-05:00"), row_error("started_at")),
    ],
)
def test_check_refuses_the_same_data(tmp_path: Path, name: str, contacts: str, place: str) -> None:
    ws = workspace(tmp_path, contacts=contacts)
    result = run(["check", "--workspace", ws])
    assert_refused(result, place)


# --------------------------------------------------------------------------- what still reads


def report_ok(ws: Path, *extra: str) -> Path:
    out = ws / "out"
    result = run(["report", "--workspace", ws, "--out", out, "--format", "csv,json", *extra])
    assert result.exit_code == 0, result.output
    return out


def contacts_counted(out: Path) -> int:
    doc = json.loads((out / "ledger.json").read_text())
    return sum(int(p["contacts"]) for p in doc["periods"].values())


def test_a_utf8_bom_just_works(tmp_path: Path) -> None:
    ws = workspace(tmp_path, contacts=b"\xef\xbb\xbf" + GOOD_CONTACTS.encode())
    assert contacts_counted(report_ok(ws)) == 4


def test_blank_lines_and_separator_only_rows_are_not_contacts(tmp_path: Path) -> None:
    text = H + G1 + "\n" + G2 + ",,,,\n" + "\r\n" + G3 + "\n\n"
    ws = workspace(tmp_path, contacts=text)
    assert contacts_counted(report_ok(ws)) == 3


def test_an_empty_file_among_others_is_skipped(tmp_path: Path) -> None:
    ws = workspace(tmp_path)
    write("exports/a.csv", H + G1 + G2)(ws)
    write("exports/b.csv", H)(ws)
    write("exports/c.csv", "")(ws)
    assert contacts_counted(report_ok(ws, "--contacts", str(ws / "exports" / "*.csv"))) == 2


def test_quarantine_sets_ragged_and_out_of_range_rows_aside_with_their_reason(
    tmp_path: Path,
) -> None:
    text = (
        H
        + G1
        + "c2,2026-03-03T10:00:00,chat,x,1,extra\n"  # too many fields
        + "c3,2026-03-04T11:00:00,email\n"  # too few
        + "c4,9999-12-31T23:30:00-05:00,phone,a,1\n"  # past 2199
        + "c5,2026-03-05T11:00:00,phone,a,99999999\n"  # over 30 days
        + "c6\x07,2026-03-05T11:00:00,phone,a,1\n"  # control character
        + "c7,2026-03-06T11:00:00,chat,a,60\n"
    )
    ws = workspace(tmp_path, contacts=text)
    out = report_ok(ws, "--on-bad-rows", "quarantine")
    assert contacts_counted(out) == 2  # c1 and c7: every good row kept
    with (out / "rejected.csv").open(newline="", encoding="utf-8") as handle:
        rejected = list(csv.DictReader(handle))
    assert [r["source_row"] for r in rejected] == ["2", "3", "4", "5", "6"]
    # the export's columns the run read, as written; none the export does not have
    assert list(rejected[0]) == [
        *("source_file", "source_row", "bad_column", "problem"),
        *("channel", "contact_id", "handle_seconds", "reason", "started_at"),
    ]
    problems = [r["problem"] for r in rejected]
    assert "more" in problems[0] and "fewer" in problems[1]
    assert "1900-2199" in problems[2] and "2,592,000" in problems[3]
    assert "control character" in problems[4]


def test_quarantine_does_not_read_past_a_file_level_problem(tmp_path: Path) -> None:
    ws = workspace(tmp_path, contacts=(H + G1 + "c2,2026-03-03,caf\xe9,a,1\n").encode("latin-1"))
    out = ws / "out"
    result = run(["report", "--workspace", ws, "--out", out, "--on-bad-rows", "quarantine"])
    assert_refused(result, "contacts.csv:3", untouched=(out, {}))


def test_money_is_exact_to_the_cent_at_the_limits(tmp_path: Path) -> None:
    # half-cents round away from zero on the decimal as written, however large
    text = (
        "contact_id,started_at,channel,handle_seconds,customer_id,outcome,revenue\n"
        "c1,2026-03-02T09:00:00,phone,60,A,sale,1000000000000.00\n"
        "c2,2026-03-02T10:00:00,phone,60,B,sale,2.675\n"
        "c3,2026-03-02T11:00:00,phone,60,C,sale,-0.005\n"
    )
    settings = "value:\n  sale_outcomes: [sale]\n"
    ws = workspace(tmp_path, contacts=text, settings=settings)
    out = ws / "out"
    result = run(["value", "--workspace", ws, "--out", out, "--format", "json"])
    assert_refused(result, "contacts.csv:2, row 1, column 'revenue'")  # a trillion: over
    (ws / "contacts.csv").write_text(text.replace("1000000000000.00", "99999999999.995"))
    result = run(["value", "--workspace", ws, "--out", out, "--format", "json"])
    assert result.exit_code == 0, result.output
    doc = json.loads((out / "cs_value.json").read_text())
    # 99999999999.995 -> ...00.00 (+.01), 2.675 -> 2.68, -0.005 -> -0.01
    assert doc["periods"]["2026-03"]["revenue_won"] == "100000000002.67"


def test_a_timestamp_format_polars_refuses_never_reaches_the_rows(tmp_path: Path) -> None:
    # chargeback.yaml's loader refuses it first; the data layer must not crash either
    from chargeback.data.tables import load_contacts
    from chargeback.errors import DataError

    (tmp_path / "c.csv").write_text(GOOD_CONTACTS)
    with pytest.raises(DataError) as caught:
        load_contacts(tmp_path, "c.csv", {}, set(), "UTC", "%H", "stop")
    assert "c.csv, column 'started_at'" in str(caught.value)
    assert "timestamp_format" in str(caught.value)


def test_a_file_named_twice_is_read_once(tmp_path: Path) -> None:
    ws = workspace(tmp_path)
    write("exports/a.csv", H + G1 + G2)(ws)
    (ws / "exports" / "again").symlink_to(ws / "exports")  # a loop for ** to follow
    assert contacts_counted(report_ok(ws, "--contacts", str(ws / "exports" / "**" / "*.csv"))) == 2


def test_list_tags_in_one_file_and_text_tags_in_another_stack(tmp_path: Path) -> None:
    ws = workspace(tmp_path)
    (ws / "drop").mkdir()
    head = "contact_id,started_at,channel,tags\n"
    (ws / "drop" / "a.csv").write_text(head + "c1,2026-03-02T09:00:00,phone,fee| late\n")
    pl.DataFrame(
        {
            "contact_id": ["c2"],
            "started_at": ["2026-03-03T09:00:00"],
            "channel": ["chat"],
            "tags": [["late", " x "]],
        }
    ).write_parquet(ws / "drop" / "b.parquet")
    assert contacts_counted(report_ok(ws, "--contacts", str(ws / "drop"))) == 2


def test_a_header_that_is_not_utf8_is_named_even_when_every_row_is(tmp_path: Path) -> None:
    """polars reads header names lossily: the header line is checked on its own."""
    contacts = b"contact_id,started_at,channel,r\xe9gion\nc1,2026-03-02T09:00:00,phone,x\n"
    root = workspace(tmp_path / "ws", contacts=contacts)
    result = run(["report", "--workspace", root, "--out", root / "out", "--format", "csv"])
    assert_refused(result, "contacts.csv:1")
    assert "not UTF-8" in result.output


@settings(max_examples=200, deadline=None)
@given(
    text=st.text(alphabet='ab,"\n\r é', max_size=60),
    picks=st.lists(st.integers(0, 30), max_size=8),
    block=st.integers(1, 9),
    zipped=st.booleans(),
    name=st.sampled_from(["t.csv", "t.csv.gz", "t.tsv.GZ"]),
)
def test_lines_at_finds_the_lines_a_plain_split_finds(
    tmp_path_factory: pytest.TempPathFactory,
    text: str,
    picks: list[int],
    block: int,
    zipped: bool,
    name: str,
) -> None:
    """Read a few bytes at a time (lines across blocks, characters cut in two), the lines
    asked for and the count agree with splitting the whole text on its line breaks. gzip
    is told by its bytes, as polars tells it, whatever the file is named."""
    data = text.encode()
    path = tmp_path_factory.mktemp("lines") / name
    path.write_bytes(gzip.compress(data) if zipped else data)
    lines = text.split("\n")
    if lines[-1] == "":  # a final line break ends the last line; it starts none
        lines.pop()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(diagnose, "BLOCK", block)
        found, count = diagnose.lines_at(path, picks)
    assert count == len(lines)
    assert found == {i: lines[i] for i in set(picks) if i < len(lines)}
