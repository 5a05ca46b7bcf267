"""What an export's header and first rows say about it, for `chargeback init --from-export`.

The header is held against the presets first (chargeback.workspace.presets):
an export whose required headers are a preset's is that platform's. Otherwise
each of chargeback's columns is looked for by the names platforms give it
("Ticket ID", "Created at", "Via", ...). The first rows then suggest a
`timestamp_format` (only a layout the loader itself reads every sample with),
a `tags_separator`, and the channel words to map in `values:`. Whatever could
not be told is said, never guessed silently.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from chargeback.data.diagnose import text_problems
from chargeback.data.limits import shown
from chargeback.data.sources import READ_ERRORS, format_of, scan, short_error
from chargeback.data.stamps import reads_as_timestamps
from chargeback.errors import DataError, Problem
from chargeback.workspace.model import CONTACT_COLUMNS, REQUIRED_CONTACT_COLUMNS
from chargeback.workspace.presets import Preset, recognise

SAMPLE_ROWS = 1000  # rows peeked at
CHECKED_BYTES = 50 * 1024 * 1024  # a text export up to this size is checked whole, by line
SAMPLE_STAMPS = 200  # timestamps tried against each layout

# Header names platforms give each column, normalised (lower case, words only),
# in order of preference. The canonical name itself always comes first.
NAMES: dict[str, tuple[str, ...]] = {
    "contact_id": (
        "ticket id",
        "case number",
        "case id",
        "conversation id",
        "interaction id",
        "contact id",
        "ticket number",
        "ticket",
        "id",
        "unique key",  # NYC Open Data: 311 and the Council's constituent services
        "complaint id",  # the CFPB's consumer complaints
    ),
    "started_at": (
        "created at",
        "created",
        "created date",
        "created time",
        "created on",
        "date created",
        "creation date",
        "date time opened",
        "date opened",
        "opened at",
        "conversation started at",
        "start time",
        "started",
        "start",
        "open date",  # after the others: a day, where they may name a time
        "opendate",
        "date received",
        "date",
        "timestamp",
    ),
    "channel": (
        "via",
        "origin",
        "case origin",
        "source",
        "media type",
        "medium",
        "contact channel",
        "ticket channel",
        "channel type",
        "open data channel type",
        "received via",  # the FCC's Comcast complaints (shared/realdata)
        "submitted via",
    ),
    "reason": (
        "contact reason",
        "case reason",
        "category",
        "topic",
        "driver",
        "contact driver",
        "wrap up",
        "wrap up code",
        "disposition",
        "issue type",
        "complaint type",
        "issue",
    ),
    "tags": ("tag", "labels", "ticket tags", "conversation tags"),
    "text": (
        *("subject", "summary", "title", "description"),
        *("customer complaint", "complaint", "descriptor", "consumer complaint narrative"),
    ),
    "handle_seconds": (
        "handle time seconds",
        "handle time s",
        "handle time sec",
        "handle time",
        "handling time",
        "total handle time",
        "aht",
        "duration seconds",
        "duration",
    ),
    "customer_id": ("customer", "requester id", "account id", "user id", "client id"),
    "product": ("product name",),
    "region": ("country", "market", "borough"),
    "outcome": ("resolution", "result"),
    "revenue": ("revenue amount", "sale amount"),
}

# Layouts tried when the timestamps are not ISO 8601 (which needs no setting).
LAYOUTS = (
    "%m/%d/%Y %I:%M %p",
    "%m/%d/%Y, %I:%M %p",
    "%m/%d/%Y %I:%M:%S %p",
    "%m/%d/%Y %H:%M:%S",
    "%m/%d/%Y %H:%M",
    "%m/%d/%y %I:%M %p",
    "%m/%d/%y %H:%M",
    "%d/%m/%Y %H:%M:%S",
    "%d/%m/%Y %H:%M",
    "%d/%m/%y %H:%M",
    "%d.%m.%Y %H:%M:%S",
    "%d.%m.%Y %H:%M",
    "%d-%m-%Y %H:%M:%S",
    "%Y/%m/%d %H:%M:%S",
    "%b %d, %Y %I:%M %p",
    "%d %b %Y %H:%M:%S",
    "%d %b %Y %H:%M",
    "%m/%d/%Y",
    "%d/%m/%Y",
    "%d.%m.%Y",
    "%d-%b-%y",
)
OFFSET = re.compile(r"([+-]\d{2}:?\d{2}|[zZ])$")
CLOCK = re.compile(r"^\d+:\d{2}(:\d{2})?$")  # h:mm:ss, which is not a number of seconds
SEPARATORS = ("|", ";", ",", " ")  # tried in this order: a space may sit inside a tag

# Channel words a person would map the obvious way; the rest is left to fill in.
GUESSES = {
    "phone": ("phone", "voice", "call", "voicemail", "callback", "telephone"),
    "email": ("email", "e mail", "mail", "outbound email"),
    "chat": ("chat", "web widget", "messaging", "messenger", "live chat", "message"),
    "sms": ("sms", "text", "text message"),
    "social": ("facebook", "twitter", "instagram", "whatsapp", "x corp", "x corp dm", "social"),
    "web": ("web", "web form", "portal", "form"),
}


@dataclass
class Inference:
    """What `init --from-export` found in one export, and what it could not tell."""

    path: Path
    headers: list[str]
    rows: int  # rows peeked at
    preset: Preset | None = None
    columns: dict[str, str] = field(default_factory=dict)  # to write: canonical -> header
    timestamp_format: str | None = None  # to write (None: ISO 8601 or the preset's)
    iso_over_preset: bool = False  # ISO 8601 where the preset has a layout: write null
    timestamp_seen: str | None = None  # one sample, for the comment
    layout_unknown: bool = False  # no layout read the samples: timestamp_format is the user's
    naive: bool = False  # timestamps without an offset: `timezone` matters
    tags_separator: str | None = None  # to write (None: the default or the preset's)
    tags_seen: str | None = None
    channels: list[tuple[str, int]] = field(default_factory=list)  # words seen, most first
    notes: list[str] = field(default_factory=list)  # what could not be inferred

    def header_of(self, column: str) -> str | None:
        """The export's header for one of chargeback's columns, as the run will map it."""
        mapped = dict(self.preset.columns) if self.preset else {}
        mapped.update(self.columns)
        if column in mapped and mapped[column] in self.headers:
            return mapped[column]
        return column if column in self.headers else None


def inspect_export(path: Path) -> Inference:
    """Read an export's header and first rows; a file that cannot be read is a DataError."""
    frame = _peek(path)
    found = Inference(path, list(frame.columns), frame.height, recognise(list(frame.columns)))
    if found.rows == 0:
        found.notes.append("the file has no rows: the timestamps, tags and channels were not seen")
    _map_columns(found)
    _timestamps(found, frame)
    _tags(found, frame)
    _channels(found, frame)
    _handle_time(found, frame)
    return found


