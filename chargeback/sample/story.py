"""The sample's story, read from story.yaml into the typed values the generator draws from.

The story is a data file so that someone from finance or customer service can
read and adjust it without reading the generator. This module is the gate
that keeps a slip there from turning into quietly wrong data: unknown keys,
misspelt plans, regions, channels or mix names, dates outside the year and
reasons without a subject line are errors naming the file and line.

The file is read with the workspace's YAML dialect (chargeback.workspace.yamlio:
duplicate keys are errors, dates stay text, only true/false are booleans).
Numbers keep their written type, 12 an int and 1.5 a float, parsed from their
source text, so the generator sees exactly what the file says.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any, NoReturn

from chargeback.errors import Problem, WorkspaceError
from chargeback.sample.rand import Weights
from chargeback.workspace.yamlio import YList, YMap, load_yaml

__all__ = ["STORY", "STORY_FILE", "Story", "Stream", "Weights", "load_story"]

STORY_FILE = Path(__file__).with_name("story.yaml")


@dataclass(frozen=True)
class Stream:
    """One source of contacts: its share of the total, its shape in time and its content.

    The base streams use reasons and texts no rule matches; the background
    streams give the baseline rules a rate to subtract; the decision streams
    are the bumps each decision caused, shaped to start on its effective date.
    story.yaml says what each field means to a reader; the loader fills every
    field, taking `stream_defaults` and the calendar for what a stream omits.
    """

    name: str
    weight: float  # share of all contacts (the weights are normalised)
    reasons: Weights
    channels: Weights
    texts: Weights  # subject lines for any reason not in texts_by_reason
    start: date
    end: date
    decay_days: float | None  # e-folding time of a bump; None = level
    floor: float  # where a bump settles, as a share of its peak
    ramp_days: float | None  # build-up time of something that grows
    seasonal: bool  # follow the base load's month pattern and growth
    weekly: bool  # weekday pattern (an outage ignores the calendar)
    billing_cycle: bool  # busier on days 3-12 of each month (fees land)
    tags: Weights  # "a|b" = two tags
    outcomes: Weights
    products: Weights | None  # None: the customer's home product
    plans: tuple[str, ...] | None  # draw only customers on these plans
    regions: tuple[str, ...] | None  # draw only customers in these regions
    handle_factor: float
    sale_value: float  # median revenue of a sale
    repeat_rate: float  # share that are follow-ups of an earlier contact
    anonymous: float  # share without a customer_id (social adds more)
    texts_by_reason: Mapping[str | None, Weights]


@dataclass(frozen=True)
class Story:
    """Everything in story.yaml, checked and typed (see the file for the meaning)."""

    timezone: str
    first_day: date
    last_day: date
    orders_first_day: date
    weekday: tuple[float, ...]
    month: Mapping[int, float]
    holidays: Mapping[date, float]
    live_hours: tuple[float, ...]
    async_hours: tuple[float, ...]
    live_channels: tuple[str, ...]
    base_trend: tuple[float, ...]
    repeat_delay: tuple[float, ...]
    customers_per_contact: float
    customer_skew: float
    regions: Weights
    plans: Weights
    home_product: Mapping[str, str]
    handle_median: Mapping[str, float]
    handle_sigma: float
    save_upsell: float
    save_upsell_rate: float
    orders_per_customer: float
    order_median: float
    lost_after: Mapping[str, float]
    extra_order: Mapping[str, float]
    extra_order_mean_days: float
    extra_order_median: float
    base: tuple[Stream, ...]
    background: tuple[Stream, ...]
    decisions: tuple[Stream, ...]


_TOP = (
    "timezone", "calendar", "customers", "handling", "orders", "channel_mixes",
    "outcome_mixes", "stream_defaults", "base", "background", "decisions",
)  # fmt: skip
_CALENDAR = (
    "first_day", "last_day", "orders_first_day", "weekday", "month", "holidays",
    "live_hours", "async_hours", "live_channels", "base_trend", "repeat_delay",
)  # fmt: skip
_CUSTOMERS = ("per_contact", "skew", "regions", "plans", "home_product", "plan_groups")
_HANDLING = ("median_seconds", "sigma", "save_upsell", "save_upsell_rate")
_ORDERS = (
    "per_customer", "median", "lost_after", "extra_order", "extra_order_mean_days",
    "extra_order_median",
)  # fmt: skip
# What `stream_defaults` must give: every field a stream may leave out, except
# the ones whose absence means something (no decay, no plan filter, ...).
_DEFAULTED = (
    "outcomes", "tags", "floor", "seasonal", "weekly", "billing_cycle",
    "handle_factor", "sale_value", "repeat_rate", "anonymous",
)  # fmt: skip
_STREAM_OPTIONAL = (
    "start", "end", "decay_days", "ramp_days", "plans", "regions", "products", "texts",
    "texts_by_reason",
)  # fmt: skip
_STREAM_REQUIRED = ("name", "weight", "reasons", "channels")


class _Reader:
    """Typed reads from the parsed file, each failing with the file and line."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, message: str, where: Any = None, key: Any = None) -> NoReturn:
        line: int | None = None
        if isinstance(where, YMap):
            line = where.line_of(key) if key is not None else where.line
        elif isinstance(where, YList):
            line = where.line_of(key) if isinstance(key, int) else where.line
        raise WorkspaceError(Problem(message, self.path, line))

    def mapping(self, parent: Any, key: Any, keys: tuple[str, ...] | None = None) -> YMap:
        """A mapping; with `keys`, exactly those keys (a typo is not silently ignored)."""
        value = parent[key]
        if not isinstance(value, YMap):
            self.fail(f"'{key}' must be a mapping", parent, key)
        if keys is not None:
            self.keys(value, keys, (), str(key))
        return value

    def keys(
        self, node: YMap, required: tuple[str, ...], optional: tuple[str, ...], what: str
    ) -> None:
        for key in node:
            if key not in required and key not in optional:
                known = ", ".join(required + optional)
                self.fail(f"unknown key '{key}' in {what} (known: {known})", node, key)
        for key in required:
            if key not in node:
                self.fail(f"{what} needs '{key}'", node)

    def number(self, parent: Any, key: Any, *, positive: bool = False) -> float:
        """An int stays an int and a decimal becomes the float its text spells."""
        raw = parent[key]
        value: float
        if isinstance(raw, Decimal):
            value = float(raw)
        elif isinstance(raw, int) and not isinstance(raw, bool):
            value = raw
        else:
            self.fail(f"'{key}' must be a number (got {raw!r})", parent, key)
        if value < 0 or (positive and value == 0):
            self.fail(f"'{key}' must be {'above' if positive else 'at least'} 0", parent, key)
        return value

    def share(self, parent: Any, key: Any) -> float:
        value = self.number(parent, key)
        if value > 1:
            self.fail(f"'{key}' is a share: between 0 and 1", parent, key)
        return value

    def flag(self, parent: Any, key: str) -> bool:
        value = parent[key]
        if not isinstance(value, bool):
            self.fail(f"'{key}' must be true or false", parent, key)
        return value

    def text(self, parent: Any, key: Any) -> str:
        value = parent[key]
        if not isinstance(value, str) or not value:
            self.fail(f"'{key}' must be text", parent, key)
        return value

    def day(self, parent: Any, key: Any, value: Any = None) -> date:
        """A YYYY-MM-DD date; `value` when the date is a key rather than its value."""
        value = parent[key] if value is None else value
        try:
            return date.fromisoformat(value)
        except (TypeError, ValueError):
            self.fail(f"'{value}' is not a date (YYYY-MM-DD)", parent, key)

    def numbers(self, parent: Any, key: str, length: int | None = None) -> tuple[float, ...]:
        items = parent[key]
        if not isinstance(items, YList) or not items:
            self.fail(f"'{key}' must be a list of numbers", parent, key)
        if length is not None and len(items) != length:
            self.fail(f"'{key}' needs {length} numbers (has {len(items)})", parent, key)
        return tuple(self.number(items, i) for i in range(len(items)))

    def labels(
        self, parent: Any, key: str, known: Mapping[Any, Any] | None = None
    ) -> tuple[str, ...]:
        items = parent[key]
        if not isinstance(items, YList) or not items:
            self.fail(f"'{key}' must be a list", parent, key)
        out = tuple(self.text(items, i) for i in range(len(items)))
        self.known(items, out, known, key)
        return out

    def known(self, node: Any, labels: Any, known: Mapping[Any, Any] | None, what: str) -> None:
        for i, label in enumerate(labels):
            if known is not None and label not in known:
                where = label if isinstance(node, YMap) else i
                self.fail(f"'{label}' in {what} is not one of: {', '.join(known)}", node, where)

    def weights(
        self,
        parent: Any,
        key: Any,
        known: Mapping[Any, Any] | None = None,
        *,
        null: bool = False,
        empty: bool = False,
    ) -> dict[str | None, float]:
        """A mix: label -> weight, in file order; some weight must be above 0 (`empty`: or none)."""
        node = self.mapping(parent, key)
        out: dict[str | None, float] = {}
        for label in node:
            if not (isinstance(label, str) or (null and label is None)):
                self.fail(f"'{label}' in '{key}' must be text", node, label)
            out[label] = self.number(node, label)
        self.known(node, out, known, f"'{key}'")
        if (out or not empty) and not any(w > 0 for w in out.values()):
            self.fail(f"'{key}' needs a weight above 0", parent, key)
        return out

    def named(self, parent: Any, key: str, table: Mapping[str, Any]) -> Any:
        name = parent[key]
        if name not in table:
            self.fail(f"'{name}' is not one of: {', '.join(table)}", parent, key)
        return table[name]

    def mix(
        self, parent: Any, key: str, mixes: Mapping[str, Weights], known: Any = None
    ) -> Weights:
        """A named shared mix (`channels: phone_heavy`) or a table of its own."""
        if isinstance(parent[key], str):
            mix: Weights = self.named(parent, key, mixes)
            return mix
        return self.weights(parent, key, known)


