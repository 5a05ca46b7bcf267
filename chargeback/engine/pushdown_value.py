"""The CS-value report's contact side where the contacts are (SPEC 7, SPEC 10, issue 15).

On duckdb, postgres and spark, once the in-engine ledger's detector has passed
every row (so the pushdown's base equals what the data layer would give:
engine/pushdown.py; on Spark with local time from polars' offsets, as the
ledger's scans take it), the contacts the report reads go into a temporary
table and grouped queries return value_facts.ContactFacts, the very rows facts_from_frame
computes from the read-out frame; value.py then does one arithmetic for both.

What leaves the engine: grouped rows per (month, channel), per month, per
(month, reason[, channel]) of repeats, plus two per-customer tables that must
meet the orders, which stay a polars frame: each customer's first contact of a
month (one row per customer and month) and each saved contact with a customer
(one row per save). Both are far fewer than the contacts.

Exactness:
- the instant `t` is value_units.instant's: the local wall clock read back in
  the workspace zone with polars' own offsets (data.local_time), the earlier
  reading of an ambiguous hour, the wall clock as UTC in a skipped one;
- revenue to whole cents half away from zero on the exact decimal, as
  value_units.money_cents; a float revenue (DuckDB, Spark) is read by the data layer
  through its shortest text, so the sales' distinct (month, revenue) pairs come
  back with their counts and polars takes them to cents with the data layer's
  own expression (one row per distinct amount sold in a month);
- a repeat has a latest strictly earlier contact of the customer, at or after
  1970 (value_facts' marker), less than the window before.

Falls back (None, the run reads the contacts out): a float revenue column on
PostgreSQL (read through text) or a 4-byte one anywhere, a decimal revenue
with more than 9 decimals, PostgreSQL before 14 (extract() not exact), local
times spanning over 40 years in a zone other than UTC, anything plan() refuses.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import polars as pl

from chargeback.data.checks import MONEY_TYPE
from chargeback.data.local_time import MAX_SPAN, transitions
from chargeback.engine.pushdown import Logged, Plan, plan
from chargeback.engine.pushdown_spark_sql import spark_literal
from chargeback.engine.pushdown_sql import UTC_NAMES, Dialect, literal
from chargeback.engine.sql_aggregate import Connection
from chargeback.engine.sql_compile import Primitives
from chargeback.engine.value_facts import (
    BY_CHANNEL,
    FIRSTS,
    NO_REASON,
    REPEAT_BASE,
    REPEAT_GROUPS,
    REPEAT_REASONS,
    SAVED,
    WON,
    ContactFacts,
    facts_frame,
)
from chargeback.engine.value_units import DAY_US, NO_OUTCOME, money_cents
from chargeback.workspace.model import Workspace

ROWS, TABLE, FLAGGED = "cb_value_rows", "cb_value", "cb_value_repeats"
EPOCH = datetime(1970, 1, 1)
REVENUE_FAMILIES = ("integer", "decimal", "text")  # read as exact decimals, as polars does


class EngineValue(ContactFacts):
    """ContactFacts computed in the engine (compute_value takes it for the contacts)."""


def engine_value(
    ws: Workspace,
    orders: bool,
    raw: Connection,
    relation: str,
    columns: dict[str, tuple[str, str]],
    prims: Primitives,
    dialect: str,
    log: list[str] | None,
) -> EngineValue | None:
    """The CS-value report's facts from the source (every row passed the detector), or None.
    `orders`: the run has orders, so the per-customer rows that meet them are wanted."""
    if dialect not in ("duckdb", "postgres", "spark"):
        return None
    if "revenue" in columns and not _revenue_ok(columns["revenue"][1], dialect):
        return None
    p = plan(ws, relation, columns, dialect)
    if p is None:
        return None
    d = p.dialect
    con = Logged(raw, log)  # Spark's connection logs its own statements (log is None)
    base: str | None = p.base
    if dialect == "spark":
        base = _spark_base(con, p)
    if base is None:
        return None
    if d.pg:
        ((version,),) = con.execute("SHOW server_version_num")
        if int(version) < 140000:
            return None
    # the rows are read twice (their span, then the table with the instant): a view on
    # DuckDB and PostgreSQL, not a copy of the contacts; Spark's temporary table is a view
    kind = "VIEW" if dialect in ("duckdb", "postgres") else "TABLE"
    try:
        con.execute(f"CREATE TEMP {kind} {ROWS} AS {_rows(d, columns, base)}")
        checks = (
            f"SELECT MIN(local_us), MAX(local_us), COUNT(*) FILTER (WHERE NOT rev_ok) FROM {ROWS}"
        )
        ((low, high, inexact),) = con.execute(checks)
        if low is None or inexact:
            return None
        t = _instant("local_us", ws.settings.timezone, int(low), int(high))
        if t is None:
            return None
        con.execute(f"CREATE TEMP TABLE {TABLE} AS SELECT *, {t} AS t FROM {ROWS}")
        return _facts(ws, con, d, columns.get("revenue", ("", ""))[1] == "float", orders)
    finally:
        for name in (FLAGGED, TABLE):
            con.execute(f"DROP TABLE IF EXISTS {name}")
        con.execute(f"DROP {kind} IF EXISTS {ROWS}")


def _revenue_ok(family: str, dialect: str) -> bool:
    """Parquet's doubles reach DuckDB, Spark and polars alike; PostgreSQL's come as text."""
    return family in REVENUE_FAMILIES or (family == "float" and dialect != "postgres")


def _spark_base(con: Logged, p: Plan) -> str | None:
    """Plan.base with `local` as the instant plus polars' offset, as the ledger's scans
    compute it on Spark (pushdown_spark_review.spark_derive, whose base this is)."""
    from chargeback.engine.pushdown_spark_review import spark_derive

    derive = spark_derive(con, p)
    tail = f" FROM ({p.base}) AS b"
    if derive is None or not p.derive.endswith(tail):
        return None
    head = p.derive.removesuffix(tail) + " FROM ("
    if not (derive.startswith(head) and derive.endswith(") AS b")):
        return None
    return derive[len(head) : -len(") AS b")]


def _lit(d: Dialect, text: str) -> str:
    """A string literal: Spark's take backslash escapes, the others' do not."""
    return spark_literal(text) if d.name == "spark" else literal(text)


def _sum(d: Dialect, expr: str) -> str:
    """An exact sum of integers: Spark's SUM of a BIGINT is a BIGINT, which may wrap."""
    return f"SUM(CAST({expr} AS DECIMAL(38, 0)))" if d.name == "spark" else f"SUM({expr})"


