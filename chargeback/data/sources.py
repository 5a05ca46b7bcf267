"""The input files: which ones a path, glob or folder names, and how to open each.

The reader is chosen by the file's name (CSV, TSV, Parquet, NDJSON, gzipped text),
so finding files, opening them lazily and saying on which line a row sits all
depend on the same table of suffixes; they live here, below the loading and the
row checks that both use them.
"""

from __future__ import annotations

import glob
from pathlib import Path

import polars as pl

from chargeback.errors import DataError, Problem

SUFFIXES = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".ndjson": "ndjson",
    ".jsonl": "ndjson",
    ".json": "ndjson",
}


def resolve_files(spec: str, root: Path, what: str = "contacts") -> list[Path]:
    """A path, glob or folder (relative to the workspace) -> the data files, sorted."""
    base = Path(spec).expanduser()
    if not base.is_absolute():
        base = root / base
    if any(ch in spec for ch in "*?["):
        found = [Path(p) for p in glob.glob(str(base), recursive=True)]
    elif base.is_dir():
        found = [p for p in base.rglob("*") if p.is_file()]
        found = [p for p in found if format_of(p) is not None]
    elif base.is_file():
        found = [base]
    else:
        raise DataError(Problem(f"{what} not found (looked for '{spec}')", base))
    found = sorted(p for p in found if p.is_file())
    if not found:
        raise DataError(Problem(f"no {what} files (CSV, Parquet, NDJSON) match '{spec}'", base))
    unknown = [p for p in found if format_of(p) is None]
    if unknown:
        raise DataError(
            [Problem("not a CSV, Parquet or NDJSON file (by its name)", p) for p in unknown]
        )
    return found


def format_of(path: Path) -> str | None:
    """The reader for a data file, by its name (None: not a data file we read)."""
    suffixes = [s.lower() for s in path.suffixes]
    if not suffixes:
        return None
    if suffixes[-1] == ".gz":
        inner = suffixes[-2] if len(suffixes) > 1 else ""
        return {".csv": "csv", ".tsv": "tsv", ".ndjson": "ndjson", ".jsonl": "ndjson"}.get(inner)
    return SUFFIXES.get(suffixes[-1])


def line_of(path: Path, row: int) -> int | None:
    """A CSV's data row N sits on line N + 1 (after the header); other formats have rows."""
    return row + 1 if format_of(path) in ("csv", "tsv") else None


def scan(path: Path) -> pl.LazyFrame:
    fmt = format_of(path)
    try:
        if fmt in ("csv", "tsv"):
            return pl.scan_csv(
                path,
                separator="\t" if fmt == "tsv" else ",",
                infer_schema=False,  # all text: types are checked row by row in checks.py
                encoding="utf8-lossy",
            )
        if fmt == "parquet":
            return pl.scan_parquet(path)
        return pl.scan_ndjson(path, infer_schema_length=None)
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise DataError(Problem(f"cannot read: {short_error(exc)}", path)) from None


def short_error(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
