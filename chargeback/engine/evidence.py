"""The evidence printed beside each ledger line: why a decision was charged.

Per period and line: its cost split by reason and by channel, a few example
contacts its rules matched, and per decision the daily count of contacts its
rules' match picks up (window ignored, so the chart shows the level before the
effective date too). The splits are re-derived from the contacts with the
attribution's own weights (attribute.decision_weights) and their cents placed
by largest remainder onto the ledger line, so a statement's parts always add
up to the figure above them.

What is read from the contacts (grouped rows, the examples' picks, the daily
counts: evidence_counts.EvidenceCounts) comes from the polars frame of a read-out
(`frame_counts`) or from the engine where the contacts are (pushdown_evidence);
everything after that is this one code path.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from fractions import Fraction

import polars as pl

from chargeback.engine.amounts import MonthPrices, sum_of
from chargeback.engine.attribute import Attribution, decision_weights, rule_factors
from chargeback.engine.costing import GroupCoster
from chargeback.engine.evidence_counts import EvidenceCounts, pick_indexes
from chargeback.engine.ledger import UNATTRIBUTED, Ledger, largest_remainder
from chargeback.engine.polars_engine import MASK_BITS, MatchBits, decode_group
from chargeback.workspace.model import Workspace

TEXT_CHARS = 140
NO_REASON = "(no reason)"


@dataclass(frozen=True)
class Part:
    """One slice of a line: a reason or a channel, with its share of the line's cost."""

    label: str
    contacts: Fraction
    cost: Decimal


@dataclass(frozen=True)
class Example:
    contact_id: str
    when: str  # local time, "YYYY-MM-DD HH:MM"
    channel: str
    reason: str
    text: str


@dataclass
class LineEvidence:
    reasons: list[Part] = field(default_factory=list)
    channels: list[Part] = field(default_factory=list)
    examples: list[Example] = field(default_factory=list)
    matched: int = 0  # contacts of the period that the decision's rules matched


@dataclass
class Evidence:
    lines: dict[tuple[str, str], LineEvidence]  # (period, decision_id or 'unattributed')
    daily: dict[str, dict[date, int]]  # decision_id -> date -> contacts its rules match
    first_date: date | None
    last_date: date | None


def _parts(exact: dict[str, tuple[Fraction, Fraction]], cents: int) -> list[Part]:
    """Place the line's cents on its parts; largest first."""
    if not exact:
        return []
    placed = largest_remainder([((label, ""), cost) for label, (_, cost) in exact.items()], cents)
    parts = [Part(label, exact[label][0], Decimal(placed[label, ""]).scaleb(-2)) for label in exact]
    parts.sort(key=lambda p: (-p.cost, -p.contacts, p.label))
    return parts


def gather(
    ws: Workspace,
    source: pl.DataFrame | EvidenceCounts,
    attribution: Attribution,
    ledger: Ledger,
    only: set[str] | None = None,
) -> Evidence:
    """Evidence for the ledger's lines (of the `only` months: closed ones are not redrawn),
    from the contacts' frame or from the counts the engine gave (every month's)."""
    periods = sorted({ln.period for ln in ledger.lines if only is None or ln.period in only})
    decision_ids = {ln.decision_id for ln in ledger.lines if ln.period in periods}
    counts = (
        frame_counts(ws, source, periods, decision_ids)
        if isinstance(source, pl.DataFrame)
        else source
    )
    wanted = set(periods)

    by_reason, by_channel = line_splits(ws, counts, attribution, wanted)
    lines: dict[tuple[str, str], LineEvidence] = {}
    for line in ledger.lines:
        if line.period not in wanted:
            continue
        key = (line.period, line.decision_id)
        cents = int(line.cost * 100)
        ev = LineEvidence()
        reasons = by_reason.get(key, {})
        channels = by_channel.get(key, {})
        if reasons:
            ev.reasons = _parts(reasons, cents)
            ev.channels = _parts(channels, cents)
        lines[key] = ev

    for (period, decision_id), (n, rows) in counts.picked.items():
        shown = lines.get((period, decision_id))
        if shown is None or decision_id == UNATTRIBUTED:
            continue
        shown.matched = n
        shown.examples.extend(_examples(rows))
    daily = {d: days for d, days in counts.daily.items() if d in decision_ids}
    return Evidence(
        lines=lines, daily=daily, first_date=counts.first_date, last_date=counts.last_date
    )


