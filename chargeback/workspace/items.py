"""Layer 2 for the rules/ sections: departments, decisions, costs and rules.

Each parser checks one mapping's keys and types and builds its model object,
recording problems and filling defaults so that one bad field never hides the
problems in the others. References between items (a decision's department, a
rule's decision) are layer 3, checked in load.py once every file is read.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from chargeback.workspace.fields import (
    BadValue,
    Item,
    any_of,
    as_addresses,
    as_date,
    as_ident,
    as_level,
    as_money,
    as_month,
    as_name,
    as_non_negative,
    as_offset_days,
    as_positive_int,
    as_priority,
    as_regex,
    as_share,
    as_text,
    not_reserved,
    one_of,
)
from chargeback.workspace.limits import shown
from chargeback.workspace.model import (
    BASELINE_METHODS,
    COST_METHODS,
    DECISION_KINDS,
    MATCH_LIST_KEYS,
    ChannelRate,
    ControlBaseline,
    Costs,
    Decision,
    Department,
    Match,
    Revenue,
    Rule,
)
from chargeback.workspace.yamlio import YMap


def parse_department(item: Item) -> Department:
    """A department; its name defaults to its id so every statement has a heading."""
    item.check_keys(("id", "name", "cost_center", "recipients"))
    dept_id = item.get("id", as_ident, "", required=True)
    return Department(
        id=dept_id,
        name=item.get("name", as_text, "") or dept_id,  # statements need a heading
        cost_center=item.get("cost_center", as_text, ""),
        recipients=item.get("recipients", as_addresses, ()),
        place=item.place(),
    )


def _revenue(item: Item | None) -> Revenue | None:
    """A decision's revenue: one monthly figure or one per period, never both."""
    if item is None:
        return None
    item.check_keys(("monthly", "by_period"))
    monthly = item.get("monthly", as_money, None)
    by_period: list[tuple[str, Decimal]] = []
    sub = item.sub("by_period")
    if sub is not None:
        for key, value in sub.node.items():
            try:
                by_period.append((as_month(key), as_money(value)))
            except BadValue as exc:
                sub.error(key, f"by_period '{shown(key)}': {exc}")
    if "monthly" in item.node and "by_period" in item.node:
        item.error("by_period", "give either 'monthly' or 'by_period', not both")
    if item.node.get("monthly") is None and item.node.get("by_period") is None:
        item.error(None, "revenue needs 'monthly' or 'by_period'")
    return Revenue(monthly=monthly, by_period=tuple(sorted(by_period)))


def parse_decision(item: Item) -> Decision:
    """A decision; an 'ends' before 'effective' would make an empty window, so it is refused."""
    item.check_keys(("id", "title", "kind", "department", "effective", "ends", "revenue"))
    effective = item.get("effective", as_date, date.min, required=True)
    ends = item.get("ends", as_date, None)
    if ends is not None and effective != date.min and ends < effective:
        item.error("ends", f"'ends' {ends} is before 'effective' {effective}")
    return Decision(
        id=item.get("id", lambda v: not_reserved(as_name(v)), "", required=True),
        title=item.get("title", as_text, ""),
        kind=item.get("kind", one_of(DECISION_KINDS), "other"),
        department=item.get("department", as_ident, "", required=True),
        effective=effective,
        ends=ends,
        revenue=_revenue(item.sub("revenue")),
        place=item.place(),
    )


def _rate(item: Item) -> ChannelRate:
    """One channel's (or the default) per-contact and per-minute rate."""
    item.check_keys(("per_contact", "per_minute"))
    return ChannelRate(
        per_contact=item.get("per_contact", as_non_negative, Decimal(0)),
        per_minute=item.get("per_minute", as_non_negative, Decimal(0)),
    )


