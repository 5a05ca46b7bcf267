"""Typed, frozen objects for everything a workspace declares.

Validation (workspace.py) builds these; nothing downstream sees raw YAML.
Money and rates are Decimal so no binary rounding creeps in before the ledger.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path

DECISION_KINDS = ("fee", "launch", "campaign", "policy", "pricing", "outage", "process", "other")
MATCH_LIST_KEYS = ("reason", "channel", "product", "region", "outcome", "tags", "text")
OVERLAP_POLICIES = ("split", "priority")
TAG_SEPARATORS = ("|", " ", ",", ";")  # SPEC 1: what a text tags column may split on
COST_METHODS = ("rates", "pool")
BASELINE_METHODS = ("flat", "control")  # SPEC 4 and 4b

CONTACT_COLUMNS = (
    "contact_id",
    "started_at",
    "channel",
    "reason",
    "tags",
    "text",
    "handle_seconds",
    "customer_id",
    "product",
    "region",
    "outcome",
    "revenue",
)
REQUIRED_CONTACT_COLUMNS = ("contact_id", "started_at", "channel")
ORDER_COLUMNS = ("customer_id", "ordered_at", "amount")
SMTP_KEYS = (
    "host",
    "port",
    "security",
    "user",
    "from",
    "timeout",
    "retries",
    "retry_delay_seconds",
    "ca_file",
)


@dataclass(frozen=True)
class Place:
    """Where something was declared, for messages that point at it."""

    path: Path
    line: int

    def __str__(self) -> str:
        from chargeback.errors import display_path

        return f"{display_path(self.path)}:{self.line}"


@dataclass(frozen=True)
class Department:
    id: str
    name: str
    cost_center: str
    recipients: tuple[str, ...]
    place: Place


@dataclass(frozen=True)
class Revenue:
    """`monthly` applies to every period in force; `by_period` names months (missing -> 0)."""

    monthly: Decimal | None = None
    by_period: tuple[tuple[str, Decimal], ...] = ()

    def for_period(self, period: str) -> Decimal:
        if self.monthly is not None:
            return self.monthly
        return dict(self.by_period).get(period, Decimal(0))


@dataclass(frozen=True)
class Decision:
    id: str
    title: str
    kind: str
    department: str
    effective: date
    ends: date | None
    revenue: Revenue | None
    place: Place

    def in_force_during(self, first: date, last: date) -> bool:
        """True when the decision is in force on at least one day of [first, last]."""
        return self.effective <= last and (self.ends is None or self.ends >= first)


@dataclass(frozen=True)
class ChannelRate:
    per_contact: Decimal = Decimal(0)
    per_minute: Decimal = Decimal(0)


@dataclass(frozen=True)
class Costs:
    currency: str
    method: str  # rates | pool
    channels: tuple[tuple[str, ChannelRate], ...] = ()
    default: ChannelRate | None = None
    pool_monthly: Decimal | None = None
    pool_by_period: tuple[tuple[str, Decimal], ...] = ()
    place: Place | None = None

    def rate_for(self, channel: str) -> ChannelRate | None:
        """A listed channel's own rates (missing ones 0), else `default`, else None."""
        rates = dict(self.channels)
        if channel in rates:
            return rates[channel]
        return self.default

    def pool_for(self, period: str) -> Decimal:
        if self.pool_monthly is not None:
            return self.pool_monthly
        return dict(self.pool_by_period).get(period, Decimal(0))


@dataclass(frozen=True)
class Match:
    """Every key present must hold; each list is any-of (`x*` = prefix)."""

    reason: tuple[str, ...] | None = None
    channel: tuple[str, ...] | None = None
    product: tuple[str, ...] | None = None
    region: tuple[str, ...] | None = None
    outcome: tuple[str, ...] | None = None
    tags: tuple[str, ...] | None = None
    text: tuple[str, ...] | None = None
    text_regex: str | None = None
    fields: tuple[tuple[str, tuple[str, ...]], ...] = ()
    field_lines: tuple[tuple[str, int], ...] = ()  # where each `fields` column is named

    def columns(self) -> set[str]:
        """The contact columns this match reads."""
        cols = {key for key in MATCH_LIST_KEYS if getattr(self, key) is not None}
        if self.text_regex is not None:
            cols.add("text")
        cols.update(name for name, _ in self.fields)
        return cols


@dataclass(frozen=True)
class ControlBaseline:
    """SPEC 4b: the excess over a control series the rule's volume follows."""

    lookback_days: int = 182  # the fit period before the decision
    interval: Decimal = Decimal("0.8")  # the range printed beside the charge
    evidence: Match | None = None  # splits an excess shared with other decisions
    control: Match | None = None  # the series; None: contacts no decision touched


