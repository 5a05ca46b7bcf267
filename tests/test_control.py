"""The control baseline's statistics (SPEC 4b) on small worlds we can reason about.

The fit must give back a ratio and a weekday pattern we put in, leave out the
days it is told to, say when it stands on too few days or on a control that
moved, and its range must be deterministic and never negative. The accuracy
against injected truth is in test_control_truth.py.
"""

from __future__ import annotations

import math
from datetime import date, timedelta

import numpy as np
import pytest

from chargeback.engine.control import (
    ControlFit,
    DailySeries,
    Excess,
    daily_band,
    excess_by_period,
    expected,
    fit_control,
    simulate_excess,
    wide_range,
)
from chargeback.engine.control_range import _end_spread, calibrate_walk, count_noise, draw_normal

START = date(2025, 1, 6)  # a Monday


def _series(matched: list[int], control: list[int], start: date = START) -> DailySeries:
    days = tuple(start + timedelta(days=k) for k in range(len(matched)))
    return DailySeries(days, tuple(matched), tuple(control))


def _exact_world(n: int, ratio: float, pattern: list[float] | None = None) -> DailySeries:
    """Control 1000 a day and matched exactly ratio x pattern x control (no noise)."""
    pattern = pattern or [1.0] * 7
    control = [1000] * n
    matched = [round(ratio * pattern[k % 7] * 1000) for k in range(n)]
    return _series(matched, control)


def _month_windows(series: DailySeries, first: int) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for i in range(first, len(series.days)):
        out.setdefault(series.days[i].strftime("%Y-%m"), []).append(i)
    return out


def test_a_constant_ratio_without_noise_is_recovered() -> None:
    series = _exact_world(140, 0.05)
    fit = fit_control(series, [True] * 112 + [False] * 28)
    assert fit.fit_days == 112
    assert fit.ratio == pytest.approx(0.05, rel=1e-9)
    assert all(abs(w) < 1e-9 for w in fit.weekday)
    assert fit.dispersion == 1.0
    assert fit.walk_sd == pytest.approx(0.0, abs=1e-6)
    assert fit.warnings == ()
    assert expected(series, fit)[130] == pytest.approx(50.0, rel=1e-9)
    result = excess_by_period(series, fit, {"2025-05": list(range(112, 140))})
    assert result["2025-05"].excess == pytest.approx(0.0, abs=1e-6)


def test_a_weekday_pattern_is_recovered_and_sums_to_zero() -> None:
    pattern = [1.4, 1.2, 1.0, 1.0, 1.1, 0.6, 0.5]
    series = _exact_world(182, 0.04, pattern)
    fit = fit_control(series, [True] * 182)
    logs = np.log(pattern)
    assert sum(fit.weekday) == pytest.approx(0.0, abs=1e-9)
    # the ridge pulls the effects a hair towards 0; counts of ~40 a day make it tiny
    for got, want in zip(fit.weekday, logs - logs.mean(), strict=True):
        assert got == pytest.approx(want, abs=2e-3)
    assert fit.log_ratio == pytest.approx(math.log(0.04) + logs.mean(), abs=2e-3)
    e = expected(series, fit)
    for k in range(7):
        assert e[k] == pytest.approx(40 * pattern[k], rel=1e-2)


def test_a_weekday_with_no_contacts_stays_finite() -> None:
    series = _exact_world(112, 0.05, [1, 1, 1, 1, 1, 1, 0])
    fit = fit_control(series, [True] * 112)
    assert all(math.isfinite(w) for w in fit.weekday)
    assert expected(series, fit)[6] < 1.0  # a Sunday


def test_fit_mask_leaves_days_out() -> None:
    # days 60..89 carry a decision's extra contacts; masked, they do not move the ratio
    series = _exact_world(150, 0.05)
    matched = list(series.matched)
    for i in range(60, 90):
        matched[i] += 40
    series = DailySeries(series.days, tuple(matched), series.control)
    mask = [i < 120 and not 60 <= i < 90 for i in range(150)]
    fit = fit_control(series, mask)
    assert fit.fit_days == 90
    assert fit.ratio == pytest.approx(0.05, rel=1e-9)
    unmasked = fit_control(series, [i < 120 for i in range(150)])
    assert unmasked.ratio > 0.055