def parse_costs(item: Item) -> Costs:
    """The costs block; each method needs its own inputs (rates, or a pool), checked here."""
    item.check_keys(("currency", "method", "channels", "default", "pool"))
    method = item.get("method", one_of(COST_METHODS), "rates")
    channels: list[tuple[str, ChannelRate]] = []
    chan = item.sub("channels", "costs")
    if chan is not None:
        for name, value in chan.node.items():
            try:
                channel = as_text(name)
            except BadValue as exc:
                chan.error(name, f"channel name {exc}")
                continue
            if not isinstance(value, YMap):
                chan.error(
                    name, f"channel '{shown(name)}' must be a mapping of per_contact/per_minute"
                )
                continue
            channels.append((channel, _rate(Item(item.ck, value, f"costs channel '{channel}'"))))
    default_item = item.sub("default", "costs default")
    default = _rate(default_item) if default_item is not None else None
    pool_monthly: Decimal | None = None
    pool_by_period: list[tuple[str, Decimal]] = []
    pool = item.sub("pool", "costs pool")
    if pool is not None:
        pool.check_keys(("monthly", "by_period"))
        pool_monthly = pool.get("monthly", as_non_negative, None)
        by = pool.sub("by_period", "costs pool")
        if by is not None:
            for key, value in by.node.items():
                try:
                    pool_by_period.append((as_month(key), as_non_negative(value)))
                except BadValue as exc:
                    by.error(key, f"by_period '{shown(key)}': {exc}")
        if (pool.node.get("monthly") is None) == (pool.node.get("by_period") is None):
            pool.error(None, "pool needs exactly one of 'monthly' or 'by_period'")
    if method == "pool" and pool is None:
        item.error(
            "method", "method 'pool' needs a 'pool' block ({monthly: ...} or {by_period: ...})"
        )
    if method == "rates" and pool is not None:
        item.error("pool", "'pool' is only used with method: pool")
    if method == "rates" and not channels and default is None:
        item.error("method", "method 'rates' needs 'channels' or a 'default' rate")
    return Costs(
        currency=item.get("currency", _currency, "USD"),
        method=method,
        channels=tuple(channels),
        default=default,
        pool_monthly=pool_monthly,
        pool_by_period=tuple(sorted(pool_by_period)),
        place=item.place(),
    )


def _match(item: Item | None) -> Match:
    """A rule's match: any-of value lists, a text regex and tests on extra columns."""
    if item is None:
        return Match()
    item.check_keys((*MATCH_LIST_KEYS, "text_regex", "fields"))
    lists = {key: item.get(key, any_of, None) for key in MATCH_LIST_KEYS}
    fields: list[tuple[str, tuple[str, ...]]] = []
    sub = item.sub("fields")
    if sub is not None:
        for name, value in sub.node.items():
            try:
                fields.append((as_text(name), any_of(value)))
            except BadValue as exc:
                sub.error(name, f"fields: {shown(name)}: {exc}")
    return Match(
        **lists,
        field_lines=tuple((str(n), sub.node.line_of(n)) for n in sub.node) if sub else (),
        text_regex=item.get("text_regex", as_regex, None),
        fields=tuple(fields),
    )


def parse_rule(item: Item) -> Rule:
    """A rule with its window and baseline; its decision is checked later, across files."""
    item.check_keys(("id", "decision", "match", "window", "share", "priority", "baseline"))
    window = item.sub("window")
    offset, days = 0, None
    if window is not None:
        window.check_keys(("start_offset_days", "days"))
        offset = window.get("start_offset_days", as_offset_days, 0)
        days = window.get("days", as_positive_int, None)
    lookback, control = None, None
    baseline = item.sub("baseline")
    if baseline is not None:
        method = baseline.get("method", one_of(BASELINE_METHODS), "flat")
        if method == "control":
            control = _control(baseline)
        else:
            baseline.check_keys(("method", "lookback_days"))
            lookback = baseline.get("lookback_days", as_positive_int, None, required=True)
    return Rule(
        id=item.get("id", as_name, "", required=True),
        decision=item.get("decision", as_name, "", required=True),
        match=_match(item.sub("match")),
        start_offset_days=offset,
        days=days,
        share=item.get("share", as_share, Decimal(1)),
        priority=item.get("priority", as_priority, 0),
        baseline_lookback_days=lookback,
        place=item.place(),
        control=control,
    )


def _control(baseline: Item) -> ControlBaseline:
    """SPEC 4b's block: the fit period, the range's level, and two optional match blocks."""
    baseline.check_keys(("method", "lookback_days", "interval", "evidence", "control"))
    return ControlBaseline(
        lookback_days=baseline.get("lookback_days", as_positive_int, 182),
        interval=baseline.get("interval", as_level, Decimal("0.8")),
        evidence=_match(baseline.sub("evidence")) if "evidence" in baseline.node else None,
        control=_match(baseline.sub("control")) if "control" in baseline.node else None,
    )


def _currency(value: Any) -> str:
    """A currency code as printed beside every amount: a short word, such as USD or EUR."""
    text = as_text(value, 10)
    if not text or any(ch.isspace() for ch in text):
        raise BadValue(f"'{shown(text)}' must be a currency code such as USD, without blanks")
    return text