@dataclass(frozen=True)
class Rule:
    id: str
    decision: str
    match: Match
    start_offset_days: int = 0
    days: int | None = None
    share: Decimal = Decimal(1)
    priority: int = 0
    baseline_lookback_days: int | None = None  # the flat baseline (SPEC 4)
    place: Place | None = None
    control: ControlBaseline | None = None  # `baseline: {method: control}` (SPEC 4b)

    @property
    def has_baseline(self) -> bool:
        return self.baseline_lookback_days is not None or self.control is not None


@dataclass(frozen=True)
class ValueSettings:
    sale_outcomes: tuple[str, ...] = ("sale",)
    save_outcomes: tuple[str, ...] = ("saved",)
    save_value: Decimal = Decimal("250.00")
    repeat_window_days: int = 7
    horizons_days: tuple[int, ...] = (30, 180, 540)


@dataclass(frozen=True)
class JournalSettings:
    """`journal:`: where chargebacks are booked, and the ERP's import layout."""

    service_cost_center: str = ""  # credited with what is charged to departments
    account: str = "chargeback"  # GL account on the department (debit) lines
    credit_account: str = ""  # on the service line; empty: the same account
    columns: tuple[tuple[str, str], ...] = ()  # header -> template with {fields}
    delimiter: str = ","
    date_format: str = "%Y-%m-%d"


@dataclass(frozen=True)
class ValueMap:
    """`values:` for one contacts column: the platform's words to yours (SPEC 1).

    Applied once, after `columns:` and before any check, match or price; a value
    not listed stays as it is. `place` is where the column is named in
    chargeback.yaml (None when only a preset maps it).
    """

    column: str
    pairs: tuple[tuple[str, str], ...]
    place: Place | None = None


ENGINES = ("polars", "duckdb", "postgres", "spark")  # SPEC 10; polars is the default
SCHEME_ENGINES = {  # a database source's scheme -> the engine that runs where it is
    "postgresql": "postgres",
    "postgres": "postgres",
    "duckdb": "duckdb",
    "sc": "spark",
}


@dataclass(frozen=True)
class DbSource:
    """SPEC 10's `{uri, table}` or `{uri, query}`: contacts (or orders) in a database.

    The address never holds a password (refused at load); the driver reads it from
    the environment. Exactly one of `table` and `query` is set.
    """

    uri: str
    table: str | None = None
    query: str | None = None
    place: Place | None = None

    @property
    def engine(self) -> str:
        """The engine the address's scheme names (`postgresql://` -> postgres)."""
        return SCHEME_ENGINES[self.uri.split("://", 1)[0].lower()]

    def label(self) -> str:
        """How messages name the source: the address, and the table or 'query'."""
        return f"{self.uri} {self.table}" if self.table else f"{self.uri} (query)"


@dataclass(frozen=True)
class Settings:
    company: str = ""  # printed on statements; empty -> the workspace folder's name
    contacts: str | DbSource | None = None
    orders: str | DbSource | None = None
    engine: str | None = None  # SPEC 10: None -> the source's scheme's engine, else polars
    engine_place: Place | None = None
    timezone: str = "UTC"
    overlap: str = "split"
    output: str = "reports"
    columns: tuple[tuple[str, str], ...] = ()  # canonical -> header, a preset's merged in
    # a preset's optional columns: mapped only in a file that has the preset's header
    optional_columns: tuple[str, ...] = ()
    preset: str | None = None  # `columns: zendesk` (chargeback.workspace.presets)
    values: tuple[ValueMap, ...] = ()
    timestamp_format: str | None = None
    tags_separator: str = "|"  # how a text tags column splits (SPEC 1)
    summary_recipients: tuple[str, ...] = ()
    value: ValueSettings = field(default_factory=ValueSettings)
    smtp: tuple[tuple[str, str], ...] = ()
    journal: JournalSettings = field(default_factory=JournalSettings)


@dataclass(frozen=True)
class Workspace:
    root: Path
    settings: Settings
    departments: tuple[Department, ...]
    decisions: tuple[Decision, ...]
    rules: tuple[Rule, ...]
    costs: Costs
    files: tuple[Path, ...]  # every YAML file read, for the run's fingerprint

    def department(self, dept_id: str) -> Department:
        return next(d for d in self.departments if d.id == dept_id)

    def decision(self, decision_id: str) -> Decision:
        return next(d for d in self.decisions if d.id == decision_id)
