"""A deliberately simple reference implementation of SPEC section 7 (the CS-value report).

Like ``tests/oracle.py`` (whose ledger and contact-cost code it reuses), it shares
no code with ``chargeback``: it reads CSV files with the ``csv`` module, works row
by row, and keeps every amount exact (``fractions.Fraction`` for costs, integer
cents for money read from the data). It is meant for a few thousand contacts.

Entry point: :func:`oracle_value` -> ``{period: metrics}``, where money is a
string of cents (``"1234.56"``), ratios are ``Decimal`` values rounded half-up to
6 places (or ``None`` when undefined), counts are ``int``.

Interpretations (the behaviour the engine documents where SPEC 7 is silent)
--------------------------------------------------------------------------

 1. Instants. A timestamp with an offset is that instant; a naive one is read in
    the workspace ``timezone``. Every comparison below is between exact instants,
    and "h days" is ``h * 86400`` seconds. Periods are the local calendar month
    (as in the ledger oracle).
 2. Money from the data (contact ``revenue``, order ``amount``) is the CSV decimal
    literal, rounded half-up to whole cents per row, then summed.
 3. ``cost`` = the exact contact costs of the period summed, rounded half-up to
    cents (the ledger's period total). ``avoidable_cost`` = the sum of the ledger's
    decision lines (tests/oracle.py), ``unattributed_cost`` = its unattributed
    line, ``avoidable_share`` = avoidable_cost / cost (both in cents).
 4. ``by_channel[ch].cost``: each channel's exact cost, rounded half-up on its own
    so the channels add up to ``cost`` (ties by channel name ascending).
    ``cost_per_contact`` = cost cents / contacts, half-up to cents.
 5. ``revenue_won`` / ``sales``: contacts whose outcome is in ``sale_outcomes``;
    ``saves``: outcome in ``save_outcomes``.
 6. ``save_value_total`` with orders: for each saved contact with a customer_id,
    that customer's order amounts with ``t - 365 days <= ordered_at < t``; a saved
    contact without customer_id adds 0. Without orders: ``saves * save_value``.
 7. Repeat: a contact with a customer_id whose customer has another loaded contact
    (any month) at an instant t' with ``t' < t`` and ``t - t' < repeat_window_days``
    days. Same-instant contacts are not earlier. ``repeat_rate`` = repeats /
    contacts with a customer_id (``None`` when there are none); ``repeat_cost`` =
    the exact cost of the repeats, half-up to cents.
 8. After-contact (only with orders): per customer with a contact in the period,
    the first one (earliest instant, then contact_id ascending) at t0 and its
    outcome (null -> ``"unknown"``). For horizon h: orders in ``(t0, t0 + h]``.
    Per outcome: customers, orders_after (cents), active_after (share with at
    least one such order). Horizon h is not observable in a period when the latest
    t0 of the period's first contacts + h days is after the latest ``ordered_at`` of
    all orders: then orders_after and active_after are ``None``.
 9. ``net_value`` = revenue_won + save_value_total - cost (in cents).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml
from oracle import (
    UNATTRIBUTED,
    assign_costs,
    exact,
    fmt_scaled,
    load_contacts,
    load_workspace,
    oracle_ledger,
    round_half_up,
)

DEFAULT_VALUE_SETTINGS: dict[str, Any] = {
    "sale_outcomes": ["sale"],
    "save_outcomes": ["saved"],
    "save_value": "250.00",
    "repeat_window_days": 7,
    "horizons_days": [30, 180, 540],
}
SAVE_LOOKBACK = timedelta(days=365)


# --------------------------------------------------------------------------- helpers


def money(cents: int) -> str:
    return fmt_scaled(cents, 2)


def ratio(num: int, den: int) -> Decimal | None:
    """num / den rounded half-up to 6 decimals (None when den is 0)."""
    if den == 0:
        return None
    return Decimal(fmt_scaled(round_half_up(Fraction(num, den), 6), 6))


def cents_of(raw: str | None) -> int:
    """A CSV money literal rounded half-up to whole cents (empty -> 0)."""
    if raw is None or raw.strip() == "":
        return 0
    return round_half_up(exact(raw), 2)


def instant_of(raw: str, tz: ZoneInfo) -> datetime:
    dt = datetime.fromisoformat(raw.strip())
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=tz)
    return dt.astimezone(UTC)


def merged_settings(root: Path) -> dict[str, Any]:
    """Settings from rules/*.yaml ``settings:`` blocks, overridden by chargeback.yaml."""
    settings: dict[str, Any] = {}
    rules_dir = root / "rules"
    for path in sorted([*rules_dir.rglob("*.yaml"), *rules_dir.rglob("*.yml")]):
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        settings.update(data.get("settings") or {})
    top = root / "chargeback.yaml"
    if top.exists():
        settings.update(yaml.safe_load(top.read_text(encoding="utf-8")) or {})
    return settings


# ----------------------------------------------------------------------------- data


@dataclass
class VContact:
    contact_id: str
    instant: datetime
    period: str
    channel: str
    cost: Fraction
    customer_id: str | None
    outcome: str | None
    revenue_cents: int


@dataclass
class Order:
    customer_id: str | None
    instant: datetime
    amount_cents: int


def load_orders(path: Path, columns: dict[str, str], tz: ZoneInfo) -> list[Order]:
    """Orders CSV; ``columns`` keys ``orders.customer_id`` etc. rename platform headers."""
    rename = {
        str(platform): str(key)[len("orders.") :]
        for key, platform in columns.items()
        if str(key).startswith("orders.")
    }
    out: list[Order] = []
    with path.open(newline="", encoding="utf-8-sig") as fh:
        for raw in csv.DictReader(fh):
            row = {rename.get(k, k): (v if v not in (None, "") else None) for k, v in raw.items()}
            ordered_at = row.get("ordered_at")
            if ordered_at is None:
                raise ValueError(f"order without ordered_at: {raw}")
            out.append(
                Order(
                    customer_id=row.get("customer_id"),
                    instant=instant_of(ordered_at, tz),
                    amount_cents=cents_of(row.get("amount")),
                )
            )
    return out


def load_value_contacts(root: Path, contacts_csv: Path) -> tuple[list[VContact], str]:
    ws = load_workspace(root)
    raw, _header = load_contacts(contacts_csv, ws)
    assign_costs(raw, ws.costs)
    tz = ZoneInfo(ws.timezone)
    contacts = []
    for c in raw:
        started = c.values["started_at"]
        assert started is not None
        contacts.append(
            VContact(
                contact_id=c.contact_id,
                instant=instant_of(started, tz),
                period=c.period,
                channel=c.channel,
                cost=c.cost,
                customer_id=c.values.get("customer_id"),
                outcome=c.values.get("outcome"),
                revenue_cents=cents_of(c.values.get("revenue")),
            )
        )
    return contacts, ws.timezone


# -------------------------------------------------------------------------- metrics


def repeat_flags(contacts: list[VContact], window_days: int) -> dict[str, bool]:
    """contact_id -> is a repeat (row by row: look at every contact of the customer)."""
    window = timedelta(days=window_days)
    by_customer: dict[str, list[VContact]] = {}
    for c in contacts:
        if c.customer_id is not None:
            by_customer.setdefault(c.customer_id, []).append(c)
    flags: dict[str, bool] = {}
    for c in contacts:
        if c.customer_id is None:
            flags[c.contact_id] = False
            continue
        flags[c.contact_id] = any(
            other.instant < c.instant and c.instant - other.instant < window
            for other in by_customer[c.customer_id]
        )
    return flags


def channel_cents(members: list[VContact]) -> dict[str, int]:
    """Each channel's exact cost, rounded half-up to cents on its own."""
    exact_by_channel: dict[str, Fraction] = {}
    for c in members:
        exact_by_channel[c.channel] = exact_by_channel.get(c.channel, Fraction(0)) + c.cost
    return {ch: round_half_up(v, 2) for ch, v in exact_by_channel.items()}


def per_contact(cents: int, n: int) -> str | None:
    if n == 0:
        return None
    return money(round_half_up(Fraction(cents, n) / 100, 2))


def after_contact(
    members: list[VContact],
    orders_by_customer: dict[str, list[Order]],
    last_order: datetime | None,
    horizons: list[int],
) -> dict[str, dict[str, dict[str, Any]]]:
    first: dict[str, VContact] = {}
    for c in members:
        if c.customer_id is None:
            continue
        seen = first.get(c.customer_id)
        if seen is None or (c.instant, c.contact_id) < (seen.instant, seen.contact_id):
            first[c.customer_id] = c
    if not first:
        return {}
    latest_t0 = max(c.instant for c in first.values())
    groups: dict[str, list[VContact]] = {}
    for c in first.values():
        groups.setdefault(c.outcome if c.outcome is not None else "unknown", []).append(c)
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for outcome, firsts in sorted(groups.items()):
        out[outcome] = {}
        for h in horizons:
            span = timedelta(days=h)
            observable = last_order is not None and latest_t0 + span <= last_order
            entry: dict[str, Any] = {"customers": len(firsts)}
            if not observable:
                entry["orders_after"] = None
                entry["active_after"] = None
            else:
                total = 0
                active = 0
                for c in firsts:
                    assert c.customer_id is not None
                    amounts = [
                        o.amount_cents
                        for o in orders_by_customer.get(c.customer_id, [])
                        if c.instant < o.instant <= c.instant + span
                    ]
                    total += sum(amounts)
                    active += 1 if amounts else 0
                entry["orders_after"] = money(total)
                entry["active_after"] = ratio(active, len(firsts))
            out[outcome][str(h)] = entry
    return out


def oracle_value(
    workspace: Path,
    contacts_csv: Path,
    orders_csv: Path | None = None,
    periods: list[str] | None = None,
) -> dict[str, dict[str, Any]]:
    """The SPEC 7 metrics per reported period (every month with contacts by default)."""
    root = Path(workspace)
    settings = merged_settings(root)
    value = {**DEFAULT_VALUE_SETTINGS, **(settings.get("value") or {})}
    sale_outcomes = {str(x) for x in value["sale_outcomes"]}
    save_outcomes = {str(x) for x in value["save_outcomes"]}
    save_value_cents = round_half_up(exact(value["save_value"]), 2)
    window_days = int(value["repeat_window_days"])
    horizons = [int(h) for h in value["horizons_days"]]

    contacts, tz_name = load_value_contacts(root, Path(contacts_csv))
    columns = {str(k): str(v) for k, v in (settings.get("columns") or {}).items()}
    orders = load_orders(Path(orders_csv), columns, ZoneInfo(tz_name)) if orders_csv else None
    orders_by_customer: dict[str, list[Order]] = {}
    for o in orders or []:
        if o.customer_id is not None:
            orders_by_customer.setdefault(o.customer_id, []).append(o)
    last_order = max((o.instant for o in orders), default=None) if orders else None

    ledger_rows = oracle_ledger(root, Path(contacts_csv), periods)
    repeats = repeat_flags(contacts, window_days)
    reported = sorted(set(periods)) if periods is not None else sorted({c.period for c in contacts})

    result: dict[str, dict[str, Any]] = {}
    for p in reported:
        members = [c for c in contacts if c.period == p]
        cost_cents = round_half_up(sum((c.cost for c in members), Fraction(0)), 2)
        lines = [r for r in ledger_rows if r["period"] == p]
        unattributed = sum(
            round_half_up(exact(r["cost"]), 2) for r in lines if r["decision_id"] == UNATTRIBUTED
        )
        avoidable = sum(
            round_half_up(exact(r["cost"]), 2) for r in lines if r["decision_id"] != UNATTRIBUTED
        )
        assert avoidable + unattributed == cost_cents, (p, avoidable, unattributed, cost_cents)

        by_channel: dict[str, dict[str, Any]] = {}
        ch_cents = channel_cents(members)
        for ch in sorted(ch_cents):
            n = sum(1 for c in members if c.channel == ch)
            by_channel[ch] = {
                "contacts": n,
                "cost": money(ch_cents[ch]),
                "cost_per_contact": per_contact(ch_cents[ch], n),
            }

        sales = [c for c in members if c.outcome is not None and c.outcome in sale_outcomes]
        saves = [c for c in members if c.outcome is not None and c.outcome in save_outcomes]
        revenue_won = sum(c.revenue_cents for c in sales)
        if orders is not None:
            save_total = 0
            for c in saves:
                if c.customer_id is None:
                    continue
                save_total += sum(
                    o.amount_cents
                    for o in orders_by_customer.get(c.customer_id, [])
                    if c.instant - SAVE_LOOKBACK <= o.instant < c.instant
                )
        else:
            save_total = len(saves) * save_value_cents

        with_customer = [c for c in members if c.customer_id is not None]
        repeat_members = [c for c in with_customer if repeats[c.contact_id]]
        repeat_cost = round_half_up(sum((c.cost for c in repeat_members), Fraction(0)), 2)

        metrics: dict[str, Any] = {
            "contacts": len(members),
            "cost": money(cost_cents),
            "cost_per_contact": per_contact(cost_cents, len(members)),
            "by_channel": by_channel,
            "avoidable_cost": money(avoidable),
            "avoidable_share": ratio(avoidable, cost_cents),
            "unattributed_cost": money(unattributed),
            "revenue_won": money(revenue_won),
            "sales": len(sales),
            "saves": len(saves),
            "save_value_total": money(save_total),
            "contacts_with_customer": len(with_customer),
            "repeats": len(repeat_members),
            "repeat_rate": ratio(len(repeat_members), len(with_customer)),
            "repeat_cost": money(repeat_cost),
            "net_value": money(revenue_won + save_total - cost_cents),
        }
        if orders is not None:
            metrics["after_contact"] = after_contact(
                members, orders_by_customer, last_order, horizons
            )
        result[p] = metrics
    return result
