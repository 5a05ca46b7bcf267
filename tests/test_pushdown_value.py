"""The CS-value report's contact side in the engine (engine/pushdown_value.py, SPEC 7, 10).

On duckdb (typed Parquet files, a `duckdb:///` database) and a real PostgreSQL, a
report with json sums the ledger in the engine and now groups the CS-value
report's contact side there too. cs_value.json must be byte for byte the read-out
path's (`--engine polars`, or the engine's own with engine_value switched off for
a database only its engine reads), and `result.extras.value` shows the in-engine
facts were used. The data is built around SPEC 7's edges in a zone with DST: a
repeat exactly at the window and one microsecond inside it (across the spring
change), two contacts at the same instant, two in the repeated hour of the fall
change (the same wall clock, read back as its earlier instant), a wall clock in
the skipped hour (naive timestamps), revenue ties half away from zero, saves with
and without a customer, orders 365 days before a save and at it, a horizon past
the last order, several months; with and without orders, and with customer_id,
outcome and revenue each present or absent; revenue as a decimal, text or a float
(read through its shortest text); the generated sample; and random contacts
clustered on those edges. Spark: test_spark_value.py.
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import polars as pl
import pytest
from conftest import write_workspace
from pg_fixture import pg, pg_server  # noqa: F401  (fixtures)

from chargeback.engine import pushdown_value
from chargeback.report import ReportOptions
from chargeback.run import run_report

duckdb = pytest.importorskip("duckdb")
pytest.importorskip("sqlglot")

RULES = """
decisions:
  - {id: fee, title: Fee, kind: fee, department: billing, effective: 2026-03-01}
rules:
  - {id: fee-calls, decision: fee, match: {reason: ["billing*"]}, share: 0.5}
"""
# America/New_York: DST starts 2026-03-08 07:00Z, ends 2026-11-01 06:00Z.
CONTACTS = """
contact_id,started_at,channel,reason,handle_seconds,customer_id,outcome,revenue
a1,2026-03-01T15:00:00Z,phone,billing.fee,60,A,resolved,
a2,2026-03-08T15:00:00Z,phone,tech.x,11,A,resolved,
g1,2026-03-01T15:00:00Z,chat,billing.fee,5,G,resolved,
g2,2026-03-08T14:59:59.999999Z,chat,other,5,G,sale,0.005
b2,2026-03-05T09:00:00Z,chat,billing.fee,,B,resolved,5.00
b1,2026-03-05T09:00:00Z,chat,other,,B,saved,
b3,2026-03-06T09:00:00Z,email,,,B,escalated,
c1,2026-03-10T12:00:00Z,phone,sales.new,1,C,sale,10.125
c2,2026-03-25T04:00:00Z,phone,account.cancel,7,C,saved,
n1,2026-03-15T08:00:00Z,chat,account.cancel,,,saved,
n2,2026-03-16T08:00:00Z,sms,sales.new,,,upsell,20.00
r1,2026-03-31T03:59:59Z,sms,refund,,D,sale,-2.675
d1,2026-04-01T04:00:00Z,email,other,,D,,
a3,2026-04-28T10:00:00Z,chat,other,,A,resolved,
a4,2026-05-02T10:00:00Z,phone,billing.fee,120,A,resolved,
h2,2026-11-01T06:30:00Z,chat,other,30,H,saved,
h1,2026-11-01T05:30:00Z,chat,billing.fee,30,H,sale,1.5
h3,2026-11-07T06:00:00Z,phone,other,30,H,resolved,
e1,2026-12-20T05:00:00Z,email,other,,E,saved,
"""
# a2: exactly 7 days after a1 (across the spring change) -> not a repeat; g2: 1 us inside.
# h1 (01:30 EDT) and h2 (01:30 EST): the same wall clock, read back as h1's instant: a
# tie, so h2 is no repeat and H's first contact is h1 (ids ascending); h3 is 6 days 23:30
# after that instant -> a repeat.
ORDERS = """
customer_id,ordered_at,amount
C,2025-03-25T04:00:00Z,11.11
C,2025-03-25T03:59:59Z,50.00
C,2026-03-10T12:00:00Z,5.00
C,2026-03-20T12:00:00Z,7.125
C,2026-03-25T04:00:00Z,2.22
B,2026-03-06T09:00:00Z,40.00
H,2026-11-02T00:00:00Z,3.50
E,2026-12-21T00:00:00Z,9.99
Z,2026-12-30T00:00:00Z,1.00
"""
VALUE = """
timezone: America/New_York
value:
  sale_outcomes: [sale, upsell]
  save_outcomes: [saved]
  save_value: 120.50
  repeat_window_days: 7
  horizons_days: [10, 30, 400]
