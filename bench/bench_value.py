"""Time the CS-value metrics on a million contacts and three million orders.

Generates a sample workspace (`--contacts`, default 1,000,000), tops its orders
up to `--orders` (default 3,000,000) by repeating the generated ones with
shifted dates, then times `chargeback value --format json` as a fresh process
and prints the ratio against a baseline measured in the same run: polars
reading the same contacts and orders files and nothing else.

    python bench/bench_value.py
    python bench/bench_value.py --contacts 200000 --orders 600000
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import polars as pl

from chargeback.sample.generate import generate_sample


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=1_000_000)
    parser.add_argument("--orders", type=int, default=3_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--dir", type=Path, help="keep the workspace here (default: temp)")
    args = parser.parse_args()

    root = args.dir or Path(tempfile.mkdtemp(prefix="chargeback-bench-value-"))
    start = time.perf_counter()
    counts = generate_sample(root, contacts=args.contacts, seed=args.seed)
    orders_path = root / "sample_data" / "orders.parquet"
    orders = pl.read_parquet(orders_path)
    copies = [orders]
    shift = 1
    while sum(f.height for f in copies) < args.orders:
        copies.append(orders.with_columns(pl.col("ordered_at") - pl.duration(hours=shift)))
        shift += 1
    pl.concat(copies).head(args.orders).write_parquet(orders_path)
    print(
        f"generated {counts['contacts']:,} contacts and {args.orders:,} orders "
        f"in {time.perf_counter() - start:.1f} s at {root}"
    )
    contacts_path = root / "sample_data" / "contacts.parquet"

    def baseline() -> None:
        pl.read_parquet(contacts_path)
        pl.read_parquet(orders_path)

    def value() -> None:
        with tempfile.TemporaryDirectory() as out:
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "chargeback",
                    "value",
                    "--workspace",
                    str(root),
                    "--format",
                    "json",
                    "--out",
                    out,
                ],
                check=True,
                capture_output=True,
            )

    def timed(fn: object) -> float:
        runs = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            fn()  # type: ignore[operator]
            runs.append(time.perf_counter() - t0)
        return statistics.median(runs)

    base = timed(baseline)
    seconds = timed(value)
    print(f"baseline: polars reads contacts + orders   {base:6.2f} s")
    print(f"chargeback value --format json (all metrics) {seconds:6.2f} s   {seconds / base:5.1f}x")


if __name__ == "__main__":
    main()
