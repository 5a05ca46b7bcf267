"""The engine's seam: what an engine hands to the exact arithmetic.

Contacts with the same month, channel and set of matched rules get identical
weights, so an engine only has to say, per such group, how many contacts it
holds and their summed handle time, plus each baseline rule's lookback count
(SPEC 4's B). attribute.py turns that into exact amounts; it never sees a
contact. polars_engine.py builds these from a frame; an SQL engine builds the
same from a warehouse table, and the ledger comes out identical.

The groups may come as a GroupTable: the same groups as columns, for at 300
rules a Group object per group costs more than the arithmetic on them (issue
15). Attribution reads the columns; the Group objects are made, once, only when
something reads the groups one by one (check, reconcile, the parity tests).
"""

from __future__ import annotations

import gc
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any, overload

import numpy as np

from chargeback.engine.control import DailySeries

I64_MAX = 2**63 - 1


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


@contextmanager
def no_cycle_collection() -> Iterator[None]:
    """Python's cycle collector paused while ~10^5 lasting tuples, lists and sets are made.

    Each of them counts towards the collector's next pass, and a full pass walks
    every object the run holds: at 300 rules those passes cost about as much as
    the arithmetic. What is made here holds no reference cycle, so nothing is
    left uncollected; the collector's state is restored on the way out.
    """
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


_BYTE_BITS = [[b for b in range(8) if v >> b & 1] for v in range(256)]
_POPCOUNT = np.array([len(b) for b in _BYTE_BITS], dtype=np.int64)
_STARTS = np.cumsum(_POPCOUNT) - _POPCOUNT  # where each byte value's bits start in _POSITIONS
_POSITIONS = np.array([b for bits in _BYTE_BITS for b in bits], dtype=np.int64)


