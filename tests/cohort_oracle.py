"""A deliberately simple reference for the cohort view of cs_value.json (issue 14).

It shares no code with ``chargeback``: contacts and orders are read from CSV by
the independent readers of ``tests/oracle.py`` and ``tests/value_oracle.py``,
every instant is an exact UTC ``datetime`` and every amount exact (integer
cents, ``Fraction`` for averages). Written from the issue's definition alone,
without reading the engine's implementation, so that a differential test between
the two can catch a misreading on either side.

Entry point: :func:`oracle_cohorts` -> ``{period: cohorts}`` in the shape of
``cs_value.json``'s ``periods[p]["cohorts"]``, except that ratios are ``Decimal``
values (6 places) so they can be compared exactly with the JSON numbers.

The definition, as implemented here
-----------------------------------

 1. Month c is a calendar month in the workspace time zone. ``start(c)`` is the
    local midnight of its first day as a UTC instant, ``end(c)`` the start of the
    next month, ``mid(c) = start(c) + (end(c) - start(c)) // 2`` in integer
    microseconds (so a DST month's mid moves by half an hour). A contact is dated
    in c when its local date falls in c.
 2. contacted(c): every customer (non-null customer_id) with a contact dated in c,
    measured from t0 = their first contact in c (instant, then contact_id
    ascending); its outcome (null -> ``"unknown"``) names the outcome group.
 3. comparison(c): customers with an order at an instant in
    ``[start(c - 12 months), start(c))`` and no contact dated in c, each measured
    from t0 = mid(c).
 4. A group over horizon h: ``customers`` n; ``orders_after`` = the sum of their
    order amounts (each rounded half away from zero to cents first) with instant in
    ``(t0, t0 + h * 86400 s]``; ``active_after`` = share of them with at least one
    such order (6 places, half-up; null when n = 0); ``per_customer`` =
    orders_after / n to the cent (half away from zero; null when n = 0).
 5. ``lift`` of the contacted group and of each outcome group against comparison:
    the exact difference of per_customer (cents) and of active_after (6 places),
    rounded half away from zero; null when either side has n = 0.
 6. Cell (c, h) is observable iff ``max(mid(c), latest t0 of contacted(c)) + h
    days <= last order instant``; an unobservable cell is null as a whole.
 7. The window of report month p: the trailing 24 calendar months ending at p,
    oldest first, not before the first month with any contact (with or without
    customer_id). Months in it without contacts are still listed.
 8. ``latest[h]``: the most recent month of the window whose cell for h is
    observable, else null.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from oracle import Workspace, fmt_scaled, load_contacts, round_half_up
from value_oracle import DEFAULT_VALUE_SETTINGS, instant_of, load_orders, merged_settings

WINDOW_MONTHS = 24
COMPARISON_LOOKBACK_MONTHS = 12


# ---------------------------------------------------------------------------- months


def month_index(period: str) -> int:
    """'YYYY-MM' -> a month count, so that month arithmetic is integer arithmetic."""
    return int(period[:4]) * 12 + int(period[5:7]) - 1


def month_name(index: int) -> str:
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def month_start(index: int, tz: ZoneInfo) -> datetime:
    """Local midnight of the month's first day, as a UTC instant."""
    return datetime(index // 12, index % 12 + 1, 1, tzinfo=tz).astimezone(UTC)


def month_mid(index: int, tz: ZoneInfo) -> datetime:
    start, end = month_start(index, tz), month_start(index + 1, tz)
    return start + (end - start) // 2  # timedelta // int floors in microseconds


# ----------------------------------------------------------------------------- data


@dataclass(frozen=True)
class CContact:
    contact_id: str
    instant: datetime
    month: int
    customer_id: str | None
    outcome: str | None


class OrderBook:
    """Each customer's orders sorted by instant, with prefix sums of their cents."""

    def __init__(self, orders: list[tuple[str, datetime, int]]) -> None:
        by_customer: dict[str, list[tuple[datetime, int]]] = {}
        for customer, instant, amount in orders:
            by_customer.setdefault(customer, []).append((instant, amount))
        self.instants: dict[str, list[datetime]] = {}
        self.prefix: dict[str, list[int]] = {}
        for customer, rows in by_customer.items():
            rows.sort(key=lambda r: r[0])
            self.instants[customer] = [r[0] for r in rows]
            sums = [0]
            for _, amount in rows:
                sums.append(sums[-1] + amount)
            self.prefix[customer] = sums
        self.all_orders = sorted((instant, customer) for customer, instant, _ in orders)
        self.all_instants = [instant for instant, _ in self.all_orders]
        self.last = self.all_instants[-1] if self.all_instants else None

    def after(self, customer: str, t0: datetime, span: timedelta) -> tuple[int, int]:
        """(cents, count) of the customer's orders with t0 < instant <= t0 + span."""
        instants = self.instants.get(customer)
        if not instants:
            return 0, 0
        lo = bisect_right(instants, t0)
        hi = bisect_right(instants, t0 + span)
        sums = self.prefix[customer]
        return sums[hi] - sums[lo], hi - lo

    def customers_between(self, start: datetime, end: datetime) -> set[str]:
        """Customers with an order at an instant in [start, end)."""
        lo = bisect_left(self.all_instants, start)
        hi = bisect_left(self.all_instants, end)
        return {customer for _, customer in self.all_orders[lo:hi]}


def load_inputs(
    workspace: Path, contacts_csv: Path, orders_csv: Path
) -> tuple[list[CContact], OrderBook, ZoneInfo, list[int]]:
    settings = merged_settings(workspace)
    tz_name = str(settings.get("timezone") or "UTC")
    tz = ZoneInfo(tz_name)
    columns = {str(k): str(v) for k, v in (settings.get("columns") or {}).items()}
    value = {**DEFAULT_VALUE_SETTINGS, **(settings.get("value") or {})}
    horizons = [int(h) for h in value["horizons_days"]]
    contact_columns = {k: v for k, v in columns.items() if not k.startswith("orders.")}
    raw, _header = load_contacts(contacts_csv, Workspace(timezone=tz_name, columns=contact_columns))
    contacts = []
    for c in raw:
        started = c.values["started_at"]
        assert started is not None
        contacts.append(
            CContact(
                contact_id=c.contact_id,
                instant=instant_of(started, tz),
                month=month_index(c.period),
                customer_id=c.values.get("customer_id"),
                outcome=c.values.get("outcome"),
            )
        )
    orders = [
        (o.customer_id, o.instant, o.amount_cents)
        for o in load_orders(orders_csv, columns, tz)
        if o.customer_id is not None
    ]
    return contacts, OrderBook(orders), tz, horizons


# -------------------------------------------------------------------------- figures


def ratio6(x: Fraction) -> Decimal:
    return Decimal(fmt_scaled(round_half_up(x, 6), 6))


@dataclass
class Group:
    customers: int
    cents: int
    active: int

    def json(self) -> dict[str, Any]:
        n = self.customers
        return {
            "customers": n,
            "orders_after": fmt_scaled(self.cents, 2),
            "active_after": ratio6(Fraction(self.active, n)) if n else None,
            "per_customer": fmt_scaled(round_half_up(Fraction(self.cents, n), 0), 2) if n else None,
        }

    def lift(self, other: Group) -> dict[str, Any]:
        if self.customers == 0 or other.customers == 0:
            return {"per_customer": None, "active_after": None}
        cents = Fraction(self.cents, self.customers) - Fraction(other.cents, other.customers)
        active = Fraction(self.active, self.customers) - Fraction(other.active, other.customers)
        return {
            "per_customer": fmt_scaled(round_half_up(cents, 0), 2),
            "active_after": ratio6(active),
        }


def measure(members: list[tuple[str, datetime]], book: OrderBook, span: timedelta) -> Group:
    cents = active = 0
    for customer, t0 in members:
        amount, count = book.after(customer, t0, span)
        cents += amount
        active += 1 if count else 0
    return Group(customers=len(members), cents=cents, active=active)


@dataclass
class MonthCohort:
    """Who is measured in month c, from when: the part that does not depend on h."""

    contacted: dict[str, CContact]  # customer -> first contact dated in c
    comparison: list[tuple[str, datetime]]
    reach: datetime  # max(mid(c), latest t0 of contacted)


def month_cohort(
    index: int, contacts_in_month: list[CContact], book: OrderBook, tz: ZoneInfo
) -> MonthCohort:
    first: dict[str, CContact] = {}
    for c in contacts_in_month:
        if c.customer_id is None:
            continue
        seen = first.get(c.customer_id)
        if seen is None or (c.instant, c.contact_id) < (seen.instant, seen.contact_id):
            first[c.customer_id] = c
    mid = month_mid(index, tz)
    lookback = month_start(index - COMPARISON_LOOKBACK_MONTHS, tz)
    buyers = book.customers_between(lookback, month_start(index, tz))
    comparison = [(customer, mid) for customer in sorted(buyers - set(first))]
    reach = max([mid, *(c.instant for c in first.values())])
    return MonthCohort(contacted=first, comparison=comparison, reach=reach)


def cell(cohort: MonthCohort, book: OrderBook, h: int) -> dict[str, Any] | None:
    span = timedelta(days=h)
    if book.last is None or cohort.reach + span > book.last:
        return None
    comparison = measure(cohort.comparison, book, span)
    by_outcome: dict[str, list[tuple[str, datetime]]] = {}
    for customer, c in cohort.contacted.items():
        outcome = c.outcome if c.outcome is not None else "unknown"
        by_outcome.setdefault(outcome, []).append((customer, c.instant))
    everyone = [(customer, c.instant) for customer, c in cohort.contacted.items()]
    contacted = measure(everyone, book, span)
    outcomes = {}
    for outcome in sorted(by_outcome):
        group = measure(by_outcome[outcome], book, span)
        outcomes[outcome] = {**group.json(), "lift": group.lift(comparison)}
    return {
        "contacted": {**contacted.json(), "lift": contacted.lift(comparison)},
        "outcomes": outcomes,
        "comparison": comparison.json(),
    }


def oracle_cohorts(
    workspace: Path,
    contacts_csv: Path,
    orders_csv: Path,
    periods: list[str] | None = None,
) -> dict[str, dict[str, Any]]:
    """``cohorts`` per report month (every month with contacts by default)."""
    contacts, book, tz, horizons = load_inputs(
        Path(workspace), Path(contacts_csv), Path(orders_csv)
    )
    by_month: dict[int, list[CContact]] = {}
    for c in contacts:
        by_month.setdefault(c.month, []).append(c)
    first_month = min(by_month)
    reported = sorted(periods) if periods is not None else [month_name(m) for m in sorted(by_month)]

    cells: dict[int, dict[str, dict[str, Any] | None]] = {}

    def cells_of(index: int) -> dict[str, dict[str, Any] | None]:
        if index not in cells:
            cohort = month_cohort(index, by_month.get(index, []), book, tz)
            cells[index] = {str(h): cell(cohort, book, h) for h in horizons}
        return cells[index]

    result: dict[str, dict[str, Any]] = {}
    for p in reported:
        end = month_index(p)
        window = list(range(max(end - WINDOW_MONTHS + 1, first_month), end + 1))
        latest: dict[str, str | None] = {}
        for h in horizons:
            seen = [m for m in window if cells_of(m)[str(h)] is not None]
            latest[str(h)] = month_name(seen[-1]) if seen else None
        result[p] = {
            "months": [month_name(m) for m in window],
            "latest": latest,
            "cells": {month_name(m): cells_of(m) for m in window},
        }
    return result


def observable_reach(
    workspace: Path, contacts_csv: Path, orders_csv: Path, period: str
) -> datetime:
    """max(mid(c), latest t0 of c): lets a test put the last order exactly on a boundary."""
    contacts, book, tz, _ = load_inputs(Path(workspace), Path(contacts_csv), Path(orders_csv))
    index = month_index(period)
    members = [c for c in contacts if c.month == index]
    return month_cohort(index, members, book, tz).reach