"""
OPTIONAL = ("customer_id", "outcome", "revenue")


def workspace(root: Path, with_orders: bool, drop: tuple[str, ...] = ()) -> Path:
    write_workspace(root, RULES, CONTACTS, settings=VALUE)
    (root / "orders.csv").write_text(textwrap.dedent(ORDERS).lstrip())
    frame = typed(pl.read_csv(root / "contacts.csv", infer_schema=False)).drop(drop)
    frame.write_parquet(root / "contacts.parquet")
    settings(root, "contacts: contacts.parquet\n", with_orders)
    return root


def typed(frame: pl.DataFrame) -> pl.DataFrame:
    """An instant, a float handle time, revenue as an exact decimal (as platforms write)."""
    return frame.with_columns(
        pl.col("started_at").str.to_datetime(time_zone="UTC", time_unit="us"),
        pl.col("handle_seconds").cast(pl.Float64),
        pl.col("revenue").cast(pl.Decimal(12, 3)),
    )


def settings(root: Path, source: str, with_orders: bool) -> None:
    orders = "orders: orders.csv\n" if with_orders else ""
    (root / "chargeback.yaml").write_text(source + textwrap.dedent(VALUE) + orders)


def cs_value(root: Path, engine: str, out: Path) -> tuple[bytes, bool]:
    """cs_value.json of a json report, and whether the engine gave the value's facts."""
    opts = ReportOptions(workspace=root, out=out, formats=("json",), engine=engine)
    result = run_report(opts)
    in_engine = result.extras is not None and result.extras.value is not None
    text = (out / "cs_value.json").read_bytes()
    return re.sub(rb'"generated_at": "[^"]*"', b'"generated_at": ""', text), in_engine


