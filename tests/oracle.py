"""A deliberately simple reference implementation of SPEC sections 1-5 (the ledger).

This module exists to catch the real engine's mistakes: it shares no code with
``chargeback`` and uses nothing but the standard library and ``yaml.safe_load``.
It works row by row, in exact ``fractions.Fraction`` arithmetic, and favours
clarity over speed (it is meant for a few hundred contacts).

Entry points:

- :func:`oracle_ledger` -> the rows of ``ledger.csv`` (dicts of strings), sorted.
- :func:`oracle_period_totals` -> each reported period's total cost, in cents, as
  a string (the figure every period's lines must add up to).

Interpretations made where the SPEC can be read more than one way
-----------------------------------------------------------------

Workspace and settings
 1. ``rules/**/*.yaml`` and ``rules/**/*.yml`` are read recursively; the lists under
    ``departments``, ``decisions`` and ``rules`` are concatenated (their order never
    matters to the result). A ``settings`` mapping in a rules file is merged key by
    key, and ``chargeback.yaml`` wins over it. Validation (duplicate ids, unknown
    keys, ...) is the engine's business and is not re-checked here beyond what the
    arithmetic needs.
 2. Defaults: ``timezone: UTC``, ``overlap: split``; ``columns`` maps a canonical
    name to the platform header (``contact_id: "Ticket ID"``), so the header is
    renamed to the canonical name.
 3. Numbers in YAML mean their decimal literal: PyYAML gives ``0.40`` as a binary
    float, which is turned back into the exact decimal ``Decimal(repr(x))`` (= 0.4),
    never ``Fraction(float)``. The same for CSV numbers (``handle_seconds``).
 4. Dates in YAML may be YAML dates or ``YYYY-MM-DD`` strings. ``by_period`` keys are
    read as ``str(key)`` and must look like ``YYYY-MM``.

Contacts
 5. In CSV, an empty cell is null (for every column). Values are otherwise taken
    verbatim (no trimming) except tags, which are split on ``|``, each part
    trimmed, empty parts dropped; a contact with no tag parts has null tags.
 6. A timestamp with an offset (or ``Z``) is converted to ``timezone``; a naive one
    is already local. The local calendar date decides the window, the baseline and
    the period (``YYYY-MM`` of that date).
 7. A missing ``handle_seconds`` counts 0 everywhere (cost, pool weights, and
    ``handle_minutes``).

Costs
 8. ``rates``: a listed channel uses only its own rates (missing rate = 0); an
    unlisted channel uses ``default``; with no ``default`` block such a contact costs
    0. Channel names are compared exactly (case-sensitive).
 9. ``pool``: ``monthly`` applies to every period; ``by_period`` to its own months, a
    month missing there being 0. The pool of a period is spread over every loaded
    contact dated in that period (reported or not).
10. A period's total is ``round_half_up(sum of the exact per-contact costs, cents)``
    -- the exact costs are summed first, never per-contact rounded amounts.

Matching
11. A match value may be a scalar or a list; a scalar is a one-element list. YAML
    scalars that are not strings (numbers) are compared through ``str()``.
12. ``x*`` means "starts with x" and therefore also matches ``x`` itself; ``*``
    alone matches any non-null value.
13. ``text``: case-insensitive substring (``str.lower`` on both sides); a trailing
    ``*`` is dropped before the substring test (``"late fee*"`` contains "late fee"
    followed by anything, which is the same as containing "late fee").
14. ``text_regex``: a string or a list of strings (any of), searched (not
    full-matched) with ``re.IGNORECASE``; a null text never matches.
15. ``tags``: the contact matches when at least one of its tags matches at least one
    value (prefix semantics apply per tag).
16. ``fields``: each named column (canonical or extra) must match its any-of list
    against the raw CSV string of that column; naming ``tags`` applies the tag
    rule above. A column missing from the contacts raises ``ValueError``.
17. An empty ``match`` (or none) matches every contact.

Window, baseline, weights
18. Window: ``start = effective + start_offset_days`` (which may be negative),
    ``start <= t < start + days`` (no upper bound without ``days``) and ``t <= ends``.
19. Baseline: B counts contacts satisfying ``match`` with local date in
    ``[effective - lookback_days, effective)``; ``lookback_days`` is required. D is
    the number of calendar days of month p in the window (ends included).
    f is computed per (rule, month) from *all* loaded contacts.
20. Priority: among the rules a contact matches (window included, before any
    weighting), only those with the highest ``priority`` survive, across decisions,
    even when their weight is 0.
21. Within a decision the largest kept rule weight wins (no summing); the sum over
    decisions is normalised to 1 only when it exceeds 1.

Ledger
22. A decision has a row in period p when the sum of its weights over p's contacts
    is > 0, or its revenue for p is != 0.
23. Largest remainder runs over exactly the rows printed for the period (decisions
    plus the unattributed line whose exact cost is ``total_exact - attributed``).
    The cents to hand out are ``total_cents - sum(floors)``; ties on the remainder
    are broken by ``(department_id, decision_id)`` ascending in code-point order,
    the unattributed line being ``("unattributed", "unattributed")``.
24. Revenue: a decision is "in force" in p when ``[effective, ends]`` overlaps the
    month (the window/offset play no part). Revenue is rounded half-up to cents and
    ``net = revenue_cents - cost_cents``; a zero net prints ``0.00`` (never ``-0.00``).
25. "Half-up" rounds halves away from zero (``Decimal.ROUND_HALF_UP``); it only ever
    meets non-negative numbers except for ``net``, which is exact in cents anyway.
26. Sorting is by ``(period, department_id, decision_id)`` as plain strings
    (code-point order). When ``periods`` is given, exactly those periods are
    reported, even one without contacts (then only revenue rows and a zero
    unattributed row).
"""

