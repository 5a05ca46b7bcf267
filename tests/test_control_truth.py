"""The control baseline against synthetic worlds whose truth we injected (issue 11's target).

Each world has 18 months of daily contacts: a weekly and a yearly season (a
December peak, a summer dip), holidays at a fraction of the volume, month-end
peaks, sometimes a level shift, and a day-to-day wobble every reason shares. The
control series is the contacts no decision touched; a rule's background follows
the same volume through its own ratio and weekday pattern (and, in some worlds,
a reason mix that drifts a little with the season), with negative-binomial noise.
A decision adds a known number of contacts per day inside its window, ramping up
then decaying; some decisions come right after the December peak or the summer
dip, and some worlds hold an earlier decision of the same rule inside the
lookback (left out of the fit, as the engine does for rules sharing contacts).

We fit on the 182 days before the decision, compute X per month and compare it
with the injected contacts per decision and per month. Issue 11's target is
asserted on 61 decisions and, so that a lucky draw of 61 cannot carry it, as
rates on 300. A rule whose reasons follow the season +/-2% differently from its
control is ordinary; +/-5% is the stress test: a ratio the control does not
share is what this method cannot see (issue 11 says so), and the test pins how
much it costs. Run this file directly for the figures:

    .venv/bin/python tests/test_control_truth.py [worlds] [drift]
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np

from chargeback.engine.control import DailySeries, excess_by_period, fit_control

LOOKBACK = 182
DAYS = 548  # 18 months
WORLDS = 61
DRIFT = 0.02  # ordinary worlds: the rule's reason mix follows the season within +/-2%
STRESS = 0.05  # the stress test's reason-mix drift
HOLIDAYS = ((1, 1), (5, 1), (7, 4), (8, 15), (11, 28), (12, 24), (12, 25), (12, 26), (12, 31))


@dataclass(frozen=True)
class World:
    series: DailySeries
    fit_mask: tuple[bool, ...]
    window: tuple[int, ...]  # the decision's window days (indexes) inside the data
    truth: tuple[int, ...]  # injected contacts on each window day
    kind: str  # "plain", "after-peak", "after-dip"
    background: tuple[float, ...] = ()  # the rule's true mean without the decision, window days
    drift: float = 0.0  # amplitude of the rule's own seasonal reason mix (log scale)
    seed: int = 0


def _bump(doy: np.ndarray, centre: float, width: float) -> np.ndarray:
    """A yearly bump around day-of-year `centre` (wrapping over New Year)."""
    d = np.abs(doy - centre)
    d = np.minimum(d, 365.0 - d)
    return np.asarray(np.exp(-0.5 * (d / width) ** 2))


def _nb(rng: np.random.Generator, mean: np.ndarray, dispersion: float) -> np.ndarray:
    if dispersion <= 1.0:
        return rng.poisson(mean)
    extra = dispersion - 1.0
    return rng.poisson(rng.gamma(mean / extra) * extra)


def _effect(rng: np.random.Generator, peak: float) -> np.ndarray:
    """Extra contacts a day: a linear ramp, then an exponential decay.

    Its length is the window a careful rule writer would give it: the ramp and
    2.5 to 4 decay times (the tail past that is too thin to tell from noise).
    """
    ramp = int(rng.integers(3, 22))
    decay = float(rng.uniform(15, 60))
    t = np.arange(ramp + int(decay * rng.uniform(2.5, 4.0)), dtype=np.float64)
    return np.asarray(peak * np.where(t < ramp, (t + 1) / ramp, np.exp(-(t - ramp) / decay)))


def make_world(seed: int, drift_max: float = DRIFT) -> World:
    """One seeded world and its decision (see the module docstring)."""
    rng = np.random.default_rng(seed)
    kind = ("plain", "plain", "after-peak", "after-dip")[seed % 4]
    start = date(2024, 1, 1) + timedelta(days=int(rng.integers(0, 365)))
    days = tuple(start + timedelta(days=k) for k in range(DAYS))
    doy = np.array([d.timetuple().tm_yday for d in days], dtype=np.float64)
    dow = np.array([d.weekday() for d in days])
    weekly = np.array([1.2, 1.05, 1.0, 1.0, 0.95, 0.7, 0.5]) * np.exp(rng.normal(0, 0.05, 7))
    yearly = (
        (1 + rng.uniform(0.05, 0.25) * np.cos(2 * np.pi * (doy - rng.uniform(0, 365)) / 365))
        * (1 + rng.uniform(0.1, 0.6) * _bump(doy, 345, 12))  # December peak
        * (1 - rng.uniform(0.0, 0.3) * _bump(doy, 220, 15))  # summer dip
    )
    holiday = np.array(
        [rng.uniform(0.2, 0.6) if (d.month, d.day) in HOLIDAYS else 1.0 for d in days]
    )
    month_end = np.array(
        [1 + 0.3 * ((d + timedelta(days=2)).month != d.month or d.day == 1) for d in days]
    ) ** rng.uniform(0.0, 1.2)
    shift = np.ones(DAYS)
    if rng.random() < 0.35:
        shift[int(rng.integers(60, DAYS - 60)) :] = rng.uniform(0.7, 1.4)
    wobble = np.exp(rng.normal(0, 0.06, DAYS))  # every reason shares it
    volume = rng.uniform(1500, 6000) * weekly[dow] * yearly * holiday * month_end * shift * wobble
    control = rng.poisson(volume)

    background = rng.uniform(15, 120)  # the rule's contacts a day, before the decision
    rule_weekly = np.exp(rng.normal(0, 0.1, 7))
    drift = 0.0
    if rng.random() < 0.5:  # the rule's reasons follow the season a little differently
        drift = float(rng.uniform(-drift_max, drift_max))
    mix = np.exp(drift * np.sin(2 * np.pi * (doy - rng.uniform(0, 365)) / 365))
    ratio = background / volume.mean()
    mean = ratio * volume * rule_weekly[dow] * mix
    matched = _nb(rng, mean, rng.uniform(1.0, 1.3))

    first_fit = LOOKBACK + 14
    if kind == "plain":
        effective = int(rng.integers(first_fit, DAYS - 60))
    else:
        target = (1, 2) if kind == "after-peak" else (9, 1)
        candidates = [
            k for k in range(first_fit, DAYS - 60) if (days[k].month, days[k].day) == target
        ]
        effective = (candidates[0] if candidates else first_fit) + int(rng.integers(0, 21))
    effect = _effect(rng, background * math.exp(rng.uniform(-0.2, 1.1)))
    window = tuple(range(effective, min(effective + len(effect), DAYS)))
    extra = rng.poisson(effect[: len(window)])
    matched[list(window)] += extra

    fit = np.zeros(DAYS, dtype=np.bool_)
    fit[effective - LOOKBACK : effective] = True
    if rng.random() < 0.3:  # an earlier decision on the same contacts, inside the lookback
        lo = effective - int(rng.integers(40, LOOKBACK - 20))
        before = _effect(rng, background)
        earlier = range(lo, min(lo + len(before), effective))
        matched[list(earlier)] += rng.poisson(before[: len(earlier)])
        fit[list(earlier)] = False
    series = DailySeries(days, tuple(int(v) for v in matched), tuple(int(v) for v in control))
    return World(
        series,
        tuple(bool(v) for v in fit),
        window,
        tuple(int(v) for v in extra),
        kind,
        tuple(float(v) for v in mean[list(window)]),
        drift,
        seed,
    )


@dataclass(frozen=True)
class Score:
    errors: tuple[float, ...]  # per decision: (sum X - truth) / truth
    covered: int  # decision-months whose [low, high] holds the month's truth
    months: int
    worlds: tuple[World, ...]
    seconds: float

    @property
    def within_10(self) -> int:
        return sum(abs(e) <= 0.10 for e in self.errors)

    @property
    def median_error(self) -> float:
        return float(np.median(np.abs(self.errors)))

    @property
    def coverage(self) -> float:
        return self.covered / self.months

    def summary(self) -> str:
        worst = sorted(zip(self.errors, self.worlds, strict=True), key=lambda t: -abs(t[0]))[:5]
        return (
            f"{len(self.errors)} decisions: {self.within_10} within +/-10%,"
            f" median |error| {self.median_error:.1%}, mean |error|"
            f" {float(np.mean(np.abs(self.errors))):.1%};"
            f" 80% ranges hold the truth in {self.covered}/{self.months}"
            f" decision-months ({self.coverage:.0%}); fit + range {self.seconds:.2f} s\n"
            "  worst: "
            + ", ".join(f"world {w.seed} {w.kind} drift {w.drift:+.3f} {e:+.1%}" for e, w in worst)
        )


def score(worlds: list[World]) -> Score:
    """Fit each world's decision, compare X with the injected truth per decision and month."""
    errors: list[float] = []
    covered = months = 0
    seconds = 0.0
    for world in worlds:
        by_month: dict[str, list[int]] = {}
        truth_by_month: dict[str, int] = {}
        for i, extra in zip(world.window, world.truth, strict=True):
            period = world.series.days[i].strftime("%Y-%m")
            by_month.setdefault(period, []).append(i)
            truth_by_month[period] = truth_by_month.get(period, 0) + extra
        began = time.perf_counter()
        fit = fit_control(world.series, world.fit_mask, window=world.window)
        result = excess_by_period(world.series, fit, by_month, level=0.8, seed=world.seed)
        seconds += time.perf_counter() - began
        truth = sum(world.truth)
        errors.append((sum(x.excess for x in result.values()) - truth) / truth)
        for period, x in result.items():
            months += 1
            covered += x.low <= truth_by_month[period] <= x.high
    return Score(tuple(errors), covered, months, tuple(worlds), seconds)


