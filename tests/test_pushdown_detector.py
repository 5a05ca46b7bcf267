"""engine/pushdown.py's detector: no row the data layer refuses or changes gets through.

A table of clean rows plus one hostile value (blanks, Unicode White_Space and
its look-alikes U+200B and U+FEFF, control characters where text allows line
breaks and where not, overlong text, negative / NaN / infinite / huge / tied
handle times, revenue at its bounds, years at the 1900/2199 and 1970/2038
edges in the zone, duplicate ids, tags with empty or padded parts, pipes and
separators), on DuckDB and PostgreSQL. Whenever the detector lets it through,
the data layer (on the same data as Parquet) must accept every row, its frame
must equal the derive row by row, and the aggregates must be equal. Near
misses (unusual values the data layer keeps as they are) must get through.
"""

from __future__ import annotations

import tempfile
import textwrap
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl
import pytest

pytest.importorskip("duckdb")
pytest.importorskip("sqlglot")

import pg_fixture
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from test_pushdown import Duck, Pg, columns_for, reference

from chargeback.engine import polars_engine, pushdown
from chargeback.engine.duckdb_engine import DuckDBPrimitives
from chargeback.engine.pushdown_sql import WHITESPACE
from chargeback.errors import DataError
from chargeback.workspace.load import load_workspace
from chargeback.workspace.model import Workspace

pg_server = pg_fixture.pg_server

# ------------------------------------------------------------------ detector completeness

HOSTILE_CHARS = [*WHITESPACE, "\u200b", "\ufeff", "\u180e", "\x00", "\x01", "\x08", "\x1b",
                 "\x1f", "\x7f", "\x9f", "|", ",", ";", "a", "Z", "\u00e9", "\u0130"]  # fmt: skip
HOSTILE_TEXTS = ["", " ", "a ", " a", "a\u00a0", "\u3000a", "\u200ba", "a\u200b", "\ufeffa",
                 "a\ufeff", "a\tb", "a\nb", "a\rb", "a\r\n", "\ta", "a\x00b", "a\x7fb", "a\x85",
                 "phone", "Phone Call", "VIP", "x" * 1024, "x" * 1025, "\u00e9" * 1025,
                 "y" * 32768, "y" * 32769, "billing.late_fee"]  # fmt: skip
TEXT_COLUMNS = ["contact_id", "channel", "reason", "text", "product", "plan"]
HOSTILE_SECONDS: list[Any] = [0.0, -0.0, 5e-7, 2.5e-7, 1.5e-6, 0.0000005, 1e-9, 0.1, 0.5,
                              2592000.0, 2592000.0000001, 2592001, -1e-9, -1, 1e300, 900.5,
                              float("nan"), float("inf"), float("-inf"), 12.3456785,
                              0.3]  # fmt: skip
HOSTILE_MONEY: list[Any] = [0.0, 1e-10, 999999999999.99, 1e12, -1e12, 5e11, float("nan"),
                            float("inf"), 19.99, 1e-7]  # fmt: skip
WORKSPACES: dict[tuple[str, str], Path] = {}
RULES = """
departments:
  - {id: ops, name: Ops, cost_center: CC-1}
decisions:
  - {id: d1, title: D1, kind: fee, department: ops, effective: 2026-03-01}
costs:
  currency: EUR
  method: rates
  channels: {phone: {per_contact: 1.00, per_minute: 0.10}}
  default: {per_contact: 0.5}
rules:
  - {id: r1, decision: d1, match: {channel: [phone], reason: ["billing*"]}}
  - {id: r2, decision: d1, match: {tags: [vip, "a*"], text: ["a"]}}
  - {id: r3, decision: d1, match: {fields: {plan: [gold, "x*"]}, product: [p1]}}
  - {id: r4, decision: d1, match: {text_regex: "\\\\bb"}, baseline: {lookback_days: 20}}
"""


