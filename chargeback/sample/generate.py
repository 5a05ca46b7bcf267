"""The built-in sample workspace and its deterministic data generator.

The sample company is Harborline Communications, a US provider of mobile
plans, home fiber and the Harbor+ streaming add-on, with its contact centre
in New York time. Over the twenty-four months Dec 2024 - Nov 2026 eighteen
decisions of seven departments each set off a wave of contacts on top of an
ordinary, seasonal base load; the rules in `rules/*.yaml` are written to find
those waves. The story is data, `story.yaml` next to this module (read and
checked by `story.py` into `STREAMS` and the calendar, customer and order
knobs); this module turns it into `contacts.parquet` and `orders.parquet`.

Why it is built this way:
- The rules' YAML is hand-written and shipped in the package; the generator
  copies it instead of writing its own, so rules and data cannot drift apart.
  The dates, reasons, tags and texts in story.yaml are chosen to match them.
- The story is a commented data file rather than Python literals so that
  someone from finance or customer service can follow it and change it;
  story.py turns a slip there into an error naming the line.
- Randomness is a SplitMix64 hash of (seed, stream, column, row) computed in
  polars expressions (`rand.py`): vectorised (1,000,000 contacts in about five
  seconds), independent of the polars version's own hash, and byte-for-byte
  reproducible for the same (contacts, seed).
- Every stream is drawn by inverse CDF (`search_sorted` on cumulative
  weights), so its share of the total and its daily shape are exact knobs.
"""

from __future__ import annotations

import io
import math
import os
import shutil
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import polars as pl
import yaml

from chargeback.errors import ChargebackError, Problem
from chargeback.files import made_folders, remove_folders
from chargeback.resources import sample_workspace
from chargeback.sample.rand import (
    allocate,
    normal_pair,
    pick,
    pick_index,
    pick_tags,
    salt,
    uniform,
)
from chargeback.sample.story import (
    ASYNC_HOURS,
    BASE_TREND,
    CUSTOMER_SKEW,
    CUSTOMERS_PER_CONTACT,
    DAYS,
    EXTRA_ORDER,
    EXTRA_ORDER_MEAN_DAYS,
    EXTRA_ORDER_MEDIAN,
    FIRST_DAY,
    HANDLE_MEDIAN,
    HANDLE_SIGMA,
    HOLIDAYS,
    HOME_PRODUCT,
    LAST_DAY,
    LIVE_CHANNELS,
    LIVE_HOURS,
    LOST_AFTER,
    MONTH,
    ORDER_DAYS,
    ORDER_MEDIAN,
    ORDERS_FIRST_DAY,
    ORDERS_PER_CUSTOMER,
    PLANS,
    REGIONS,
    REPEAT_DELAY,
    SAVE_UPSELL,
    SAVE_UPSELL_RATE,
    STREAMS,
    TIMEZONE,
    WEEKDAY,
    Stream,
)

__all__ = ["STREAMS", "TIMEZONE", "Stream", "build_contacts", "build_orders", "generate_sample"]


def _text(u: pl.Expr, stream: Stream) -> pl.Expr:
    """A subject line that fits the contact's reason (texts_by_reason), else from `texts`."""
    text = pick(u, stream.texts) if stream.texts else pl.lit(None, dtype=pl.String)
    for reason, weights in stream.texts_by_reason.items():
        text = pl.when(pl.col("reason") == reason).then(pick(u, weights)).otherwise(text)
    return text


# --------------------------------------------------------------------------- time


