"""The polars engine's groups: decoded in bulk, they are what decode_masks gives row by row.

groups_from_rows decodes each distinct row of `_m*` masks once, with numpy
(bulk_decode); the sets must be decode_masks' own, inserted lowest rule first
(attribution walks them in that order), for any bits in any of the columns.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import polars as pl
import pytest
from conftest import write_workspace
from hypothesis import given, settings
from hypothesis import strategies as st

from chargeback.data import rows
from chargeback.engine import matching, polars_engine
from chargeback.engine.compile import match_expr, with_text_lower
from chargeback.engine.polars_engine import MASK_BITS, bulk_decode, decode_masks
from chargeback.inputs import prepare
from chargeback.report import ReportOptions, Steps
from chargeback.sample.generate import generate_sample

masks = st.integers(1, 5).flatmap(
    lambda width: st.lists(
        st.lists(
            st.one_of(st.just(0), st.integers(0, (1 << MASK_BITS) - 1)),
            min_size=width,
            max_size=width,
        ),
        min_size=1,
        max_size=40,
    )
)


@settings(max_examples=200, deadline=None)
@given(rows=masks)
def test_bulk_decode_is_decode_masks_row_by_row(rows: list[list[int]]) -> None:
    frame = pl.DataFrame(
        rows, schema={f"_m{k}": pl.Int64 for k in range(len(rows[0]))}, orient="row"
    )
    index, sets = bulk_decode(frame)
    assert len(index) == len(rows)
    for row, k in zip(rows, index.tolist(), strict=True):
        want = decode_masks(row)
        assert sets[k] == want
        assert list(sets[k]) == list(want)
    assert len(sets) == len({tuple(r) for r in rows})


def test_no_rows_no_sets() -> None:
    index, sets = bulk_decode(pl.DataFrame(schema={"_m0": pl.Int64}))
    assert len(index) == 0 and sets == []


def test_matching_a_slice_at_a_time_gives_the_same_aggregates(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """match_frame works in slices of MATCH_SLICE rows (the per-row lookups' scratch is a
    slice's): any slice size gives the aggregates of one slice, with and without control
    baselines (the generated sample has both kinds of rule)."""
    root = tmp_path / "ws"
    generate_sample(root, contacts=20_000, seed=3)
    ws, loaded = prepare(ReportOptions(workspace=root), Steps())
    whole = polars_engine.aggregate(ws, loaded.frame)
    plain = replace(ws, rules=tuple(r for r in ws.rules if r.control is None))
    whole_plain = polars_engine.aggregate(plain, loaded.frame)
    monkeypatch.setattr(matching, "MATCH_SLICE", 777)
    assert polars_engine.aggregate(ws, loaded.frame) == whole
    assert polars_engine.aggregate(plain, loaded.frame) == whole_plain


@pytest.mark.parametrize("repeat", [0, 10**9], ids=["texts-by-category", "texts-row-by-row"])
def test_every_rules_bits_are_its_match_expr(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, repeat: int
) -> None:
    """match_frame's bits, whichever route a column takes (text columns coded as
    categories, dates by their distance from the first day, distinct texts searched once
    or every row searched), are each rule's match_expr, nulls included."""
    root = tmp_path / "ws"
    generate_sample(root, contacts=6_000, seed=5)
    ws, loaded = prepare(ReportOptions(workspace=root), Steps())
    row = pl.int_range(pl.len())
    frame = loaded.frame.with_columns(  # nulls and a few texts of their own
        pl.when(row % 7 == 0).then(None).otherwise(pl.col("text")).alias("text"),
        pl.when(row % 11 == 0).then(None).otherwise(pl.col("reason")).alias("reason"),
    ).with_columns(
        pl.when(row % 13 == 0)
        .then(pl.lit("ÉCRAN cassé, Wi-Fi down · ") + pl.col("contact_id"))
        .otherwise(pl.col("text"))
        .alias("text"),
    )
    monkeypatch.setattr(rows, "REPEATED", repeat)
    bits = matching.match_frame(ws, frame, ["contact_id"])
    want = (
        frame.lazy()
        .pipe(lambda lf: with_text_lower(lf, ws))
        .select([match_expr(r.match).alias(str(i)) for i, r in enumerate(ws.rules)])
    )
    want_frame = want.collect()
    for i in range(len(ws.rules)):
        got = (bits.get_column(f"_k{i // MASK_BITS}") & (1 << (i % MASK_BITS))) != 0
        assert got.to_list() == want_frame.get_column(str(i)).to_list(), ws.rules[i].id


@pytest.mark.parametrize("repeat", [0, 10**9], ids=["texts-by-category", "texts-row-by-row"])
def test_a_fields_condition_on_text_beside_text_rules(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, repeat: int
) -> None:
    """`fields: {text: ...}` looks the text up like any column while `text:` rules search
    it: coded once, on either route (coding it twice once stopped the run)."""
    root = write_workspace(
        tmp_path / "ws",
        """
        decisions:
          - {id: fee, title: Fee, department: billing, effective: 2024-01-01, kind: fee}
        rules:
          - {id: r1, decision: fee, match: {fields: {text: ["late fee"]}}}
          - {id: r2, decision: fee, match: {text: ["other"]}}
        """,
        """
        contact_id,started_at,channel,handle_seconds,reason,text
        c1,2025-03-01T10:00:00Z,phone,60,billing,late fee
        c2,2025-03-02T10:00:00Z,phone,60,billing,late fee
        c3,2025-03-03T10:00:00Z,phone,60,billing,other
        c4,2025-03-04T10:00:00Z,phone,60,billing,other
        """,
    )
    monkeypatch.setattr(rows, "REPEATED", repeat)
    ws, loaded = prepare(ReportOptions(workspace=root), Steps())
    bits = matching.match_frame(ws, loaded.frame, ["contact_id"])
    assert bits.get_column("_k0").to_list() == [1, 1, 2, 2]