from __future__ import annotations

import calendar
import csv
import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from math import floor
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml

LEDGER_COLUMNS = [
    "period",
    "department_id",
    "cost_center",
    "decision_id",
    "contacts",
    "handle_minutes",
    "cost",
    "revenue",
    "net",
]
UNATTRIBUTED = "unattributed"
ONE = Fraction(1)
ZERO = Fraction(0)


# --------------------------------------------------------------------------- numbers


def exact(value: Any) -> Fraction:
    """The exact number a YAML or CSV literal stands for."""
    if isinstance(value, bool):
        raise ValueError(f"expected a number, got {value!r}")
    if isinstance(value, int):
        return Fraction(value)
    if isinstance(value, float):
        return Fraction(Decimal(repr(value)))
    if isinstance(value, str):
        return Fraction(Decimal(value.strip()))
    if isinstance(value, Fraction | Decimal):
        return Fraction(value)
    raise ValueError(f"expected a number, got {value!r}")


def round_half_up(x: Fraction, places: int) -> int:
    """x * 10**places rounded half away from zero, as an integer."""
    q = x * 10**places
    n: int = floor(abs(q) + Fraction(1, 2))
    return -n if q < 0 else n


def fmt_scaled(n: int, places: int) -> str:
    """An integer count of 10**-places units, printed with `places` decimals."""
    sign = "-" if n < 0 else ""
    n = abs(n)
    scale = 10**places
    return f"{sign}{n // scale}.{n % scale:0{places}d}"


def fmt(x: Fraction, places: int) -> str:
    return fmt_scaled(round_half_up(x, places), places)


# ----------------------------------------------------------------------------- dates


def to_date(value: Any) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        return date.fromisoformat(value.strip())
    raise ValueError(f"expected a date, got {value!r}")


def period_of(d: date) -> str:
    return f"{d.year:04d}-{d.month:02d}"


def month_days(period: str) -> list[date]:
    year, month = int(period[:4]), int(period[5:7])
    n = calendar.monthrange(year, month)[1]
    return [date(year, month, day) for day in range(1, n + 1)]


# ------------------------------------------------------------------------ workspace


@dataclass
class Rule:
    id: str
    decision: str
    match: dict[str, Any]
    effective: date
    ends: date | None
    start: date
    end_excl: date | None
    share: Fraction
    priority: int
    lookback_days: int | None

    def in_window(self, t: date) -> bool:
        if t < self.start:
            return False
        if self.end_excl is not None and t >= self.end_excl:
            return False
        return not (self.ends is not None and t > self.ends)


