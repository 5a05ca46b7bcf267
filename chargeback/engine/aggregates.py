"""The engine's seam: what an engine hands to the exact arithmetic.

Contacts with the same month, channel and set of matched rules get identical
weights, so an engine only has to say, per such group, how many contacts it
holds and their summed handle time, plus each baseline rule's lookback count
(SPEC 4's B). attribute.py turns that into exact amounts; it never sees a
contact. polars_engine.py builds these from a frame; an SQL engine builds the
same from a warehouse table, and the ledger comes out identical.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from chargeback.engine.control import DailySeries


@dataclass(frozen=True)
class Cell:
    """Contacts matched by exactly these control rules (indexes into Workspace.rules)."""

    rules: frozenset[int]
    series: DailySeries
    evidence: dict[int, tuple[int, ...]]  # rule index -> the cell's contacts with its evidence
    family: str | None = None  # the reason family whose untouched contacts are its control


@dataclass(frozen=True)
class Group:
    """Contacts alike for the arithmetic: same month, channel and matched rules."""

    period: str  # 'YYYY-MM' in the workspace timezone
    channel: str
    matched: frozenset[int]  # indexes into Workspace.rules (window included)
    contacts: int
    handle_us: int  # summed handle time, microseconds (exact)
    cell: frozenset[int] = frozenset()  # control rules matched, windows ignored (SPEC 4b)


@dataclass(frozen=True)
class Aggregates:
    """Everything attribution needs from the contacts."""

    groups: tuple[Group, ...]  # in a stable order: month, channel, matched rules
    baseline_counts: dict[str, int]  # rule id -> B, for rules with a baseline
    # SPEC 4b: per cell of control rules, its daily counts and control series ...
    cells: dict[frozenset[int], Cell] = field(default_factory=dict)
    # ... and the rules whose matches meet a control rule on a contact (their windows leave its fit)
    sharing: dict[str, frozenset[str]] = field(default_factory=dict)

    def contacts_by_channel(self) -> dict[str, int]:
        """How many contacts each channel has, over every month."""
        counts: dict[str, int] = {}
        for group in self.groups:
            counts[group.channel] = counts.get(group.channel, 0) + group.contacts
        return counts


def set_bits(value: int) -> list[int]:
    """The positions of a mask's set bits, lowest first (one step per set bit, not per bit)."""
    out = []
    while value:
        low = value & -value
        out.append(low.bit_length() - 1)
        value ^= low
    return out