def hostile_workspace(tz: str, sep: str) -> Path:
    """One workspace per zone and tags separator, made once (hypothesis reuses them)."""
    key = (tz, sep)
    if key not in WORKSPACES:
        ws = Path(tempfile.mkdtemp(prefix="pushdown-ws-"))
        (ws / "rules").mkdir()
        (ws / "rules" / "main.yaml").write_text(textwrap.dedent(RULES), encoding="utf-8")
        (ws / "chargeback.yaml").write_text(
            f"timezone: {tz}\ntags_separator: '{sep}'\n"
            "values:\n  channel: {'Phone Call': phone, a: 'b c'}\n  tags: {VIP: vip, Z: 'z z'}\n",
            encoding="utf-8",
        )
        WORKSPACES[key] = ws
    return WORKSPACES[key]


def base_rows(n: int = 6) -> dict[str, list[Any]]:
    return {
        "contact_id": [f"c{i}" for i in range(n)],
        "started_at": [datetime(2026, 3, 1 + 5 * i, 3 * i, tzinfo=UTC) for i in range(n)],
        "channel": ["phone", "chat", "Phone Call", "email", "phone", "chat"][:n],
        "reason": ["billing.late_fee", None, "tech", "billing", None, "x"][:n],
        "text": ["a b", "late fee", None, "b\nb", "A", "é"][:n],
        "product": ["p1", None, "p2", "p1", "p1", None][:n],
        "plan": ["gold", "xy", None, "silver", "gold", "x"][:n],
        "tags": [["vip", "a1"], None, ["VIP"], ["b", "Z"], ["c"], ["a|b"]][:n],
        "handle_seconds": [0.0, 12.5, 100.25, None, 7.0, 3600.0][:n],
        "revenue": [Decimal("1.50"), None, Decimal("0"), Decimal("-2"), None, Decimal("9")][:n],
    }


@st.composite
def hostile(draw: st.DrawFn, nul: bool, lists: bool = True) -> tuple[str, Any, str]:
    """(column, hostile value, how the column is typed) for one extra row."""
    kind = draw(st.sampled_from(["text", "text", "dup", "seconds", "time", "tags", "revenue"]))
    chars = [c for c in HOSTILE_CHARS if nul or c != "\x00"]
    texts = [t for t in HOSTILE_TEXTS if nul or "\x00" not in t]
    raw = st.text(alphabet=chars, max_size=5)
    inside = st.builds(
        lambda a, b, c: a + b + c, st.sampled_from("aZé"), raw, st.sampled_from("bY1")
    )
    word = st.one_of(raw, inside, inside, st.sampled_from(texts))
    if kind == "text":
        return draw(st.sampled_from(TEXT_COLUMNS)), draw(word), "text"
    if kind == "dup":
        return "contact_id", draw(st.sampled_from(["c0", "c5"])), "text"
    if kind == "seconds":
        how = draw(st.sampled_from(["float", "decimal", "integer", "text"]))
        if how == "integer":
            return "handle_seconds", draw(st.integers(-(2**40), 2**40) | st.just(2592000)), how
        if how == "decimal":
            value = draw(st.decimals(-10, 2592001, places=9, allow_nan=False, allow_infinity=False))
            return "handle_seconds", value, how
        if how == "text":
            numbers = st.sampled_from(["12", "12.5", "0.0000005", "1e3", "+5", "5.", ".5",
                                       "-0", "2592000", "2592000.1", "007", "1_0", "1,5",
                                       "NaN"])  # fmt: skip
            return "handle_seconds", draw(numbers | word), how
        floats = st.floats(-1e7, 1e7) | st.sampled_from(HOSTILE_SECONDS)
        return "handle_seconds", draw(floats), how
    if kind == "time":
        how = draw(st.sampled_from(["timestamptz", "timestamp", "date"]))
        edges = [datetime(1900, 1, 1), datetime(2200, 1, 1), datetime(1970, 1, 1),
                 datetime(2038, 1, 1), datetime(2026, 3, 8, 5), datetime(2026, 10, 4)]  # fmt: skip
        edge = draw(st.sampled_from(edges))
        when = edge + timedelta(minutes=draw(st.integers(-26 * 60, 26 * 60)))
        if how == "timestamptz":
            return "started_at", when.replace(tzinfo=UTC), how
        return "started_at", when.date() if how == "date" else when, how
    if kind == "tags":
        if lists and draw(st.booleans()):
            return "tags", draw(st.lists(st.none() | word | word, max_size=3)), "list"
        return "tags", draw(word), "text"
    how = draw(st.sampled_from(["float", "decimal", "text"]))
    if how == "float":
        return "revenue", draw(st.sampled_from(HOSTILE_MONEY) | st.floats()), how
    if how == "decimal":
        value = Decimal(draw(st.sampled_from(["999999999999.99", "-1000000000000", "0.000000001"])))
        return "revenue", value, how
    return "revenue", draw(word | st.sampled_from(["12.5", "1e3", "-0.5", "1000000000000"])), how


