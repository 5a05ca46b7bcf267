"""The control baseline end to end: the real `chargeback report` on worlds whose truth we injected.

tests/test_control_truth.py checks the statistics module on daily series it
builds itself. This checks what a user gets: a workspace (rules YAML and a
contacts CSV with contact_id, started_at, channel, reason, text) goes through
`chargeback report --format json`, and ledger.json's lines are compared with
the contacts each decision really added. So the engine's choices are measured
too: the control series (untouched contacts, or the reason family's), the fit
period and what it leaves out, the cells and the evidence split.

Each world has 15 to 18 months of daily contacts over many reasons in seven
families: a weekly and a yearly season (a December peak, a summer dip),
holidays, month-end peaks, sometimes a level shift, a day-to-day wobble every
reason shares and, in most worlds, a small yearly pattern per family (the
reason mix moves with the season). A decision's rule matches one reason whose
background follows its family with its own weekday pattern, a small drift and
negative-binomial noise; the decision adds a known number of contacts a day in
its window (a ramp, then a decay; the window is as long as the effect). The
world's kind picks the story:

- plain: anywhere in the data;
- after-peak / after-dip: just after the December peak or the summer dip;
- in-peak: a campaign in the December peak;
- month-end: the rule's family has its own bill-run peak at the turn of the
  month, which the other families do not share;
- shift: every reason's volume shifts by -30% to +40% shortly before or
  inside the window;
- overlap: two decisions' rules match the same reason, their windows overlap,
  and each one's added contacts name it in their text (`evidence`); in half the
  worlds the second rule also matches a reason of its own (a second cell), in
  half some everyday contacts name one of the fees too;
- sequential: two decisions on the same reason, one after the other;
- not in the default mix (`--kind`): early-first, like sequential with the
  first decision only 40 to 80 days into the data; overlap-talk, like overlap
  with 10% to 40% of the shared reason's everyday contacts naming a fee (80% of
  them the late fee), as callers about a fee would.

A third of the worlds hold an unrelated decision on another family beside
them ("(other)" in the figures). Truth per decision-month is the contacts
injected that month; a month with no ledger line (X = 0) has the range [0, 0].
Issue 11's targets (on 61 decisions): 57 within +/-10%, median |error| <= 3%,
80% ranges holding the truth in >= 75% of decision-months; with more decisions,
as rates. Each miss beyond 10% prints its error split into count noise (the
window's background against its true mean: only the range can own it) and the
counterfactual's part (the fit, the control series, the split).

    .venv/bin/python bench/bench_control_truth.py --worlds 61 [--jobs 2]
    .venv/bin/python bench/bench_control_truth.py --worlds 61 --kind overlap --verbose
    .venv/bin/python bench/bench_control_truth.py --worlds 1 --first-seed 37 --keep /tmp/w
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from numpy.typing import NDArray

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `python bench/...` puts bench/, not the repository, on the path
    sys.path.insert(0, str(ROOT))

from typer.testing import CliRunner  # noqa: E402

from cli import app  # noqa: E402

KINDS = (
    "plain",
    "after-peak",
    "after-dip",
    "month-end",
    "shift",
    "overlap",
    "in-peak",
    "sequential",
)
# not in the default mix: a first decision with a short fit before it, a second one after
EXTRA_KINDS = ("early-first", "overlap-talk")
ANCHORS = {"after-peak": (1, 2), "after-dip": (9, 1), "in-peak": (11, 25)}  # first days
HOLIDAYS = ((1, 1), (5, 1), (7, 4), (8, 15), (11, 28), (12, 24), (12, 25), (12, 26), (12, 31))
FAMILIES = {  # reason family -> its reasons; the decisions' reasons are the first of a family
    "billing": ("late_fee", "invoice", "refund", "payment", "plan_change"),
    "orders": ("promo", "status", "cancel", "change"),
    "shipping": ("delay", "address", "damaged"),
    "account": ("login", "profile", "close"),
    "tech": ("app_crash", "outage", "setup", "wifi"),
    "returns": ("label", "policy"),
    "product": ("question", "availability", "manual"),
}
TARGETS = {"within": 57 / 61, "median": 0.03, "coverage": 0.75}
FloatArray = NDArray[np.float64]


@dataclass
class Decision:
    """One decision of a world: its rule and the contacts it really added."""

    id: str
    kind: str  # the world's kind, or "(other)" for an unrelated decision beside it
    reasons: tuple[str, ...]  # what its rule matches
    effective: int  # day index into the world
    window_days: int
    evidence: str | None  # the phrase its added contacts carry (overlapping decisions)
    truth: dict[str, int] = field(default_factory=dict)  # "YYYY-MM" -> injected contacts


@dataclass
class World:
    """One synthetic workspace, and what only the generator knows about it."""

    seed: int
    kind: str
    days: tuple[date, ...]
    decisions: list[Decision]
    contacts: pl.DataFrame
    notes: str  # what the generator chose, for the per-decision lines
    means: dict[str, FloatArray]  # each reason's true daily mean without the decisions
    background: dict[str, NDArray[np.int64]]  # each reason's daily contacts without them

    def rules_yaml(self) -> str:
        lines = [
            "departments:",
            "  - {id: ops, name: Operations, cost_center: CC-1}",
            "decisions:",
        ]
        for d in self.decisions:
            lines.append(
                f"  - {{id: {d.id}, title: {d.id}, kind: fee, department: ops,"
                f" effective: {self.days[d.effective].isoformat()}}}"
            )
        lines += [
            "costs:",
            "  currency: USD",
            "  method: rates",
            "  channels:",
            "    phone: {per_contact: 4.00}",
            "    chat: {per_contact: 2.00}",
            "    email: {per_contact: 3.00}",
            "rules:",
        ]
        for d in self.decisions:
            baseline = "{method: control"
            if d.evidence is not None:
                baseline += f', evidence: {{text: ["{d.evidence}"]}}'
            baseline += "}"
            lines += [
                f"  - id: {d.id}-contacts",
                f"    decision: {d.id}",
                f"    match: {{reason: [{', '.join(d.reasons)}]}}",
                f"    window: {{days: {d.window_days}}}",
                f"    baseline: {baseline}",
            ]
        return "\n".join(lines) + "\n"

    def write(self, root: Path) -> None:
        (root / "rules").mkdir(parents=True, exist_ok=True)
        (root / "rules" / "main.yaml").write_text(self.rules_yaml())
        (root / "chargeback.yaml").write_text("contacts: contacts.csv\n")
        self.contacts.write_csv(root / "contacts.csv")


def _bump(doy: FloatArray, centre: float, width: float) -> FloatArray:
    """A yearly bump around day-of-year `centre` (wrapping over New Year)."""
    d = np.abs(doy - centre)
    d = np.minimum(d, 365.0 - d)
    return np.asarray(np.exp(-0.5 * (d / width) ** 2), dtype=np.float64)


def _nb(rng: np.random.Generator, mean: FloatArray, dispersion: float) -> NDArray[np.int64]:
    """Negative-binomial counts: variance = dispersion x mean."""
    if dispersion <= 1.0:
        return np.asarray(rng.poisson(mean), dtype=np.int64)
    extra = dispersion - 1.0
    return np.asarray(rng.poisson(rng.gamma(mean / extra) * extra), dtype=np.int64)


def _effect(rng: np.random.Generator, peak: float) -> FloatArray:
    """Extra contacts a day: a linear ramp, then an exponential decay.

    Its length is the window a careful rule writer would give it: the ramp and
    2.5 to 4 decay times.
    """
    ramp = int(rng.integers(3, 22))
    decay = float(rng.uniform(15, 60))
    t = np.arange(ramp + int(decay * rng.uniform(2.5, 4.0)), dtype=np.float64)
    shape = np.where(t < ramp, (t + 1) / ramp, np.exp(-(t - ramp) / decay))
    return np.asarray(peak * shape, dtype=np.float64)


def make_world(seed: int, kind: str | None = None, scale: float = 1.0) -> World:
    """One seeded world: its volume, its decisions and their injected contacts.

    `scale` multiplies the daily volume (the fast test uses smaller worlds).
    """
    rng = np.random.default_rng(seed)
    kind = kind or KINDS[seed % len(KINDS)]
    n = int(rng.integers(456, 549))  # 15 to 18 months
    lo = 150  # at least 5 months of data before the first window
    anchor = int(rng.integers(lo, n - 150))  # where a seasonal kind's date falls in the data
    if kind in ANCHORS:
        month, day = ANCHORS[kind]
        start = date(2025, month, day) - timedelta(days=anchor)
    else:
        start = date(2023, 6, 1) + timedelta(days=int(rng.integers(0, 365)))
    days = tuple(start + timedelta(days=k) for k in range(n))
    doy = np.array([d.timetuple().tm_yday for d in days], dtype=np.float64)
    dow = np.array([d.weekday() for d in days])
    month_turn = np.array(
        [(d + timedelta(days=2)).month != d.month or d.day <= 2 for d in days], dtype=np.float64
    )
    notes: list[str] = []

    # the decisions: which reasons their rules match, when they take effect, what they add
    main = (
        "billing.late_fee"
        if kind in ("month-end", "overlap", "overlap-talk", "sequential", "early-first")
        else (_first_reason(list(FAMILIES)[int(rng.integers(0, len(FAMILIES)))]))
    )
    backgrounds = {main: float(rng.uniform(15, 120))}  # contacts a day before any decision
    decisions: list[Decision] = []
    effects: list[FloatArray] = []

    def add(
        reasons: tuple[str, ...], effective: int, label: str = kind, evidence: str | None = None
    ) -> Decision:
        effective = min(effective, n - 45)  # a window that starts inside the data
        peak = backgrounds[reasons[0]] * math.exp(rng.uniform(-0.2, 1.1))
        effect = _effect(rng, peak)
        d = Decision(f"d{len(decisions) + 1}", label, reasons, effective, len(effect), evidence)
        decisions.append(d)
        effects.append(effect)
        return d

    wide = leak = 0.0
    if kind in ("plain", "month-end", "shift"):
        add((main,), int(rng.integers(lo, n - 60)))
    elif kind in ANCHORS:
        add((main,), anchor + int(rng.integers(0, 21)))
    elif kind in ("overlap", "overlap-talk"):
        first = int(rng.integers(lo, n - 90))
        add((main,), first, evidence="late fee")
        second = first + int(rng.integers(0, 31))
        if rng.random() < 0.5:  # the second rule matches more: its own cell beside the shared one
            wide = float(rng.uniform(0.2, 0.5))
            add((main, "billing.invoice"), second, evidence="paper bill")
            notes.append(f"d2 also billing.invoice ({wide:.0%} of its contacts)")
        else:
            add((main,), second, evidence="paper bill")
        if kind == "overlap-talk":  # the fee's everyday callers say "late fee" too, often
            leak = float(rng.uniform(0.1, 0.4))
            notes.append(f"evidence in {leak:.1%} of the background, 80% of it 'late fee'")
        elif rng.random() < 0.5:  # some everyday contacts name a fee too
            leak = float(rng.uniform(0.01, 0.04))
            notes.append(f"evidence in {leak:.1%} of the background")
    elif kind == "sequential":
        first = int(rng.integers(lo, n - 200))
        add((main,), first)
        gap = int(rng.integers(10, 120))
        add((main,), first + decisions[0].window_days + gap)
    elif kind == "early-first":  # the first decision only weeks into the data, a second later
        first = int(rng.integers(40, 80))
        add((main,), first)
        add((main,), first + decisions[0].window_days + int(rng.integers(30, 120)))
    else:
        raise ValueError(f"unknown kind {kind}")
    if rng.random() < 0.3:  # an unrelated decision on another family, in the same workspace
        family = [f for f in FAMILIES if f != main.split(".")[0]][int(rng.integers(0, 6))]
        backgrounds[_first_reason(family)] = float(rng.uniform(15, 120))
        add((_first_reason(family),), int(rng.integers(lo, n - 60)), "(other)")

    weekly = np.array([1.2, 1.05, 1.0, 1.0, 0.95, 0.7, 0.5]) * np.exp(rng.normal(0, 0.05, 7))
    yearly = (
        (1 + rng.uniform(0.05, 0.25) * np.cos(2 * np.pi * (doy - rng.uniform(0, 365)) / 365))
        * (1 + rng.uniform(0.1, 0.6) * _bump(doy, 345, 12))  # December peak
        * (1 - rng.uniform(0.0, 0.3) * _bump(doy, 220, 15))  # summer dip
    )
    holiday = np.array(
        [rng.uniform(0.2, 0.6) if (d.month, d.day) in HOLIDAYS else 1.0 for d in days]
    )
    month_end = (1 + 0.3 * month_turn) ** rng.uniform(0.0, 1.2)
    wobble = np.exp(rng.normal(0, 0.06, n))  # every reason shares it
    shift = np.ones(n)
    if kind == "shift" or rng.random() < 0.2:
        at = decisions[0].effective + int(rng.integers(-120, decisions[0].window_days // 2))
        size = float(rng.uniform(0.7, 1.4))
        shift[max(at, 1) :] = size
        notes.append(f"shift {size:.2f} at {at - decisions[0].effective:+d}d")
    volume = (
        rng.uniform(800, 2000) * scale * weekly[dow] * yearly * holiday * month_end * shift * wobble
    )

    # background reasons: family shares, each family with its own weekday tweak and, in
    # most worlds, its own small yearly pattern (the reason mix moves with the season)
    shares = rng.dirichlet(np.full(len(FAMILIES), 3.0))
    season = float(rng.uniform(0.0, 0.08)) if rng.random() < 0.7 else 0.0
    if season:
        notes.append(f"family seasons {season:.3f}")
    counts: dict[str, NDArray[np.int64]] = {}
    means: dict[str, FloatArray] = {}
    patterns: dict[str, FloatArray] = {}
    for (family, reasons), share in zip(FAMILIES.items(), shares, strict=True):
        phase = rng.uniform(0, 365)
        pattern = np.exp(season * rng.uniform(-1, 1) * np.sin(2 * np.pi * (doy - phase) / 365))
        if kind == "month-end" and family == "billing":
            # the bill run: billing's own peak at the turn of the month
            pattern = pattern * (1 + rng.uniform(0.3, 0.8) * month_turn)
        patterns[family] = pattern
        family_mean = volume * share * pattern * np.exp(rng.normal(0, 0.04, 7))[dow]
        split = rng.dirichlet(np.full(len(reasons), 2.0))
        for reason, part in zip(reasons, split, strict=True):
            means[f"{family}.{reason}"] = family_mean * part
            counts[f"{family}.{reason}"] = _nb(rng, family_mean * part, 1.1)

    # a decision's reason: its family's pattern, its own ratio and weekday pattern, and a
    # small seasonal drift of its own
    for reason, background in backgrounds.items():
        rule_weekly = np.exp(rng.normal(0, 0.1, 7))
        drift = float(rng.uniform(-0.02, 0.02)) if rng.random() < 0.5 else 0.0
        if drift:
            notes.append(f"{reason} drift {drift:+.3f}")
        mix = np.exp(drift * np.sin(2 * np.pi * (doy - rng.uniform(0, 365)) / 365))
        ratio = background * scale / volume.mean()
        means[reason] = ratio * volume * patterns[reason.split(".")[0]] * rule_weekly[dow] * mix
        counts[reason] = _nb(rng, means[reason], float(rng.uniform(1.0, 1.3)))

    # what the contacts say: the added ones name their decision's evidence; with a leak,
    # some everyday contacts of the shared reason name one of the two fees too
    groups = [
        (reason, f"question about my {reason.split('.')[0]} ({k})", daily)
        for k, (reason, daily) in enumerate(counts.items())
    ]
    if leak:
        named = np.asarray(rng.binomial(counts[main], leak), dtype=np.int64)
        late = np.asarray(rng.binomial(named, 0.8 if kind == "overlap-talk" else 0.5))
        at = list(counts).index(main)
        groups[at] = (main, groups[at][1], counts[main] - named)
        groups += [
            (main, "question about the late fee", late),
            (main, "is this a paper bill", named - late),
        ]
    for d, effect in zip(decisions, effects, strict=True):
        extra = np.zeros(n, dtype=np.int64)
        stop = min(d.effective + len(effect), n)
        extra[d.effective : stop] = rng.poisson(effect[: stop - d.effective] * scale)
        text = f"calling about the {d.evidence}" if d.evidence else "my new charge"
        if len(d.reasons) > 1:
            other = np.asarray(rng.binomial(extra, wide), dtype=np.int64)
            groups.append((d.reasons[1], text, other))
            groups.append((d.reasons[0], text, extra - other))
        else:
            groups.append((d.reasons[0], text, extra))
        for k in range(d.effective, stop):
            if extra[k]:
                period = days[k].strftime("%Y-%m")
                d.truth[period] = d.truth.get(period, 0) + int(extra[k])
    contacts = _contacts(rng, days, groups)
    return World(seed, kind, days, decisions, contacts, ", ".join(notes), means, counts)


def _first_reason(family: str) -> str:
    return f"{family}.{FAMILIES[family][0]}"


def _contacts(
    rng: np.random.Generator,
    days: Sequence[date],
    groups: Sequence[tuple[str, str, NDArray[np.int64]]],
) -> pl.DataFrame:
    """The contacts CSV's rows: per (reason, text, daily counts) group, each contact on its
    day at a random time, in time order within the day."""
    day_parts = [np.repeat(np.arange(len(days)), daily) for _, _, daily in groups]
    label = np.concatenate([np.full(len(p), k) for k, p in enumerate(day_parts)])
    day_index = np.concatenate(day_parts)
    order = np.lexsort((rng.random(len(day_index)), day_index))
    day_index, label = day_index[order], label[order]
    seconds = rng.integers(7 * 3600, 21 * 3600, len(day_index))
    base = np.datetime64(days[0].isoformat(), "s")
    started = base + day_index.astype("timedelta64[D]") + seconds.astype("timedelta64[s]")
    channel = rng.choice(3, len(day_index), p=[0.5, 0.35, 0.15])
    return pl.DataFrame(
        {
            "contact_id": pl.int_range(0, len(day_index), eager=True).cast(pl.String),
            "started_at": pl.Series(started.astype("datetime64[ms]")).dt.strftime(
                "%Y-%m-%dT%H:%M:%S"
            ),
            "channel": pl.Series(["phone", "chat", "email"]).gather(channel),
            "reason": pl.Series([g[0] for g in groups]).gather(label),
            "text": pl.Series([g[1] for g in groups]).gather(label),
        }
    ).with_columns(pl.concat_str(pl.lit("c"), pl.col("contact_id")).alias("contact_id"))


@dataclass(frozen=True)
class Month:
    period: str
    truth: int
    charged: float
    low: float
    high: float
    noise: float  # the window's background contacts minus their true mean (no fit can know)
    has_line: bool = True  # False: ledger.json has no line (X = 0), so no range either

    @property
    def covered(self) -> bool:
        return self.low <= self.truth <= self.high


@dataclass(frozen=True)
class Measured:
    """One decision's charge against its truth."""

    world: World
    decision: Decision
    months: tuple[Month, ...]

    @property
    def truth(self) -> int:
        return sum(m.truth for m in self.months)

    @property
    def charged(self) -> float:
        return sum(m.charged for m in self.months)

    @property
    def error(self) -> float:
        return (self.charged - self.truth) / self.truth

    def line(self) -> str:
        d, w = self.decision, self.world
        months = " ".join(
            f"{m.period}:{m.truth}/{m.charged:.0f}[{m.low:.0f}-{m.high:.0f}]"
            f"{'' if m.covered else '!'}"
            for m in self.months
        )
        noise = sum(m.noise for m in self.months)
        return (
            f"world {w.seed:3d} {d.kind:10s} {d.id} {'+'.join(d.reasons):18s}"
            f" from {w.days[d.effective]} ({d.window_days:3d}d) truth {self.truth:5d}"
            f" charged {self.charged:8.1f} error {self.error:+6.1%}"
            f" = count noise {noise / self.truth:+6.1%}"
            f" + counterfactual {self.error - noise / self.truth:+6.1%}  {w.notes}\n      {months}"
        )


