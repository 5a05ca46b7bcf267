"""The statistics behind a control baseline's range, on plain numpy arrays.

`control.py` fits the ratio of a rule's daily count to its control series; this
module holds the two pieces that turn that fit into an honest range:

- `calibrate_walk`: how far the log ratio drifts from day to day. A local-level
  model (random walk plus count noise) is fitted by maximum likelihood to the
  fit period's relative residuals with a Kalman filter. Its step sd says how much
  less we know about the ratio the further the window lies from the fit.
- `simulate_background`: draws of the contacts the window would have had without
  the decision (coefficient draws, a walk path, negative-binomial count noise),
  summed per period, from which `control.excess_by_period` reads percentiles.

No polars and no I/O here, and nothing from `control.py` (it imports us).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]

# Candidate ratios q = walk variance / count-noise dispersion (per day). 0 is "no
# walk"; the rest span steps far too small to matter up to ~10% a day.
_Q_GRID = np.concatenate(([0.0], np.logspace(-8.0, -2.0, 49)))


@dataclass(frozen=True)
class Walk:
    """A random walk on the log ratio, calibrated on the fit period."""

    step_sd: float  # per-day sd of the walk's step
    end_var: float  # variance of the level at the fit's last day around the fit's average
    noise_dispersion: float  # count noise left once the walk is taken out (>= 1)


def calibrate_walk(
    positions: Sequence[int] | NDArray[np.int64],
    observed: FloatArray,
    fitted: FloatArray,
) -> Walk:
    """Fit a local-level model to y/mu - 1 on the fit days, by profile likelihood.

    The observation variance of day t is phi / mu_t (count noise with dispersion
    phi) and the level walks with variance q * phi per day; phi is profiled out
    analytically, q by a grid (vectorised: one pass over the days). The level is
    diffuse at the start. `positions` are day indexes (gaps between fit days add
    walk steps).

    The ratio itself stays the regression's (the fit period's average): on our
    worlds moving it to the walk's last level cost more accuracy where there was
    no drift than it gained where there was. What the walk changes is the range:
    the window's ratio may sit away from that average by the walk from the
    average to the fit's end (`end_var`) plus the walk after it.
    """
    pos = np.asarray(positions, dtype=np.int64)
    mu = np.asarray(fitted, dtype=np.float64)
    ok = mu > 0
    pos, mu, y = pos[ok], mu[ok], np.asarray(observed, dtype=np.float64)[ok]
    n = len(pos)
    if n < 3:
        return Walk(0.0, 0.0, 1.0)
    z = y / mu - 1.0
    r = 1.0 / mu  # observation variance per unit of dispersion
    q = _Q_GRID
    level = np.full(q.shape, z[0])
    var = np.full(q.shape, r[0])
    log_f = np.zeros(q.shape)
    scaled = np.zeros(q.shape)
    for t in range(1, n):
        gap = float(pos[t] - pos[t - 1])
        prior = var + gap * q
        f = prior + r[t]
        v = z[t] - level
        log_f += np.log(f)
        scaled += v * v / f
        gain = prior / f
        level = level + gain * v
        var = prior * (1.0 - gain)
    phi = scaled / (n - 1)
    loglik = -0.5 * log_f - 0.5 * (n - 1) * np.log(np.maximum(phi, 1e-300))
    best = int(np.argmax(loglik))
    dispersion = float(phi[best])
    step_var = float(q[best] * dispersion)
    return Walk(
        step_sd=float(np.sqrt(step_var)),
        end_var=step_var * _end_spread(pos, mu),
        noise_dispersion=max(1.0, dispersion),
    )


def _end_spread(positions: NDArray[np.int64], weights: FloatArray) -> float:
    """Var(level at the last day - weighted average level) per unit of step variance.

    With u_s = days from fit day s to the last one and w the regression's weights
    (its fitted counts, normalised), that is sum over s, s' of w_s w_s' min(u_s, u_s').
    Sorted by u, it is one cumulative sum: O(n log n).
    """
    w = weights / weights.sum()
    u = (positions[-1] - positions).astype(np.float64)
    order = np.argsort(u)
    u, w = u[order], w[order]
    tail = np.cumsum(w[::-1])[::-1]  # weight of the days at least as far as each one
    # pairs (s, s') with min(u_s, u_s') = u_k: 2 w_k x (weight farther) + w_k^2
    farther = tail - w
    return float(np.sum(u * (2.0 * w * farther + w * w)))


def horizons(days: NDArray[np.int64], first_fit: int, last_fit: int) -> NDArray[np.int64]:
    """Days of walk between the fit and each day (0 inside the fit's span)."""
    after = np.maximum(days - last_fit, 0)
    before = np.maximum(first_fit - days, 0)
    return np.asarray(after + before, dtype=np.int64)


def walk_paths(rng: np.random.Generator, draws: int, steps: int, step_sd: float) -> FloatArray:
    """draws x (steps + 1) random-walk paths from 0 (column h = after h days)."""
    paths = np.zeros((draws, steps + 1))
    if steps > 0 and step_sd > 0:
        paths[:, 1:] = np.cumsum(rng.normal(0.0, step_sd, size=(draws, steps)), axis=1)
    return paths


def count_noise(rng: np.random.Generator, means: FloatArray, dispersion: float) -> FloatArray:
    """Negative-binomial counts with the given means and variance dispersion x mean.

    A sum of independent NB counts sharing one dispersion is NB again, so a
    period's total is drawn in one go from its summed mean (gamma-Poisson mixture;
    Poisson when the dispersion is 1).
    """
    means = np.maximum(means, 0.0)
    if dispersion <= 1.0 + 1e-9:
        return rng.poisson(means).astype(np.float64)
    extra = dispersion - 1.0
    rates = rng.gamma(means / extra) * extra
    return rng.poisson(rates).astype(np.float64)


def draw_normal(
    rng: np.random.Generator, mean: FloatArray, cov: FloatArray, draws: int
) -> FloatArray:
    """Draws from N(mean, cov) for a positive semi-definite (maybe singular) cov.

    Through the symmetric square root V sqrt(L) V' of the eigen-decomposition, so a
    sum-to-zero weekday block (rank 6 of 7) draws cleanly, and the same seed gives
    the same numbers on every machine: LAPACK builds may return an eigenvector or
    its negative (OpenBLAS's kernels for one CPU disagreed), or any basis of a
    repeated eigenvalue's space, and V sqrt(L) V' is the same whichever they return.
    """
    values, vectors = np.linalg.eigh(cov)
    root = (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T
    noise = rng.standard_normal(size=(draws, len(mean)))
    return np.asarray(mean[None, :] + noise @ root.T, dtype=np.float64)


def percentile_pair(samples: FloatArray, level: float) -> tuple[FloatArray, FloatArray]:
    """The (1 - level)/2 and (1 + level)/2 quantiles of each column."""
    low = np.quantile(samples, (1.0 - level) / 2.0, axis=0)
    high = np.quantile(samples, (1.0 + level) / 2.0, axis=0)
    return np.asarray(low, dtype=np.float64), np.asarray(high, dtype=np.float64)
