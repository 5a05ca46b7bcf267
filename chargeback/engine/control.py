"""A rule's counterfactual from a control series (SPEC 4b, `baseline: {method: control}`).

The flat baseline holds the old daily level; volume has seasons, holidays,
month-end peaks and shifts that no decision caused. Here a rule's daily count y
follows a control series C (contacts no decision touched) through a ratio fitted
on the months before the decision:

    log E[y_t] = log C_t + a + weekday(t)

a Poisson regression (IRLS in numpy, the weekday effects lightly ridge-penalised
so a weekday without contacts stays finite). On the window, E(t) = C(t) x the
fitted ratio and the excess is X = max(0, A - sum E). The range says how sure
that is: coefficient draws, a random walk on the log ratio calibrated on the fit
(`control_range.calibrate_walk`) and negative-binomial count noise.

Pure: numbers in, numbers out; no polars, no I/O. The engine builds the daily
series and the masks; the ledger turns X into weights.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np
from numpy.typing import NDArray

from chargeback.engine.control_range import (
    FloatArray,
    Walk,
    calibrate_walk,
    count_noise,
    draw_normal,
    horizons,
    percentile_pair,
    walk_paths,
)

MIN_FIT_DAYS = 56  # SPEC 4b: fewer usable fit days is a warning
LEVEL_MOVE = 0.30  # SPEC 4b: the control's level moving more than this is a warning
WIDE_RANGE = 0.50  # SPEC 4b: a range wider than +/- this of the central figure
_ITERATIONS = 100
_TOLERANCE = 1e-10


@dataclass(frozen=True)
class DailySeries:
    """One rule's (or cell's) daily counts and its control, over every day the data covers."""

    days: tuple[date, ...]  # ascending, no gaps
    matched: tuple[int, ...]  # contacts the rule's match picks up each day (window ignored)
    control: tuple[int, ...]  # contacts of the same days no decision touched

    def __post_init__(self) -> None:
        if not len(self.days) == len(self.matched) == len(self.control):
            raise ValueError("days, matched and control must have the same length")


@dataclass(frozen=True)
class ControlFit:
    """The fitted ratio of a rule's count to its control, and how sure it is.

    Coefficients are (a, Monday, ..., Sunday); the weekday effects sum to zero
    (the ridge makes that exact), so exp(a) is the ratio on an average weekday.
    `log_ratio` is -inf when the fit had no day or no matched contact: the
    expected count is then 0 (the warnings say why).
    """

    fit_days: int  # usable days in the fit
    log_ratio: float  # intercept a of log E[y] = log control + a + weekday effect
    weekday: tuple[float, ...]  # 7 effects, Monday first, summing to 0
    covariance: tuple[tuple[float, ...], ...]  # 8 x 8 of (a, weekdays), x dispersion
    dispersion: float  # Pearson over-dispersion of the fit (>= 1)
    walk_sd: float  # per-day step of a random walk on the log ratio
    warnings: tuple[str, ...]  # SPEC 4b: short fit, control level moved
    walk_end_var: float = 0.0  # variance of the fit end's log ratio around the fit's average
    noise_dispersion: float = 1.0  # count noise once the walk is taken out (>= 1)
    first_fit_day: int = -1  # index into series.days; -1 without a fit
    last_fit_day: int = -1
    level_moved: float = 0.0  # control's window level / fit level - 1, weekday-adjusted

    @property
    def ratio(self) -> float:
        """exp(a): contacts per control contact on an average weekday."""
        return math.exp(self.log_ratio) if math.isfinite(self.log_ratio) else 0.0


@dataclass(frozen=True)
class Excess:
    """A period's excess over the counterfactual and its range at the `interval` level."""

    actual: int  # A: matched contacts on the period's window days
    expected: float  # sum of E(t) over those days
    excess: float  # X = max(0, A - expected)
    low: float  # the range of X (low <= X <= high)
    high: float

    @property
    def wide(self) -> bool:
        """SPEC 4b's warning: the range reaches beyond +/-50% of the central figure."""
        return wide_range(self.excess, self.low, self.high)