def _daily_weights(stream: Stream) -> list[float]:
    """Relative volume of `stream` on each local day of the span."""
    out: list[float] = []
    for d in range(DAYS):
        day = FIRST_DAY + timedelta(days=d)
        if day < stream.start or day > stream.end:
            out.append(0.0)
            continue
        age = (day - stream.start).days
        level = 1.0
        if stream.decay_days is not None:
            level = stream.floor + (1.0 - stream.floor) * math.exp(-age / stream.decay_days)
        if stream.ramp_days is not None:
            level *= 1.0 - math.exp(-(age + 1) / stream.ramp_days)
        if stream.weekly:
            level *= WEEKDAY[day.weekday()]
        if stream.seasonal:
            level *= MONTH[day.month] * (
                BASE_TREND[0] + (BASE_TREND[1] - BASE_TREND[0]) * d / (DAYS - 1)
            )
        if stream.billing_cycle:
            level *= 1.6 if 3 <= day.day <= 12 else 0.7
        out.append(level * HOLIDAYS.get(day, 1.0))
    return out


def _order_day_weights() -> list[float]:
    """Purchases peak around the holidays and the September phone launches."""
    season = {9: 1.2, 10: 1.0, 11: 1.35, 12: 1.5, 1: 0.9}
    out: list[float] = []
    for d in range(ORDER_DAYS):
        day = ORDERS_FIRST_DAY + timedelta(days=d)
        weekday = 1.0 if day.weekday() < 5 else 1.15
        out.append(weekday * season.get(day.month, 0.95) * HOLIDAYS.get(day, 1.0))
    return out


def _local_micros(first: date) -> int:
    """Microseconds from the epoch to local midnight of `first`, read as naive."""
    return (datetime.combine(first, time()) - datetime(1970, 1, 1)) // timedelta(microseconds=1)


def _to_utc(local_us: pl.Expr) -> pl.Expr:
    """Naive local microseconds -> UTC timestamps, moving DST-gap times an hour on."""
    naive = local_us.cast(pl.Datetime("us"))
    shifted = (local_us + 3_600 * 10**6).cast(pl.Datetime("us"))
    zoned = naive.dt.replace_time_zone(TIMEZONE, ambiguous="earliest", non_existent="null")
    fallback = shifted.dt.replace_time_zone(TIMEZONE, ambiguous="earliest", non_existent="null")
    return zoned.fill_null(fallback).dt.convert_time_zone("UTC")


def _end_utc() -> datetime:
    """The first instant after the span (local midnight after LAST_DAY), in UTC."""
    after = LAST_DAY + timedelta(days=1)
    local = datetime(after.year, after.month, after.day, tzinfo=ZoneInfo(TIMEZONE))
    return local.astimezone(UTC)


# --------------------------------------------------------------------------- contacts


def _customers(count: int, seed: int) -> pl.DataFrame:
    """Customers with a fixed region and plan; contacts inherit them."""
    key = pl.col("k")
    return (
        pl.DataFrame({"k": pl.int_range(count, dtype=pl.UInt64, eager=True)})
        .with_columns(
            region=pick(uniform(key, salt(seed, 0xC0, 1)), REGIONS),
            plan=pick(uniform(key, salt(seed, 0xC0, 2)), PLANS),
        )
        .with_columns(
            customer_id=pl.format("HL{}", (key + 1).cast(pl.String).str.zfill(7)),
            home=pl.col("plan").replace_strict(HOME_PRODUCT, return_dtype=pl.String),
        )
        .select("customer_id", "region", "plan", "home")
    )


def _pool(customers: pl.DataFrame, stream: Stream) -> pl.DataFrame:
    """The customers a stream may draw from (a plan or region it is about)."""
    pool = customers
    if stream.plans is not None:
        pool = pool.filter(pl.col("plan").is_in(stream.plans))
    if stream.regions is not None:
        pool = pool.filter(pl.col("region").is_in(stream.regions))
    return pool