def test_the_control_baseline_finds_the_injected_contacts() -> None:
    result = score([make_world(seed) for seed in range(WORLDS)])
    print("\n" + result.summary())
    # issue 11's targets: 57 of 61 within +/-10%, median error <= 3%, ranges >= 75%
    assert result.within_10 >= 57
    assert result.median_error <= 0.03
    assert 0.75 <= result.coverage <= 0.9  # honest: neither too narrow nor far too wide


def test_the_targets_hold_as_rates_on_300_decisions() -> None:
    result = score([make_world(seed) for seed in range(1000, 1300)])
    print("\n" + result.summary())
    # measured: 95.7% within, median 2.4%, coverage 83%; the margins are for numpy's streams
    assert result.within_10 >= 0.93 * 300
    assert result.median_error <= 0.03
    assert 0.77 <= result.coverage <= 0.88


def test_a_reason_mix_the_control_does_not_share_costs_accuracy_not_honesty() -> None:
    result = score([make_world(seed, STRESS) for seed in range(2000, 2200)])
    print("\n" + result.summary())
    # measured: 88.5% within, median 2.7%, coverage 79%; the walk widens the ranges
    assert result.within_10 >= 0.86 * 200
    assert result.median_error <= 0.04
    assert result.coverage >= 0.75


if __name__ == "__main__":
    count = int(sys.argv[1]) if len(sys.argv) > 1 else WORLDS
    drift = float(sys.argv[2]) if len(sys.argv) > 2 else DRIFT
    began = time.perf_counter()
    print(score([make_world(seed, drift) for seed in range(count)]).summary())
    print(f"total {time.perf_counter() - began:.2f} s with the worlds' generation")
