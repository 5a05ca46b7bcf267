"""The DuckDB engine against the polars engine: identical aggregates and ledgers.

Both engines receive the frame the data layer loaded (run.prepare); their
Aggregates must be equal (same groups in the same order, baseline counts,
control cells and sharing) and so must attribute()+build_ledger on them. The
workspaces: test_differential's random and fixed scenarios, test_control_ledger's
control worlds, the generated sample, and Unicode / DST / regex edge cases.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("duckdb")
pytest.importorskip("sqlglot")

from engine_parity import check_parity, one_rule_world, write_shared_control_world
from hypothesis import HealthCheck, given, settings
from test_control_ledger import SHARED, world
from test_differential import (
    Scenario,
    fixed_scenario,
    scenarios,
    tie_scenario,
    write_scenario,
)

from chargeback.engine import duckdb_engine

REPO = Path(__file__).resolve().parents[1]


def assert_parity(ws_root: Path, contacts: str | None = None) -> tuple[float, float]:
    """Both engines on one workspace; returns their seconds (polars, duckdb)."""
    return check_parity(ws_root, duckdb_engine.aggregate, contacts)


def scenario_parity(sc: Scenario, root: Path) -> None:
    ws, csv_path = write_scenario(sc, root)
    assert_parity(ws, str(csv_path))


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(sc=scenarios())
def test_random_differential_workspaces(sc: Scenario) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        scenario_parity(sc, Path(tmp))


@pytest.mark.parametrize(
    ("seed", "overlap", "method", "header_map"),
    [
        (1, "split", "rates", {}),
        (2, "priority", "pool", {}),
        (3, "split", "pool", {"contact_id": "Ticket ID", "started_at": "Created at"}),
        (4, "priority", "rates", {}),
    ],
)
def test_fixed_differential_workspaces(
    tmp_path: Path, seed: int, overlap: str, method: str, header_map: dict[str, str]
) -> None:
    scenario_parity(fixed_scenario(seed, overlap, method, header_map), tmp_path)


def test_largest_remainder_ties(tmp_path: Path) -> None:
    scenario_parity(tie_scenario(), tmp_path)


def test_control_world(tmp_path: Path) -> None:
    world(tmp_path / "ws")
    assert_parity(tmp_path / "ws")


def test_control_shared_by_two_decisions(tmp_path: Path) -> None:
    write_shared_control_world(tmp_path / "ws", SHARED, 6000)
    assert_parity(tmp_path / "ws")


EDGE_RULES = """
departments:
  - {id: ops, name: Ops, cost_center: CC-1}
decisions:
  - {id: d1, title: D1, kind: fee, department: ops, effective: 2026-03-29}
  - {id: d2, title: D2, kind: fee, department: ops, effective: 2026-10-25, ends: 2026-11-01}
costs:
  currency: EUR
  method: rates
  channels: {phone: {per_contact: 1.00, per_minute: 0.10}, chat: {per_contact: 0.30}}
rules:
  - {id: strasse, decision: d1, match: {text: ["straße", "İstanbul"]}, window: {days: 3}}
  - {id: dotted-i, decision: d1, match: {text: ["i̇"]}}
  - {id: greek, decision: d2, match: {text: ["ΟΔΟ"]}, baseline: {lookback_days: 30}}
  - {id: digits, decision: d2, match: {text_regex: "\\\\d{3}"}}
  - {id: kelvin, decision: d1, match: {text_regex: "(?i)5k"}, window: {days: 1}}
  - {id: kelvin-sign, decision: d2, match: {text_regex: "5\u212a"}}
  - {id: dot-end, decision: d2, match: {text_regex: "a.b$"}}
  - {id: words, decision: d1, match: {text_regex: "\\\\bfee\\\\b", tags: ["x*"]}}
  - {id: sigma-re, decision: d2, match: {text_regex: "οδος"}}
  - {id: new-letters, decision: d1, match: {text: ["\u1c8a"]}}
"""
EDGE_TEXTS = [
    "STRASSE 5", "Straße 5", "İSTANBUL", "İstanbul office", "istanbul", "ΟΔΟΣ ΟΔΟΣ",
    "οδος", "Odos ΣΑΣ", "code 123", "code ١٢٣", "5K run", "5\u212a run", "5k",
    "a\nb", "a-b", "a-b\n", "the fee.", "feel", "\u1c89 new", "\u1c8a", "plain",
]  # fmt: skip
DST_STAMPS = [  # Europe/Berlin: spring forward 2026-03-29, fall back 2026-10-25
    "2026-03-28T23:30:00", "2026-03-29T01:59:59", "2026-03-29T03:00:00",
    "2026-03-28T23:30:00Z", "2026-10-24T22:30:00Z", "2026-10-25T02:30:00",
    "2026-10-25T00:30:00Z", "2026-10-31T23:30:00Z", "2026-11-01T23:30:00",
    "2026-09-30T22:00:00Z", "2026-03-31T22:00:00Z",
]  # fmt: skip


def test_unicode_dst_and_regex_edges(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    (ws / "rules").mkdir(parents=True)
    (ws / "rules" / "main.yaml").write_text(textwrap.dedent(EDGE_RULES), encoding="utf-8")
    (ws / "chargeback.yaml").write_text("contacts: contacts.csv\ntimezone: Europe/Berlin\n")
    rows = ["contact_id,started_at,channel,text,tags,handle_seconds"]
    for n in range(400):
        text = EDGE_TEXTS[n % len(EDGE_TEXTS)].replace('"', "")
        stamp = DST_STAMPS[n % len(DST_STAMPS)]
        rows.append(f'c{n},{stamp},{"phone" if n % 3 else "chat"},"{text}",x{n % 4},{n * 7}')
    (ws / "contacts.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    assert_parity(ws)


@pytest.mark.parametrize(
    ("match", "feature"),
    [
        ('{text: ["ΟΔΟΣ"]}', "sigma"),
        ('{text_regex: "\\\\p{Greek}"}', "property"),
        ('{text_regex: "\u1c89"}', "disagree"),
    ],
)
def test_what_duckdb_cannot_reproduce_is_refused(tmp_path: Path, match: str, feature: str) -> None:
    ws_model, loaded = one_rule_world(tmp_path / "ws", EDGE_RULES, match)
    with pytest.raises(NotImplementedError, match=feature):
        duckdb_engine.aggregate(ws_model, loaded.frame)


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dest = tmp_path_factory.mktemp("sample") / "ws"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "chargeback",
            "sample",
            str(dest),
            "--contacts",
            "4000",
            "--seed",
            "3",
        ],
        check=True,
        capture_output=True,
        cwd=REPO,
    )
    return dest


def test_generated_sample(sample: Path) -> None:
    polars_s, duckdb_s = assert_parity(sample)
    print(f"\nsample 4000 contacts: polars {polars_s:.3f}s, duckdb {duckdb_s:.3f}s")