def read_out(root: Path, engine: str, out: Path) -> bytes:
    """The engine's own run with the value's facts read out (the run reads the contacts)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(pushdown_value, "engine_value", lambda *args, **kwargs: None)
        got, in_engine = cs_value(root, engine, out)
    assert not in_engine
    return got


def same(root: Path, engine: str, tmp: Path, polars: bool = True) -> bytes:
    """The engine's cs_value.json, from its facts, equals the read-out path's."""
    got, in_engine = cs_value(root, engine, tmp / f"{engine}-in")
    assert in_engine, "the value's facts were not computed in the engine"
    assert got.splitlines() == read_out(root, engine, tmp / f"{engine}-out").splitlines()
    if polars:
        want, _ = cs_value(root, "polars", tmp / "polars")
        assert got.splitlines() == want.splitlines()
    return got


@pytest.mark.parametrize("with_orders", [True, False], ids=["orders", "no-orders"])
@pytest.mark.parametrize(
    "drop",
    [(), ("revenue",), ("outcome",), ("customer_id",), OPTIONAL],
    ids=["all", "no-revenue", "no-outcome", "no-customer", "none"],
)
def test_parquet_in_duckdb_gives_the_read_out_value(
    tmp_path: Path, with_orders: bool, drop: tuple[str, ...]
) -> None:
    root = workspace(tmp_path / "ws", with_orders, drop)
    got = same(root, "duckdb", tmp_path)
    if not drop and with_orders:
        text = got.decode()
        assert '"repeats"' in text and '"after_contact"' in text and '"cohorts"' in text


def test_the_edges_are_where_the_spec_puts_them(tmp_path: Path) -> None:
    """Not only equal: the figures the edges above decide (a check on the fixture)."""
    import json

    root = workspace(tmp_path / "ws", True)
    got, _ = cs_value(root, "duckdb", tmp_path / "out")
    periods = json.loads(got)["periods"]
    march, november = periods["2026-03"], periods["2026-11"]
    # B: b2 (tie, no), b3 (yes); G: g2 (yes); A: a2 (exactly 7 days: no); C: no
    assert march["repeats"] == 2
    assert november["repeats"] == 1  # h3 only: h2 ties h1's instant
    assert november["after_contact"]["sale"]["10"]["orders_after"] == "3.50"  # H's first: h1
    assert november["after_contact"]["sale"]["400"]["orders_after"] is None
    # 10.13 (c1) + 0.01 (g2) + 20.00 (n2) - 2.68 (r1: half away from zero)
    assert march["revenue_won"] == "27.46"
    assert march["save_value_total"] == "23.24"  # c2: 11.11 + 5.00 + 7.13 (t - 365 d in, t out)


def test_an_empty_column_is_absent_in_the_engine_too(tmp_path: Path) -> None:
    root = workspace(tmp_path / "ws", True)
    frame = pl.read_parquet(root / "contacts.parquet")
    frame.with_columns(pl.lit(None, dtype=pl.String).alias("outcome")).write_parquet(
        root / "contacts.parquet"
    )
    same(root, "duckdb", tmp_path)


def test_a_float_revenue_gives_the_read_out_value(tmp_path: Path) -> None:
    """The data layer reads a float through its shortest text (2.675, not 2.67499...): the
    sales' distinct amounts leave DuckDB and are taken to cents as polars takes them."""
    root = workspace(tmp_path / "ws", True)
    frame = pl.read_parquet(root / "contacts.parquet")
    odd = {"h1": 1.00000000049, "g2": 2.675, "n2": 1e-7, "c1": 123456789.125}
    amount = pl.col("contact_id").replace_strict(odd, default=None, return_dtype=pl.Float64)
    revenue = pl.coalesce(amount, pl.col("revenue").cast(pl.Float64))
    frame.with_columns(revenue.alias("revenue")).write_parquet(root / "contacts.parquet")
    got = same(root, "duckdb", tmp_path)
    # March's sales: c1 123456789.13 (a tie), g2 2.68 (as written), n2 0.00, r1 -2.68
    assert b'"revenue_won": "123456789.13"' in got


def test_the_sample_gives_the_read_out_value(tmp_path: Path) -> None:
    """The generated sample: typed Parquet as a platform writes it (tags as lists, a float
    revenue), New York time, orders in Parquet, 24 months."""
    from chargeback.sample.generate import generate_sample

    generate_sample(tmp_path / "s", contacts=3000, seed=5)
    same(tmp_path / "s", "duckdb", tmp_path)