def _peek(path: Path) -> pl.DataFrame:
    if not path.exists():
        raise DataError(Problem("not found", path))
    if not path.is_file():
        raise DataError(Problem("is not a file", path))
    if format_of(path) is None:
        raise DataError(
            Problem("not a CSV, TSV, Parquet or NDJSON file (by its name: .csv, .parquet)", path)
        )
    try:
        size = path.stat().st_size
        if size == 0:
            raise DataError(Problem("is empty (0 bytes): export it again", path))
        if format_of(path) != "parquet" and size <= CHECKED_BYTES:
            # a broken quote or a byte that is not UTF-8 anywhere: named by line now
            located = text_problems(path)[0]
            if located:
                raise DataError(located)
        return scan(path).head(SAMPLE_ROWS).collect()
    except pl.exceptions.NoDataError:
        raise DataError(Problem("is empty: export it again", path)) from None
    except READ_ERRORS as exc:
        located = text_problems(path)[0] if format_of(path) != "parquet" else []
        raise DataError(located or [Problem(f"cannot read: {short_error(exc)}", path)]) from None


def _normal(header: str) -> str:
    return " ".join(re.sub(r"[^a-z0-9]+", " ", header.lower()).split())


def _map_columns(found: Inference) -> None:
    """Each of chargeback's columns to a header, required ones first; a header serves once."""
    taken = {h for h in found.headers if h in CONTACT_COLUMNS}
    by_normal: dict[str, str] = {}
    for name in found.headers:
        by_normal.setdefault(_normal(name), name)
    preset_cols = dict(found.preset.columns) if found.preset else {}
    taken |= {h for h in preset_cols.values() if h in found.headers}
    for column in CONTACT_COLUMNS:
        if column in found.headers or preset_cols.get(column) in found.headers:
            continue
        for name in (_normal(column), *NAMES[column]):
            match = by_normal.get(name)
            if match is not None and match not in taken:
                found.columns[column] = match
                taken.add(match)
                break
    missing = [c for c in REQUIRED_CONTACT_COLUMNS if found.header_of(c) is None]
    what = {"contact_id": "contact id", "started_at": "start time", "channel": "channel"}
    for column in missing:
        found.notes.append(
            f'no {what[column]} column found: set columns: {column}: "<the export\'s header>" '
            "in chargeback.yaml (the run needs it)"
        )


def _texts(frame: pl.DataFrame, header: str | None, limit: int) -> list[str]:
    """Up to `limit` non-blank values of a text column, trimmed (none for other types)."""
    if header is None or header not in frame.columns or frame.schema[header] != pl.String:
        return []
    col = frame.get_column(header).drop_nulls().str.strip_chars()
    return [v for v in col.to_list() if v][:limit]


