"""Find a workspace, read its YAML and validate it in layers.

Layer 1, structure: each file parses, top-level keys are known, sections have
the right shape. Layer 2, items: each department, decision, cost block, rule
and setting has known keys of the right types. Layer 3, references: ids are
unique across files, decisions name real departments, rules real decisions.
Every problem from every layer is collected and reported at once, each with the
file and line it concerns, so a user fixes a workspace in one pass.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from chargeback.errors import Problem, WorkspaceError
from chargeback.resources import sample_workspace
from chargeback.workspace.model import (
    CONTACT_COLUMNS,
    COST_METHODS,
    DECISION_KINDS,
    MATCH_LIST_KEYS,
    ORDER_COLUMNS,
    OVERLAP_POLICIES,
    SMTP_KEYS,
    ChannelRate,
    Costs,
    Decision,
    Department,
    JournalSettings,
    Match,
    Place,
    Revenue,
    Rule,
    Settings,
    ValueSettings,
    Workspace,
)
from chargeback.workspace.yamlio import YList, YMap, load_yaml_collect

SETTINGS_FILE = "chargeback.yaml"
TOP_LEVEL_KEYS = ("departments", "decisions", "costs", "rules", "settings")
SETTINGS_KEYS = (
    "company",
    "contacts",
    "orders",
    "timezone",
    "overlap",
    "output",
    "columns",
    "timestamp_format",
    "summary_recipients",
    "value",
    "smtp",
    "journal",
)
ID_PATTERN = re.compile(r"^[a-z0-9_-]+$")
DATE_PATTERN = re.compile(r"^\d{4}-\d{2}-\d{2}$")
MONTH_PATTERN = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")

T = TypeVar("T")


def find_workspace(explicit: Path | None) -> Path:
    """`--workspace`, else the current folder when it holds rules/, else the sample."""
    if explicit is not None:
        if not explicit.is_dir():
            raise WorkspaceError(Problem("workspace folder not found", explicit))
        if not (explicit / "rules").is_dir():
            raise WorkspaceError(Problem("not a workspace: it has no rules/ folder", explicit))
        return explicit
    here = Path.cwd()
    if (here / "rules").is_dir():
        return here
    return sample_workspace()


def suggest(word: str, choices: Iterable[str]) -> str:
    """A ` (did you mean 'x'?)` hint for typos, or ''."""
    close = difflib.get_close_matches(str(word), list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


class _Collector:
    """Gathers problems; every check records and carries on instead of raising."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def add(self, path: Path | None, line: int | None, message: str) -> None:
        self.problems.append(Problem(message, path, line))


@dataclass
class _Item:
    """One mapping (a department, a rule, ...) being checked, with its label for messages."""

    ck: _Collector
    node: YMap
    label: str

    @property
    def path(self) -> Path | None:
        return self.node.path

    def place(self, key: str | None = None) -> Place:
        line = self.node.line_of(key) if key is not None else self.node.line
        return Place(self.node.path or Path("?"), line)

    def error(self, key: str | None, message: str) -> None:
        line = self.node.line_of(key) if key is not None else self.node.line
        prefix = f"{self.label}: " if self.label else ""
        self.ck.add(self.node.path, line, prefix + message)

    def check_keys(self, allowed: Iterable[str]) -> None:
        allowed = tuple(allowed)
        for key in self.node:
            if key not in allowed:
                self.error(key, f"unknown key '{key}'{suggest(str(key), allowed)}")

    def get(self, key: str, conv: Callable[[Any], T], default: T, required: bool = False) -> T:
        if key not in self.node or self.node[key] is None:
            if required:
                self.error(None, f"missing required key '{key}'")
            return default
        try:
            return conv(self.node[key])
        except _Bad as exc:
            self.error(key, f"{key}: {exc}")
            return default

    def sub(self, key: str, label: str | None = None) -> _Item | None:
        value = self.node.get(key)
        if value is None:
            return None
        if not isinstance(value, YMap):
            self.error(key, f"'{key}' must be a mapping")
            return None
        return _Item(self.ck, value, label if label is not None else self.label)