@pytest.mark.parametrize("revenue", ["decimal", "float"])
def test_a_duckdb_database_with_wall_clocks_gives_the_read_out_value(
    tmp_path: Path, revenue: str
) -> None:
    """Naive timestamps, one in the skipped hour of the spring change (kept as it is)."""
    root = workspace(tmp_path / "ws", True)
    if revenue == "float":
        frame = pl.read_parquet(root / "contacts.parquet")
        float_revenue = pl.col("revenue").cast(pl.Float64)
        frame.with_columns(float_revenue).write_parquet(root / "contacts.parquet")
    local = pl.col("started_at").dt.convert_time_zone("America/New_York").dt.replace_time_zone(None)
    frame = pl.read_parquet(root / "contacts.parquet").with_columns(local)
    skipped = pl.DataFrame(
        {"contact_id": ["k1", "k2"], "customer_id": ["K", "K"], "outcome": ["saved", "sale"]}
    ).with_columns(
        pl.Series("started_at", ["2026-03-08 02:30:00", "2026-03-15 02:29:00"]).str.to_datetime(
            time_unit="us"
        ),
        channel=pl.lit("chat"),
    )
    frame = pl.concat([frame, skipped], how="diagonal_relaxed")
    con = duckdb.connect(str(root / "cx.db"))
    con.register("frame", frame.to_arrow())
    con.execute("CREATE TABLE contacts AS SELECT * FROM frame")
    con.close()
    settings(root, 'contacts: {uri: "duckdb:///cx.db", table: contacts}\n', True)
    same(root, "duckdb", tmp_path, polars=False)


def pg_table(pg: str, root: Path, customer: str, revenue: str) -> None:  # noqa: F811
    import psycopg

    with psycopg.connect(pg, autocommit=True) as con:
        con.execute("CREATE SCHEMA IF NOT EXISTS support")
        con.execute("DROP TABLE IF EXISTS support.value")
        con.execute(
            "CREATE TABLE support.value (contact_id text, started_at timestamptz, channel text, "
            f"reason text, handle_seconds numeric(12,3), customer_id {customer}, outcome text, "
            f"revenue {revenue})"
        )
        with con.cursor().copy("COPY support.value FROM STDIN (FORMAT csv, HEADER true)") as copy:
            copy.write((root / "contacts.csv").read_bytes())


@pytest.mark.parametrize(
    ("with_orders", "customer", "revenue"),
    [
        (True, "text", "numeric(12,3)"),
        (False, "text", "numeric(12,3)"),
        (True, "bigint", "text"),
        (True, "text", "numeric"),
    ],
    ids=["orders", "no-orders", "bigint-ids-text-revenue", "numeric"],
)
def test_a_postgres_table_gives_the_read_out_value(
    tmp_path: Path,
    pg: str,  # noqa: F811
    with_orders: bool,
    customer: str,
    revenue: str,
) -> None:
    root = workspace(tmp_path / "ws", with_orders)
    if customer == "bigint":  # customers 1, 2, ... in the contacts and the orders alike
        for name in ("contacts.csv", "orders.csv"):
            text = (root / name).read_text()
            for i, letter in enumerate("ABCDEFGHZ"):
                text = text.replace(f",{letter},", f",{i + 1},").replace(
                    f"\n{letter},", f"\n{i + 1},"
                )
            (root / name).write_text(text)
        frame = typed(pl.read_csv(root / "contacts.csv", infer_schema=False))
        frame.write_parquet(root / "contacts.parquet")
    pg_table(pg, root, customer, revenue)
    settings(root, f'contacts: {{uri: "{pg}", table: support.value}}\n', with_orders)
    got = same(root, "postgres", tmp_path, polars=False)
    # the Parquet copy of the same contacts, read out by polars, says the same (but for the
    # inputs' fingerprint: another source)
    settings(root, "contacts: contacts.parquet\n", with_orders)
    want = cs_value(root, "polars", tmp_path / "polars-parquet")[0]
    assert unprinted(got).splitlines() == unprinted(want).splitlines()


def test_a_postgres_float_revenue_falls_back(tmp_path: Path, pg: str) -> None:  # noqa: F811
    """A double on PostgreSQL reaches the data layer as the export's text: read out."""
    root = workspace(tmp_path / "ws", True)
    pg_table(pg, root, "text", "double precision")
    settings(root, f'contacts: {{uri: "{pg}", table: support.value}}\n', True)
    got, in_engine = cs_value(root, "postgres", tmp_path / "pg")
    assert not in_engine
    settings(root, "contacts: contacts.parquet\n", True)
    want = cs_value(root, "polars", tmp_path / "polars")[0]
    assert unprinted(got).splitlines() == unprinted(want).splitlines()