def report(root: Path) -> dict[str, Any]:
    """`chargeback report --format json` on a written world, through the real CLI."""
    result = CliRunner().invoke(
        app,
        ["report", "--workspace", str(root), "--out", str(root / "out"), "--format", "json"],
    )
    if result.exit_code != 0:
        raise RuntimeError(f"report failed ({result.exit_code}): {result.output}")
    doc: dict[str, Any] = json.loads((root / "out" / "ledger.json").read_text())
    return doc


def measure(world: World, ledger: dict[str, Any]) -> list[Measured]:
    """Per decision and month of its window: truth, charge and the ledger's range.

    Also how far the window's own background strayed from its true mean: the part
    of the error that is count noise, which only the range can own; the rest is
    the counterfactual's (the fit, the control series, the split).
    """
    lines = {(ln["period"], ln["decision_id"]): ln for ln in ledger["lines"]}
    out = []
    for d in world.decisions:
        last = min(d.effective + d.window_days, len(world.days)) - 1
        by_period: dict[str, list[int]] = {}
        for k in range(d.effective, last + 1):
            by_period.setdefault(world.days[k].strftime("%Y-%m"), []).append(k)
        months = []
        for p, ks in sorted(by_period.items()):
            noise = sum(
                float(world.background[r][ks].sum() - world.means[r][ks].sum()) for r in d.reasons
            )
            line = lines.get((p, d.id))
            charged = float(Decimal(line["contacts"])) if line else 0.0
            low, high = (
                (float(Decimal(v)) for v in line["range"]["contacts"])
                if line and "range" in line
                else (charged, charged)
            )
            months.append(Month(p, d.truth.get(p, 0), charged, low, high, noise, line is not None))
        out.append(Measured(world, d, tuple(months)))
    return out


