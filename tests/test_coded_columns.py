"""The data layer's category codes (`_cat_<name>`), kept for matching, stand for the typed
column exactly: only where typing keeps the column as read, and matching with them gives
the bits matching without them gives."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from conftest import write_workspace
from test_engine_choice import RULES

from chargeback.data import rows
from chargeback.data.tables import load_contacts
from chargeback.engine.matching import match_frame
from chargeback.workspace.load import load_workspace
from chargeback.workspace.model import ValueMap

WANTED = {"contact_id", "started_at", "channel", "reason", "text", "handle_seconds", "region"}
CONTACTS = """
contact_id,started_at,channel,reason,text,handle_seconds,region
c1,2026-03-02T09:00:00Z,email,billing.fee,late fee 20 charged,0,North
c2,2026-03-03T23:30:00-05:00, phone,billing.fee_dispute,LATE Fee  10 again,125.5,South
c3,2026-03-11,chat,product.app,the app crashed at LOGIN,30,
c4,2026-03-12T10:00:00,chat,,Grüße: ÄPP? appliance,0,North
c5,2026-02-27T12:00:00Z,phone,billing.fee,late fee 5,60,N
c6,2026-03-13T10:00:00,chat,other,the app crashed at LOGIN,0,N
"""


@pytest.fixture()
def ws(tmp_path: Path) -> Path:
    return write_workspace(tmp_path / "ws", RULES, CONTACTS)


def coded(frame: pl.DataFrame) -> set[str]:
    return {c[len(rows.CODED) :] for c in frame.columns if c.startswith(rows.CODED)}


def test_codes_only_where_typing_keeps_the_column_as_read(
    ws: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rows, "REPEATED", 0)  # text coded by its distinct values too
    values = [ValueMap("region", (("N", "North"),))]
    loaded = load_contacts(ws, "contacts.csv", {}, WANTED, "UTC", None, "stop", values=values)
    frame = loaded.frame
    # channel has a padded value (trimmed by typing), region a `values:` mapping
    assert coded(frame) == {"reason", "text"}
    for name in coded(frame):
        decoded = frame.get_column(f"{rows.CODED}{name}").cast(pl.String)
        assert decoded.equals(frame.get_column(name), check_names=False)
    assert frame.get_column("region").to_list() == ["North", "South", None, "North"] + ["North"] * 2


@pytest.mark.parametrize("repeated", [0, 10**9])
def test_matching_with_the_codes_is_matching_without(
    ws: Path, monkeypatch: pytest.MonkeyPatch, repeated: int
) -> None:
    monkeypatch.setattr(rows, "REPEATED", repeated)
    workspace = load_workspace(ws)
    loaded = load_contacts(ws, "contacts.csv", {}, WANTED, "UTC", None, "stop")
    frame = loaded.frame
    assert "reason" in coded(frame)
    plain = frame.drop([c for c in frame.columns if c.startswith(rows.CODED)])
    with_codes = match_frame(workspace, frame, ["contact_id"])
    without = match_frame(workspace, plain, ["contact_id"])
    assert with_codes.equals(without)
    assert with_codes.filter(pl.col("contact_id") == "c4").height == 1  # a null reason too