def hostile_frame(column: str, value: Any, how: str, sep: str, lists: bool = True) -> pl.DataFrame:
    rows = base_rows()
    for name, values in rows.items():
        values.append(value if name == column else None)
    rows["contact_id"][-1] = value if column == "contact_id" else "h"
    rows["channel"][-1] = value if column == "channel" else "chat"
    rows["started_at"][-1] = value if column == "started_at" else datetime(2026, 3, 9, tzinfo=UTC)
    if column == "started_at" and how != "timestamptz":
        rows["started_at"] = [v.replace(tzinfo=None) for v in rows["started_at"][:-1]] + [value]
        if how == "date":
            rows["started_at"] = [
                v.date() if isinstance(v, datetime) else v for v in rows["started_at"]
            ]
    schema: dict[str, Any] = {n: pl.String for n in rows}
    schema["tags"] = pl.List(pl.String)
    if (column == "tags" and how == "text") or not lists:
        last = value if column == "tags" else None
        rows["tags"] = [None if t is None else sep.join(t) for t in rows["tags"][:-1]] + [last]
        schema["tags"] = pl.String
    stamps = {"timestamptz": pl.Datetime("us", "UTC"), "timestamp": pl.Datetime("us"),
              "date": pl.Date}  # fmt: skip
    schema["started_at"] = stamps.get(how if column == "started_at" else "", stamps["timestamptz"])
    number = {
        "float": pl.Float64,
        "decimal": pl.Decimal(24, 9),
        "integer": pl.Int64,
        "text": pl.String,
    }
    schema["handle_seconds"] = number[how] if column == "handle_seconds" else pl.Float64
    schema["revenue"] = number[how] if column == "revenue" else pl.Decimal(24, 9)
    if column in ("handle_seconds", "revenue") and how == "text":
        rows[column] = [None if v is None else str(v) for v in rows[column][:-1]] + [value]
    if column == "handle_seconds" and how == "integer":
        rows[column] = [None if v is None else int(v) for v in rows[column][:-1]] + [value]
    if column == "handle_seconds" and how == "decimal":
        rows[column] = [None if v is None else Decimal(str(v)) for v in rows[column][:-1]] + [value]
    if column == "revenue" and how == "float":
        rows[column] = [None if v is None else float(v) for v in rows[column][:-1]] + [value]
    return pl.DataFrame(rows, schema=schema)


COMPARED = ["contact_id", "channel", "reason", "text", "product", "plan", "tags",
            "date", "period", "hs_us"]  # fmt: skip


def accepted(ws_root: Path, path: Path) -> tuple[Workspace, Any]:
    """The data layer's reading of rows the detector let through: it must take every one."""
    try:
        ws, loaded = reference(ws_root, path, quarantine=True)
    except DataError as exc:
        raise AssertionError(f"not flagged, but the data layer refuses: {exc}") from None
    assert loaded.rejected_count == 0, loaded.rejected
    return ws, loaded