def run_world(
    seed: int, kind: str | None = None, scale: float = 1.0, keep: Path | None = None
) -> list[Measured]:
    """Generate, write, report and measure one world (in a temporary folder unless `keep`)."""
    world = make_world(seed, kind, scale)
    root = keep or Path(tempfile.mkdtemp(prefix=f"cb-truth-{seed}-"))
    try:
        world.write(root)
        ledger = report(root)
    finally:
        if keep is None:
            shutil.rmtree(root, ignore_errors=True)
    world.contacts = world.contacts.clear()  # measured: the rows are on disk or gone
    return measure(world, ledger)


def _run(task: tuple[int, str | None, float, Path | None]) -> list[Measured]:
    return run_world(*task)


@dataclass(frozen=True)
class Figures:
    measured: tuple[Measured, ...]

    @property
    def errors(self) -> list[float]:
        return [m.error for m in self.measured]

    @property
    def within_10(self) -> int:
        return sum(abs(e) <= 0.10 for e in self.errors)

    @property
    def median_error(self) -> float:
        return float(statistics.median(abs(e) for e in self.errors))

    @property
    def months(self) -> list[Month]:
        return [mo for m in self.measured for mo in m.months]

    @property
    def coverage(self) -> float:
        months = self.months
        return sum(m.covered for m in months) / len(months)

    def meets_targets(self) -> bool:
        n = len(self.measured)
        return (
            self.within_10 >= TARGETS["within"] * n
            and self.median_error <= TARGETS["median"]
            and self.coverage >= TARGETS["coverage"]
        )

    def summary(self) -> str:
        n, months = len(self.measured), self.months
        lines = [
            f"{n} decisions: {self.within_10} within +/-10% (target {TARGETS['within'] * n:.1f}),"
            f" median |error| {self.median_error:.1%} (target 3%), mean |error|"
            f" {statistics.mean(abs(e) for e in self.errors):.1%};"
            f" 80% ranges hold the truth in {sum(m.covered for m in months)}/{len(months)}"
            f" decision-months ({self.coverage:.0%}, target 75%)"
            f" -> {'MEETS' if self.meets_targets() else 'MISSES'} issue 11's targets",
        ]
        lineless = [m for m in months if not m.has_line and m.truth > 0]
        if lineless:
            lines.append(
                f"  of the months missed, {len(lineless)} have no ledger line (X = 0, so no"
                f" range) though {sum(m.truth for m in lineless)} contacts were injected"
            )
        for kind in (*KINDS, *EXTRA_KINDS, "(other)"):
            part = [m for m in self.measured if m.decision.kind == kind]
            if not part:
                continue
            mo = [x for m in part for x in m.months]
            lines.append(
                f"  {kind:10s} {len(part):3d} decisions,"
                f" {sum(abs(m.error) <= 0.1 for m in part):3d} within 10%,"
                f" median {statistics.median(abs(m.error) for m in part):5.1%},"
                f" bias {statistics.mean(m.error for m in part):+6.1%},"
                f" coverage {sum(x.covered for x in mo) / len(mo):4.0%}"
            )
        return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worlds", type=int, default=61)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--kind", choices=(*KINDS, *EXTRA_KINDS), help="every world of this kind")
    parser.add_argument("--scale", type=float, default=1.0, help="volume multiplier")
    parser.add_argument("--verbose", action="store_true", help="every decision's figures")
    parser.add_argument("--keep", type=Path, help="write each world under this folder")
    parser.add_argument("--jobs", type=int, default=1, help="worlds run in parallel processes")
    args = parser.parse_args()
    began = time.perf_counter()
    tasks = [
        (seed, args.kind, args.scale, args.keep / f"world-{seed}" if args.keep else None)
        for seed in range(args.first_seed, args.first_seed + args.worlds)
    ]
    measured: list[Measured] = []
    with ProcessPoolExecutor(args.jobs) if args.jobs > 1 else nullcontext() as pool:
        results = pool.map(_run, tasks) if pool is not None else map(_run, tasks)
        for got in results:  # in seed order either way: the same output for the same seeds
            measured += got
            for m in got:
                if args.verbose or abs(m.error) > 0.10:
                    print(m.line(), flush=True)
    print(Figures(tuple(measured)).summary())
    print(f"{args.worlds} worlds, {len(measured)} decisions, {time.perf_counter() - began:.0f} s")


if __name__ == "__main__":
    main()