def _stream(
    r: _Reader, node: Any, defaults: YMap, story: dict[str, Any], mixes: dict[str, Any]
) -> Stream:
    if not isinstance(node, YMap):
        r.fail("a stream must be a mapping", node)
    r.keys(node, _STREAM_REQUIRED, _STREAM_OPTIONAL + _DEFAULTED, "a stream")

    def given(key: str) -> YMap:  # where a defaulted field comes from
        return node if key in node else defaults

    first, last = story["first_day"], story["last_day"]
    start = r.day(node, "start") if "start" in node else first
    end = r.day(node, "end") if "end" in node else last
    if not first <= start <= end <= last:
        where = "start" if not first <= start <= last else "end"
        r.fail(f"start and end must lie within {first} .. {last}, start first", node, where)
    reasons = r.weights(node, "reasons", null=True)
    plans: tuple[str, ...] | None = None
    if "plans" in node:
        if isinstance(node["plans"], str):
            plans = r.named(node, "plans", mixes["plan_groups"])
        else:
            plans = r.labels(node, "plans", story["plans"])
    texts = r.weights(node, "texts", empty=True) if "texts" in node else {}
    by_reason: dict[str | None, Weights] = {}
    if "texts_by_reason" in node:
        table = r.mapping(node, "texts_by_reason")
        if None in table:  # a null reason equals nothing, so these would never be used
            r.fail("texts for contacts without a reason go in 'texts'", table, None)
        r.known(table, table, reasons, "'texts_by_reason' (a reason of this stream)")
        by_reason = {reason: r.weights(table, reason) for reason in table}
    if not texts:
        for reason, w in reasons.items():
            if w > 0 and reason not in by_reason:
                r.fail(f"reason '{reason}' has no subject line: add 'texts'", node, "reasons")
    return Stream(
        name=r.text(node, "name"),
        weight=r.number(node, "weight"),
        reasons=reasons,
        channels=r.mix(node, "channels", mixes["channels"], story["handle_median"]),
        texts=texts,
        start=start,
        end=end,
        decay_days=r.number(node, "decay_days", positive=True) if "decay_days" in node else None,
        floor=r.share(given("floor"), "floor"),
        ramp_days=r.number(node, "ramp_days", positive=True) if "ramp_days" in node else None,
        seasonal=r.flag(given("seasonal"), "seasonal"),
        weekly=r.flag(given("weekly"), "weekly"),
        billing_cycle=r.flag(given("billing_cycle"), "billing_cycle"),
        tags=r.weights(given("tags"), "tags"),
        outcomes=r.mix(given("outcomes"), "outcomes", mixes["outcomes"]),
        products=r.weights(node, "products") if "products" in node else None,
        plans=plans,
        regions=r.labels(node, "regions", story["regions"]) if "regions" in node else None,
        handle_factor=r.number(given("handle_factor"), "handle_factor", positive=True),
        sale_value=r.number(given("sale_value"), "sale_value"),
        repeat_rate=r.share(given("repeat_rate"), "repeat_rate"),
        anonymous=r.share(given("anonymous"), "anonymous"),
        texts_by_reason=by_reason,
    )