Splits = dict[tuple[str, str], dict[str, tuple[Fraction, Fraction]]]
# (period, decision id) -> reason or channel -> (contacts, cost), exactly
_Key = tuple[str, frozenset[int], frozenset[int], str]  # period, matched, cell, label


def line_splits(
    ws: Workspace, counts: EvidenceCounts, attribution: Attribution, wanted: set[str]
) -> tuple[Splits, Splits]:
    """Each line's contacts and cost by reason and by channel, with the attribution's
    weights (decision_weights).

    Integers first: each row's cost as a numerator over its month's denominator
    (GroupCoster.linear), summed per reason (channel) and weighing key. Each
    decision's weight then multiplies those sums once, and sum_of adds the products
    over one denominator: a Fraction product and sum per row, decision and split took
    most of a 300-rule report.
    """
    prices = MonthPrices(GroupCoster(ws.costs), attribution.periods)
    factor = rule_factors(ws, attribution)
    decoded: dict[tuple[int, ...], tuple[frozenset[int], frozenset[int]]] = {}
    sums: tuple[dict[_Key, list[int]], dict[_Key, list[int]]] = ({}, {})
    for row in counts.groups:
        period, channel, reason, *mask_values, n, hs = row
        if period not in wanted:
            continue
        per_contact, per_us = prices.of(period, channel)
        cost = per_contact * int(n) + per_us * int(hs)
        masks = tuple(int(v) for v in mask_values)
        got = decoded.get(masks)
        if got is None:
            got = decoded[masks] = decode_group(ws, masks)
        matched, cell = got
        for table, label in (
            (sums[0], NO_REASON if reason is None else reason),
            (sums[1], channel),
        ):
            acc = table.get((period, matched, cell, label))
            if acc is None:
                table[period, matched, cell, label] = [int(n), cost]
            else:
                acc[0] += int(n)
                acc[1] += cost
    weights_of: dict[tuple[str, frozenset[int], frozenset[int]], list[tuple[str, Fraction]]] = {}
    out: tuple[Splits, Splits] = ({}, {})
    for table, split in zip(sums, out, strict=True):
        terms: dict[tuple[str, str], dict[str, list[tuple[int, int, int, int]]]] = defaultdict(dict)
        for (period, matched, cell, label), (n, cost) in table.items():
            weights = weights_of.get((period, matched, cell))
            if weights is None:
                got_w = decision_weights(ws, matched, period, factor, cell) if matched else {}
                rest = 1 - sum(got_w.values(), Fraction(0))
                weights = weights_of[period, matched, cell] = [
                    (d, w) for d, w in [*got_w.items(), (UNATTRIBUTED, rest)] if w != 0
                ]
            for decision_id, w in weights:
                terms[period, decision_id].setdefault(label, []).append(
                    (w.denominator, w.numerator * n, w.numerator * cost, 0)
                )
        for (period, decision_id), labels in terms.items():
            split[period, decision_id] = {
                label: (Fraction(n, den), Fraction(cost, den * prices.dens[period]))
                for label, parts in labels.items()
                for n, cost, _, den in [sum_of(parts)]
            }
    return out


def _examples(rows: pl.DataFrame) -> list[Example]:
    """The picked contacts as a statement shows them: local minute, text on one line, cut."""
    shown = rows.select(
        "contact_id",
        pl.col("local").dt.strftime("%Y-%m-%d %H:%M").alias("when"),
        "channel",
        pl.col("reason").fill_null(""),
        pl.col("text").fill_null(""),
    )
    out = []
    for row in shown.iter_rows(named=True):
        text = " ".join(str(row["text"]).split())
        if len(text) > TEXT_CHARS:
            text = text[: TEXT_CHARS - 1].rstrip() + "…"
        out.append(Example(row["contact_id"], row["when"], row["channel"], row["reason"], text))
    return out