class _Bad(Exception):
    """A value failed its type check; the message completes "'key' ..."."""


def _text(value: Any) -> str:
    if isinstance(value, bool | YMap | YList):
        raise _Bad("must be text")
    return str(value)


def _ident(value: Any) -> str:
    text = _text(value)
    if not ID_PATTERN.match(text):
        raise _Bad(f"'{text}' must use only a-z, 0-9, '_' and '-'")
    return _not_reserved(text)


def _not_reserved(text: str) -> str:
    """'unattributed' names the ledger's line for what no decision explains (SPEC 5)."""
    if text == "unattributed":
        raise _Bad("'unattributed' is reserved for the ledger's unattributed line; pick another id")
    return text


def _date(value: Any) -> date:
    text = _text(value)
    if not DATE_PATTERN.match(text):
        raise _Bad(f"'{text}' is not a date (YYYY-MM-DD)")
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise _Bad(f"'{text}' is an impossible date") from None


def _name(value: Any) -> str:
    """Decision and rule ids: any text without surrounding blanks (SPEC limits only departments)."""
    text = _text(value)
    if not text.strip() or text != text.strip():
        raise _Bad(f"'{text}' must be non-empty text without leading or trailing blanks")
    return text


def _month(value: Any) -> str:
    text = _text(value)
    if not MONTH_PATTERN.match(text):
        raise _Bad(f"'{text}' is not a month (YYYY-MM)")
    return text


def _money(value: Any) -> Decimal:
    if isinstance(value, bool):
        raise _Bad("must be a number")
    try:
        # no thousands separators: "0,40" may be a decimal comma, refused rather than misread
        amount = Decimal(value.strip()) if isinstance(value, str) else Decimal(value)
    except (InvalidOperation, TypeError, ValueError):
        raise _Bad(f"'{value}' is not a number") from None
    if not amount.is_finite():
        raise _Bad(f"'{value}' is not a finite number")
    return amount


def _non_negative(value: Any) -> Decimal:
    amount = _money(value)
    if amount < 0:
        raise _Bad(f"must not be negative (got {value})")
    return amount


def _int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _Bad(f"'{value}' must be a whole number")
    return value


def _positive_int(value: Any) -> int:
    number = _int(value)
    if number < 1:
        raise _Bad(f"must be at least 1 (got {number})")
    return number


def _share(value: Any) -> Decimal:
    share = _money(value)
    if not Decimal(0) < share <= Decimal(1):
        raise _Bad(f"must be more than 0 and at most 1 (got {value})")
    return share


def _choice(choices: tuple[str, ...]) -> Callable[[Any], str]:
    def conv(value: Any) -> str:
        text = _text(value)
        if text not in choices:
            raise _Bad(f"'{text}' is not one of {', '.join(choices)}{suggest(text, choices)}")
        return text

    return conv


def _any_of(value: Any) -> tuple[str, ...]:
    """A scalar or a list of scalars; an empty list would match nothing, so it is refused."""
    items = value if isinstance(value, YList) else [value]
    if isinstance(value, YMap):
        raise _Bad("must be a value or a list of values")
    out = []
    for item in items:
        if item is None or isinstance(item, YMap | YList):
            raise _Bad("must list plain values")
        out.append(str(item).lower() if isinstance(item, bool) else _text(item))
    if not out:
        raise _Bad("is an empty list and would match nothing")
    return tuple(out)


def _strings(value: Any) -> tuple[str, ...]:
    items = value if isinstance(value, YList) else [value]
    return tuple(_text(item) for item in items)


def _timezone(value: Any) -> str:
    name = _text(value)
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise _Bad(f"'{name}' is not an IANA time zone (e.g. Europe/Berlin, UTC)") from None
    return name


def _regex(value: Any) -> str:
    pattern = _text(value)
    problem = regex_problem(pattern)
    if problem:
        raise _Bad(f"is not a valid regular expression: {problem}")
    return pattern