def _double(d: Dialect) -> str:
    return "DOUBLE PRECISION" if d.pg else "DOUBLE"


def _rows(d: Dialect, columns: dict[str, tuple[str, str]], base: str) -> str:
    """The columns the report reads, from the pushdown's base (the data layer's values)."""
    q = d.ident

    def text(name: str) -> str:
        return q(f"m_{name}") if name in columns else d.null_text()

    reason = f"COALESCE({q('m_reason')}, {_lit(d, NO_REASON)})" if "reason" in columns else None
    hs = f"COALESCE({q('hs_us')}, 0)" if "handle_seconds" in columns else "0"
    local = q("local")
    local_us = (
        f"CAST(extract(epoch FROM {local}) * 1000000 AS BIGINT)" if d.pg else d.epoch_us(local)
    )
    items = [
        f"{text('contact_id')} AS contact_id",
        f"{q('period')} AS period",
        f"{text('channel')} AS channel",
        f"{reason or _lit(d, NO_REASON)} AS reason",
        f"CAST({hs} AS BIGINT) AS hs_us",
        f"{local_us} AS local_us",
        f"{text('customer_id')} AS customer_id",
        f"{text('outcome')} AS outcome",
    ]
    if "revenue" in columns and columns["revenue"][1] == "float":
        items += [
            "CAST(NULL AS BIGINT) AS revenue_cents",
            "TRUE AS rev_ok",
            f"{q('x_revenue')} AS revenue_f",
        ]
    elif "revenue" in columns:
        x = q("x_revenue")
        exact = d.decimal(x, "38, 9")
        cents = (
            f"CAST(CASE WHEN {exact} >= 0 THEN floor({exact} * 100 + 0.5) "
            f"ELSE -floor(-{exact} * 100 + 0.5) END AS BIGINT)"
        )
        exact_ok = f"({x} IS NULL OR {x} = {exact}) AS rev_ok"
        items += [
            f"{cents} AS revenue_cents",
            exact_ok,
            f"CAST(NULL AS {_double(d)}) AS revenue_f",
        ]
    else:
        items += [
            "CAST(NULL AS BIGINT) AS revenue_cents",
            "TRUE AS rev_ok",
            f"CAST(NULL AS {_double(d)}) AS revenue_f",
        ]
    return f"SELECT {', '.join(items)} FROM ({base}) AS b"


def _instant(local_us: str, tz: str, low: int, high: int) -> str | None:
    """value_units.instant in SQL: the local wall clock (µs) back to a UTC instant (µs).

    Interval k of polars' offsets holds the instants [s_k, s_k+1) at offset o_k, so
    the wall clocks [s_k + o_k, s_k+1 + o_k). The first interval holding a wall clock
    gives its earliest reading (ambiguous="earliest"); none, a skipped wall clock,
    is kept as it is (non_existent="null", then fill_null(local)).
    """
    if tz in UTC_NAMES:
        return local_us
    first = EPOCH + timedelta(microseconds=low - 2 * DAY_US)
    last = EPOCH + timedelta(microseconds=high + 2 * DAY_US)
    if last - first > MAX_SPAN:
        return None
    starts, offsets = transitions(first, last, tz)
    whens = []
    for k, (start, off) in enumerate(zip(starts, offsets, strict=True)):
        conds = []
        if k > 0:
            conds.append(f"{local_us} >= {start + off}")
        if k + 1 < len(starts):
            conds.append(f"{local_us} < {starts[k + 1] + off}")
        shifted = f"{local_us} - CAST({off} AS BIGINT)"
        if not conds:
            return shifted  # one offset over the whole span
        whens.append(f"WHEN {' AND '.join(conds)} THEN {shifted}")
    return f"CASE {' '.join(whens)} ELSE {local_us} END"