def load_story(path: Path = STORY_FILE) -> Story:
    """Read and check a story file; raise WorkspaceError at the first mistake."""
    r = _Reader(path)
    doc = load_yaml(path)
    if not isinstance(doc, YMap):
        r.fail("the story must be a mapping")
    r.keys(doc, _TOP, (), "the story")
    s: dict[str, Any] = {"timezone": r.text(doc, "timezone")}

    cal = r.mapping(doc, "calendar", _CALENDAR)
    for key in ("first_day", "last_day", "orders_first_day"):
        s[key] = r.day(cal, key)
    if not s["orders_first_day"] <= s["first_day"] <= s["last_day"]:
        r.fail("the calendar needs orders_first_day <= first_day <= last_day", cal)
    s["weekday"] = r.numbers(cal, "weekday", 7)
    month = r.mapping(cal, "month")
    if list(month) != list(range(1, 13)):
        r.fail("'month' needs the months 1 to 12, in order", cal, "month")
    s["month"] = {m: r.number(month, m) for m in month}
    holidays = r.mapping(cal, "holidays")
    s["holidays"] = {r.day(holidays, k, k): r.number(holidays, k) for k in holidays}
    s["live_hours"] = r.numbers(cal, "live_hours", 24)
    s["async_hours"] = r.numbers(cal, "async_hours", 24)
    s["base_trend"] = r.numbers(cal, "base_trend", 2)
    s["repeat_delay"] = r.numbers(cal, "repeat_delay", 7)

    handling = r.mapping(doc, "handling", _HANDLING)
    s["handle_median"] = r.weights(handling, "median_seconds")
    s["live_channels"] = r.labels(cal, "live_channels", s["handle_median"])
    s["handle_sigma"] = r.number(handling, "sigma")
    s["save_upsell"] = r.number(handling, "save_upsell")
    s["save_upsell_rate"] = r.share(handling, "save_upsell_rate")

    cust = r.mapping(doc, "customers", _CUSTOMERS)
    s["customers_per_contact"] = r.number(cust, "per_contact", positive=True)
    s["customer_skew"] = r.number(cust, "skew", positive=True)
    s["regions"] = r.weights(cust, "regions")
    s["plans"] = r.weights(cust, "plans")
    home = r.mapping(cust, "home_product")
    if set(home) != set(s["plans"]):
        r.fail("'home_product' needs every plan, and only those", cust, "home_product")
    s["home_product"] = {plan: r.text(home, plan) for plan in home}
    groups = r.mapping(cust, "plan_groups")
    plan_groups = {name: r.labels(groups, name, s["plans"]) for name in groups}

    orders = r.mapping(doc, "orders", _ORDERS)
    s["orders_per_customer"] = r.number(orders, "per_customer")
    s["order_median"] = r.number(orders, "median")
    s["lost_after"] = r.weights(orders, "lost_after")
    s["extra_order"] = r.weights(orders, "extra_order")
    s["extra_order_mean_days"] = r.number(orders, "extra_order_mean_days", positive=True)
    s["extra_order_median"] = r.number(orders, "extra_order_median")

    channel_mixes = r.mapping(doc, "channel_mixes")
    outcome_mixes = r.mapping(doc, "outcome_mixes")
    mixes: dict[str, Any] = {
        "channels": {n: r.weights(channel_mixes, n, s["handle_median"]) for n in channel_mixes},
        "outcomes": {n: r.weights(outcome_mixes, n) for n in outcome_mixes},
        "plan_groups": plan_groups,
    }
    defaults = r.mapping(doc, "stream_defaults", _DEFAULTED)
    names: set[str] = set()
    groups_of_streams = ("base", "background", "decisions")
    for group in groups_of_streams:
        items = doc[group]
        if not isinstance(items, YList):
            r.fail(f"'{group}' must be a list of streams", doc, group)
        streams = tuple(_stream(r, item, defaults, s, mixes) for item in items)
        for i, stream in enumerate(streams):
            if stream.name in names:
                r.fail(f"a second stream called '{stream.name}'", items, i)
            names.add(stream.name)
        s[group] = streams
    if not any(stream.weight > 0 for group in groups_of_streams for stream in s[group]):
        r.fail("some stream needs a weight above 0", doc)
    return Story(**s)