class MatchedSets:
    """Distinct sets of matched rules, flat: set k is rules[ptr[k]:ptr[k + 1]], lowest first."""

    __slots__ = ("_sets", "ptr", "rules")

    def __init__(self, ptr: np.ndarray, rules: np.ndarray) -> None:
        self.ptr = ptr.astype(np.int64, copy=False)
        self.rules = rules.astype(np.int64, copy=False)
        self._sets: list[frozenset[int]] | None = None

    @classmethod
    def of(cls, sets: list[frozenset[int]]) -> MatchedSets:
        """From rule sets: their rules put lowest first, the sets themselves kept."""
        sizes = [0]
        flat: list[int] = []
        for s in sets:
            flat.extend(sorted(s))
            sizes.append(len(flat))
        out = cls(np.array(sizes, dtype=np.int64), np.array(flat, dtype=np.int64))
        out._sets = sets
        return out

    @classmethod
    def of_masks(cls, masks: np.ndarray, mask_bits: int) -> MatchedSets:
        """The sets of rows of int64 mask words (rule = word x mask_bits + bit; no sign
        bit set): each row's nonzero bytes, and each byte's set bits from a table."""
        if masks.size == 0:  # no rows, or no rules
            return cls(np.zeros(len(masks) + 1, dtype=np.int64), np.zeros(0, dtype=np.int64))
        words = np.ascontiguousarray(masks, dtype="<i8").reshape(len(masks), -1)
        assert not (words < 0).any(), "a mask word with its sign bit set"
        as_bytes = words.view(np.uint8).reshape(len(words), -1)  # lowest byte first
        row, byte = np.nonzero(as_bytes)  # row-major: each row's bytes lowest first
        value = as_bytes[row, byte]
        count = _POPCOUNT[value]
        nth = np.arange(int(count.sum()), dtype=np.int64) - np.repeat(
            np.cumsum(count) - count, count
        )
        bit = np.repeat(byte, count) * 8 + _POSITIONS[np.repeat(_STARTS[value], count) + nth]
        sizes = np.bincount(np.repeat(row, count), minlength=len(words))
        ptr = np.concatenate([np.zeros(1, dtype=np.int64), np.cumsum(sizes)])
        return cls(ptr, bit // 64 * mask_bits + bit % 64)

    def __len__(self) -> int:
        return len(self.ptr) - 1

    def frozensets(self) -> list[frozenset[int]]:
        """Each set as decode_masks makes it (rules inserted lowest first), made once."""
        if self._sets is None:
            rules, ptr = self.rules.tolist(), self.ptr.tolist()
            self._sets = [frozenset(rules[a:b]) for a, b in pairwise(ptr)]
        return self._sets


def int_column(values: Sequence[int]) -> np.ndarray:
    """Integers as int64 where every one fits, else as Python ints (exact either way)."""
    if len(values) and not (min(values) >= -I64_MAX and max(values) <= I64_MAX):
        out = np.empty(len(values), dtype=object)
        out[:] = list(values)
        return out
    return np.array(values, dtype=np.int64)


def exact_sum(values: np.ndarray) -> int:
    """The exact sum of int64 values (in two 32-bit halves, so no partial sum overflows)."""
    assert values.dtype == np.int64 and len(values) < 2**31
    return (int((values >> 32).sum()) << 32) + int((values & 0xFFFFFFFF).sum())


class GroupTable(Sequence[Group]):
    """The groups as columns: codes into the distinct months, channels, matched sets and
    cells, and the contacts and handle time (int64, or Python ints where one would not fit).

    As a sequence it is the tuple of Groups it stands for (made on first reading),
    and equal to that tuple.
    """

    __slots__ = (
        "_groups",
        "cell",
        "cells",
        "channel",
        "channels",
        "contacts",
        "handle_us",
        "matched",
        "period",
        "periods",
        "sets",
    )

    def __init__(
        self,
        names: tuple[list[str], list[str], MatchedSets, list[frozenset[int]]],
        codes: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
        contacts: np.ndarray,
        handle_us: np.ndarray,
    ) -> None:
        """names: the distinct periods, channels, matched sets and cells; codes: per group,
        an index into each."""
        self.periods, self.channels, self.sets, self.cells = names
        self.period, self.channel, self.matched, self.cell = (
            c.astype(np.int64, copy=False) for c in codes
        )
        self.contacts, self.handle_us = contacts, handle_us
        self._groups: tuple[Group, ...] | None = None

    @classmethod
    def from_groups(cls, groups: Sequence[Group]) -> GroupTable:
        """The table of Group objects (an SQL engine's, a test's)."""
        names: list[list[Any]] = []
        codes: list[np.ndarray] = []
        for column in (
            [g.period for g in groups],
            [g.channel for g in groups],
            [g.matched for g in groups],
            [g.cell for g in groups],
        ):
            distinct = list(dict.fromkeys(column))
            at = {value: k for k, value in enumerate(distinct)}
            names.append(distinct)
            codes.append(np.array([at[v] for v in column], dtype=np.int64))
        periods, channels, sets, cells = names
        return cls(
            (periods, channels, MatchedSets.of(sets), cells),
            (codes[0], codes[1], codes[2], codes[3]),
            int_column([g.contacts for g in groups]),
            int_column([g.handle_us for g in groups]),
        )

    def subset(self, keep: np.ndarray) -> GroupTable:
        """The groups where `keep` (a boolean per group) holds, in their order."""
        return GroupTable(
            (self.periods, self.channels, self.sets, self.cells),
            (self.period[keep], self.channel[keep], self.matched[keep], self.cell[keep]),
            self.contacts[keep],
            self.handle_us[keep],
        )

    def groups(self) -> tuple[Group, ...]:
        """The Group objects, made once."""
        if self._groups is None:
            periods, channels, cells = self.periods, self.channels, self.cells
            sets = self.sets.frozensets()
            with no_cycle_collection():
                self._groups = tuple(
                    Group(periods[p], channels[c], sets[m], n, hs, cells[k])
                    for p, c, m, n, hs, k in zip(
                        self.period.tolist(),
                        self.channel.tolist(),
                        self.matched.tolist(),
                        self.contacts.tolist(),
                        self.handle_us.tolist(),
                        self.cell.tolist(),
                        strict=True,
                    )
                )
        return self._groups

    def __len__(self) -> int:
        return len(self.contacts)

    @overload
    def __getitem__(self, index: int) -> Group: ...
    @overload
    def __getitem__(self, index: slice) -> tuple[Group, ...]: ...
    def __getitem__(self, index: int | slice) -> Group | tuple[Group, ...]:
        return self.groups()[index]

    def __iter__(self) -> Iterator[Group]:
        return iter(self.groups())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, GroupTable):
            return other is self or self.groups() == other.groups()
        if isinstance(other, tuple):
            return self.groups() == other
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"GroupTable({self.groups()!r})"

    def contacts_by_channel(self) -> dict[str, int]:
        """Contacts per channel, channels in the order the groups first show them."""
        first = np.full(len(self.channels), len(self), dtype=np.int64)
        np.minimum.at(first, self.channel, np.arange(len(self), dtype=np.int64))
        sums = sum_by(self.channel, len(self.channels), self.contacts)
        return {
            self.channels[c]: sums[c]
            for c in np.argsort(first, kind="stable").tolist()
            if first[c] < len(self)
        }


def sum_by(codes: np.ndarray, size: int, values: np.ndarray) -> list[int]:
    """Exact sums of `values` per code (0 <= code < size), as Python ints."""
    small = values.dtype == np.int64 and len(values) and values.min() >= 0
    if small and exact_sum(values) <= I64_MAX:  # then no partial sum overflows either
        out = np.zeros(size, dtype=np.int64)
        np.add.at(out, codes, values)
        return [int(v) for v in out.tolist()]
    sums = [0] * size
    for c, v in zip(codes.tolist(), values.tolist(), strict=True):
        sums[c] += v
    return sums


@dataclass(frozen=True)
class Aggregates:
    """Everything attribution needs from the contacts."""

    groups: Sequence[Group]  # in a stable order: month, channel, matched rules (or a GroupTable)
    baseline_counts: dict[str, int]  # rule id -> B, for rules with a baseline
    # SPEC 4b: per cell of control rules, its daily counts and control series ...
    cells: dict[frozenset[int], Cell] = field(default_factory=dict)
    # ... and the rules whose matches meet a control rule on a contact (their windows leave its fit)
    sharing: dict[str, frozenset[str]] = field(default_factory=dict)

    def contacts_by_channel(self) -> dict[str, int]:
        """How many contacts each channel has, over every month."""
        if isinstance(self.groups, GroupTable):
            return self.groups.contacts_by_channel()
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