def regex_problem(pattern: str) -> str | None:
    """Check with the engine that will run it (Rust regex): Python's re accepts more."""
    import polars as pl

    try:
        pl.Series([""], dtype=pl.String).str.contains("(?i)" + pattern)
    except pl.exceptions.PolarsError as exc:
        lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip().startswith("error:")]
        return lines[0].removeprefix("error:").strip() if lines else "rejected by the regex engine"
    return None


# --------------------------------------------------------------------------- items


def _department(item: _Item) -> Department:
    item.check_keys(("id", "name", "cost_center", "recipients"))
    dept_id = item.get("id", _ident, "", required=True)
    return Department(
        id=dept_id,
        name=item.get("name", _text, "") or dept_id,  # statements need a heading
        cost_center=item.get("cost_center", _text, ""),
        recipients=item.get("recipients", _strings, ()),
        place=item.place(),
    )


def _revenue(item: _Item | None) -> Revenue | None:
    if item is None:
        return None
    item.check_keys(("monthly", "by_period"))
    monthly = item.get("monthly", _money, None)
    by_period: list[tuple[str, Decimal]] = []
    sub = item.sub("by_period")
    if sub is not None:
        for key, value in sub.node.items():
            try:
                by_period.append((_month(key), _money(value)))
            except _Bad as exc:
                sub.error(key, f"by_period '{key}': {exc}")
    if monthly is not None and sub is not None:
        item.error("by_period", "give either 'monthly' or 'by_period', not both")
    if monthly is None and sub is None:
        item.error(None, "revenue needs 'monthly' or 'by_period'")
    return Revenue(monthly=monthly, by_period=tuple(sorted(by_period)))


def _decision(item: _Item) -> Decision:
    item.check_keys(("id", "title", "kind", "department", "effective", "ends", "revenue"))
    effective = item.get("effective", _date, date.min, required=True)
    ends = item.get("ends", _date, None)
    if ends is not None and effective != date.min and ends < effective:
        item.error("ends", f"'ends' {ends} is before 'effective' {effective}")
    return Decision(
        id=item.get("id", lambda v: _not_reserved(_name(v)), "", required=True),
        title=item.get("title", _text, ""),
        kind=item.get("kind", _choice(DECISION_KINDS), "other"),
        department=item.get("department", _ident, "", required=True),
        effective=effective,
        ends=ends,
        revenue=_revenue(item.sub("revenue")),
        place=item.place(),
    )


def _rate(item: _Item) -> ChannelRate:
    item.check_keys(("per_contact", "per_minute"))
    return ChannelRate(
        per_contact=item.get("per_contact", _non_negative, Decimal(0)),
        per_minute=item.get("per_minute", _non_negative, Decimal(0)),
    )


def _costs(item: _Item) -> Costs:
    item.check_keys(("currency", "method", "channels", "default", "pool"))
    method = item.get("method", _choice(COST_METHODS), "rates")
    channels: list[tuple[str, ChannelRate]] = []
    chan = item.sub("channels", "costs")
    if chan is not None:
        for name, value in chan.node.items():
            if not isinstance(value, YMap):
                chan.error(name, f"channel '{name}' must be a mapping of per_contact/per_minute")
                continue
            channels.append((str(name), _rate(_Item(item.ck, value, f"costs channel '{name}'"))))
    default_item = item.sub("default", "costs default")
    default = _rate(default_item) if default_item is not None else None
    pool_monthly: Decimal | None = None
    pool_by_period: list[tuple[str, Decimal]] = []
    pool = item.sub("pool", "costs pool")
    if pool is not None:
        pool.check_keys(("monthly", "by_period"))
        pool_monthly = pool.get("monthly", _non_negative, None)
        by = pool.sub("by_period", "costs pool")
        if by is not None:
            for key, value in by.node.items():
                try:
                    pool_by_period.append((_month(key), _non_negative(value)))
                except _Bad as exc:
                    by.error(key, f"by_period '{key}': {exc}")
        if (pool_monthly is None) == (by is None):
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
        currency=item.get("currency", _text, "USD"),
        method=method,
        channels=tuple(channels),
        default=default,
        pool_monthly=pool_monthly,
        pool_by_period=tuple(sorted(pool_by_period)),
        place=item.place(),
    )


