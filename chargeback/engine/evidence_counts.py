"""What a statement's evidence reads from the contacts, whichever side counted it.

engine/evidence.py turns these counts into the statements' evidence (weights,
cents, examples, daily series). They come either from the polars frame of a
read-out (evidence.frame_counts) or from the engine where the contacts are
(pushdown_evidence, SPEC 10): both give the same grouped rows, so one code path
does the arithmetic and the documents are the same either way.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

import polars as pl

EXAMPLES = 4  # contacts shown per line

# the picked contacts' rows, as the read-out frame types them
EXAMPLE_SCHEMA = pl.Schema(
    [
        ("contact_id", pl.String()),
        ("local", pl.Datetime("us")),
        ("channel", pl.String()),
        ("reason", pl.String()),
        ("text", pl.String()),
    ]
)


@dataclass
class EvidenceCounts:
    """The grouped rows the evidence needs; nothing per contact but the examples."""

    # (period, channel, reason or None, *windowed mask values [, control cell], n, hs)
    groups: list[tuple[Any, ...]]
    # (period, decision_id) -> (contacts its rules matched in the month, the picked
    # contacts' rows in EXAMPLE_SCHEMA, in (local, contact_id) order)
    picked: dict[tuple[str, str], tuple[int, pl.DataFrame]]
    # decision_id (each with rules) -> local date -> contacts its rules match, window ignored
    daily: dict[str, dict[date, int]]
    first_date: date | None
    last_date: date | None


def pick_indexes(n: int) -> list[int]:
    """The examples spread across the month: first, ..., last of `n` sorted contacts."""
    return sorted({round(i * (n - 1) / (EXAMPLES - 1)) for i in range(EXAMPLES)})
