"""Where a text file goes wrong: the line of a bad byte, a ragged row, a broken quote.

polars reads CSV and NDJSON fast but, when it cannot, says little about where.
On that path only (and to turn a bad row's number into its line), the file is
read again here with Python's own csv and json modules, which count lines: the
first byte that is not UTF-8, a row with more or fewer fields than the header, a
quote that is never closed, a line that is not a JSON object. Nothing here runs
while a file reads cleanly.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import mmap
import os
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from chargeback.data.limits import shown
from chargeback.data.sources import BOM, format_of, separator
from chargeback.errors import Problem

MAX_PROBLEMS = 20
BLOCK = 1 << 23  # bytes read at a time when looking for lines
NEWLINE = ord("\n")
GZIP = b"\x1f\x8b"
csv.field_size_limit(1 << 30)  # a 1 MB cell is a bad value to name, not a reader crash


@dataclass
class Records:
    """A CSV file's records as Python's csv module splits them."""

    header: list[str] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)  # the line each record starts on
    widths: list[int] = field(default_factory=list)  # its fields (0: a blank line)
    blank: list[bool] = field(default_factory=list)  # nothing but separators and blanks
    error: Problem | None = None  # where reading had to stop

    def rows(self) -> list[tuple[int, int, int]]:
        """(row, line, fields) of every data record, the header not counted."""
        return [(i, self.lines[i], self.widths[i]) for i in range(1, len(self.lines))]


def _gzipped(path: Path) -> bool:
    """Whether the file is gzip by its first bytes, as polars decides: a plain file
    named .csv.gz reads as plain text there, so it must here too."""
    with path.open("rb") as handle:
        return handle.read(2) == GZIP


def read_bytes(path: Path) -> bytes:
    """The file's bytes, gunzipped when it is named .gz and is gzip (OSError when it cannot
    be read). A gzip file under a plain name stays as it is, to be named as binary."""
    data = path.read_bytes()
    if path.name.lower().endswith(".gz") and data.startswith(GZIP):
        try:
            return gzip.decompress(data)
        except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
            raise OSError(f"not a valid gzip file ({exc})") from None
    return data


def _blocks(path: Path) -> Iterator[bytes]:
    """The file's bytes a block at a time, gunzipped when they are gzip. A plain file is
    mapped, and each block's pages given back once it is read, so resident memory stays
    a block's however large the file."""
    if _gzipped(path):
        with gzip.open(path, "rb") as unzipped:
            yield from iter(lambda: unzipped.read(BLOCK), b"")
        return
    with path.open("rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        if size == 0:
            return
        with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
            given_back = 0  # pages before this offset are given back
            for at in range(0, size, BLOCK):
                yield mapped[at : at + BLOCK]
                read = min(at + BLOCK, size)
                whole = read if read == size else read - read % mmap.PAGESIZE
                if whole > given_back and hasattr(mmap, "MADV_DONTNEED"):
                    mapped.madvise(mmap.MADV_DONTNEED, given_back, whole - given_back)
                    given_back = whole


def lines_at(path: Path, rows: Iterable[int]) -> tuple[dict[int, str], int]:
    """The file's lines at these indices (0 is the header), and how many lines it has.

    Only the lines asked for are kept: holding every line of a 3M-row export to look
    at a few was 0.6 GB.
    """
    want = np.unique(np.fromiter(rows, dtype=np.int64))
    found: dict[int, str] = {}
    count = k = 0  # lines ended before the block; the next wanted index
    carry = b""  # the start of a line that began in an earlier block
    for block in _blocks(path):
        ends = np.flatnonzero(np.frombuffer(block, dtype=np.uint8) == NEWLINE)
        stop = int(np.searchsorted(want, count + len(ends)))
        for row in want[k:stop].tolist():
            i = row - count
            line = (
                block[int(ends[i - 1]) + 1 : int(ends[i])] if i else carry + block[: int(ends[0])]
            )
            found[row] = line.decode("utf-8", "replace")
        k = stop
        carry = block[int(ends[-1]) + 1 :] if len(ends) else carry + block
        count += len(ends)
    if carry:  # a last line without a line break
        if k < len(want) and int(want[k]) == count:
            found[count] = carry.decode("utf-8", "replace")
        count += 1
    return found, count


MAGIC = (
    (b"PK\x03\x04", "an Excel workbook (or another zip file)"),
    (b"\xd0\xcf\x11\xe0", "an old Excel or Office file"),
    (b"PAR1", "a Parquet file"),
    (GZIP, "gzip-compressed"),
    (b"%PDF", "a PDF"),
)


def kind_problem(path: Path, data: bytes | None = None) -> Problem | None:
    """A binary file under a text file's name: say what it is, not which byte is odd."""
    if data is None:
        try:
            with path.open("rb") as handle:
                data = handle.read(8)
        except OSError:
            return None
    for magic, what in MAGIC:
        if data.startswith(magic):
            fix = (
                "name it .parquet"
                if magic == b"PAR1"
                else "name it .csv.gz (or .ndjson.gz)"
                if magic == GZIP
                else "export the data as CSV (UTF-8) instead"
            )
            return Problem(f"this is {what}, not text: {fix}", path, 1)
    return None


def encoding_problem(path: Path, data: bytes) -> Problem | None:
    """The first byte that is not UTF-8, with its line, and how to fix the file."""
    how = "save or export it as UTF-8 (in Excel: Save As > CSV UTF-8)"
    binary = kind_problem(path, data[:8])
    if binary is not None and not path.name.lower().endswith(".gz"):
        return binary
    start = data[:4096]
    if data.startswith((b"\xff\xfe", b"\xfe\xff")) or start.count(0) > len(start) // 4:
        return Problem(f"the file is UTF-16 or UTF-32 text, not UTF-8; {how}", path, 1)
    body = data[len(BOM) :] if data.startswith(BOM) else data
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as exc:
        pos = exc.start
        line = body.count(b"\n", 0, pos) + 1
        column = pos - (body.rfind(b"\n", 0, pos) + 1) + 1
        name = shown(path.name)
        return Problem(
            f"not UTF-8: byte 0x{body[pos]:02X} at column {column} is not valid UTF-8 "
            f"(the file is probably Latin-1 or Windows-1252); {how}, or convert it: "
            f"iconv -f WINDOWS-1252 -t UTF-8 '{name}' > 'utf8-{name}'",
            path,
            line,
        )
    return None


def decoded(path: Path) -> tuple[bytes, str]:
    data = read_bytes(path)
    return data, data.decode("utf-8-sig", errors="replace")


def csv_records(path: Path, text: str, stop_row: int | None = None) -> Records:
    """Split the text as a CSV reader does, counting physical lines (newline = LF).

    `stop_row`: stop once that data row is read (to find the line of an early row).
    """
    out = Records()
    reader = csv.reader(io.StringIO(text, newline="\n"), delimiter=separator(path), strict=True)
    before = 0
    try:
        for record in reader:
            if not out.lines:
                out.header = record
            out.lines.append(before + 1)
            out.widths.append(len(record))
            out.blank.append(not any(f.strip() for f in record))
            before = reader.line_num
            if stop_row is not None and len(out.lines) > stop_row:
                break
    except csv.Error as exc:
        start = before + 1
        reason = str(exc)
        if "unexpected end of data" in reason:
            message = (
                f'a quoted field that opens on line {start} is never closed (an unmatched "): '
                "the rest of the file would be read into it"
            )
            out.error = Problem(message, path, start)
        else:
            out.error = Problem(f"malformed CSV: {reason}", path, reader.line_num or start)
    return out


def ragged_message(fields: int, width: int) -> str:
    more = "more" if fields > width else "fewer"
    return f"{fields} field{'s' if fields != 1 else ''} where the header has {width} ({more})"


def text_problems(path: Path) -> tuple[list[Problem], Records | None]:
    """Why a CSV, TSV or NDJSON file could not be read, by line.

    For CSV also its records, so ragged rows can be named row by row (and set
    aside with the other bad rows) rather than stopping the whole file.
    """
    try:
        data, text = decoded(path)
    except OSError as exc:
        return [Problem(f"cannot read: {exc}", path)], None
    problem = encoding_problem(path, data)
    if problem is not None:
        return [problem], None
    if format_of(path) == "ndjson":
        return ndjson_problems(path, text), None
    records = csv_records(path, text)
    return ([records.error] if records.error else []), records


def blank_text(path: Path) -> bool:
    """A file with nothing but blank lines (an NDJSON file without records)."""
    try:
        return not read_bytes(path).strip()
    except OSError:
        return False


def ndjson_problems(path: Path, text: str) -> list[Problem]:
    """Each line must be one JSON object (numbers finite, as JSON has them)."""
    problems: list[Problem] = []
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line, parse_constant=_not_json)
        except RecursionError:
            problems.append(Problem("nested too deeply to read", path, number))
            continue
        except ValueError as exc:
            what = getattr(exc, "msg", str(exc))
            column = getattr(exc, "colno", None)
            at = f" at column {column}" if column else ""
            problems.append(Problem(f"not valid JSON: {shown(what)}{at}", path, number))
        else:
            if not isinstance(value, dict):
                kind = (
                    "an array"
                    if isinstance(value, list)
                    else "a string"
                    if isinstance(value, str)
                    else "a bare value"
                )
                hint = (
                    "; a JSON array file must be written one object per line (NDJSON)"
                    if isinstance(value, list)
                    else ""
                )
                problems.append(
                    Problem(f"expected one JSON object per line, found {kind}{hint}", path, number)
                )
        if len(problems) >= MAX_PROBLEMS:
            break
    return problems


def _not_json(constant: str) -> float:
    raise ValueError(f"{constant} is not a JSON number")


def record_lines(path: Path, last_row: int) -> list[int] | None:
    """The line each data row starts on, rows 1..last_row (None: a binary format).

    A CSV row is a line unless a quoted field holds line breaks; an NDJSON row is
    a line that is not blank.
    """
    fmt = format_of(path)
    if fmt == "parquet":
        return None
    try:
        _, text = decoded(path)
    except OSError:
        return None
    if fmt == "ndjson":
        lines = [n for n, line in enumerate(text.split("\n"), start=1) if line.strip()]
        return lines[:last_row]
    return csv_records(path, text, stop_row=last_row).lines[1:]


def raw_header(path: Path) -> list[str]:
    """A CSV's header fields as written (polars renames duplicates)."""
    try:
        _, text = decoded(path)
    except OSError:
        return []
    return csv_records(path, text, stop_row=0).header