def check_one(engine: Duck | Pg, tz: str, sep: str, case: tuple[str, Any, str]) -> bool:
    """True when the detector let the row through (and then everything agreed)."""
    column, value, how = case
    frame = hostile_frame(column, value, how, sep, lists=engine.dialect == "duckdb")
    ws_root = hostile_workspace(tz, sep)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "contacts.parquet"
        frame.write_parquet(path)
        relation, families = engine.load(frame, path)
        ws = load_workspace(ws_root)
        columns = columns_for(ws, families)
        got = pushdown.pushdown_aggregate(
            ws, relation, columns, engine, engine.prims(ws), engine.dialect
        )
        if got is None:
            return False
        ws, loaded = accepted(ws_root, path)
        plan = pushdown.plan(ws, relation, columns, engine.dialect)
        assert plan is not None
        names = [c for c in COMPARED if c in plan.schema]
        derived = engine.execute(
            f"SELECT {', '.join(f'{chr(34)}{n}{chr(34)}' for n in names)} FROM ({plan.derive}) AS x"
        )
        polars_rows = loaded.frame.select(names).sort("contact_id").rows()
        assert sorted(derived, key=lambda r: r[0]) == polars_rows
        assert got.aggregates == polars_engine.aggregate(ws, loaded.frame)
        return True


ZONES = ["UTC", "America/New_York", "Australia/Sydney"]


@settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))
@given(case=hostile(nul=True), tz=st.sampled_from(ZONES), sep=st.sampled_from(["|", ","]))
def test_detector_completeness_duckdb(case: tuple[str, Any, str], tz: str, sep: str) -> None:
    engine = Duck()
    try:
        passed = check_one(engine, tz, sep, case)
        event(f"{case[0]} ({case[2]}): {'pushed down' if passed else 'flagged'}")
    finally:
        engine.close()


@settings(max_examples=50, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    case=hostile(nul=False, lists=False),
    tz=st.sampled_from(ZONES),
    sep=st.sampled_from(["|", ","]),
)
def test_detector_completeness_postgres(
    pg_engine: Pg, case: tuple[str, Any, str], tz: str, sep: str
) -> None:
    passed = check_one(pg_engine, tz, sep, case)
    event(f"{case[0]} ({case[2]}): {'pushed down' if passed else 'flagged'}")


@pytest.fixture(scope="module")
def pg_engine(pg_server: Any) -> Any:
    """One session for the module (hypothesis reuses it); its password in PGPASSWORD only."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PGPASSWORD", pg_server.password)
        engine = Pg(pg_server.conninfo)
        yield engine
        engine.close()


def test_whitespace_is_what_polars_strips() -> None:
    """The detector's White_Space set is exactly what str.strip_chars() removes."""
    chars = [chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF]
    stripped = pl.Series([f"{c}x" for c in chars]).str.strip_chars().to_list()
    assert {c for c, s in zip(chars, stripped, strict=True) if s == "x"} == set(WHITESPACE)


NEAR_MISSES: list[tuple[str, Any, str]] = [  # unusual but accepted unchanged: never flagged
    ("text", "a\u200b", "text"), ("text", "\u200bb", "text"), ("channel", "\ufeffphone", "text"),
    ("text", "a\nb\r\nc", "text"), ("reason", "a\tb", "text"), ("plan", "a\x85b", "text"),
    ("reason", "x" * 1024, "text"), ("text", "y" * 32768, "text"), ("channel", "a", "text"),
    ("channel", "\u00e9\u0301" * 512, "text"), ("product", "\x80\x9f", "text"),
    ("handle_seconds", 1.7e-6, "float"), ("handle_seconds", 0.1, "float"),
    ("handle_seconds", 2592000.0, "float"), ("handle_seconds", -0.0, "float"),
    ("handle_seconds", Decimal("12.123456"), "decimal"), ("handle_seconds", "0012.5", "text"),
    ("handle_seconds", 2592000, "integer"), ("tags", ["a|b", "c d", "Z"], "list"),
    ("tags", "a b|c,VIP", "text"), ("started_at", datetime(1970, 1, 1, tzinfo=UTC), "timestamptz"),
    ("started_at", datetime(2037, 12, 31, 23, tzinfo=UTC), "timestamptz"),
    ("started_at", datetime(1900, 1, 1), "timestamp"), ("started_at", date(2199, 12, 31), "date"),
    ("revenue", 999999999999.0, "float"), ("revenue", "-999999999999.123456789", "text"),
]  # fmt: skip


