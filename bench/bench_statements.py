"""Time the statements: the sample workspace's monthly pack, PDF and HTML.

Each case runs `chargeback report` as a fresh process (as cron runs it) on the
built-in sample workspace and prints wall-clock seconds and the ratio against
a baseline measured in the same run: the same command writing the csv ledger
only. The ratio is the price of the documents.

    python bench/bench_statements.py              # one month, then all 12
    python bench/bench_statements.py --repeat 5
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time


def run(args: list[str], env: dict[str, str] | None = None, out: str | None = None) -> float:
    with tempfile.TemporaryDirectory() as fresh:
        folder = out or fresh
        start = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "chargeback", "report", "--out", folder, *args],
            check=True,
            capture_output=True,
            env={**os.environ, **(env or {})},
            cwd=fresh,  # an empty folder: the packaged sample workspace
        )
        return time.perf_counter() - start


def median(args: list[str], repeat: int, env: dict[str, str] | None = None) -> float:
    return statistics.median(run(args, env) for _ in range(repeat))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--period", default="2026-11", help="the month of the one-month pack")
    args = parser.parse_args()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"{cores} usable cores; median of {args.repeat} runs each")

    month = ["--period", args.period]
    cases = [
        ("baseline: one month, csv only", [*month, "--format", "csv"], None),
        ("one month, pdf+html, 1 worker", month, {"CHARGEBACK_WORKERS": "1"}),
        ("one month, pdf+html (the pack)", month, None),
        ("baseline: 12 months, csv only", ["--format", "csv"], None),
        ("12 months, pdf+html+csv+json", [], None),
    ]
    base: float | None = None
    for name, extra, env in cases:
        seconds = median(extra, args.repeat, env)
        if name.startswith("baseline"):
            base = seconds
        assert base is not None
        print(f"{name:34} {seconds:6.2f} s   {seconds / base:5.1f}x baseline")
    with tempfile.TemporaryDirectory() as out:
        run([], out=out)  # fill the folder, then run again on the same inputs
        seconds = statistics.median(run([], out=out) for _ in range(args.repeat))
    assert base is not None
    print(f"{'12 months again, same folder':34} {seconds:6.2f} s   {seconds / base:5.1f}x baseline")


if __name__ == "__main__":
    main()
