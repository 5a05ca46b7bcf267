"""Whether a tags column is already clean is decided on its distinct tags, found once."""

from __future__ import annotations

import polars as pl
import pytest

from chargeback.data.checks import _tags_already_clean


@pytest.mark.parametrize(
    ("lists", "clean"),
    [
        ([["a", "b"], ["b"], [], None], True),
        ([[], None], True),  # no tag at all
        ([["a"], ["a", None]], False),  # a null tag
        ([["a"], [""]], False),  # a blank one
        ([["a"], ["b "]], False),  # padded
        ([["a"], ["\u00a0b"]], False),  # padded with a White_Space polars trims
        ([["é"], ["漢字"]], True),
    ],
)
def test_a_tag_list_is_clean_only_when_every_tag_is(
    lists: list[list[str] | None], clean: bool
) -> None:
    frame = pl.DataFrame({"tags": lists}, schema={"tags": pl.List(pl.String)})
    assert frame.select(_tags_already_clean(pl.col("tags"))).item() is clean


def test_text_tags_are_split_first() -> None:
    frame = pl.DataFrame({"tags": ["a|b", "b", None]})
    assert frame.select(_tags_already_clean(pl.col("tags").str.split("|"))).item() is True
    padded = pl.DataFrame({"tags": ["a| b"]})
    assert padded.select(_tags_already_clean(pl.col("tags").str.split("|"))).item() is False