def test_days_without_control_are_skipped() -> None:
    series = _exact_world(120, 0.05)
    control = list(series.control)
    matched = list(series.matched)
    for i in range(0, 120, 10):
        control[i] = 0
        matched[i] = 500  # would wreck the ratio if it were used
    series = DailySeries(series.days, tuple(matched), tuple(control))
    fit = fit_control(series, [True] * 100 + [False] * 20)
    assert fit.fit_days == 90
    assert fit.ratio == pytest.approx(0.05, rel=1e-9)
    assert expected(series, fit)[110] == 0.0


def test_fewer_than_56_usable_days_is_a_warning() -> None:
    series = _exact_world(100, 0.05)
    short = fit_control(series, [i < 55 for i in range(100)])
    assert short.fit_days == 55
    assert any("55 usable fit days" in w for w in short.warnings)
    enough = fit_control(series, [i < 56 for i in range(100)])
    assert enough.warnings == ()


def test_a_control_that_moved_40_percent_is_a_warning() -> None:
    n = 150
    control = [1000] * 120 + [1400] * 30
    matched = [50] * 120 + [70] * 30
    series = _series(matched, control)
    fit = fit_control(series, [True] * 120 + [False] * 30)
    assert fit.level_moved == pytest.approx(0.40)
    assert any("moved by +40%" in w for w in fit.warnings)
    # the ratio held, so the counterfactual follows the control: no excess
    result = excess_by_period(series, fit, _month_windows(series, 120))
    assert sum(x.excess for x in result.values()) == pytest.approx(0.0, abs=1e-6)
    # a move of 20% is not worth a warning; an explicit window is compared instead
    calm = fit_control(series, [True] * 120 + [False] * 30, window=range(100, 120))
    assert calm.level_moved == pytest.approx(0.0)
    assert calm.warnings == ()
    assert n == len(series.days)


def test_no_usable_day_or_no_matched_contact_expects_nothing() -> None:
    series = _series([0] * 60 + [5] * 10, [100] * 70)
    fit = fit_control(series, [True] * 60 + [False] * 10)
    assert fit.log_ratio == -math.inf and fit.ratio == 0.0
    assert any("no matched contact" in w for w in fit.warnings)
    result = excess_by_period(series, fit, {"2025-03": list(range(60, 70))})["2025-03"]
    assert (result.actual, result.expected, result.excess) == (50, 0.0, 50.0)
    assert result.low == result.high == 50.0
    empty = fit_control(series, [False] * 70)
    assert empty.fit_days == 0 and any("0 usable fit days" in w for w in empty.warnings)


def _noisy_world(seed: int, n: int = 240, effect: float = 30.0) -> tuple[DailySeries, int]:
    """Poisson counts around ratio 0.04 of a ~2000 a day control; extra contacts after 182."""
    rng = np.random.default_rng(seed)
    control = rng.poisson(2000, n)
    base = rng.poisson(0.04 * control)
    extra = np.where(np.arange(n) >= 182, rng.poisson(effect, n), 0)
    return _series([int(v) for v in base + extra], [int(v) for v in control]), 182


def test_the_range_is_deterministic_for_a_seed_and_moves_with_it() -> None:
    series, first = _noisy_world(1)
    fit = fit_control(series, [i < first for i in range(len(series.days))])
    windows = _month_windows(series, first)
    once = excess_by_period(series, fit, windows, seed=7)
    again = excess_by_period(series, fit, windows, seed=7)
    assert once == again
    other = excess_by_period(series, fit, windows, seed=8)
    assert [x.excess for x in other.values()] == [x.excess for x in once.values()]
    assert [x.low for x in other.values()] != [x.low for x in once.values()]
    assert fit_control(series, [i < first for i in range(len(series.days))]) == fit


def test_the_excess_is_never_negative_and_the_range_holds_it() -> None:
    for seed in range(5):
        series, first = _noisy_world(seed, effect=0.0)  # no effect: A - E is around 0
        fit = fit_control(series, [i < first for i in range(len(series.days))])
        for x in excess_by_period(series, fit, _month_windows(series, first), seed=seed).values():
            assert x.excess >= 0 and x.low >= 0
            assert x.low <= x.excess <= x.high
            assert x.excess == max(0.0, x.actual - x.expected)
    _, simulated = simulate_excess(series, fit, _month_windows(series, first))
    assert (simulated >= 0).all()