def _stream_contacts(
    stream: Stream, number: int, rows: int, seed: int, pool: pl.DataFrame
) -> pl.DataFrame:
    """`rows` contacts of one stream, with local time still as naive microseconds."""
    key = pl.col("k")

    def u(column: int) -> pl.Expr:
        return uniform(key, salt(seed, number, column))

    frame = pl.DataFrame({"k": pl.int_range(rows, dtype=pl.UInt64, eager=True)})
    frame = frame.with_columns(
        day=pick_index(u(1), _daily_weights(stream)),
        channel=pick(u(2), stream.channels),
        reason=pick(u(3), stream.reasons),
        tags=pick_tags(u(5), stream.tags),
        outcome=pick(u(6), stream.outcomes),
        cidx=(u(7).pow(CUSTOMER_SKEW) * pool.height).floor().cast(pl.Int64),
    )
    frame = frame.with_columns(text=_text(u(4), stream))
    frame = frame.hstack(pool.select(pl.all().gather(frame["cidx"])))
    product = pl.col("home") if stream.products is None else pick(u(8), stream.products)
    anonymous_rate = (
        pl.when(pl.col("channel") == "social")
        .then(pl.lit(max(stream.anonymous, 0.3)))
        .otherwise(pl.lit(stream.anonymous))
    )
    anonymous = u(9) < anonymous_rate
    frame = frame.with_columns(
        product=product,
        customer_id=pl.when(anonymous).then(None).otherwise(pl.col("customer_id")),
        plan=pl.when(anonymous).then(None).otherwise(pl.col("plan")),
    )

    # Follow-ups: an odd row may repeat the row before it (never a follow-up
    # itself) a few days later, same customer and issue, any channel.
    new_day = pl.col("day").shift(1) + pick_index(u(10), REPEAT_DELAY)
    follow = (
        ((key % 2) == 1) & (u(11) < 2.0 * stream.repeat_rate) & (new_day <= DAYS - 1)
    ).fill_null(False)
    copied = ("customer_id", "region", "plan", "product", "reason", "text", "tags")
    frame = frame.with_columns(
        [pl.when(follow).then(pl.col(c).shift(1)).otherwise(pl.col(c)).alias(c) for c in copied]
        + [pl.when(follow).then(new_day).otherwise(pl.col("day")).alias("day")]
    )

    live = pl.col("channel").is_in(LIVE_CHANNELS)
    hour = (
        pl.when(live).then(pick_index(u(12), LIVE_HOURS)).otherwise(pick_index(u(12), ASYNC_HOURS))
    )
    second = (u(13) * 3600.0).floor().cast(pl.Int64)
    z_handle, z_money = normal_pair(u(14), u(15))
    median = pl.col("channel").replace_strict(HANDLE_MEDIAN, default=300.0, return_dtype=pl.Float64)
    handle = (median * stream.handle_factor * (z_handle * HANDLE_SIGMA).exp()).clip(15.0, 5400.0)
    revenue = (
        pl.when(pl.col("outcome") == "sale")
        .then((stream.sale_value * (z_money * 0.45).exp()).round(2))
        .when((pl.col("outcome") == "saved") & (u(16) < SAVE_UPSELL_RATE))
        .then((SAVE_UPSELL * (z_money * 0.4).exp()).round(2))
        .otherwise(None)
    )
    local_us = (
        _local_micros(FIRST_DAY) + pl.col("day") * 86_400 * 10**6 + (hour * 3600 + second) * 10**6
    )
    return frame.select(
        local_us.alias("local_us"),
        pl.lit(number, dtype=pl.UInt16).alias("stream"),
        "k",
        "channel",
        "reason",
        "tags",
        "text",
        handle.round().cast(pl.Int32).alias("handle_seconds"),
        "customer_id",
        "product",
        "region",
        "outcome",
        revenue.cast(pl.Float64).alias("revenue"),
        "plan",
    )


CONTACT_SCHEMA_ORDER = (
    "contact_id", "started_at", "channel", "reason", "tags", "text", "handle_seconds",
    "customer_id", "product", "region", "outcome", "revenue", "plan",
)  # fmt: skip


