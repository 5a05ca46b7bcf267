"""Time `chargeback report --format csv` on the generated sample workspace, per engine.

The sample (`chargeback sample DIR --contacts N`) is shaped unlike bench_engines.py's
workspaces: 40 rules of which two fit control baselines (SPEC 4b), customer ids and
revenue beside the rules' columns, one Parquet file. Each command runs as a whole,
fresh process, in rounds (bench_engines.timed_rounds), against the floor measured in
the same rounds: a bare polars read of the contacts' columns. Prints the median wall
time, the peak memory and the ratio to the floor with its range over the rounds, and
checks that the engines' ledgers agree.

    python bench/bench_report.py --contacts 1000000                 # polars and DuckDB
    python bench/bench_report.py --contacts 3000000 --repeat 5
    python bench/bench_report.py --contacts 1000000 --csv --engines polars

The workspace is kept under /tmp/bench-engines/sample-<N>-s<seed> and reused.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
from bench_engines import (
    ROOT,
    agree,
    byte_compile,
    ledger_rows,
    paired,
    report_command,
    size,
    timed_rounds,
)


def workspace(n: int, seed: int, as_csv: bool) -> tuple[Path, Path]:
    """The sample workspace of `n` contacts (made once), and its contacts file."""
    root = ROOT / f"sample-{n}-s{seed}"
    contacts = root / "sample_data" / "contacts.parquet"
    # made by child processes: a child's peak memory counts its parent's at the fork,
    # so this process stays as small as it starts
    if not contacts.is_file():
        start = time.perf_counter()
        make = ["sample", str(root), "--contacts", str(n), "--seed", str(seed)]
        subprocess.run([sys.executable, "-m", "chargeback", *make], check=True)
        print(f"generated in {time.perf_counter() - start:.1f} s")
    if not as_csv:
        return root, contacts
    csv_path = root / "sample_data" / "contacts.csv"
    if not csv_path.is_file():
        write = (
            "import polars as pl, sys\n"
            "pl.read_parquet(sys.argv[1]).with_columns(pl.col('tags').list.join('|'))"
            ".write_csv(sys.argv[2])"
        )
        subprocess.run([sys.executable, "-c", write, str(contacts), str(csv_path)], check=True)
    return root, csv_path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", default="1M", help="how many: 300k, 1M, 3M")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--csv", action="store_true", help="the same contacts as CSV")
    parser.add_argument("--engines", default="polars,duckdb")
    parser.add_argument("--repeat", type=int, default=3, help="rounds (median)")
    args = parser.parse_args()
    n = size(args.contacts)
    engines = args.engines.split(",")
    print(f"{os.cpu_count()} cpus; polars {pl.__version__}; load {os.getloadavg()[0]:.1f}")
    byte_compile([Path(__file__).resolve().parent.parent])
    root, contacts = workspace(n, args.seed, args.csv)
    read = (
        "pl.read_csv(sys.argv[1], infer_schema=False)"
        if args.csv
        else "pl.scan_parquet(sys.argv[1]).collect()"
    )
    floor = [sys.executable, "-c", f"import polars as pl, sys\n{read}", str(contacts)]
    runs: list[tuple[str, list[str], Path | None]] = [
        (f"floor: polars reads {contacts.name}", floor, None)
    ]
    for e in engines:
        command = report_command(root, root / f"out-{e}", e)
        if args.csv:
            command += ["--contacts", str(contacts)]
        runs.append((f"report --engine {e}", command, None))
    timings = timed_rounds(runs, args.repeat)
    floor_t = timings[0]
    if floor_t is None:
        sys.exit("the floor failed")
    print(f"\nthe sample, {n:,} contacts ({root})")
    print(f"  {'what':<40}{'wall s':>10}{'peak MB':>10}{'x floor':>9}  rounds' range")
    for timing in timings:
        if timing is None:
            continue
        spread = "" if timing is floor_t else "  {:.1f}-{:.1f}".format(*paired(timing, floor_t))
        print(
            f"  {timing.what:<40}{timing.seconds:>10.2f}{timing.peak_mb:>10.0f}"
            f"{timing.seconds / floor_t.seconds:>9.1f}{spread}"
        )
    done = [e for e, t in zip(engines, timings[1:], strict=True) if t is not None]
    ok = len(done) == len(engines)
    ledgers = {e: ledger_rows(root / f"out-{e}" / "ledger.csv") for e in done}
    for e in done[1:]:
        ok &= agree(f"{done[0]} = {e}", ledgers[done[0]], ledgers[e])
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