@dataclass
class Decision:
    id: str
    department: str
    effective: date
    ends: date | None
    revenue: dict[str, Any] | None

    def in_force(self, period: str) -> bool:
        days = month_days(period)
        if self.effective > days[-1]:
            return False
        return not (self.ends is not None and self.ends < days[0])

    def revenue_for(self, period: str) -> Fraction:
        if not self.revenue or not self.in_force(period):
            return ZERO
        if "monthly" in self.revenue:
            return exact(self.revenue["monthly"])
        by_period = {str(k): v for k, v in (self.revenue.get("by_period") or {}).items()}
        return exact(by_period[period]) if period in by_period else ZERO


@dataclass
class Workspace:
    timezone: str = "UTC"
    overlap: str = "split"
    columns: dict[str, str] = field(default_factory=dict)
    cost_centers: dict[str, str] = field(default_factory=dict)
    decisions: dict[str, Decision] = field(default_factory=dict)
    costs: dict[str, Any] = field(default_factory=dict)
    rules: list[Rule] = field(default_factory=list)


def _load_yaml(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as fh:
        data = yaml.safe_load(fh)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: top level is not a mapping")
    return data


def load_workspace(root: Path) -> Workspace:
    departments: list[dict[str, Any]] = []
    decisions: list[dict[str, Any]] = []
    rules: list[dict[str, Any]] = []
    costs: dict[str, Any] | None = None
    settings: dict[str, Any] = {}

    rules_dir = root / "rules"
    files = sorted([*rules_dir.rglob("*.yaml"), *rules_dir.rglob("*.yml")])
    for path in files:
        data = _load_yaml(path)
        departments += data.get("departments") or []
        decisions += data.get("decisions") or []
        rules += data.get("rules") or []
        if data.get("costs") is not None:
            if costs is not None:
                raise ValueError(f"{path}: second costs block")
            costs = data["costs"]
        settings.update(data.get("settings") or {})
    top = root / "chargeback.yaml"
    if top.exists():
        settings.update(_load_yaml(top))

    ws = Workspace(
        timezone=str(settings.get("timezone") or "UTC"),
        overlap=str(settings.get("overlap") or "split"),
        columns={str(k): str(v) for k, v in (settings.get("columns") or {}).items()},
        costs=costs or {},
    )
    if ws.overlap not in ("split", "priority"):
        raise ValueError(f"unknown overlap {ws.overlap!r}")
    for dep in departments:
        ws.cost_centers[str(dep["id"])] = str(dep.get("cost_center") or "")
    for dec in decisions:
        ws.decisions[str(dec["id"])] = Decision(
            id=str(dec["id"]),
            department=str(dec["department"]),
            effective=to_date(dec["effective"]),
            ends=to_date(dec["ends"]) if dec.get("ends") is not None else None,
            revenue=dec.get("revenue"),
        )
    for r in rules:
        decision = ws.decisions[str(r["decision"])]
        window = r.get("window") or {}
        start = decision.effective + timedelta(days=int(window.get("start_offset_days") or 0))
        days = window.get("days")
        baseline = r.get("baseline")
        ws.rules.append(
            Rule(
                id=str(r["id"]),
                decision=decision.id,
                match=dict(r.get("match") or {}),
                effective=decision.effective,
                ends=decision.ends,
                start=start,
                end_excl=start + timedelta(days=int(days)) if days is not None else None,
                share=exact(r["share"]) if r.get("share") is not None else ONE,
                priority=int(r.get("priority") or 0),
                lookback_days=int(baseline["lookback_days"]) if baseline else None,
            )
        )
    return ws


# ------------------------------------------------------------------------- contacts


@dataclass
class Contact:
    contact_id: str
    local_date: date
    period: str
    channel: str
    hs: Fraction
    values: dict[str, str | None]
    tags: list[str] | None
    cost: Fraction = ZERO


def split_tags(raw: str | None) -> list[str] | None:
    if raw is None:
        return None
    parts = [p.strip() for p in raw.split("|")]
    kept = [p for p in parts if p]
    return kept or None


def local_date_of(raw: str, tz: ZoneInfo) -> date:
    dt = datetime.fromisoformat(raw.strip())
    if dt.tzinfo is not None:
        dt = dt.astimezone(tz)
    return dt.date()


def load_contacts(path: Path, ws: Workspace) -> tuple[list[Contact], set[str]]:
    rename = {platform: canonical for canonical, platform in ws.columns.items()}
    tz = ZoneInfo(ws.timezone)
    contacts: list[Contact] = []
    with path.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        header = [rename.get(h, h) for h in (reader.fieldnames or [])]
        for raw in reader:
            values: dict[str, str | None] = {}
            for key, val in raw.items():
                name = rename.get(key, key)
                values[name] = val if val not in (None, "") else None
            hs_raw = values.get("handle_seconds")
            cid, started, channel = (
                values.get("contact_id"),
                values.get("started_at"),
                values.get("channel"),
            )
            if cid is None or started is None or channel is None:
                raise ValueError(f"row {reader.line_num}: missing required value")
            d = local_date_of(started, tz)
            contacts.append(
                Contact(
                    contact_id=cid,
                    local_date=d,
                    period=period_of(d),
                    channel=channel,
                    hs=exact(hs_raw) if hs_raw is not None else ZERO,
                    values=values,
                    tags=split_tags(values.get("tags")),
                )
            )
    return contacts, set(header)


# ------------------------------------------------------------------------- matching


def as_list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list | tuple):
        return [str(v) for v in value]
    return [str(value)]