def wide_range(central: float, low: float, high: float) -> bool:
    """A range wider than +/-50% of its central figure (any range around 0 is)."""
    if central <= 0:
        return high > 0
    return low < central * (1 - WIDE_RANGE) or high > central * (1 + WIDE_RANGE)


def weekdays(series: DailySeries) -> NDArray[np.int64]:
    """0 = Monday ... 6 = Sunday, for every day of the series."""
    return np.array([d.weekday() for d in series.days], dtype=np.int64)


def _design(dow: NDArray[np.int64]) -> FloatArray:
    """Columns: intercept, then Monday..Saturday effect-coded (Sunday = minus their sum)."""
    x = np.zeros((len(dow), 7))
    x[:, 0] = 1.0
    for k in range(6):
        x[:, k + 1] = (dow == k).astype(np.float64) - (dow == 6).astype(np.float64)
    return x


def _penalty(ridge: float) -> FloatArray:
    """The ridge's Hessian term: the objective adds ridge/2 x the sum of all seven
    squared weekday effects (a N(0, 1/ridge) prior on each; no day is the
    reference), written in the effect-coded parameters."""
    p = np.zeros((7, 7))
    p[1:, 1:] = ridge * (np.eye(6) + np.ones((6, 6)))
    return p


_EXPAND = np.vstack([np.eye(7), np.concatenate(([0.0], -np.ones(6)))])
# rows: a, Mon..Sat from the 7 parameters, then Sunday = -(Mon + ... + Sat)