def _match(item: _Item | None) -> Match:
    if item is None:
        return Match()
    item.check_keys((*MATCH_LIST_KEYS, "text_regex", "fields"))
    lists = {key: item.get(key, _any_of, None) for key in MATCH_LIST_KEYS}
    fields: list[tuple[str, tuple[str, ...]]] = []
    sub = item.sub("fields")
    if sub is not None:
        for name, value in sub.node.items():
            try:
                fields.append((_text(name), _any_of(value)))
            except _Bad as exc:
                sub.error(name, f"fields: {name}: {exc}")
    return Match(
        **lists,
        field_lines=tuple((str(n), sub.node.line_of(n)) for n in sub.node) if sub else (),
        text_regex=item.get("text_regex", _regex, None),
        fields=tuple(fields),
    )


def _rule(item: _Item) -> Rule:
    item.check_keys(("id", "decision", "match", "window", "share", "priority", "baseline"))
    window = item.sub("window")
    offset, days = 0, None
    if window is not None:
        window.check_keys(("start_offset_days", "days"))
        offset = window.get("start_offset_days", _int, 0)
        days = window.get("days", _positive_int, None)
    lookback = None
    baseline = item.sub("baseline")
    if baseline is not None:
        baseline.check_keys(("lookback_days",))
        lookback = baseline.get("lookback_days", _positive_int, None, required=True)
    return Rule(
        id=item.get("id", _name, "", required=True),
        decision=item.get("decision", _name, "", required=True),
        match=_match(item.sub("match")),
        start_offset_days=offset,
        days=days,
        share=item.get("share", _share, Decimal(1)),
        priority=item.get("priority", _int, 0),
        baseline_lookback_days=lookback,
        place=item.place(),
    )


def _value_settings(item: _Item | None) -> ValueSettings:
    if item is None:
        return ValueSettings()
    item.check_keys(
        ("sale_outcomes", "save_outcomes", "save_value", "repeat_window_days", "horizons_days")
    )
    base = ValueSettings()

    def horizons(value: Any) -> tuple[int, ...]:
        items = value if isinstance(value, YList) else [value]
        return tuple(_positive_int(v) for v in items)

    return ValueSettings(
        sale_outcomes=item.get("sale_outcomes", _strings, base.sale_outcomes),
        save_outcomes=item.get("save_outcomes", _strings, base.save_outcomes),
        save_value=item.get("save_value", _non_negative, base.save_value),
        repeat_window_days=item.get("repeat_window_days", _positive_int, base.repeat_window_days),
        horizons_days=item.get("horizons_days", horizons, base.horizons_days),
    )