def _timestamps(found: Inference, frame: pl.DataFrame) -> None:
    """The layout the run would read every sample with: the preset's, ISO 8601, or one tried."""
    texts = _texts(frame, found.header_of("started_at"), SAMPLE_STAMPS)
    if not texts:
        return
    found.timestamp_seen = texts[0]
    preset_fmt = found.preset.timestamp_format if found.preset else None
    tried = [preset_fmt] if preset_fmt is None else [preset_fmt, None]
    for fmt in tried:
        if reads_as_timestamps(texts, fmt) == len(texts):
            found.iso_over_preset = fmt is None and preset_fmt is not None
            found.naive = not all(OFFSET.search(t) for t in texts) if fmt is None else True
            found.naive = found.naive and not (fmt and "%z" in fmt)
            return
    scores = [(reads_as_timestamps(texts, fmt), -i, fmt) for i, fmt in enumerate(LAYOUTS)]
    best, _, fmt = max(scores)
    found.naive = True
    if best == 0:
        found.layout_unknown = True
        found.notes.append(
            f"could not tell the timestamps' layout (such as '{shown(texts[0])}'): set "
            f"timestamp_format in chargeback.yaml, e.g. {example_layout(texts[0])}"
        )
        return
    found.timestamp_format = fmt
    if best < len(texts):
        found.notes.append(
            f'timestamp_format "{fmt}" reads {best} of the {len(texts)} timestamps looked at; '
            "check the others"
        )
    swapped = _day_month_swapped(fmt)
    if swapped and reads_as_timestamps(texts, swapped) == best:
        found.notes.append(
            f"the timestamps (such as '{shown(texts[0])}') read as month/day and as day/month "
            f'alike: check timestamp_format ("{fmt}", or "{swapped}")'
        )


NUMERIC_DATE = re.compile(r"(\d{1,4})([-/.])\d{1,2}\2(\d{1,4})(?:[ T](\d{1,2}:\d{2}(:\d{2})?))?")


def example_layout(sample: str) -> str:
    """A timestamp_format of the sample's own shape (separator, year's digits, clock), for
    a note: which of day and month comes first only the export's owner knows."""
    found = NUMERIC_DATE.fullmatch(sample.strip())
    if found is None:
        return '"%d/%m/%Y %H:%M"'
    first, sep, last, clock, seconds = found.groups()
    time = "" if clock is None else " %H:%M:%S" if seconds else " %H:%M"
    if len(first) == 4:
        return f'"%Y{sep}%m{sep}%d{time}"'
    year = "%Y" if len(last) == 4 else "%y"
    day_first, month_first = f"%d{sep}%m{sep}{year}{time}", f"%m{sep}%d{sep}{year}{time}"
    return f'"{day_first}" or "{month_first}", whichever the export writes'


def layout_for(texts: list[str]) -> str | None:
    """The first known layout that reads every one of these timestamps (for a hint)."""
    for fmt in LAYOUTS:
        if reads_as_timestamps(texts, fmt) == len(texts):
            return fmt
    return None


def _day_month_swapped(fmt: str) -> str | None:
    for a, b in (("%m/%d/", "%d/%m/"), ("%d/%m/", "%m/%d/")):
        if fmt.startswith(a):
            return b + fmt[len(a) :]
    return None


def _tags(found: Inference, frame: pl.DataFrame) -> None:
    header = found.header_of("tags")
    texts = _texts(frame, header, SAMPLE_ROWS)
    if not texts:
        return
    found.tags_seen = max(texts, key=len)
    seen = next((s for s in SEPARATORS if any(s in t for t in texts)), None)
    default = (found.preset.tags_separator if found.preset else None) or "|"
    if seen is None:
        found.notes.append(
            f"every tags value looked at ('{shown(texts[0])}') is one tag: tags_separator "
            f'"{default}" is kept; change it if your tags are split otherwise'
        )
    elif seen != default:
        found.tags_separator = seen


def _channels(found: Inference, frame: pl.DataFrame) -> None:
    header = found.header_of("channel")
    if header is None or header not in frame.columns:
        return
    col = frame.get_column(header).drop_nulls().cast(pl.String).str.strip_chars()
    counts = Counter(v for v in col.to_list() if v)
    found.channels = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))


def guess_channel(word: str) -> str | None:
    """The channel a platform's word obviously means (None: the user decides).

    A whole known word first (`Web Widget` is chat), then a known word inside
    it, the more specific channels first (`Web Chat` is chat, not web).
    """
    normal = _normal(word)
    for channel, words in GUESSES.items():
        if normal in words:
            return channel
    tokens = set(normal.split())
    for channel in ("phone", "sms", "chat", "email", "social", "web"):
        if tokens & {w for w in GUESSES[channel] if " " not in w}:
            return channel
    return None


def _handle_time(found: Inference, frame: pl.DataFrame) -> None:
    """A handle time that is not in seconds is left unmapped, and said so."""
    header = found.columns.get("handle_seconds")
    if header is None:
        return
    normal = _normal(header)
    texts = _texts(frame, header, SAMPLE_STAMPS)
    clock = bool(texts) and all(CLOCK.match(t) for t in texts)
    minutes = "min" in normal.split() or "minutes" in normal.split()
    if clock or minutes:
        del found.columns["handle_seconds"]
        unit = "h:mm:ss" if clock else "minutes"
        found.notes.append(
            f"'{shown(header)}' holds {unit}, and chargeback reads handle time in seconds: "
            "it is left unmapped (export it in seconds and map it to handle_seconds)"
        )
    elif "second" not in normal and not normal.endswith(" s") and "sec" not in normal.split():
        found.notes.append(
            f"'{shown(header)}' is read as handle_seconds: check that it is in seconds"
        )
