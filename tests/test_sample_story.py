"""The sample's story file: what it loads into, and how its mistakes are reported.

The story moved from Python literals into chargeback/sample/story.yaml; these
tests keep the committed sample data tied to it and make sure a slip in the
file is an error naming its line rather than quietly different data.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import polars as pl
import pytest

from chargeback.errors import WorkspaceError
from chargeback.resources import sample_workspace
from chargeback.sample.generate import generate_sample
from chargeback.sample.story import STORY, STORY_FILE, STREAMS, load_story


def test_committed_sample_data_is_what_the_story_generates(tmp_path: Path) -> None:
    # Frames, not bytes: a new polars may write other bytes for the same rows.
    committed = sample_workspace() / "sample_data"
    if not (committed / "contacts.parquet").is_file():
        pytest.skip("sample_data has not been generated")
    generate_sample(tmp_path, contacts=300_000, seed=7)
    for name in ("contacts.parquet", "orders.parquet"):
        fresh = pl.read_parquet(tmp_path / "sample_data" / name)
        assert fresh.equals(pl.read_parquet(committed / name)), name


def test_the_story_keeps_written_types_and_resolves_names() -> None:
    by_name = {s.name: s for s in STREAMS}
    assert len(by_name) == len(STREAMS) == 58
    assert type(by_name["router-firmware"].decay_days) is int  # written 12
    assert type(by_name["outage"].decay_days) is float  # written 1.5
    assert all(type(w) is float for w in STORY.weekday)
    assert STORY.holidays[date(2025, 12, 25)] == 0.35
    assert by_name["outage"].regions == ("northeast",)
    # named mixes and defaults
    mobile = ("unlimited", "unlimited_plus", "essentials", "prepaid", "legacy_3g")
    assert by_name["bg-simswap"].plans == mobile
    assert by_name["bg-cancel"].outcomes == {
        "cancelled": 48, "saved": 30, "unresolved": 13, "escalated": 9,
    }  # fmt: skip
    assert by_name["base-tech"].outcomes == {"resolved": 72, "unresolved": 18, "escalated": 10}
    assert by_name["base-tech"].start == STORY.first_day
    assert by_name["base-tech"].end == STORY.last_day
    assert by_name["base-tech"].tags == {"": 75, "tech": 20, "callback": 5}
    assert by_name["app-login"].tags == {"": 1.0}
    assert None in by_name["app-social"].reasons


# (text in story.yaml, its replacement, words of the error, the text whose line is named)
MISTAKES = [
    ("    decay_days: 12\n", "    decay_day: 12\n", "unknown key 'decay_day'", "decay_day: 12"),
    ("    channels: digital\n", "    channels: digitl\n", "'digitl' is not one of", "digitl"),
    ("    plans: [legacy_3g]\n", "    plans: [legacy_4g]\n", "'legacy_4g' in plans", "legacy_4g"),
    ("    regions: [northeast]\n", "    regions: [north_east]\n", "'north_east'", "north_east"),
    ("    start: 2026-11-20\n", "    start: 2026-12-20\n", "must lie within", "2026-12-20"),
    ("    2025-12-25: 0.35", "    2025-12-32: 0.35", "not a date", "2025-12-32"),
    ("    weekly: false\n", "    weekly: no\n", "true or false", "weekly: no"),
    ("    anonymous: 0.35\n", "    anonymous: 35\n", "between 0 and 1", "anonymous: 35"),
    (
        "  - name: bg-login\n",
        "  - name: bg-autopay\n",
        "a second stream",
        "bg-autopay\n    weight: 2.8",
    ),
    (
        '        "Order status": 3\n',
        '        "Order status": 3\n        "Order status": 2\n',
        "duplicate key",
        '"Order status": 2',
    ),
    (
        '    texts:\n      "Verify my identity": 50\n      "Security questions failing": 50\n',
        "",
        "reason 'account.verification' has no subject line",
        "reasons: {account.verification: 1}\n    channels: base\n\n",
    ),
]


@pytest.mark.parametrize(("old", "new", "words", "at"), MISTAKES)
def test_story_mistakes_name_their_line(
    tmp_path: Path, old: str, new: str, words: str, at: str
) -> None:
    text = STORY_FILE.read_text(encoding="utf-8")
    assert old in text, "the story changed: update this case"
    broken = text.replace(old, new, 1)
    path = tmp_path / "story.yaml"
    path.write_text(broken, encoding="utf-8")
    with pytest.raises(WorkspaceError) as caught:
        load_story(path)
    (problem,) = caught.value.problems
    assert words in problem.message
    assert problem.line == broken[: broken.index(at)].count("\n") + 1