@pytest.mark.parametrize("case", NEAR_MISSES, ids=lambda c: f"{c[0]}-{c[2]}")
def test_near_misses_are_pushed_down(case: tuple[str, Any, str]) -> None:
    engine = Duck()
    try:
        for tz in ("UTC", "America/New_York"):
            assert check_one(engine, tz, "|", case), f"flagged in {tz}"
    finally:
        engine.close()


def test_what_is_not_handled_returns_none(tmp_path: Path) -> None:
    """A shape the SQL does not reproduce exactly: None, and the caller reads as always."""
    engine = Duck()
    ws = load_workspace(hostile_workspace("UTC", "|"))
    frame = hostile_frame("text", "ok", "text", "|")
    path = tmp_path / "c.parquet"
    frame.write_parquet(path)
    relation, families = engine.load(frame, path)
    columns = columns_for(ws, families)

    def run(cols: dict[str, tuple[str, str]], workspace: Workspace = ws) -> Any:
        return pushdown.pushdown_aggregate(
            workspace, relation, cols, engine, DuckDBPrimitives(), "duckdb"
        )

    try:
        assert run(columns) is not None
        assert run({**columns, "started_at": ("started_at", "text")}) is None  # text stamps
        assert run({**columns, "handle_seconds": ("handle_seconds", "other")}) is None
        assert run({**columns, "contact_id": ("contact_id", "integer")}) is None
        assert run({k: v for k, v in columns.items() if k != "plan"}) is None  # a field column
        assert run({k: v for k, v in columns.items() if k != "channel"}) is None
        (hostile_workspace("UTC", "|") / "chargeback.yaml").read_text()
        fmt = tmp_path / "fmt"
        fmt.mkdir()
        (fmt / "rules").mkdir()
        (fmt / "rules" / "main.yaml").write_text(textwrap.dedent(RULES), encoding="utf-8")
        (fmt / "chargeback.yaml").write_text('timestamp_format: "%d/%m/%Y"\n', encoding="utf-8")
        assert run(columns, load_workspace(fmt)) is None
        engine.execute("DELETE FROM src")
        assert run(columns) is None  # no rows: the usual path says so
    finally:
        engine.close()


def test_source_collation_is_ignored() -> None:
    """A case-insensitive column still groups and matches by exact bytes."""
    engine = Duck()
    try:
        engine.con.execute(
            "CREATE TABLE src (contact_id VARCHAR COLLATE NOCASE, started_at TIMESTAMP, "
            "channel VARCHAR COLLATE NOCASE)"
        )
        engine.con.execute(
            "INSERT INTO src VALUES ('a', '2026-03-02', 'phone'), ('A', '2026-03-03', 'PHONE')"
        )
        ws = load_workspace(hostile_workspace("UTC", "|"))
        columns = {n: (n, "text") for n in ("contact_id", "channel")}
        columns["started_at"] = ("started_at", "timestamp")
        columns["plan"] = ("channel", "text")
        got = pushdown.pushdown_aggregate(ws, "src", columns, engine, DuckDBPrimitives(), "duckdb")
        assert got is not None and got.channels == {"PHONE": 1, "phone": 1}
    finally:
        engine.close()
