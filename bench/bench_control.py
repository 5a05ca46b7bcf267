"""Time the control baseline's statistics alone: fit, excess with its range, chart band.

Issue 11 allows the control fit at most 20% on top of `report --format csv` at
1M contacts and 30 rules; this measures the part that is ours (numpy on daily
counts), so the engine's share can be read beside it. Each rule gets `--days`
days of Poisson counts, a 182-day fit and a window of `--window` days.

    python bench/bench_control.py
    python bench/bench_control.py --rules 30 --days 1095 --window 365
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import date, timedelta

import numpy as np

from chargeback.engine.control import DailySeries, daily_band, excess_by_period, fit_control


def _series(rng: np.random.Generator, days: int) -> DailySeries:
    control = rng.poisson(3000, days)
    matched = rng.poisson(0.02 * control)
    first = date(2024, 1, 1)
    return DailySeries(
        tuple(first + timedelta(days=k) for k in range(days)),
        tuple(int(v) for v in matched),
        tuple(int(v) for v in control),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rules", type=int, default=30)
    parser.add_argument("--days", type=int, default=548)
    parser.add_argument("--window", type=int, default=120)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    rng = np.random.default_rng(1)
    start = args.days - args.window
    all_series = [_series(rng, args.days) for _ in range(args.rules)]
    mask = [start - 182 <= k < start for k in range(args.days)]
    window = list(range(start, args.days))
    timings: dict[str, list[float]] = {"fit": [], "excess": [], "band": []}
    for _ in range(args.repeat):
        for name in timings:
            timings[name].append(0.0)
        for n, series in enumerate(all_series):
            months: dict[str, list[int]] = {}
            for k in window:
                months.setdefault(series.days[k].strftime("%Y-%m"), []).append(k)
            began = time.perf_counter()
            fit = fit_control(series, mask, window=window)
            timings["fit"][-1] += time.perf_counter() - began
            began = time.perf_counter()
            excess_by_period(series, fit, months, seed=n)
            timings["excess"][-1] += time.perf_counter() - began
            began = time.perf_counter()
            daily_band(series, fit, window, seed=n)
            timings["band"][-1] += time.perf_counter() - began
    total = sum(statistics.median(v) for v in timings.values())
    parts = ", ".join(f"{k} {statistics.median(v) * 1000:.0f} ms" for k, v in timings.items())
    print(f"{args.rules} rules, {args.days} days, {args.window}-day windows: {parts};")
    print(f"total {total * 1000:.0f} ms ({total / args.rules * 1000:.1f} ms a rule)")


if __name__ == "__main__":
    main()
