"""limits.bad_char's fast path (str.isprintable) names the same character as the
character-by-character walk, for any text: printable text holds no control, line or
paragraph separator, surrogate nor bidirectional mark, and anything else is walked."""

from __future__ import annotations

import sys
import unicodedata

from hypothesis import given, settings
from hypothesis import strategies as st

from chargeback.workspace.limits import bad_char, char_name, invisible

# the characters each branch turns on, and neighbours that are fine or merely unprintable
AWKWARD = [
    "\x00", "\t", "\n", "\r", "\x1b", "\x7f", "\x85", "\xa0", " ", "\u2028", "\u2029",
    "\u200b", "\u200e", "\u200f", "\u202a", "\u202e", "\u2066", "\u2069", "\u061c",
    "\ufeff", "\ue000", "\U000e0001", "\u0378", "é", "€", "日",
]  # fmt: skip


def walked(text: str) -> str | None:
    for ch in text:
        if invisible(ch):
            return char_name(ch)
    return None


@settings(max_examples=400)
@given(st.lists(st.one_of(st.sampled_from(AWKWARD), st.characters()), max_size=12).map("".join))
def test_bad_char_is_the_walk(text: str) -> None:
    assert bad_char(text) == walked(text)


def test_printable_text_is_clean_and_each_kind_is_named() -> None:
    assert bad_char("Fees, 2026 — €4.10 (日本)") is None
    assert bad_char("a\u202eb") == char_name("\u202e")
    assert bad_char("a\u2028b") == char_name("\u2028")
    assert bad_char("zero\u200bwidth") is None  # unprintable, yet not one refused
    assert unicodedata.category("\u200b") == "Cf"


def test_no_printable_character_is_refused() -> None:
    """The fast path's premise, for every code point: what str.isprintable passes,
    invisible() never refuses."""
    both = [c for c in map(chr, range(sys.maxunicode + 1)) if c.isprintable() and invisible(c)]
    assert both == []