def _settings(items: list[_Item]) -> Settings:
    """Merge settings blocks (chargeback.yaml and any `settings:` in rules/)."""
    seen: dict[str, _Item] = {}
    for item in items:
        item.check_keys(SETTINGS_KEYS)
        for key in item.node:
            if key in seen and key in SETTINGS_KEYS:
                first = seen[key]
                item.error(key, f"setting '{key}' is also set at {first.place(key)}")
            elif key in SETTINGS_KEYS:
                seen[key] = item
    if not seen:
        return Settings()

    def pick(key: str, conv: Callable[[Any], T], default: T) -> T:
        return seen[key].get(key, conv, default) if key in seen else default

    def mapping(key: str, sub: _Item | None = None) -> tuple[tuple[str, str], ...]:
        """A setting of single values; `sub` when the caller has already taken it apart."""
        if sub is None and key in seen:
            sub = seen[key].sub(key, f"setting '{key}'")
        if sub is None:
            return ()
        out = []
        for name, value in sub.node.items():
            if isinstance(value, YMap | YList) or value is None:
                sub.error(name, f"'{name}' must be a single value")
                continue
            out.append((str(name), str(value)))
        return tuple(out)

    if "columns" in seen:
        columns_item = seen["columns"].sub("columns", "setting 'columns'")
        for key in columns_item.node if columns_item else ():
            name = str(key)
            known = (*CONTACT_COLUMNS, *(f"orders.{c}" for c in ORDER_COLUMNS))
            hint = suggest(name, known)
            if name not in known and hint:  # other names rename extra columns, on purpose
                assert columns_item is not None
                columns_item.error(key, f"'{name}' is not a contacts column{hint}")
    smtp_item = seen["smtp"].sub("smtp", "setting 'smtp'") if "smtp" in seen else None
    for key in smtp_item.node if smtp_item is not None else ():
        name = str(key)
        assert smtp_item is not None
        if name == "password":
            smtp_item.error(
                key,
                "the mail password is never kept in a file: set the environment variable "
                "CHARGEBACK_SMTP_PASSWORD instead",
            )
        elif name not in SMTP_KEYS:
            smtp_item.error(
                key,
                f"unknown smtp setting '{name}'{suggest(name, SMTP_KEYS)}"
                f" (known: {', '.join(SMTP_KEYS)})",
            )
    journal_item = (
        seen["journal"].sub("journal", "setting 'journal'") if "journal" in seen else None
    )
    value_item = seen["value"].sub("value", "setting 'value'") if "value" in seen else None
    return Settings(
        company=pick("company", _text, ""),
        contacts=pick("contacts", _text, None),
        orders=pick("orders", _text, None),
        timezone=pick("timezone", _timezone, "UTC"),
        overlap=pick("overlap", _choice(OVERLAP_POLICIES), "split"),
        output=pick("output", _text, "reports"),
        columns=mapping("columns"),
        timestamp_format=pick("timestamp_format", _text, None),
        summary_recipients=pick("summary_recipients", _strings, ()),
        value=_value_settings(value_item),
        smtp=mapping("smtp", smtp_item) if smtp_item is not None else (),
        journal=_journal_settings(journal_item),
    )


def _journal_settings(item: _Item | None) -> JournalSettings:
    from chargeback.operations.journal import DELIMITERS, placeholder_problems

    if item is None:
        return JournalSettings()
    item.check_keys(
        ("service_cost_center", "account", "credit_account", "columns", "delimiter", "date_format")
    )
    columns: list[tuple[str, str]] = []
    sub = item.sub("columns")
    if sub is not None:
        for key, value in sub.node.items():
            if isinstance(value, YMap | YList) or value is None:
                sub.error(key, f"column '{key}' must be a text template such as \"{{debit}}\"")
                continue
            for problem in placeholder_problems(str(value)):
                sub.error(key, f"column '{key}': {problem}")
            columns.append((str(key), str(value)))
    delimiter = item.get("delimiter", _text, ",")
    if delimiter not in DELIMITERS:
        item.error("delimiter", f"delimiter '{delimiter}' must be one of , ; | tab")
        delimiter = ","
    return JournalSettings(
        service_cost_center=item.get("service_cost_center", _text, ""),
        account=item.get("account", _text, "chargeback"),
        credit_account=item.get("credit_account", _text, ""),
        columns=tuple(columns),
        delimiter=delimiter,
        date_format=item.get("date_format", _text, "%Y-%m-%d"),
    )


# --------------------------------------------------------------------------- loading


def rule_files(root: Path) -> list[Path]:
    rules = root / "rules"
    found = [p for p in rules.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file()]
    return sorted(found)


