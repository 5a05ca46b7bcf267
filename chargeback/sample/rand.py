"""The sample generator's randomness: hash-based draws as polars expressions.

Every draw is a SplitMix64 hash of (seed, stream, column, row) instead of a
random-number generator's state, so a column can be computed for a whole
stream at once (vectorised), any row can be recomputed on its own, and the
bytes do not depend on the polars version's own hash or on the order in
which streams are drawn. Labels are drawn by inverse CDF (`search_sorted` on
cumulative weights), so a mix's shares are exact knobs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import polars as pl

Weights = Mapping[str | None, float]  # label -> relative weight (None = null value)

_MASK = (1 << 64) - 1
_GAMMA = 0x9E3779B97F4A7C15
_M1 = 0xBF58476D1CE4E5B9
_M2 = 0x94D049BB133111EB


def _mix_int(x: int) -> int:
    """SplitMix64's finaliser on a Python int (for salts)."""
    x &= _MASK
    x = ((x ^ (x >> 30)) * _M1) & _MASK
    x = ((x ^ (x >> 27)) * _M2) & _MASK
    return x ^ (x >> 31)


def _u64(value: int) -> pl.Expr:
    return pl.lit(value, dtype=pl.UInt64)


def _mix(x: pl.Expr) -> pl.Expr:
    """The same finaliser as a polars expression (UInt64 arithmetic wraps)."""
    x = (x ^ (x // _u64(1 << 30))) * _u64(_M1)
    x = (x ^ (x // _u64(1 << 27))) * _u64(_M2)
    return x ^ (x // _u64(1 << 31))


def salt(seed: int, stream: int, column: int) -> int:
    """A distinct, well-mixed constant for every (seed, stream, column)."""
    return _mix_int(_mix_int(_mix_int(seed) ^ (stream << 20)) ^ column)


def uniform(key: pl.Expr, seed_salt: int) -> pl.Expr:
    """A uniform draw in (0, 1), never 0 (logs are taken), from a UInt64 row key."""
    bits = _mix(key * _u64(_GAMMA) + _u64(seed_salt))
    return ((bits // _u64(1 << 11)).cast(pl.Float64) + 0.5) * 2.0**-53


def _breaks(weights: Sequence[float]) -> pl.Series:
    """Cumulative weights for `search_sorted(u, side="right")`: index i with probability w_i.

    Past the last positive weight the breaks are 2.0, so float rounding can
    never pick a trailing zero-weight entry.
    """
    total = sum(weights)
    last = max(i for i, w in enumerate(weights) if w > 0)
    out: list[float] = []
    acc = 0.0
    for i, w in enumerate(weights[:-1]):
        acc += w
        out.append(acc / total if i < last else 2.0)
    return pl.Series(out, dtype=pl.Float64)


def pick_index(u: pl.Expr, weights: Sequence[float]) -> pl.Expr:
    """An index into `weights`, drawn in proportion to them."""
    return pl.lit(_breaks(weights)).search_sorted(u, side="right").cast(pl.Int64)


def pick(u: pl.Expr, weights: Weights) -> pl.Expr:
    """A label drawn with the given weights (a None label gives null)."""
    labels = pl.Series(list(weights), dtype=pl.String)
    return pl.lit(labels).gather(pick_index(u, list(weights.values())))


def pick_tags(u: pl.Expr, weights: Weights) -> pl.Expr:
    """A list of tags; the label "a|b" is the list [a, b], "" the empty list."""
    lists = [[t for t in (label or "").split("|") if t] for label in weights]
    values = pl.Series(lists, dtype=pl.List(pl.String))
    return pl.lit(values).gather(pick_index(u, list(weights.values())))


def normal_pair(u1: pl.Expr, u2: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
    """Two independent standard normals (Box-Muller)."""
    radius = (u1.log() * -2.0).sqrt()
    angle = u2 * (2.0 * math.pi)
    return radius * angle.cos(), radius * angle.sin()


def allocate(total: int, weights: Sequence[float]) -> list[int]:
    """Split `total` in proportion to weights, exactly (largest remainder)."""
    whole = sum(weights)
    quotas = [total * w / whole for w in weights]
    counts = [math.floor(q) for q in quotas]
    order = sorted(range(len(weights)), key=lambda i: (-(quotas[i] - counts[i]), i))
    for i in order[: total - sum(counts)]:
        counts[i] += 1
    return counts