def any_of(value: str | None, patterns: list[str]) -> bool:
    if value is None:
        return False
    for p in patterns:
        if p.endswith("*"):
            if value.startswith(p[:-1]):
                return True
        elif value == p:
            return True
    return False


def tags_match(tags: list[str] | None, patterns: list[str]) -> bool:
    return tags is not None and any(any_of(t, patterns) for t in tags)


def text_match(text: str | None, patterns: list[str]) -> bool:
    if text is None:
        return False
    low = text.lower()
    return any((p[:-1] if p.endswith("*") else p).lower() in low for p in patterns)


def regex_match(text: str | None, patterns: list[str]) -> bool:
    if text is None:
        return False
    return any(re.search(p, text, re.IGNORECASE) for p in patterns)


def satisfies(c: Contact, match: dict[str, Any], header: set[str]) -> bool:
    """Every match key holds (the window is not part of this)."""
    for key, spec in match.items():
        if key in ("reason", "channel", "product", "region", "outcome"):
            ok = any_of(c.values.get(key), as_list(spec))
        elif key == "tags":
            ok = tags_match(c.tags, as_list(spec))
        elif key == "text":
            ok = text_match(c.values.get("text"), as_list(spec))
        elif key == "text_regex":
            ok = regex_match(c.values.get("text"), as_list(spec))
        elif key == "fields":
            ok = True
            for col, col_spec in (spec or {}).items():
                if col not in header:
                    raise ValueError(f"fields names a column the contacts lack: {col}")
                if col == "tags":
                    ok = ok and tags_match(c.tags, as_list(col_spec))
                else:
                    ok = ok and any_of(c.values.get(col), as_list(col_spec))
        else:
            raise ValueError(f"unknown match key {key!r}")
        if not ok:
            return False
    return True


# -------------------------------------------------------------------------- costing


def assign_costs(contacts: list[Contact], costs: dict[str, Any]) -> None:
    method = costs.get("method", "rates")
    if method == "rates":
        channels = costs.get("channels") or {}
        for c in contacts:
            rates = channels[c.channel] if c.channel in channels else costs.get("default")
            rates = rates or {}
            per_contact = exact(rates.get("per_contact", 0) or 0)
            per_minute = exact(rates.get("per_minute", 0) or 0)
            c.cost = per_contact + per_minute * c.hs / 60
    elif method == "pool":
        pool = costs.get("pool") or {}
        by_period = {str(k): v for k, v in (pool.get("by_period") or {}).items()}
        periods: dict[str, list[Contact]] = {}
        for c in contacts:
            periods.setdefault(c.period, []).append(c)
        for p, members in periods.items():
            if "monthly" in pool:
                amount = exact(pool["monthly"])
            else:
                amount = exact(by_period[p]) if p in by_period else ZERO
            total_hs = sum((c.hs for c in members), ZERO)
            for c in members:
                if total_hs == 0:
                    c.cost = amount / len(members)
                else:
                    c.cost = amount * c.hs / total_hs
    else:
        raise ValueError(f"unknown cost method {method!r}")