def test_an_effect_is_found_with_a_sensible_range() -> None:
    series, first = _noisy_world(3, effect=30.0)
    fit = fit_control(series, [i < first for i in range(len(series.days))])
    assert fit.ratio == pytest.approx(0.04, rel=0.02)
    assert 1.0 <= fit.dispersion < 1.4
    result = excess_by_period(series, fit, _month_windows(series, first))
    total = sum(x.excess for x in result.values())
    assert total == pytest.approx(30.0 * (len(series.days) - first), rel=0.15)
    for x in result.values():
        assert x.low < x.excess < x.high
        assert x.high - x.low < x.excess  # 80% range: about +/-2 sd of a Poisson sum


def test_period_day_lists_may_repeat_or_be_unordered() -> None:
    series, first = _noisy_world(4)
    fit = fit_control(series, [i < first for i in range(len(series.days))])
    days = list(range(first, first + 20))
    plain = excess_by_period(series, fit, {"p": days})
    shuffled = excess_by_period(series, fit, {"p": days[::-1] + days[:5]})
    assert plain == shuffled


def test_the_walk_is_found_when_the_ratio_drifts_and_not_when_it_holds() -> None:
    rng = np.random.default_rng(11)
    n = 182
    mu = np.full(n, 200.0)
    steady = calibrate_walk(np.arange(n), rng.poisson(mu).astype(float), mu)
    assert steady.step_sd < 0.004
    drift = np.cumsum(rng.normal(0, 0.02, n))
    drifting = rng.poisson(mu * np.exp(drift)).astype(float)
    walk = calibrate_walk(np.arange(n), drifting, mu)
    assert 0.01 < walk.step_sd < 0.04
    # a walk over 182 days puts its end about n/3 steps' variance from its average
    assert walk.end_var == pytest.approx(walk.step_sd**2 * n / 3, rel=0.05)
    assert steady.end_var < 0.004**2 * n / 3


def test_the_walk_spread_at_the_fit_end_matches_the_pairwise_sum() -> None:
    rng = np.random.default_rng(2)
    positions = np.sort(rng.choice(200, 60, replace=False))
    weights = rng.uniform(1, 5, 60)
    w = weights / weights.sum()
    u = positions[-1] - positions
    brute = float(np.sum(np.outer(w, w) * np.minimum.outer(u, u)))
    assert _end_spread(positions, weights) == pytest.approx(brute, rel=1e-12)


def test_negative_binomial_noise_has_the_asked_dispersion() -> None:
    rng = np.random.default_rng(5)
    draws = count_noise(rng, np.full(200_000, 50.0), 2.0)
    assert draws.mean() == pytest.approx(50.0, rel=0.01)
    assert draws.var() == pytest.approx(100.0, rel=0.03)
    assert count_noise(rng, np.zeros(3), 2.0).tolist() == [0.0, 0.0, 0.0]


def test_wide_range_is_plus_or_minus_half() -> None:
    assert not wide_range(100.0, 50.0, 150.0)
    assert wide_range(100.0, 49.0, 120.0)
    assert wide_range(100.0, 60.0, 151.0)
    assert wide_range(0.0, 0.0, 3.0) and not wide_range(0.0, 0.0, 0.0)


def test_series_lengths_must_agree() -> None:
    with pytest.raises(ValueError):
        DailySeries((START,), (1, 2), (3,))
    with pytest.raises(ValueError):
        fit_control(_exact_world(10, 0.1), [True] * 9)


def test_fit_is_a_plain_frozen_value() -> None:
    fit = fit_control(_exact_world(70, 0.1), [True] * 70)
    assert isinstance(fit, ControlFit)
    assert len(fit.covariance) == 8 and all(len(row) == 8 for row in fit.covariance)
    cov = np.asarray(fit.covariance)
    assert np.allclose(cov, cov.T)
    assert np.all(np.linalg.eigvalsh(cov) > -1e-12)