def unprinted(text: bytes) -> bytes:
    return re.sub(rb'"fingerprint": "[^"]*"', b'"fingerprint": ""', text)


def random_workspace(root: Path, seed: int) -> Path:
    """Hundreds of contacts of few customers, clustered on the DST changes (the repeated
    hour included), at exact window distances and ties; revenue on half-cent ties."""
    import random
    from datetime import UTC, datetime, timedelta

    rng = random.Random(seed)
    write_workspace(root, RULES, "contact_id,started_at,channel\n", settings=VALUE)
    anchors = [datetime(2026, 3, 8, 7, tzinfo=UTC), datetime(2026, 11, 1, 6, tzinfo=UTC)]
    anchors += [datetime(2026, 1, 31, 23, tzinfo=UTC), datetime(2026, 6, 30, 4, tzinfo=UTC)]
    steps = [timedelta(days=7), timedelta(days=7, microseconds=-1), timedelta(hours=1)]
    rows, stamps = [], []
    for i in range(400):
        if stamps and rng.random() < 0.3:
            stamp = rng.choice(stamps) + rng.choice([*steps, timedelta(0)])
        else:
            stamp = rng.choice(anchors) + timedelta(minutes=rng.randint(-180, 180) * 10)
        stamps.append(stamp)
        rows.append(
            {
                "contact_id": f"c{rng.randint(0, 10**6):07d}-{i}",
                "started_at": stamp,
                "channel": rng.choice(["phone", "chat", "email"]),
                "reason": rng.choice(["billing.fee", "other", None]),
                "handle_seconds": float(rng.randint(0, 900)),
                "customer_id": rng.choice([*"ABCDEFGHIJKLMNOP", None]),
                "outcome": rng.choice(["sale", "upsell", "saved", "resolved", None]),
                "revenue": rng.choice([None, "0.005", "-2.675", "10.125", "99.994", "1"]),
            }
        )
    frame = pl.DataFrame(rows).with_columns(pl.col("revenue").cast(pl.Decimal(12, 3)))
    frame.write_parquet(root / "contacts.parquet")
    orders = pl.DataFrame(
        {
            "customer_id": [rng.choice("ABCDEFGHQ") for _ in range(120)],
            "ordered_at": [
                (rng.choice(stamps) + rng.choice([*steps, -steps[0], timedelta(days=-365)]))
                .isoformat()
                .replace("+00:00", "Z")
                for _ in range(120)
            ],
            "amount": [f"{rng.randint(-500, 50000) / 1000:.3f}" for _ in range(120)],
        }
    )
    orders.write_csv(root / "orders.csv")
    settings(root, "contacts: contacts.parquet\n", True)
    return root


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_contacts_on_the_edges_give_the_read_out_value(tmp_path: Path, seed: int) -> None:
    same(random_workspace(tmp_path / "ws", seed), "duckdb", tmp_path)


def test_random_contacts_in_postgres_give_the_read_out_value(
    tmp_path: Path,
    pg: str,  # noqa: F811
) -> None:
    root = random_workspace(tmp_path / "ws", 4)
    frame = pl.read_parquet(root / "contacts.parquet")
    frame.select(
        "contact_id",
        pl.col("started_at").dt.strftime("%Y-%m-%dT%H:%M:%S%.6fZ"),
        "channel",
        "reason",
        "handle_seconds",
        "customer_id",
        "outcome",
        "revenue",
    ).write_csv(root / "contacts.csv")
    pg_table(pg, root, "text", "numeric(12,3)")
    settings(root, f'contacts: {{uri: "{pg}", table: support.value}}\n', True)
    got = same(root, "postgres", tmp_path, polars=False)
    settings(root, "contacts: contacts.parquet\n", True)
    want = cs_value(root, "polars", tmp_path / "polars-parquet")[0]
    assert unprinted(got).splitlines() == unprinted(want).splitlines()
