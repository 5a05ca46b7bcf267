"""`chargeback check`: rules held against the data before they move money (SPEC 9).

Every finding at once, each with its place: rules that charge everyday demand
(`leaky-rule`), match nothing (`dead-rule`) or look at dates the data does not
have (`window-outside-data`); decisions that share contacts (`overlap`);
channels no rate prices (`unpriced-channel`, the one error); and starting
points for new rules among what nothing explains (`unattributed-reason`).
Shape mismatches between rules and data (a tags column that needs another
separator, channels nobody prices or matches, match values the data never
holds) are warnings with a did-you-mean.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from itertools import combinations
from math import lcm
from typing import TYPE_CHECKING, Any

import polars as pl

from chargeback.engine.aggregates import Aggregates
from chargeback.engine.amounts import MonthPrices
from chargeback.engine.attribute import Attribution, attribute
from chargeback.engine.costing import GroupCoster, unpriced_channels
from chargeback.engine.dates import window_bounds
from chargeback.engine.ledger import build_ledger, half_up
from chargeback.engine.review_counts import (
    LEAK_LOOKBACK_DAYS,
    VALUE_COLUMNS,
    Counts,
    DataSpan,
    MatchFrame,
    RuleActivity,
    before_range,
    value_counts,
)
from chargeback.errors import display_path
from chargeback.workspace.model import Rule, Workspace

if TYPE_CHECKING:  # SQL engines' modules load only when an engine runs
    from chargeback.engine.pushdown_evidence import EngineEvidence

LEAK_RATIO = Fraction(1, 5)  # before-effective daily rate >= 20% of the in-window rate
TOP_CANDIDATES = 10  # unattributed reasons, and phrases, listed
MIN_PHRASE_CONTACTS = 5  # a phrase fewer unmatched contacts use is noise
MIN_PHRASE_LIFT = 3.0  # how much more often unmatched contacts use it than matched ones
SEVERITY_ORDER = {"error": 0, "warning": 1, "info": 2}


@dataclass(frozen=True)
class Finding:
    severity: str  # error | warning | info
    code: str
    message: str
    file: str | None = None
    line: int | None = None
    rule: str | None = None
    decision: str | None = None
    decisions: tuple[str, ...] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"severity": self.severity, "code": self.code}
        doc["message"] = self.message
        for key in ("file", "line", "rule", "decision"):
            if getattr(self, key) is not None:
                doc[key] = getattr(self, key)
        if self.decisions is not None:
            doc["decisions"] = list(self.decisions)
        doc.update(self.extra)
        return doc

    def place(self) -> str:
        if self.file is None:
            return ""
        return f"{self.file}:{self.line}" if self.line else self.file


@dataclass(frozen=True)
class RuleCount:
    rule: str
    decision: str
    in_window: int
    before_per_day: float | None  # None: the data covers none of the 56 days before
    in_window_per_day: float | None  # None: the data covers none of the window


@dataclass
class CheckReport:
    findings: list[Finding]
    coverage: dict[str, Any]
    rules: list[RuleCount]
    subject: str = ""  # what was checked, in one line, for people
    currency: str = ""

    @property
    def errors(self) -> int:
        return sum(1 for f in self.findings if f.severity == "error")

    @property
    def warnings(self) -> int:
        return sum(1 for f in self.findings if f.severity == "warning")

    def to_json(self) -> dict[str, Any]:
        return {
            "findings": [f.to_json() for f in self.findings],
            "coverage": self.coverage,
            "rules": [
                {
                    "rule": r.rule,
                    "decision": r.decision,
                    "in_window": r.in_window,
                    "before_per_day": r.before_per_day,
                    "in_window_per_day": r.in_window_per_day,
                }
                for r in self.rules
            ],
        }


def _at(rule: Rule) -> dict[str, Any]:
    if rule.place is None:
        return {"rule": rule.id, "decision": rule.decision}
    return {
        "file": display_path(rule.place.path),
        "line": rule.place.line,
        "rule": rule.id,
        "decision": rule.decision,
    }


def _per_day(text_rate: float) -> str:
    """38.0 -> '38', 2.25 -> '2.2': a rate a person reads at a glance."""
    return f"{text_rate:.0f}" if text_rate >= 10 else f"{text_rate:.1f}".rstrip("0").rstrip(".")


def _money(value: Fraction) -> str:
    return f"{half_up(value, 2):.2f}"


def rule_findings(
    ws: Workspace, activity: dict[str, RuleActivity], span: DataSpan
) -> tuple[list[Finding], list[RuleCount]]:
    """leaky-rule, dead-rule and window-outside-data, and the per-rule counts."""
    findings: list[Finding] = []
    counts: list[RuleCount] = []
    for rule in ws.rules:
        decision = ws.decision(rule.decision)
        act = activity[rule.id]
        first, last = window_bounds(rule, decision)
        window_days = span.overlap_days(first, last if last is not None else first.max)
        lo, hi = before_range(decision.effective)
        before_days = span.overlap_days(lo, hi)
        in_rate = Fraction(act.in_window, window_days) if window_days else None
        before_rate = Fraction(act.before, before_days) if before_days else None
        counts.append(
            RuleCount(
                rule.id,
                rule.decision,
                act.in_window,
                None if before_rate is None else round(float(before_rate), 3),
                None if in_rate is None else round(float(in_rate), 3),
            )
        )
        if span.first is None:
            continue
        if window_days == 0:
            end = "open-ended" if last is None or last == last.max else last.isoformat()
            findings.append(
                Finding(
                    "warning",
                    "window-outside-data",
                    f"rule '{rule.id}': its window ({first.isoformat()} to {end}) does not meet "
                    f"the data's dates ({span.first} to {span.last})",
                    **_at(rule),
                )
            )
            continue
        if act.in_window == 0:
            findings.append(
                Finding(
                    "warning",
                    "dead-rule",
                    f"rule '{rule.id}' matches no contact inside its window, while the data "
                    f"covers {window_days} day{'s' if window_days != 1 else ''} of it: check "
                    "its match values against the data",
                    **_at(rule),
                )
            )
            continue
        if (
            not rule.has_baseline
            and before_rate is not None
            and in_rate is not None
            and act.before > 0
            and before_rate >= LEAK_RATIO * in_rate
        ):
            findings.append(
                Finding(
                    "warning",
                    "leaky-rule",
                    f"rule '{rule.id}' matched {_per_day(float(before_rate))} contacts a day in "
                    f"the {LEAK_LOOKBACK_DAYS} days before {rule.decision} took effect, "
                    f"{_per_day(float(in_rate))} a day since: it is probably charging everyday "
                    "demand; add a baseline or narrow it",
                    **_at(rule),
                    extra={
                        "before_per_day": round(float(before_rate), 3),
                        "in_window_per_day": round(float(in_rate), 3),
                    },
                )
            )
    return findings, counts


def leaky_rules(ws: Workspace, contacts: pl.DataFrame | EngineEvidence) -> dict[str, str]:
    """Rule id -> the leaky-rule message, for the statements that rest on such a rule
    (the activity from the contacts' frame, or as the engine counted it)."""
    found = MatchFrame(ws, contacts) if isinstance(contacts, pl.DataFrame) else contacts
    findings, _ = rule_findings(ws, *found.activity())
    return {f.rule: f.message for f in findings if f.code == "leaky-rule" and f.rule}


def overlap_findings(
    ws: Workspace, aggregates: Aggregates, attribution: Attribution
) -> list[Finding]:
    """Pairs of decisions whose rules match the same contacts (windows included)."""
    return [
        Finding(
            "info",
            "overlap",
            f"decisions '{a}' and '{b}' both match {n:,} contact{'s' if n != 1 else ''} "
            f"({_money(cost)} {ws.costs.currency}): with overlap: {ws.settings.overlap} "
            + (
                "they share them"
                if ws.settings.overlap == "split"
                else "the higher priority takes them (equal priorities share)"
            ),
            decisions=(a, b),
            extra={"contacts": n, "cost": _money(cost)},
        )
        for (a, b), (n, cost) in sorted(overlaps(ws, aggregates, attribution).items())
    ]


def overlaps(
    ws: Workspace, aggregates: Aggregates, attribution: Attribution
) -> dict[tuple[str, str], tuple[int, Fraction]]:
    """Each pair of decisions' shared contacts and their exact cost.

    A group's cost is linear in its sums, so the groups are summed per set of
    decisions, month and channel, priced over one denominator, and only then
    added to each pair: a Fraction per group and pair took seconds at 300 rules.
    """
    decisions_of: dict[frozenset[int], tuple[str, ...]] = {}
    sums: dict[tuple[tuple[str, ...], str, str], list[int]] = {}
    for g in aggregates.groups:
        decisions = decisions_of.get(g.matched)
        if decisions is None:
            decisions = decisions_of[g.matched] = tuple(
                sorted({ws.rules[i].decision for i in g.matched})
            )
        if len(decisions) < 2:
            continue
        got = sums.get((decisions, g.period, g.channel))
        if got is None:
            sums[decisions, g.period, g.channel] = [g.contacts, g.handle_us]
        else:
            got[0] += g.contacts
            got[1] += g.handle_us
    # each month and channel's prices as integers, then over one denominator for all months
    prices = MonthPrices(GroupCoster(ws.costs), attribution.periods)
    for _, period, channel in sums:
        prices.of(period, channel)
    den = lcm(1, *prices.dens.values())
    by_set: dict[tuple[str, ...], list[int]] = defaultdict(lambda: [0, 0])
    for (decisions, period, channel), (n, hs) in sums.items():
        per_contact, per_us = prices.of(period, channel)
        acc = by_set[decisions]
        acc[0] += n
        acc[1] += (per_contact * n + per_us * hs) * (den // prices.dens[period])
    shared: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    for decisions, (n, cost) in by_set.items():
        for pair in combinations(decisions, 2):
            shared[pair][0] += n
            shared[pair][1] += cost
    return {pair: (n, Fraction(numerator, den)) for pair, (n, numerator) in shared.items()}


def _priced(
    ws: Workspace, attribution: Attribution, rows: pl.DataFrame, key: str
) -> list[tuple[str, int, Fraction]]:
    """(value, contacts, exact cost) per value of `key` from (key, period, channel, n, hs) rows."""
    coster = GroupCoster(ws.costs)
    acc: dict[str, list[Any]] = defaultdict(lambda: [0, Fraction(0)])
    for value, period, channel, n, hs in rows.select(
        key, "period", "channel", "n", "hs"
    ).iter_rows():
        acc[value][0] += int(n)
        acc[value][1] += coster.group_cost(
            period, channel, int(n), int(hs), attribution.periods[period]
        )
    return [(v, n, c) for v, (n, c) in acc.items()]


def _same_story(a: str, b: str, counts: dict[str, int]) -> bool:
    """Two phrases that overlap in words and in contacts tell one story: list it once."""
    if a in b or b in a:
        return True
    wa, wb = set(a.split()), set(b.split())
    shared = len(wa & wb) * 2 >= min(len(wa), len(wb))
    return shared and 5 * min(counts[a], counts[b]) >= 4 * max(counts[a], counts[b])


def candidate_findings(ws: Workspace, frame: Counts, attribution: Attribution) -> list[Finding]:
    """The largest reasons, and the most over-represented phrases, of contacts no rule matches."""
    out: list[Finding] = []
    cur = ws.costs.currency
    reasons = frame.unmatched_reasons()
    if reasons.height and "reason" in reasons.columns:
        priced = sorted(_priced(ws, attribution, reasons, "reason"), key=lambda r: (-r[2], r[0]))
        for reason, n, cost in priced[:TOP_CANDIDATES]:
            out.append(
                Finding(
                    "info",
                    "unattributed-reason",
                    f"reason '{reason}': {n:,} contact{'s' if n != 1 else ''} "
                    f"({_money(cost)} {cur}) that no rule matches",
                    extra={"reason": reason, "contacts": n, "cost": _money(cost)},
                )
            )
    table, n_unmatched, n_matched = frame.phrase_counts()
    if table.height and n_unmatched:
        floor = max(MIN_PHRASE_CONTACTS, math.ceil(n_unmatched * 0.005))
        scored = []
        for phrase, u, m in table.filter(pl.col("unmatched") >= floor).iter_rows():
            lift = ((u + 1) / (n_unmatched + 1)) / ((m + 1) / (n_matched + 1))
            if lift >= MIN_PHRASE_LIFT:
                scored.append((u * math.log(lift), phrase, int(u)))
        scored.sort(key=lambda s: (-s[0], s[1]))
        counts = {phrase: u for _, phrase, u in scored}
        chosen: list[str] = []
        for _, phrase, u in scored:
            # the longest phrase that holds this one and nearly all its contacts
            # ("setting up wi-fi" rather than "setting"), said once
            longer = [p for p in counts if phrase in p and counts[p] * 5 >= u * 4]
            best = max(longer, key=lambda p: (len(p.split()), counts[p], p))
            if any(_same_story(best, c, counts) for c in chosen):
                continue
            chosen.append(best)
            if len(chosen) == TOP_CANDIDATES:
                break
        priced_phrases: dict[str, tuple[int, Fraction]] = {}
        if chosen:  # nothing qualified: no phrase to price
            rows = frame.phrase_costs(chosen)
            priced_phrases = {p: (n, c) for p, n, c in _priced(ws, attribution, rows, "phrase")}
        for phrase in chosen:
            n, cost = priced_phrases.get(phrase, (0, Fraction(0)))
            out.append(
                Finding(
                    "info",
                    "unattributed-reason",
                    f"phrase “{phrase}”: in the text of {n:,} contact{'s' if n != 1 else ''} "
                    f"({_money(cost)} {cur}) that no rule matches, far more often than in "
                    "matched ones",
                    extra={"phrase": phrase, "contacts": n, "cost": _money(cost)},
                )
            )
    return out


def coverage(ws: Workspace, attribution: Attribution) -> dict[str, Any]:
    """How much of the data's contacts and cost the rules explain, over every month."""
    ledger = build_ledger(ws, attribution, sorted(attribution.periods))
    attributed = sum((ln.contacts for ln in ledger.lines if not ln.is_unattributed), Fraction(0))
    cost = sum((p.cost for p in ledger.periods), Decimal(0))
    attributed_cost = sum((p.attributed_cost for p in ledger.periods), Decimal(0))
    contacts = sum(p.contacts for p in ledger.periods)
    return {
        "contacts": contacts,
        "attributed_contacts": f"{half_up(attributed, 3):.3f}",
        "cost": f"{cost:.2f}",
        "attributed_cost": f"{attributed_cost:.2f}",
        "attributed_share": round(float(attributed_cost / cost), 4) if cost else None,
    }


def value_columns(ws: Workspace) -> list[str]:
    """The columns whose values check's shape findings read."""
    return [*VALUE_COLUMNS, "tags", *{c for r in ws.rules for c, _ in r.match.fields}]


def check(ws: Workspace, contacts: pl.DataFrame, missing: list[str] | None = None) -> CheckReport:
    """Every finding at once, errors first, then by place.

    Each rule's match is evaluated once (MatchFrame); attribution runs on the
    aggregates made from those bits, the same as the ledger's. `missing`: match
    columns the contacts lack (the loader gives them as nulls).
    """
    frame = MatchFrame(ws, contacts)
    return check_counts(ws, frame, value_counts(contacts, value_columns(ws)), missing)


def check_counts(
    ws: Workspace,
    frame: Counts,
    present: dict[str, dict[str, int]],
    missing: list[str] | None = None,
) -> CheckReport:
    """check() from the counts alone (MatchFrame's, or the engine's: pushdown_check.py)
    and each value column's values with their contacts (`present`)."""
    missing = missing or []
    aggregates = frame.aggregates()
    attribution = attribute(ws, aggregates)
    from chargeback.review.shape import channel_findings, tags_finding, value_findings

    findings = [
        Finding(
            "error", "unpriced-channel", p.message, display_path(p.path) if p.path else None, p.line
        )
        for p in unpriced_channels(ws.costs, aggregates.contacts_by_channel())
    ]
    activity, span = frame.activity()
    found, counts = rule_findings(ws, activity, span)
    findings += found
    findings += [
        Finding(
            "warning",
            "missing-column",
            f"the contacts have no '{name}' column, so rules matching on it match nothing",
            extra={"column": name},
        )
        for name in missing
    ]
    present = dict(present)
    for name in missing:
        present.pop(name, None)
    shape = [tags_finding(present.get("tags", {}), ws.settings.tags_separator)]
    shape += channel_findings(ws, present.get("channel", {}))
    shape += value_findings(ws, present)
    for doc in shape:
        if doc is None:
            continue
        known = {
            k: doc.pop(k)
            for k in ("severity", "code", "message", "file", "line", "rule", "decision")
            if k in doc
        }
        findings.append(Finding(**known, extra=doc))
    findings += overlap_findings(ws, aggregates, attribution)
    findings += candidate_findings(ws, frame, attribution)
    findings.sort(key=lambda f: (SEVERITY_ORDER[f.severity], f.file or "~", f.line or 0))
    return CheckReport(findings, coverage(ws, attribution), counts, currency=ws.costs.currency)
