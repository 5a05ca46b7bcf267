"""Layer 2 for settings: chargeback.yaml and any `settings:` block in rules/.

A setting may be given in only one place, so the blocks are merged first and a
key set twice is reported with both places. The nested settings (value, smtp,
journal, columns) are checked here too, so a typo in a mail or journal setting
is reported at load time with every other problem, not when that output runs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from chargeback.workspace.fields import (
    BadValue,
    Item,
    as_addresses,
    as_non_negative,
    as_path,
    as_positive_int,
    as_strings,
    as_text,
    as_timezone,
    one_of,
    suggest,
)
from chargeback.workspace.journal_format import DELIMITERS, placeholder_problems
from chargeback.workspace.limits import MAX_HORIZONS, shown
from chargeback.workspace.mail_settings import check_smtp
from chargeback.workspace.model import (
    CONTACT_COLUMNS,
    ORDER_COLUMNS,
    OVERLAP_POLICIES,
    TAG_SEPARATORS,
    JournalSettings,
    Settings,
    ValueSettings,
)
from chargeback.workspace.time_formats import as_date_format, as_timestamp_format
from chargeback.workspace.yamlio import YList, YMap

T = TypeVar("T")

SETTINGS_KEYS = (
    "company",
    "contacts",
    "orders",
    "timezone",
    "overlap",
    "output",
    "columns",
    "timestamp_format",
    "tags_separator",
    "summary_recipients",
    "value",
    "smtp",
    "journal",
)


def _value_settings(item: Item | None) -> ValueSettings:
    """The value report's settings; each one left out keeps its default."""
    if item is None:
        return ValueSettings()
    item.check_keys(
        ("sale_outcomes", "save_outcomes", "save_value", "repeat_window_days", "horizons_days")
    )
    base = ValueSettings()

    def horizons(value: Any) -> tuple[int, ...]:
        items = value if isinstance(value, YList) else [value]
        days = tuple(as_positive_int(v) for v in items)
        if not 1 <= len(days) <= MAX_HORIZONS:
            raise BadValue(f"must list 1 to {MAX_HORIZONS} horizons, such as [30, 180, 540]")
        if len(set(days)) != len(days):
            raise BadValue("lists a horizon twice")
        return days

    return ValueSettings(
        sale_outcomes=item.get("sale_outcomes", as_strings, base.sale_outcomes),
        save_outcomes=item.get("save_outcomes", as_strings, base.save_outcomes),
        save_value=item.get("save_value", as_non_negative, base.save_value),
        repeat_window_days=item.get("repeat_window_days", as_positive_int, base.repeat_window_days),
        horizons_days=item.get("horizons_days", horizons, base.horizons_days),
    )


def parse_settings(items: list[Item]) -> Settings:
    """Merge settings blocks (chargeback.yaml and any `settings:` in rules/)."""
    seen: dict[str, Item] = {}
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

    def mapping(key: str, sub: Item | None = None) -> tuple[tuple[str, str], ...]:
        """A setting of single values; `sub` when the caller has already taken it apart."""
        if sub is None and key in seen:
            sub = seen[key].sub(key, f"setting '{key}'")
        if sub is None:
            return ()
        out = []
        for name, value in sub.node.items():
            if isinstance(value, YMap | YList) or value is None:
                sub.error(name, f"'{shown(name)}' must be a single value")
                continue
            try:
                out.append((as_text(name), as_text(value)))
            except BadValue as exc:
                sub.error(name, f"'{shown(name)}': {exc}")
        return tuple(out)

    if "columns" in seen:
        columns_item = seen["columns"].sub("columns", "setting 'columns'")
        for key in columns_item.node if columns_item else ():
            name = str(key)
            known = (*CONTACT_COLUMNS, *(f"orders.{c}" for c in ORDER_COLUMNS))
            hint = suggest(name, known)
            if name not in known and hint:  # other names rename extra columns, on purpose
                assert columns_item is not None
                columns_item.error(key, f"'{shown(name)}' is not a contacts column{hint}")
    smtp_item = seen["smtp"].sub("smtp", "setting 'smtp'") if "smtp" in seen else None
    journal_item = (
        seen["journal"].sub("journal", "setting 'journal'") if "journal" in seen else None
    )
    value_item = seen["value"].sub("value", "setting 'value'") if "value" in seen else None
    return Settings(
        company=pick("company", as_text, ""),
        contacts=pick("contacts", as_path, None),
        orders=pick("orders", as_path, None),
        timezone=pick("timezone", as_timezone, "UTC"),
        overlap=pick("overlap", one_of(OVERLAP_POLICIES), "split"),
        output=pick("output", as_path, "reports"),
        columns=mapping("columns"),
        timestamp_format=pick("timestamp_format", as_timestamp_format, None),
        tags_separator=pick("tags_separator", _separator, "|"),
        summary_recipients=pick("summary_recipients", as_addresses, ()),
        value=_value_settings(value_item),
        smtp=check_smtp(smtp_item) if smtp_item is not None else (),
        journal=_journal_settings(journal_item),
    )


def _separator(value: Any) -> str:
    """One of TAG_SEPARATORS, as written (a lone space is kept, never trimmed away)."""
    if not isinstance(value, str) or value not in TAG_SEPARATORS:
        shown = {" ": '" " (a space)'}
        raise BadValue(
            "must be one of "
            + ", ".join(shown.get(s, f'"{s}"') for s in TAG_SEPARATORS)
            + f", not {value!r}"
        )
    return value


def _journal_settings(item: Item | None) -> JournalSettings:
    """The journal's settings; each column template is tried now, not when the journal runs."""
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
                sub.error(
                    key, f"column '{shown(key)}' must be a text template such as \"{{debit}}\""
                )
                continue
            try:
                header, template = as_text(key), as_text(value)
            except BadValue as exc:
                sub.error(key, f"column '{shown(key)}': {exc}")
                continue
            for problem in placeholder_problems(template):
                sub.error(key, f"column '{header}': {problem}")
            columns.append((header, template))
    delimiter = item.get("delimiter", as_text, ",")
    if delimiter not in DELIMITERS:
        item.error("delimiter", f"delimiter '{shown(delimiter)}' must be one of , ; | tab")
        delimiter = ","
    return JournalSettings(
        service_cost_center=item.get("service_cost_center", as_text, ""),
        account=item.get("account", as_text, "chargeback"),
        credit_account=item.get("credit_account", as_text, ""),
        columns=tuple(columns),
        delimiter=delimiter,
        date_format=item.get("date_format", as_date_format, "%Y-%m-%d"),
    )