def load_workspace(root: Path) -> Workspace:
    """Read and validate a whole workspace; raise WorkspaceError with every problem."""
    ck = _Collector()
    files: list[Path] = []
    documents: list[tuple[Path, Any]] = []

    settings_path = root / SETTINGS_FILE
    if settings_path.is_file():
        files.append(settings_path)
    paths = rule_files(root)
    if not paths:
        ck.add(root / "rules", None, "no YAML files (*.yaml, *.yml) in rules/")
    files.extend(paths)
    unreadable = False
    for path in files:
        data, problems = load_yaml_collect(path)
        ck.problems.extend(problems)
        if data is None and problems:
            unreadable = True  # its ids are unknown: reference checks would only echo this
        documents.append((path, data))

    # Layer 1: structure.
    settings_items: list[_Item] = []
    sections: dict[str, list[_Item]] = {"departments": [], "decisions": [], "rules": []}
    cost_items: list[_Item] = []
    cost_lines: list[Place] = []  # where each `costs:` key stands
    for path, doc in documents:
        if doc is None:
            continue
        if not isinstance(doc, YMap):
            ck.add(path, 1, "the file must be a mapping of sections (departments:, rules:, ...)")
            unreadable = True
            continue
        if path == settings_path:
            settings_items.append(_Item(ck, doc, ""))
            continue
        for key, value in doc.items():
            line = doc.line_of(key)
            if key not in TOP_LEVEL_KEYS:
                ck.add(
                    path, line, f"unknown top-level key '{key}'{suggest(str(key), TOP_LEVEL_KEYS)}"
                )
            elif value is None:
                continue
            elif key in sections:
                if not isinstance(value, YList):
                    ck.add(path, line, f"'{key}' must be a list (each item starting with '- ')")
                    continue
                singular = key[:-1]
                for index, entry in enumerate(value):
                    if not isinstance(entry, YMap):
                        ck.add(path, value.line_of(index), f"each of '{key}' must be a mapping")
                        continue
                    ident = entry.get("id")
                    label = (
                        f"{singular} '{ident}'" if ident is not None else f"{singular} #{index + 1}"
                    )
                    sections[key].append(_Item(ck, entry, label))
            elif not isinstance(value, YMap):
                ck.add(path, line, f"'{key}' must be a mapping")
            elif key == "costs":
                cost_items.append(_Item(ck, value, "costs"))
                cost_lines.append(Place(path, line))
            else:
                settings_items.append(_Item(ck, value, "settings"))

    # Layer 2: each item's keys and types.
    settings = _settings(settings_items)
    departments = [_department(i) for i in sections["departments"]]
    decisions = [_decision(i) for i in sections["decisions"]]
    rules = [_rule(i) for i in sections["rules"]]
    costs = [_costs(i) for i in cost_items]

    # Layer 3: uniqueness and references.
    for kind, objects in (("department", departments), ("decision", decisions), ("rule", rules)):
        first: dict[str, Any] = {}
        for obj in objects:
            if not obj.id:
                continue
            place = obj.place
            assert place is not None
            if obj.id in first:
                ck.add(
                    place.path,
                    place.line,
                    f"duplicate {kind} id '{obj.id}' (first defined at {first[obj.id].place})",
                )
            else:
                first[obj.id] = obj
    dept_ids = {d.id for d in departments}
    decision_ids = {d.id for d in decisions}
    if not unreadable:
        for item, decision in zip(sections["decisions"], decisions, strict=True):
            if decision.department and decision.department not in dept_ids:
                item.error(
                    "department",
                    f"unknown department '{decision.department}'"
                    f"{suggest(decision.department, dept_ids)}",
                )
        for item, rule in zip(sections["rules"], rules, strict=True):
            if rule.decision and rule.decision not in decision_ids:
                item.error(
                    "decision",
                    f"unknown decision '{rule.decision}'{suggest(rule.decision, decision_ids)}",
                )
        if not costs and documents:
            ck.add(root / "rules", None, "no 'costs' block: add one (see docs/workspace.md)")
    for extra in cost_lines[1:]:
        ck.add(extra.path, extra.line, f"a second 'costs' block (the first is at {cost_lines[0]})")

    if ck.problems:
        raise WorkspaceError(sorted(ck.problems, key=_problem_order))
    return Workspace(
        root=root,
        settings=settings,
        departments=tuple(departments),
        decisions=tuple(decisions),
        rules=tuple(rules),
        costs=costs[0],
        files=tuple(files),
    )


def _problem_order(problem: Problem) -> tuple[str, int]:
    return (str(problem.path or ""), problem.line or 0)