def frame_counts(
    ws: Workspace, frame: pl.DataFrame, periods: list[str], decision_ids: set[str]
) -> EvidenceCounts:
    """The counts from the read-out frame: the `periods`' groups, the examples and daily
    counts of `decision_ids`."""
    # every rule's match as bits, once (engine/masks.py), read by the splits, the
    # examples and the daily counts alike
    bits = MatchBits(ws, frame, extra=("contact_id", "local"))
    lf = bits.frame.lazy()
    masks = bits.windowed
    keyed, keys = bits.cell()
    groups = (
        lf.filter(pl.col("period").is_in(periods))
        .select(
            "period",
            "channel",
            pl.col("reason").fill_null(NO_REASON),
            "hs_us",
            *masks,
            *keyed,
        )
        .group_by("period", "channel", "reason", *keys)
        .agg(pl.len().alias("n"), pl.col("hs_us").cast(pl.Int128).sum().alias("hs"))
        .collect()
    )
    picked = _picked(ws, lf, masks, bits.mask_names, periods, decision_ids)
    daily, first, last = _daily(ws, lf, decision_ids, len(masks))
    return EvidenceCounts(groups.rows(), picked, daily, first, last)


def _decision_bits(
    ws: Workspace, decision_id: str, chunks: int, prefix: str = "_m"
) -> list[pl.Expr]:
    """Whether a contact's `_m*` (windowed) or `_k*` (window ignored) bits hold one of
    the decision's rules, per mask column."""
    values = [0] * chunks
    for i, rule in enumerate(ws.rules):
        if rule.decision == decision_id:
            values[i // MASK_BITS] |= 1 << (i % MASK_BITS)
    return [(pl.col(f"{prefix}{c}") & v) != 0 for c, v in enumerate(values) if v]


def _picked(
    ws: Workspace,
    lf: pl.LazyFrame,
    masks: list[pl.Expr],
    mask_names: list[str],
    periods: list[str],
    decision_ids: set[str],
) -> dict[tuple[str, str], tuple[int, pl.DataFrame]]:
    """A few matched contacts per line, spread across the month (first, ..., last)."""
    out: dict[tuple[str, str], tuple[int, pl.DataFrame]] = {}
    if not masks:
        return out
    matched = (
        lf.filter(pl.col("period").is_in(periods))
        .select("period", "contact_id", "local", "channel", "reason", "text", *masks)
        .filter(pl.any_horizontal([pl.col(m) != 0 for m in mask_names]))
        .sort("local", "contact_id")
        .collect()
    )
    for decision_id in decision_ids - {UNATTRIBUTED}:
        bits = _decision_bits(ws, decision_id, len(mask_names))
        if not bits:
            continue
        mine = matched.filter(pl.any_horizontal(bits))
        for (period,), part in mine.partition_by("period", as_dict=True).items():
            picks = pick_indexes(part.height)
            rows = part[picks].select("contact_id", "local", "channel", "reason", "text")
            out[str(period), decision_id] = (part.height, rows)
    return out


def _daily(
    ws: Workspace, lf: pl.LazyFrame, decision_ids: set[str], chunks: int
) -> tuple[dict[str, dict[date, int]], date | None, date | None]:
    """Contacts per day that each decision's rules would match, window ignored (the
    `_k*` bits of MatchBits)."""
    exprs = []
    for decision in ws.decisions:
        own = _decision_bits(ws, decision.id, chunks, prefix="_k")
        if decision.id in decision_ids and own:
            exprs.append(pl.any_horizontal(own).cast(pl.Int64).sum().alias(decision.id))
    span = lf.select(pl.col("date").min().alias("lo"), pl.col("date").max().alias("hi")).collect()
    first, last = span.row(0)
    if not exprs:
        return {}, first, last
    daily = lf.group_by("date").agg(exprs).sort("date").collect()
    dates = daily.get_column("date").to_list()
    out: dict[str, dict[date, int]] = {}
    for name in daily.columns[1:]:
        out[name] = {
            d: int(c) for d, c in zip(dates, daily.get_column(name).to_list(), strict=True) if c
        }
    return out, first, last
