"""Named presets for `columns:`: one platform's export, read without writing its mapping.

`columns: zendesk` stands for the header mapping of that platform's export and
for its defaults of `timestamp_format`, `tags_separator` and `values:` (its
channel words). Each preset is a YAML file in presets/, shipped in the package,
with its sources and assumptions in docs/exports/. Anything the user sets
explicitly wins: a `columns:` entry beside `preset:`, `timestamp_format`,
`tags_separator`, and `values:` key by key (docs/workspace.md).

A preset's columns other than the three required ones are optional: an export
without that header (a view the user trimmed) simply lacks the column, where a
user's own mapping naming a missing header is an error.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace
from pathlib import Path

from chargeback.workspace.fields import Collector, Item, as_text
from chargeback.workspace.model import REQUIRED_CONTACT_COLUMNS, ValueMap
from chargeback.workspace.time_formats import as_timestamp_format
from chargeback.workspace.value_maps import as_separator, column_pairs, value_maps
from chargeback.workspace.yamlio import YMap, load_yaml

PRESET_DIR = Path(__file__).resolve().parent / "presets"
PRESET_KEYS = ("title", "docs", "columns", "timestamp_format", "tags_separator", "values")


@dataclass(frozen=True)
class Preset:
    name: str
    title: str
    docs: str  # the page that names its sources, in the repository's docs/
    columns: tuple[tuple[str, str], ...]  # canonical -> the export's header
    timestamp_format: str | None
    tags_separator: str | None
    values: tuple[ValueMap, ...]

    @property
    def headers(self) -> dict[str, str]:
        return dict(self.columns)

    def optional(self) -> tuple[str, ...]:
        """The columns an export may leave out (every one but the required three)."""
        return tuple(c for c, _ in self.columns if c not in REQUIRED_CONTACT_COLUMNS)


def preset_names() -> tuple[str, ...]:
    return tuple(sorted(p.stem for p in PRESET_DIR.glob("*.yaml")))


def find_preset(name: str) -> Preset | None:
    """The preset of that name (any case), or None when there is none."""
    wanted = name.strip().lower()
    return load_preset(wanted) if wanted in preset_names() else None


@functools.cache
def load_preset(name: str) -> Preset:
    """Read one preset with the user's own checks; a broken one is a packaging bug."""
    path = PRESET_DIR / f"{name}.yaml"
    node = load_yaml(path)
    ck = Collector()
    if not isinstance(node, YMap):
        raise RuntimeError(f"preset {path} is not a mapping")
    item = Item(ck, node, f"preset '{name}'")
    item.check_keys(PRESET_KEYS)
    columns_item = item.sub("columns")
    columns = column_pairs(columns_item) if columns_item is not None else ()
    renamed = {header: canonical for canonical, header in columns}
    values_item = item.sub("values")
    preset = Preset(
        name=name,
        title=item.get("title", as_text, name),
        docs=item.get("docs", as_text, ""),
        columns=columns,
        timestamp_format=item.get("timestamp_format", as_timestamp_format, None),
        tags_separator=item.get("tags_separator", as_separator, None),
        values=value_maps(values_item, renamed) if values_item is not None else (),
    )
    missing = [c for c in REQUIRED_CONTACT_COLUMNS if c not in preset.headers]
    if ck.problems or missing:
        found = "; ".join(str(p) for p in ck.problems) or f"no header for {', '.join(missing)}"
        raise RuntimeError(f"preset {path} is broken: {found}")
    # a preset's values are its own: no place in the user's chargeback.yaml
    return replace(preset, values=tuple(ValueMap(vm.column, vm.pairs) for vm in preset.values))


def recognise(headers: list[str]) -> Preset | None:
    """The preset whose export these headers are: its required headers all present.

    When several fit, the one with the most of its headers present wins, then
    the first by name; exports of one platform are told apart by their headers.
    """
    present = set(headers)
    fits = []
    for name in preset_names():
        preset = load_preset(name)
        required = [preset.headers[c] for c in REQUIRED_CONTACT_COLUMNS]
        if all(h in present for h in required):
            score = sum(1 for _, h in preset.columns if h in present)
            fits.append((-score, name, preset))
    return min(fits)[2] if fits else None
