"""Time `chargeback report --format csv` on a generated workspace.

Prints wall-clock seconds for the full command (a fresh process, as cron runs
it) and the ratio against a baseline measured in the same run: polars reading
the same contacts file and nothing else. The ratio travels between machines
better than the seconds do.

    python bench/bench_report.py --contacts 1000000            # Parquet, 30 rules
    python bench/bench_report.py --contacts 1000000 --csv      # the same data as CSV
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


def timed(fn: object, repeat: int) -> float:
    """Median wall-clock seconds of `repeat` calls."""
    runs = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()  # type: ignore[operator]
        runs.append(time.perf_counter() - start)
    return statistics.median(runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--csv", action="store_true", help="convert the contacts to CSV first")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--dir", type=Path, help="keep the workspace here (default: temp)")
    args = parser.parse_args()

    root = args.dir or Path(tempfile.mkdtemp(prefix="chargeback-bench-"))
    start = time.perf_counter()
    counts = generate_sample(root, contacts=args.contacts, seed=args.seed)
    print(f"generated {counts} in {time.perf_counter() - start:.1f} s at {root}")
    contacts = root / "sample_data" / "contacts.parquet"
    extra: list[str] = []
    if args.csv:
        frame = pl.read_parquet(contacts).with_columns(pl.col("tags").list.join("|"))
        csv_path = root / "sample_data" / "contacts.csv"
        frame.write_csv(csv_path)
        contacts = csv_path
        extra = ["--contacts", str(csv_path)]

    def baseline() -> None:
        if contacts.suffix == ".csv":
            pl.read_csv(contacts, infer_schema=False)
        else:
            pl.read_parquet(contacts)

    command = [
        sys.executable,
        "-m",
        "chargeback",
        "report",
        "--workspace",
        str(root),
        "--format",
        "csv",
        "--out",
        str(root / "out"),
        *extra,
    ]

    def report() -> None:
        subprocess.run(command, check=True, capture_output=True)

    base = timed(baseline, args.repeat)
    full = timed(report, args.repeat)
    rules = counts.get("rules", "?")
    print(f"{'what':<44}{'seconds':>10}{'ratio':>8}")
    print(f"{'baseline: polars reads ' + contacts.name:<44}{base:>10.2f}{1:>8.1f}")
    print(f"{f'report --format csv ({rules} rules)':<44}{full:>10.2f}{full / base:>8.1f}")


if __name__ == "__main__":
    main()