def _irls(
    y: FloatArray, offset: FloatArray, x: FloatArray, penalty: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """Penalised Poisson regression by Newton/IRLS with step halving: (beta, Hessian)."""
    beta = np.zeros(x.shape[1])
    beta[0] = math.log(y.sum() / np.exp(offset).sum())

    def objective(b: FloatArray) -> float:
        eta = offset + x @ b
        return float(np.sum(np.exp(eta) - y * eta) + 0.5 * b @ penalty @ b)

    current = objective(beta)
    hessian = np.eye(x.shape[1])
    for _ in range(_ITERATIONS):
        mu = np.exp(offset + x @ beta)
        gradient = x.T @ (mu - y) + penalty @ beta
        hessian = (x.T * mu) @ x + penalty
        step = np.linalg.solve(hessian, gradient)
        scale = 1.0
        while True:
            trial = beta - scale * step
            value = objective(trial)
            if value <= current + 1e-12 * abs(current) or scale < 1e-6:
                break
            scale /= 2.0
        beta, current = trial, value
        if float(np.max(np.abs(scale * step))) < _TOLERANCE:
            break
    mu = np.exp(offset + x @ beta)
    return beta, (x.T * mu) @ x + penalty


def _level_moved(
    control: FloatArray, dow: NDArray[np.int64], fit: NDArray[np.bool_], window: Sequence[int]
) -> float:
    """The control's window level over its fit level, each weekday compared with itself."""
    days = np.array(sorted(set(window)), dtype=np.int64)
    if len(days) == 0 or not fit.any():
        return 0.0
    by_day = np.array(
        [control[fit & (dow == k)].mean() if (fit & (dow == k)).any() else np.nan for k in range(7)]
    )
    by_day = np.where(np.isnan(by_day), control[fit].mean(), by_day)
    predicted = float(by_day[dow[days]].sum())
    if predicted <= 0:
        return 0.0
    return float(control[days].sum()) / predicted - 1.0


def fit_control(
    series: DailySeries,
    fit_mask: Sequence[bool],
    ridge: float = 0.5,
    window: Sequence[int] | None = None,
) -> ControlFit:
    """Fit log E[y_t] = log C_t + a + weekday(t) on the days fit_mask keeps.

    Days with fit_mask False (outside the lookback, or inside any window of a rule
    sharing contacts) or C_t == 0 are left out. `ridge` penalises the weekday
    effects only (ridge/2 x their squares), so a weekday with no contacts stays
    finite and 28 days of each weekday are barely moved. `window` (indexes into
    series.days) is where the level-moved warning compares the control with the
    fit; by default every day after the last fit day.
    """
    n_days = len(series.days)
    if len(fit_mask) != n_days:
        raise ValueError("fit_mask must have one entry per day of the series")
    y_all = np.asarray(series.matched, dtype=np.float64)
    c_all = np.asarray(series.control, dtype=np.float64)
    dow = weekdays(series)
    use = np.asarray(fit_mask, dtype=np.bool_) & (c_all > 0)
    fit_days = int(use.sum())
    positions = np.flatnonzero(use)
    warnings: list[str] = []
    if fit_days < MIN_FIT_DAYS:
        warnings.append(
            f"only {fit_days} usable fit days (fewer than {MIN_FIT_DAYS}): the ratio is uncertain"
        )
    if window is None:
        window = range(int(positions[-1]) + 1, n_days) if fit_days else ()
    moved = _level_moved(c_all, dow, use, window)
    if abs(moved) > LEVEL_MOVE:
        warnings.append(
            f"the control series' level moved by {moved:+.0%} between the fit period and"
            " the window: the ratio may not carry over"
        )
    zero_cov = tuple(tuple(0.0 for _ in range(8)) for _ in range(8))
    if fit_days == 0 or y_all[use].sum() == 0:
        if fit_days:
            warnings.append("no matched contact on the usable fit days: the expected count is 0")
        return ControlFit(
            fit_days=fit_days,
            log_ratio=-math.inf,
            weekday=(0.0,) * 7,
            covariance=zero_cov,
            dispersion=1.0,
            walk_sd=0.0,
            warnings=tuple(warnings),
            first_fit_day=int(positions[0]) if fit_days else -1,
            last_fit_day=int(positions[-1]) if fit_days else -1,
            level_moved=moved,
        )
    y, offset, x = y_all[use], np.log(c_all[use]), _design(dow[use])
    beta, hessian = _irls(y, offset, x, _penalty(ridge))
    mu = np.exp(offset + x @ beta)
    n_params = x.shape[1]
    pearson = float(np.sum((y - mu) ** 2 / mu))
    dispersion = max(1.0, pearson / (fit_days - n_params)) if fit_days > n_params else 1.0
    cov7 = dispersion * np.linalg.inv(hessian)
    cov8 = _EXPAND @ cov7 @ _EXPAND.T
    coefs = _EXPAND @ beta
    walk: Walk = calibrate_walk(positions, y, mu)
    return ControlFit(
        fit_days=fit_days,
        log_ratio=float(coefs[0]),
        weekday=tuple(float(v) for v in coefs[1:]),
        covariance=tuple(tuple(float(v) for v in row) for row in cov8),
        dispersion=dispersion,
        walk_sd=walk.step_sd,
        warnings=tuple(warnings),
        walk_end_var=walk.end_var,
        noise_dispersion=walk.noise_dispersion,
        first_fit_day=int(positions[0]),
        last_fit_day=int(positions[-1]),
        level_moved=moved,
    )


def expected(series: DailySeries, fit: ControlFit) -> tuple[float, ...]:
    """E(t) = C(t) x fitted ratio, every day of the series (0 without a fit)."""
    if not math.isfinite(fit.log_ratio):
        return (0.0,) * len(series.days)
    c = np.asarray(series.control, dtype=np.float64)
    log_ratio = fit.log_ratio + np.asarray(fit.weekday)[weekdays(series)]
    return tuple(float(v) for v in c * np.exp(log_ratio))


def _simulated_means(
    series: DailySeries,
    fit: ControlFit,
    days: NDArray[np.int64],
    draws: int,
    rng: np.random.Generator,
) -> FloatArray:
    """draws x days: the counterfactual's daily mean under the fit's uncertainty.

    Each draw takes the ratio's intercept and weekday effects from their
    covariance, a level for the fit's last day around the fit's average (how far
    the calibrated walk may have taken it), and one random-walk path from there
    through the days after the fit (before it, walking back from its first day).
    """
    c = np.asarray(series.control, dtype=np.float64)
    steps = horizons(days, fit.first_fit_day, fit.last_fit_day)
    cov = np.asarray(fit.covariance, dtype=np.float64)
    coefs = draw_normal(rng, np.array([fit.log_ratio, *fit.weekday]), cov, draws)
    end = math.sqrt(fit.walk_end_var) * rng.standard_normal(draws)
    paths = walk_paths(rng, draws, int(steps.max(initial=0)), fit.walk_sd)
    outside = (days > fit.last_fit_day) | (days < fit.first_fit_day)
    dow = weekdays(series)[days]
    log_mu = (
        coefs[:, :1]
        + coefs[:, 1:][:, dow]
        + np.where(outside[None, :], end[:, None], 0.0)
        + paths[:, steps]
    )
    return np.asarray(c[days][None, :] * np.exp(log_mu), dtype=np.float64)


def _rng(seed: int) -> np.random.Generator:
    """A generator from any int (a hash may be negative or wider than 64 bits)."""
    return np.random.default_rng(seed & 0xFFFF_FFFF_FFFF_FFFF)


def simulate_excess(
    series: DailySeries,
    fit: ControlFit,
    window_days: Mapping[str, Sequence[int]],
    draws: int = 200,
    seed: int = 0,
) -> tuple[tuple[str, ...], FloatArray]:
    """Simulated X per period: (periods, draws x periods), for ranges of any sum of them.

    One draw is one counterfactual for all the periods together (the same ratio
    and walk path), so the range of a decision's total, or of a share of X, can be
    read from the columns' sums. Count noise is negative binomial on each period's
    expected total; X = max(0, A - simulated background).
    """
    periods = tuple(sorted(window_days))
    y = np.asarray(series.matched, dtype=np.float64)
    members = [sorted(set(window_days[p])) for p in periods]
    actual = np.array([y[m].sum() for m in members], dtype=np.float64)
    if not math.isfinite(fit.log_ratio) or not periods:
        return periods, np.tile(actual, (draws, 1))
    rng = _rng(seed)
    all_days = np.array(sorted({i for m in members for i in m}), dtype=np.int64)
    mu = _simulated_means(series, fit, all_days, draws, rng)
    column = {int(d): k for k, d in enumerate(all_days)}
    sums = np.stack([mu[:, [column[i] for i in m]].sum(axis=1) for m in members], axis=1)
    background = count_noise(rng, sums, fit.noise_dispersion)
    return periods, np.maximum(actual[None, :] - background, 0.0)


def daily_band(
    series: DailySeries,
    fit: ControlFit,
    days: Sequence[int],
    level: float = 0.8,
    draws: int = 200,
    seed: int = 0,
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Low and high of each day's count without the decision, for the chart's band.

    The same draws as the range, with each day's own count noise: where the
    actual daily count would have fallen `level` of the time had nothing
    happened. Without a fit the band is 0.
    """
    index = np.asarray(days, dtype=np.int64)
    if not math.isfinite(fit.log_ratio) or len(index) == 0:
        return (0.0,) * len(index), (0.0,) * len(index)
    rng = _rng(seed)
    counts = count_noise(
        rng, _simulated_means(series, fit, index, draws, rng), fit.noise_dispersion
    )
    low, high = percentile_pair(counts, level)
    return tuple(float(v) for v in low), tuple(float(v) for v in high)


def excess_by_period(
    series: DailySeries,
    fit: ControlFit,
    window_days: Mapping[str, Sequence[int]],
    level: float = 0.8,
    draws: int = 200,
    seed: int = 0,
) -> dict[str, Excess]:
    """X per period ('YYYY-MM' -> window day indexes) and its range at `level`.

    Deterministic for a given seed (the caller passes a hash of the inputs). The
    range is widened to hold the central X, so a bill never prints a central
    figure outside its own range.
    """
    if not 0.0 < level < 1.0:
        raise ValueError("level must be between 0 and 1")
    e = np.asarray(expected(series, fit), dtype=np.float64)
    y = np.asarray(series.matched, dtype=np.int64)
    periods, simulated = simulate_excess(series, fit, window_days, draws, seed)
    low, high = percentile_pair(simulated, level)
    out: dict[str, Excess] = {}
    for k, p in enumerate(periods):
        days = sorted(set(window_days[p]))
        actual = int(y[days].sum())
        exp_sum = float(e[days].sum())
        x = max(0.0, actual - exp_sum)
        out[p] = Excess(actual, exp_sum, x, min(float(low[k]), x), max(float(high[k]), x))
    return out