def build_contacts(contacts: int, seed: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    """All contacts in time order with ids, and the customer table they came from."""
    customers = _customers(max(50, round(contacts * CUSTOMERS_PER_CONTACT)), seed)
    counts = allocate(contacts, [s.weight for s in STREAMS])
    pools: dict[tuple[tuple[str, ...] | None, tuple[str, ...] | None], pl.DataFrame] = {}
    frames: list[pl.DataFrame] = []
    for number, (stream, rows) in enumerate(zip(STREAMS, counts, strict=True)):
        if rows == 0:
            continue
        group = (stream.plans, stream.regions)
        if group not in pools:
            pools[group] = _pool(customers, stream)
        frames.append(_stream_contacts(stream, number, rows, seed, pools[group]))
    if not frames:  # zero contacts: still the right columns
        frames.append(_stream_contacts(STREAMS[0], 0, 1, seed, customers).clear())
    table = (
        pl.concat(frames)
        .with_columns(started_at=_to_utc(pl.col("local_us")))
        .sort("started_at", "stream", "k")
        .with_row_index("n", offset=1)
        .with_columns(contact_id=pl.format("CT{}", pl.col("n").cast(pl.String).str.zfill(8)))
        .select(CONTACT_SCHEMA_ORDER)
    )
    return table, customers


# --------------------------------------------------------------------------- orders


def build_orders(contacts: pl.DataFrame, customers: pl.DataFrame, seed: int) -> pl.DataFrame:
    """Orders that answer SPEC 7: good contacts are followed by purchases, bad ones by fewer.

    Base orders are spread over the customers and 36 months (twelve before
    the contacts, so saves have a purchase history and every month's
    12-month look-back is full); after a customer's first bad
    contact some of their later orders vanish; each well-handled contact may
    add an order within weeks.
    """
    key = pl.col("k")

    def u(stream: int, column: int) -> pl.Expr:
        return uniform(key, salt(seed, stream, column))

    n_customers = customers.height
    base_rows = round(ORDERS_PER_CUSTOMER * n_customers)
    z_base, _ = normal_pair(u(0xB0, 4), u(0xB0, 5))
    base = pl.DataFrame({"k": pl.int_range(base_rows, dtype=pl.UInt64, eager=True)}).select(
        pl.format(
            "HL{}",
            ((u(0xB0, 1) * n_customers).floor().cast(pl.Int64) + 1).cast(pl.String).str.zfill(7),
        ).alias("customer_id"),
        _to_utc(
            _local_micros(ORDERS_FIRST_DAY)
            + pick_index(u(0xB0, 2), _order_day_weights()) * 86_400 * 10**6
            + ((8 * 3600 + u(0xB0, 3) * 14 * 3600).floor().cast(pl.Int64)) * 10**6
        ).alias("ordered_at"),
        (ORDER_MEDIAN * (z_base * 0.95).exp()).clip(4.99, 1899.0).round(2).alias("amount"),
        u(0xB0, 6).alias("drop_u"),
    )

    known = contacts.filter(pl.col("customer_id").is_not_null())
    first_bad = (
        known.filter(pl.col("outcome").is_in(list(LOST_AFTER)))
        .group_by("customer_id")
        .agg(
            pl.col("started_at").min().alias("bad_at"),
            pl.col("outcome").sort_by("started_at", "contact_id").first().alias("bad_outcome"),
        )
    )
    lost_chance = pl.col("bad_outcome").replace_strict(
        LOST_AFTER, default=0.0, return_dtype=pl.Float64
    )
    lost = (pl.col("ordered_at") > pl.col("bad_at")) & (pl.col("drop_u") < lost_chance)
    base = (
        base.join(first_bad, on="customer_id", how="left")
        .filter(~lost.fill_null(False))  # no bad contact: bad_at is null, the order stays
        .select("customer_id", "ordered_at", "amount")
    )

    z_extra, _ = normal_pair(u(0xB1, 3), u(0xB1, 4))
    chance = pl.col("outcome").replace_strict(EXTRA_ORDER, default=0.0, return_dtype=pl.Float64)
    delay_us = (u(0xB1, 2).log() * (-EXTRA_ORDER_MEAN_DAYS * 86_400)).floor().cast(pl.Int64) * 10**6
    extra = (
        known.select("customer_id", "started_at", "outcome")
        .with_row_index("k")
        .with_columns(pl.col("k").cast(pl.UInt64))
        .filter(u(0xB1, 1) < chance)
        .select(
            "customer_id",
            (pl.col("started_at").cast(pl.Int64) + delay_us)
            .cast(pl.Datetime("us", "UTC"))
            .alias("ordered_at"),
            (EXTRA_ORDER_MEDIAN * (z_extra * 0.8).exp())
            .clip(4.99, 1899.0)
            .round(2)
            .alias("amount"),
        )
        .filter(pl.col("ordered_at") < _end_utc())
    )
    return pl.concat([base, extra]).sort("ordered_at", "customer_id", "amount")


# --------------------------------------------------------------------------- the workspace


def _copy_workspace(dest: Path) -> list[Path]:
    """Copy the packaged rules/ and chargeback.yaml into dest; return the rule files there."""
    source = sample_workspace()
    target_rules = dest / "rules"
    if dest.resolve() != source.resolve():
        for path in sorted((source / "rules").rglob("*")):
            if path.is_file() and path.suffix in (".yaml", ".yml"):
                target = target_rules / path.relative_to(source / "rules")
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, target)
        shutil.copyfile(source / "chargeback.yaml", dest / "chargeback.yaml")
    return sorted(p for p in target_rules.rglob("*") if p.suffix in (".yaml", ".yml"))


