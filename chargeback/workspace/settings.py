"""Layer 2 for settings: chargeback.yaml and any `settings:` block in rules/.

A setting may be given in only one place, so the blocks are merged first and a
key set twice is reported with both places. The nested settings (value, smtp,
journal, columns, values) are checked here too, so a typo in a mail or journal
setting is reported at load time with every other problem, not when that
output runs. `columns:` may name a preset (chargeback.workspace.presets), whose
defaults give way to every setting written out.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from chargeback.workspace.db_sources import engine_setting, source_setting
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
    OVERLAP_POLICIES,
    JournalSettings,
    Settings,
    ValueMap,
    ValueSettings,
)
from chargeback.workspace.presets import Preset, find_preset, preset_names
from chargeback.workspace.time_formats import as_date_format, as_timestamp_format
from chargeback.workspace.value_maps import as_separator, column_pairs, merged_values, value_maps
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
    "values",
    "summary_recipients",
    "value",
    "smtp",
    "journal",
    "engine",
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

    export = _export(seen.get("columns"), seen.get("values"))
    preset = export.preset
    smtp_item = seen["smtp"].sub("smtp", "setting 'smtp'") if "smtp" in seen else None
    journal_item = (
        seen["journal"].sub("journal", "setting 'journal'") if "journal" in seen else None
    )
    value_item = seen["value"].sub("value", "setting 'value'") if "value" in seen else None
    contacts = source_setting(seen["contacts"], "contacts") if "contacts" in seen else None
    orders = source_setting(seen["orders"], "orders") if "orders" in seen else None
    engine_item = seen.get("engine")
    return Settings(
        company=pick("company", as_text, ""),
        contacts=contacts,
        orders=orders,
        engine=engine_setting(engine_item, [("contacts", contacts), ("orders", orders)]),
        engine_place=engine_item.place("engine") if engine_item else None,
        timezone=pick("timezone", as_timezone, "UTC"),
        overlap=pick("overlap", one_of(OVERLAP_POLICIES), "split"),
        output=pick("output", as_path, "reports"),
        columns=export.columns,
        optional_columns=export.optional,
        preset=preset.name if preset else None,
        values=export.values,
        timestamp_format=_timestamp_format(seen.get("timestamp_format"), preset),
        tags_separator=pick(
            "tags_separator", as_separator, (preset.tags_separator if preset else None) or "|"
        ),
        summary_recipients=pick("summary_recipients", as_addresses, ()),
        value=_value_settings(value_item),
        smtp=check_smtp(smtp_item) if smtp_item is not None else (),
        journal=_journal_settings(journal_item),
    )


@dataclass(frozen=True)
class _Export:
    """`columns:` and `values:` with a preset's laid under them."""

    columns: tuple[tuple[str, str], ...] = ()
    optional: tuple[str, ...] = ()
    values: tuple[ValueMap, ...] = ()
    preset: Preset | None = None


def _export(columns_owner: Item | None, values_owner: Item | None) -> _Export:
    """The export's shape: `columns:` (a mapping, a preset's name, or both) and `values:`.

    The merge rule (docs/workspace.md): a header the user maps wins over the
    preset's for that column; `values:` are merged key by key, the user's
    winning; `timestamp_format` and `tags_separator` are taken up by the caller.
    """
    preset: Preset | None = None
    explicit: tuple[tuple[str, str], ...] = ()
    if columns_owner is not None:
        node = columns_owner.node["columns"]
        if isinstance(node, YMap):
            sub = Item(columns_owner.ck, node, "setting 'columns'")
            if "preset" in node:
                preset = _preset(sub, "preset", node["preset"])
            explicit = column_pairs(sub, skip=("preset",))
        elif node is not None:
            preset = _preset(columns_owner, "columns", node)
    mine = dict(explicit)
    columns = dict(preset.columns) if preset else {}
    columns.update(mine)
    optional = tuple(c for c in (preset.optional() if preset else ()) if c not in mine)
    explicit_values: tuple[ValueMap, ...] = ()
    if values_owner is not None:
        sub_values = values_owner.sub("values", "setting 'values'")
        renamed = {header: name for name, header in columns.items()}
        explicit_values = value_maps(sub_values, renamed) if sub_values is not None else ()
    values = merged_values(preset.values if preset else (), explicit_values)
    return _Export(tuple(columns.items()), optional, values, preset)


def _preset(item: Item, key: str, value: Any) -> Preset | None:
    """`columns: zendesk` (or `preset: zendesk` inside the mapping): a shipped preset."""
    names = preset_names()
    try:
        name = as_text(value, 100)
    except BadValue:
        name = None
    preset = find_preset(name) if name else None
    if preset is None:
        what = f"'{shown(value)}' is not a preset" if name else "must be a mapping or a preset"
        hint = suggest(name.lower(), names) if name else ""
        item.error(
            key,
            f"columns: {what}{hint}; the presets are {', '.join(names)}, or map the headers "
            'yourself, such as columns: {contact_id: "Ticket ID", started_at: "Created at"}',
        )
    return preset


def _timestamp_format(owner: Item | None, preset: Preset | None) -> str | None:
    """The user's layout; `timestamp_format: null` sets a preset's aside (ISO 8601 again)."""
    if owner is None:
        return preset.timestamp_format if preset else None
    if owner.node.get("timestamp_format") is None:
        return None
    return owner.get("timestamp_format", as_timestamp_format, None)


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