def test_an_empty_period_has_nothing_to_charge() -> None:
    series, first = _noisy_world(6)
    fit = fit_control(series, [i < first for i in range(len(series.days))])
    result = excess_by_period(series, fit, {"empty": [], "one": [first]})
    assert result["empty"] == Excess(0, 0.0, 0.0, 0.0, 0.0)
    assert result["one"].actual == series.matched[first]


def test_the_chart_band_holds_most_days_without_an_effect() -> None:
    series, first = _noisy_world(8, effect=0.0)
    fit = fit_control(series, [i < first for i in range(len(series.days))])
    days = list(range(first, len(series.days)))
    low, high = daily_band(series, fit, days, level=0.8, seed=3)
    assert (low, high) == daily_band(series, fit, days, level=0.8, seed=3)
    e = expected(series, fit)
    inside = [lo <= series.matched[d] <= hi for d, lo, hi in zip(days, low, high, strict=True)]
    assert 0.7 <= sum(inside) / len(days) <= 0.95
    assert all(lo <= e[d] <= hi for d, lo, hi in zip(days, low, high, strict=True))


def test_a_drifting_ratio_widens_the_range_with_distance_from_the_fit() -> None:
    rng = np.random.default_rng(21)
    n, first = 182 + 150, 182
    control = rng.poisson(3000, n)
    walk = np.cumsum(rng.normal(0, 0.01, n))
    series = _series(
        [int(v) for v in rng.poisson(0.03 * control * np.exp(walk))], [int(v) for v in control]
    )
    fit = fit_control(series, [i < first for i in range(n)])
    assert fit.walk_sd > 0.005 and fit.walk_end_var > 0
    steady = fit_control(_noisy_world(21, n)[0], [i < first for i in range(n)])
    assert fit.walk_sd > 5 * steady.walk_sd
    e = expected(series, fit)

    def width(days: list[int]) -> float:
        low, high = daily_band(series, fit, days, draws=400)
        return sum(h - lo for lo, h in zip(low, high, strict=True)) / sum(e[d] for d in days)

    # each day's own count noise is in both; the walk adds its spread only far out
    assert width(list(range(n - 14, n))) > 1.3 * width(list(range(first, first + 14)))


def test_the_draws_do_not_follow_lapacks_eigenvector_signs(monkeypatch: pytest.MonkeyPatch) -> None:
    """LAPACK builds (OpenBLAS's kernels for one CPU) returned some eigenvectors negated:
    the same seed must still draw the same numbers, or a range moves between machines."""
    rng = np.random.default_rng(4)
    weekday = rng.normal(size=(7, 7))
    block = weekday @ weekday.T
    centre = np.eye(7) - 1.0 / 7  # a sum-to-zero block: rank 6 of 7, as the fit's
    cov = np.zeros((8, 8))
    cov[0, 0], cov[1:, 1:] = 0.5, centre @ block @ centre
    mean = rng.normal(size=8)
    plain = draw_normal(np.random.default_rng(9), mean, cov, 64)
    real = np.linalg.eigh

    def negated(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        values, vectors = real(a)
        return values, vectors * np.array([1.0, -1.0] * 4)

    monkeypatch.setattr(np.linalg, "eigh", negated)
    assert np.allclose(draw_normal(np.random.default_rng(9), mean, cov, 64), plain, atol=1e-12)


def test_the_draws_do_not_follow_lapacks_basis_of_a_repeated_eigenvalue(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A perfectly balanced fit repeats an eigenvalue: any basis of its space is LAPACK's
    to return, and the draws must not depend on which."""
    cov = np.diag([0.5, 2.0, 2.0, 2.0, 1.0, 1.0, 1.0, 0.0])
    mean = np.zeros(8)
    plain = draw_normal(np.random.default_rng(9), mean, cov, 64)
    real = np.linalg.eigh

    def rotated(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        values, vectors = real(a)
        i, j = np.flatnonzero(values == 2.0)[:2]
        c, s = np.cos(0.7), np.sin(0.7)
        turn = np.eye(8)  # another orthonormal basis of eigenvalue 2's space
        turn[[i, i, j, j], [i, j, i, j]] = [c, -s, s, c]
        return values, vectors @ turn

    monkeypatch.setattr(np.linalg, "eigh", rotated)
    assert np.allclose(draw_normal(np.random.default_rng(9), mean, cov, 64), plain, atol=1e-12)