STORY = load_story()

# The story under the names the generator uses.
TIMEZONE = STORY.timezone  # must equal `timezone:` in chargeback.yaml
FIRST_DAY = STORY.first_day
LAST_DAY = STORY.last_day
ORDERS_FIRST_DAY = STORY.orders_first_day
DAYS = (LAST_DAY - FIRST_DAY).days + 1
ORDER_DAYS = (LAST_DAY - ORDERS_FIRST_DAY).days + 1
WEEKDAY = STORY.weekday
MONTH = STORY.month
HOLIDAYS = STORY.holidays
LIVE_HOURS = STORY.live_hours
ASYNC_HOURS = STORY.async_hours
LIVE_CHANNELS = STORY.live_channels
BASE_TREND = STORY.base_trend
REPEAT_DELAY = STORY.repeat_delay
CUSTOMERS_PER_CONTACT = STORY.customers_per_contact
CUSTOMER_SKEW = STORY.customer_skew
REGIONS = STORY.regions
PLANS = STORY.plans
HOME_PRODUCT = STORY.home_product
HANDLE_MEDIAN = STORY.handle_median
HANDLE_SIGMA = STORY.handle_sigma
SAVE_UPSELL = STORY.save_upsell
SAVE_UPSELL_RATE = STORY.save_upsell_rate
ORDERS_PER_CUSTOMER = STORY.orders_per_customer
ORDER_MEDIAN = STORY.order_median
LOST_AFTER = STORY.lost_after
EXTRA_ORDER = STORY.extra_order
EXTRA_ORDER_MEAN_DAYS = STORY.extra_order_mean_days
EXTRA_ORDER_MEDIAN = STORY.extra_order_median
BASE = STORY.base
BACKGROUND = STORY.background
DECISION_STREAMS = STORY.decisions
STREAMS: tuple[Stream, ...] = BASE + BACKGROUND + DECISION_STREAMS
