"""The input files: which ones a path, glob or folder names, and how to open each.

The reader is chosen by the file's name (CSV, TSV, Parquet, NDJSON, gzipped text),
so finding files, opening them lazily and saying on which line a row sits all
depend on the same table of suffixes; they live here, below the loading and the
row checks that both use them. Only regular files are ever opened: a FIFO would
block the run, a device would never end.
"""

from __future__ import annotations

import glob
import itertools
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import polars as pl

from chargeback.data.limits import shown
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
TEXT_FORMATS = ("csv", "tsv")
BOM = b"\xef\xbb\xbf"

# What polars raises on a file it cannot read: its own errors, the OS's, and a
# panic of its Rust core on a corrupt file (a BaseException, not an Exception).
READ_ERRORS: tuple[type[BaseException], ...] = (
    pl.exceptions.PolarsError,
    pl.exceptions.PanicException,
    OSError,
    ValueError,
)


MAX_FILES = 100_000  # files looked at for one setting: a folder past this is not an export


def resolve_files(spec: str, root: Path, what: str = "contacts") -> list[Path]:
    """A path, glob or folder (relative to the workspace) -> the data files, sorted."""
    if not spec.strip():
        raise DataError(Problem(f"the {what} setting is empty: name a file, glob or folder"))
    try:
        base = Path(spec).expanduser()
    except RuntimeError:  # ~user that does not exist: the path as written
        base = Path(spec)
    if not base.is_absolute():
        base = root / base
    try:
        found = _candidates(spec, base, what)
    except (OSError, ValueError) as exc:
        raise DataError(Problem(f"cannot look for {what} here: {short_error(exc)}", base)) from None
    found = _once(sorted(found))
    unknown = [p for p in found if format_of(p) is None]
    if unknown:
        listed = [Problem("not a CSV, Parquet or NDJSON file (by its name)", p) for p in unknown]
        raise DataError(listed[:20])
    unreadable = [p for p in found if not os.access(p, os.R_OK)]
    if unreadable:
        raise DataError([Problem("cannot read: permission denied", p) for p in unreadable][:20])
    return found


def _candidates(spec: str, base: Path, what: str) -> list[Path]:
    too_many = Problem(
        f"{what}: more than {MAX_FILES:,} files to look through; name the export "
        "folder or files themselves",
        base,
    )
    if any(ch in spec for ch in "*?["):
        matched = list(itertools.islice(glob.iglob(str(base), recursive=True), MAX_FILES + 1))
        if len(matched) > MAX_FILES:
            raise DataError(too_many)
        paths = [Path(p) for p in matched]
        found = [p for p in paths if p.is_file()]
        if not found:
            others = ", ".join(f"{shown(p.name)} ({kind_of(p)})" for p in sorted(paths)[:5])
            aside = f"; it matches only {others}" if others else ""
            raise DataError(Problem(f"no {what} files match '{shown(spec)}'{aside}", base))
        return found
    if base.is_dir():
        found = []
        for count, path in enumerate(_walk(base)):
            if count >= MAX_FILES:
                raise DataError(too_many)
            if format_of(path) is not None:
                found.append(path)
        if not found:
            raise DataError(
                Problem(
                    f"no {what} files (.csv, .tsv, .parquet, .ndjson, .jsonl) in this folder", base
                )
            )
        return found
    if base.is_file():
        return [base]
    if base.exists():
        raise DataError(Problem(f"{what}: this is {kind_of(base)}, not a file or folder", base))
    raise DataError(Problem(f"{what} not found (looked for '{shown(spec)}')", base))


def _walk(base: Path) -> Iterator[Path]:
    """Regular files under a folder; dot files and folders (.git, .DS_Store) left out.

    Symbolic links to folders are not followed (no loops); a folder that cannot
    be listed is an error, not a silent gap in the data.
    """

    def refuse(exc: OSError) -> None:
        raise exc

    for folder, dirs, files in os.walk(base, onerror=refuse):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            path = Path(folder) / name
            if not name.startswith(".") and path.is_file():
                yield path


def _once(paths: list[Path]) -> list[Path]:
    """One path per file: a symlink loop or two patterns must not read a file twice."""
    seen: set[Path] = set()
    out: list[Path] = []
    for path in paths:
        real = path.resolve()
        if real not in seen:
            seen.add(real)
            out.append(path)
    return out


def kind_of(path: Path) -> str:
    """What a path is, for a message: a folder, a FIFO, ..."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return "a broken link" if path.is_symlink() else "missing"
    for test, name in (
        (stat.S_ISDIR, "a folder"),
        (stat.S_ISFIFO, "a FIFO (named pipe)"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISCHR, "a device"),
        (stat.S_ISBLK, "a device"),
    ):
        if test(mode):
            return name
    return "a file"


def format_of(path: Path) -> str | None:
    """The reader for a data file, by its name (None: not a data file we read)."""
    suffixes = [s.lower() for s in path.suffixes]
    if not suffixes:
        return None
    if suffixes[-1] == ".gz":
        inner = suffixes[-2] if len(suffixes) > 1 else ""
        return {".csv": "csv", ".tsv": "tsv", ".ndjson": "ndjson", ".jsonl": "ndjson"}.get(inner)
    return SUFFIXES.get(suffixes[-1])


def is_text_table(path: Path) -> bool:
    """CSV or TSV: a data row sits on a line, after a header line."""
    return format_of(path) in TEXT_FORMATS


def scan(path: Path, ragged: bool = False) -> pl.LazyFrame:
    """Open a file lazily, every CSV column as text (typed later, row by row).

    CSV is decoded as strict UTF-8 (a UTF-8 byte order mark is fine): a file in
    another encoding fails to read, and chargeback.data.diagnose says where.
    `ragged`: read rows with more fields than the header anyway (their extra fields
    are cut), once the rows have been named as bad.
    """
    fmt = format_of(path)
    try:
        if fmt in TEXT_FORMATS:
            return pl.scan_csv(
                path,
                separator="\t" if fmt == "tsv" else ",",
                infer_schema=False,  # all text: types are checked row by row in checks.py
                encoding="utf8",
                truncate_ragged_lines=ragged,
            )
        if fmt == "parquet":
            return pl.scan_parquet(path)
        if not path.name.lower().endswith(".gz") and _starts_with_bom(path):
            return pl.scan_ndjson(path.read_bytes()[len(BOM) :], infer_schema_length=None)
        return pl.scan_ndjson(path, infer_schema_length=None)
    except READ_ERRORS as exc:
        raise DataError(Problem(f"cannot read: {short_error(exc)}", path)) from None


def _starts_with_bom(path: Path) -> bool:
    with path.open("rb") as handle:
        return handle.read(len(BOM)) == BOM


def separator(path: Path) -> str:
    return "\t" if format_of(path) == "tsv" else ","


def short_error(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return shown(text[0], 300) if text else type(exc).__name__