def _count_items(files: Sequence[Path]) -> dict[str, int]:
    counts = {"rules": 0, "decisions": 0, "departments": 0}
    for path in files:
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for key in counts:
            counts[key] += len(doc.get(key) or [])
    return counts


def _write_parquet(frame: pl.DataFrame, path: Path) -> None:
    """zstd, fixed row groups and no wall-clock metadata: same input, same bytes."""
    buf = io.BytesIO()  # written by Python, so a full disk is an OSError like any other
    frame.write_parquet(
        buf, compression="zstd", compression_level=9, statistics=True, row_group_size=250_000
    )
    path.write_bytes(buf.getvalue())


def generate_sample(dest: Path, contacts: int = 300_000, seed: int = 7) -> dict[str, int]:
    """Write a complete workspace into dest: rules/*.yaml, chargeback.yaml,
    sample_data/contacts.parquet, sample_data/orders.parquet. Return counts,
    e.g. {"contacts": n, "orders": m, "rules": k}.

    Same (contacts, seed) -> byte-identical Parquet files; `contacts` is the
    exact number of rows written.
    """
    if contacts < 0:
        raise ValueError(f"contacts must be >= 0 (got {contacts})")
    dest = Path(dest)
    if dest.is_file() or dest.is_symlink() or (dest.is_dir() and any(dest.iterdir())):
        raise ChargebackError(
            Problem("already exists and is not an empty folder: choose a new folder", dest)
        )
    # Built beside dest and renamed into place: an interrupted or failed run
    # (a full disk) leaves no half a workspace behind.
    parent = dest.absolute().parent
    staging = parent / f".{dest.name}.tmp-{os.getpid()}"
    try:
        created = made_folders(parent)
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir()
        try:
            counts = _generate_into(staging, contacts, seed)
            if dest.is_dir():
                dest.rmdir()  # empty, checked above
            os.replace(staging, dest)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            remove_folders(created)
            raise
    except OSError as exc:
        raise ChargebackError(
            Problem(f"cannot write the sample: {exc.strerror or exc}", dest)
        ) from None
    return counts


def _generate_into(dest: Path, contacts: int, seed: int) -> dict[str, int]:
    rule_files = _copy_workspace(dest)
    table, customers = build_contacts(contacts, seed)
    orders = build_orders(table, customers, seed)
    data = dest / "sample_data"
    data.mkdir(parents=True, exist_ok=True)
    _write_parquet(table, data / "contacts.parquet")
    _write_parquet(orders, data / "orders.parquet")
    return {"contacts": table.height, "orders": orders.height, **_count_items(rule_files)}