# ------------------------------------------------------------------------ attribution


def baseline_factors(
    ws: Workspace, contacts: list[Contact], header: set[str], matched: dict[str, set[str]]
) -> dict[tuple[str, str], Fraction]:
    """f(r, p) for every rule with a baseline and every period holding a matched contact."""
    out: dict[tuple[str, str], Fraction] = {}
    for r in ws.rules:
        if r.lookback_days is None:
            continue
        lo = r.effective - timedelta(days=r.lookback_days)
        b_count = sum(
            1
            for c in contacts
            if lo <= c.local_date < r.effective and satisfies(c, r.match, header)
        )
        b = Fraction(b_count, r.lookback_days)
        a_by_period: dict[str, int] = {}
        for c in contacts:
            if r.id in matched[c.contact_id]:
                a_by_period[c.period] = a_by_period.get(c.period, 0) + 1
        for p, a in a_by_period.items():
            d = sum(1 for day in month_days(p) if r.in_window(day))
            e = b * d
            out[(r.id, p)] = max(ZERO, a - e) / a
    return out


def contact_weights(
    ws: Workspace, c: Contact, rule_ids: set[str], factors: dict[tuple[str, str], Fraction]
) -> dict[str, Fraction]:
    """w_d(c) for every decision d (only decisions with a kept rule appear)."""
    kept = [r for r in ws.rules if r.id in rule_ids]
    if not kept:
        return {}
    if ws.overlap == "priority":
        top = max(r.priority for r in kept)
        kept = [r for r in kept if r.priority == top]
    weights: dict[str, Fraction] = {}
    for r in kept:
        f = factors.get((r.id, c.period), ONE) if r.lookback_days is not None else ONE
        w = r.share * f
        weights[r.decision] = max(weights.get(r.decision, ZERO), w)
    s = sum(weights.values(), ZERO)
    if s > 1:
        weights = {d: w / s for d, w in weights.items()}
    return weights


# --------------------------------------------------------------------------- ledger


def largest_remainder(
    exact_amounts: dict[tuple[str, str], Fraction], total_cents: int
) -> dict[tuple[str, str], int]:
    cents = {k: floor(v * 100) for k, v in exact_amounts.items()}
    remainder = {k: v * 100 - cents[k] for k, v in exact_amounts.items()}
    short = total_cents - sum(cents.values())
    if short < 0 or short > len(cents):
        raise AssertionError(f"largest remainder cannot hand out {short} cents")
    order = sorted(exact_amounts, key=lambda k: (-remainder[k], k))
    for k in order[:short]:
        cents[k] += 1
    return cents


@dataclass
class _Result:
    rows: list[dict[str, str]]
    totals: dict[str, str]