def _any_of(d: Dialect, values: tuple[str, ...] | list[str]) -> str:
    if not values:
        return "FALSE"
    return f"outcome IN ({', '.join(_lit(d, v) for v in values)})"


def _float_won(con: Logged, won: pl.DataFrame, sale: str) -> pl.DataFrame:
    """The sales' float revenue in cents per month: each distinct amount as the data layer
    reads a float (chargeback.data.checks: its shortest text as Decimal(38, 9)), to cents
    as value_units.money_cents, times the sales at that amount."""
    rows = con.execute(
        f"SELECT period, revenue_f, COUNT(*) FROM {TABLE} "
        f"WHERE {sale} AND revenue_f IS NOT NULL GROUP BY 1, 2"
    )
    schema = {"period": pl.String, "revenue": pl.Float64, "n": pl.Int64}
    sold = pl.DataFrame(rows, schema=schema, orient="row").with_columns(
        pl.col("revenue").cast(pl.String).cast(MONEY_TYPE, strict=False)
    )
    sums = sold.group_by("period").agg((money_cents("revenue") * pl.col("n")).sum().alias("won"))
    return won.drop("won").join(sums, on="period", how="left").select(list(WON))


def _facts(ws: Workspace, con: Logged, d: Dialect, floats: bool, orders: bool) -> EngineValue:
    settings = ws.settings.value
    ((n_customer, n_outcome, n_revenue, first),) = con.execute(
        f"SELECT COUNT(customer_id), COUNT(outcome), COUNT(revenue_cents) + COUNT(revenue_f), "
        f"MIN(period) FROM {TABLE}"
    )
    has = frozenset(
        name
        for name, n in (("customer_id", n_customer), ("outcome", n_outcome), ("revenue", n_revenue))
        if n
    )
    by_channel = facts_frame(
        con.execute(
            f"SELECT period, channel, COUNT(*), {_sum(d, 'hs_us')} FROM {TABLE} GROUP BY 1, 2"
        ),
        BY_CHANNEL,
    )
    won = saved = base = reasons = groups = firsts = None
    if "outcome" in has:
        sale, save = _any_of(d, settings.sale_outcomes), _any_of(d, settings.save_outcomes)
        won = facts_frame(
            con.execute(
                f"SELECT period, {_sum(d, f'CASE WHEN {sale} THEN 1 ELSE 0 END')}, "
                f"{_sum(d, f'CASE WHEN {save} THEN 1 ELSE 0 END')}, "
                f"{_sum(d, f'CASE WHEN {sale} THEN revenue_cents END')} FROM {TABLE} GROUP BY 1"
            ),
            WON,
        )
        if floats:
            won = _float_won(con, won, sale)
        if "customer_id" in has and orders:
            saved = con.typed(
                f"SELECT period, customer_id, t FROM {TABLE} "
                f"WHERE {save} AND customer_id IS NOT NULL",
                SAVED,
            )
    if "customer_id" in has:
        window = settings.repeat_window_days * DAY_US
        earlier = (
            "MAX(t) OVER (PARTITION BY customer_id ORDER BY t "
            "RANGE BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)"
        )
        con.execute(
            f"CREATE TEMP TABLE {FLAGGED} AS SELECT period, reason, channel, hs_us, "
            f"CASE WHEN prev >= 0 AND t - prev < {window} THEN 1 ELSE 0 END AS r "
            f"FROM (SELECT *, {earlier} AS prev FROM {TABLE} "
            "WHERE customer_id IS NOT NULL) AS e"
        )
        base = facts_frame(
            con.execute(f"SELECT period, COUNT(*), {_sum(d, 'r')} FROM {FLAGGED} GROUP BY 1"),
            REPEAT_BASE,
        )
        reasons = facts_frame(
            con.execute(
                f"SELECT period, reason, COUNT(*), {_sum(d, 'r')} FROM {FLAGGED} GROUP BY 1, 2"
            ),
            REPEAT_REASONS,
        )
        groups = facts_frame(
            con.execute(
                f"SELECT period, reason, channel, COUNT(*), {_sum(d, 'hs_us')} FROM {FLAGGED} "
                "WHERE r = 1 GROUP BY 1, 2, 3"
            ),
            REPEAT_GROUPS,
        )
    if "customer_id" in has and orders:
        order = f"t, {d.text('contact_id')}"  # polars sorts ids by their bytes
        firsts = con.typed(
            f"SELECT period, customer_id, t, COALESCE(outcome, {_lit(d, NO_OUTCOME)}) "
            f"FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY period, customer_id "
            f"ORDER BY {order}) AS k FROM {TABLE} WHERE customer_id IS NOT NULL) AS f "
            "WHERE k = 1",
            FIRSTS,
        )
    return EngineValue(
        has=has,
        first_period=None if first is None else str(first),
        by_channel=by_channel,
        won=won,
        saved=saved,
        repeat_base=base,
        repeat_reasons=reasons,
        repeat_groups=groups,
        firsts=firsts,
    )