def _compute(workspace: Path, contacts_csv: Path, periods: list[str] | None) -> _Result:
    ws = load_workspace(workspace)
    contacts, header = load_contacts(contacts_csv, ws)
    for r in ws.rules:
        for key in r.match.get("fields") or {}:
            if key not in header:
                raise ValueError(f"rule {r.id}: fields names unknown column {key!r}")
    assign_costs(contacts, ws.costs)

    # matched(c, r) = every match key holds and c is in r's window
    matched: dict[str, set[str]] = {
        c.contact_id: {
            r.id for r in ws.rules if r.in_window(c.local_date) and satisfies(c, r.match, header)
        }
        for c in contacts
    }
    factors = baseline_factors(ws, contacts, header, matched)

    reported = sorted(set(periods)) if periods is not None else sorted({c.period for c in contacts})
    rows: list[dict[str, str]] = []
    totals: dict[str, str] = {}
    for p in reported:
        members = [c for c in contacts if c.period == p]
        w_sum: dict[str, Fraction] = {}
        hm_sum: dict[str, Fraction] = {}
        cost_sum: dict[str, Fraction] = {}
        un_w = un_hm = ZERO
        total_exact = ZERO
        for c in members:
            weights = contact_weights(ws, c, matched[c.contact_id], factors)
            total_exact += c.cost
            for d, w in weights.items():
                w_sum[d] = w_sum.get(d, ZERO) + w
                hm_sum[d] = hm_sum.get(d, ZERO) + w * c.hs / 60
                cost_sum[d] = cost_sum.get(d, ZERO) + w * c.cost
            rest = ONE - sum(weights.values(), ZERO)
            un_w += rest
            un_hm += rest * c.hs / 60

        # which decision lines are printed
        lines: dict[tuple[str, str], Decision] = {}
        for dec in ws.decisions.values():
            if w_sum.get(dec.id, ZERO) > 0 or dec.revenue_for(p) != 0:
                lines[(dec.department, dec.id)] = dec
        un_key = (UNATTRIBUTED, UNATTRIBUTED)
        exact_cost = {k: cost_sum.get(dec.id, ZERO) for k, dec in lines.items()}
        exact_cost[un_key] = total_exact - sum(exact_cost.values(), ZERO)
        total_cents = round_half_up(total_exact, 2)
        totals[p] = fmt_scaled(total_cents, 2)
        cents = largest_remainder(exact_cost, total_cents)

        for key, dec in lines.items():
            revenue_cents = round_half_up(dec.revenue_for(p), 2)
            rows.append(
                {
                    "period": p,
                    "department_id": dec.department,
                    "cost_center": ws.cost_centers.get(dec.department, ""),
                    "decision_id": dec.id,
                    "contacts": fmt(w_sum.get(dec.id, ZERO), 3),
                    "handle_minutes": fmt(hm_sum.get(dec.id, ZERO), 2),
                    "cost": fmt_scaled(cents[key], 2),
                    "revenue": fmt_scaled(revenue_cents, 2),
                    "net": fmt_scaled(revenue_cents - cents[key], 2),
                }
            )
        rows.append(
            {
                "period": p,
                "department_id": UNATTRIBUTED,
                "cost_center": "",
                "decision_id": UNATTRIBUTED,
                "contacts": fmt(un_w, 3),
                "handle_minutes": fmt(un_hm, 2),
                "cost": fmt_scaled(cents[un_key], 2),
                "revenue": "0.00",
                "net": fmt_scaled(-cents[un_key], 2),
            }
        )
    rows.sort(key=lambda row: (row["period"], row["department_id"], row["decision_id"]))
    return _Result(rows=rows, totals=totals)


def oracle_ledger(
    workspace: Path, contacts_csv: Path, periods: list[str] | None = None
) -> list[dict[str, str]]:
    """The rows of ledger.csv for this workspace and contacts, formatted and sorted."""
    return _compute(Path(workspace), Path(contacts_csv), periods).rows


def oracle_period_totals(
    workspace: Path, contacts_csv: Path, periods: list[str] | None = None
) -> dict[str, str]:
    """Each reported period's total cost: the exact sum rounded half-up to cents."""
    return _compute(Path(workspace), Path(contacts_csv), periods).totals


def oracle_contact(
    workspace: Path, contacts_csv: Path, contact_id: str
) -> tuple[dict[str, Fraction], Fraction]:
    """One contact's decision weights (w_d, section 4) and its exact cost: what `explain` shows."""
    ws = load_workspace(Path(workspace))
    contacts, header = load_contacts(Path(contacts_csv), ws)
    assign_costs(contacts, ws.costs)
    matched = {
        c.contact_id: {
            r.id for r in ws.rules if r.in_window(c.local_date) and satisfies(c, r.match, header)
        }
        for c in contacts
    }
    factors = baseline_factors(ws, contacts, header, matched)
    (c,) = [c for c in contacts if c.contact_id == contact_id]
    return contact_weights(ws, c, matched[c.contact_id], factors), c.cost
