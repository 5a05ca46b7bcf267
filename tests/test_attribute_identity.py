"""attribute() gives, to the last digit, what the algorithm before issue 15's speed-up gave.

tests/attribute_oracle.py is that algorithm, frozen: a decision_weights and a
Fraction cost per group. attribute() now sums groups as integers and weighs each
(month, decision, weight) once (engine/amounts.py); these tests hold every
Fraction of every line, month, rule and range, the warnings and the lines' order
to the oracle's, on:

- random aggregates on workspaces with several rules per decision, shares that
  tie or add up past 1, baselines, both overlaps, rates and pools (an empty pool,
  months without handle time);
- the differential test's generated workspaces, through the polars engine;
- the control-baseline worlds (cells, markers, shared excess, ranges);
- the generated sample workspace (both overlaps).
"""

from __future__ import annotations

import tempfile
from dataclasses import replace
from pathlib import Path

import pytest
from attribute_oracle import oracle_attribute
from conftest import write_workspace
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from test_control_ledger import world, write_shared_world
from test_differential import Scenario, scenarios, write_scenario

from chargeback.engine import polars_engine
from chargeback.engine.aggregates import Aggregates, Group, GroupTable
from chargeback.engine.attribute import Attribution, attribute
from chargeback.engine.costing import too_costly
from chargeback.engine.ledger import build_ledger
from chargeback.errors import ChargebackError, WorkspaceError
from chargeback.inputs import prepare
from chargeback.report import ReportOptions, Steps
from chargeback.sample.generate import generate_sample
from chargeback.workspace.load import load_workspace
from chargeback.workspace.model import Workspace

PERIODS = ("2026-02", "2026-03", "2026-04")
CHANNELS = ("phone", "chat", "email", "social")

# Four decisions, nine rules: fee and app have two and three rules (the largest
# weight counts), shares tie across decisions, several add up past 1, three rules
# have flat baselines and two have priority 1.
RULES = """
decisions:
  - {id: fee, title: Fee, kind: fee, department: billing, effective: 2026-03-01}
  - {id: app, title: App, kind: launch, department: product, effective: 2026-02-15,
     ends: 2026-04-10}
  - {id: promo, title: Promo, kind: campaign, department: product, effective: 2026-03-10}
  - {id: late, title: Late, kind: policy, department: billing, effective: 2026-01-01}
rules:
  - {id: r0, decision: fee, match: {reason: [a]}, share: 0.6, priority: 1}
  - {id: r1, decision: fee, match: {reason: [b]}, share: 0.35,
     baseline: {lookback_days: 28}}
  - {id: r2, decision: app, match: {reason: [c]}, share: 0.6}
  - {id: r3, decision: app, match: {reason: [d]}, share: 0.0000000005}
  - {id: r4, decision: app, match: {reason: [e]}, baseline: {lookback_days: 31},
     window: {start_offset_days: 3, days: 40}}
  - {id: r5, decision: promo, match: {reason: [f]}, share: 0.35}
  - {id: r6, decision: promo, match: {reason: [g]}, priority: 1,
     baseline: {lookback_days: 7}}
  - {id: r7, decision: late, match: {reason: [h]}, share: 0.6}
  - {id: r8, decision: late, match: {reason: [i]}, share: 0.999}
"""
CONTACTS = (
    "contact_id,started_at,channel,reason,handle_seconds\nc1,2026-03-02T10:00:00,phone,a,60\n"
)
RATES = """
costs:
  currency: USD
  method: rates
  channels:
    phone: {per_contact: 0.40, per_minute: 1.05}
    chat: {per_contact: 0.15, per_minute: 0.33}
    email: {per_minute: 0.07}
  default: {per_contact: 1.00}
"""
POOL = """
costs:
  currency: USD
  method: pool
  pool: {by_period: {2026-02: 1000.00, 2026-03: 0, 2026-04: 12345.67}}
"""


def assert_same(ws: Workspace, aggregates: Aggregates) -> Attribution:
    """attribute() against the oracle: every exact figure, and the ledger they give."""
    want = oracle_attribute(ws, aggregates)
    try:
        got = attribute(ws, aggregates)
    except WorkspaceError:  # a month too costly to carry: the oracle's totals say so too
        assert too_costly(ws.costs, {p: t.cost for p, t in want.periods.items()})
        return want
    assert got.periods == want.periods
    assert got.lines == want.lines
    assert list(got.lines) == list(want.lines)
    for line, amount in got.lines.items():  # the very values, not only equal ones
        other = want.lines[line]
        assert (amount.contacts.as_integer_ratio(), amount.cost.as_integer_ratio()) == (
            other.contacts.as_integer_ratio(),
            other.cost.as_integer_ratio(),
        )
    assert got.rules == want.rules
    assert {r: list(s.matched) for r, s in got.rules.items()} == {
        r: list(s.matched) for r, s in want.rules.items()
    }
    assert got.ranges == want.ranges
    assert got.cell_factors == want.cell_factors
    assert got.warnings == want.warnings
    assert got.groups == want.groups
    periods = sorted(got.periods)
    assert build_ledger(ws, got, periods) == build_ledger(ws, want, periods)
    return got


# ------------------------------------------------------------------ random aggregates


def _workspace(root: Path, costs: str, overlap: str) -> Workspace:
    write_workspace(root, RULES, CONTACTS, settings=f"overlap: {overlap}\n", costs=costs)
    return load_workspace(root)


@pytest.fixture(scope="module")
def workspaces(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], Workspace]:
    root = tmp_path_factory.mktemp("identity")
    return {
        (method, overlap): _workspace(root / f"{method}-{overlap}", costs, overlap)
        for method, costs in (("rates", RATES), ("pool", POOL))
        for overlap in ("split", "priority")
    }


groups_strategy = st.lists(
    st.tuples(
        st.sampled_from(PERIODS),
        st.sampled_from(CHANNELS),
        st.frozensets(st.integers(0, 8), max_size=6),
        st.integers(1, 10**6),
        st.one_of(st.just(0), st.integers(0, 10**12)),
    ),
    min_size=1,
    max_size=60,
)


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    rows=groups_strategy,
    counts=st.tuples(st.integers(0, 5000), st.integers(0, 5000), st.integers(0, 5000)),
    method=st.sampled_from(["rates", "pool"]),
    overlap=st.sampled_from(["split", "priority"]),
)
def test_random_aggregates_give_the_oracles_exact_figures(
    workspaces: dict[tuple[str, str], Workspace],
    rows: list[tuple[str, str, frozenset[int], int, int]],
    counts: tuple[int, int, int],
    method: str,
    overlap: str,
) -> None:
    ws = workspaces[method, overlap]
    groups = tuple(Group(p, ch, m, n, hs) for p, ch, m, n, hs in rows)
    baseline = dict(zip(("r1", "r4", "r6"), counts, strict=True))
    assert_same(ws, Aggregates(groups=groups, baseline_counts=baseline))


def test_many_groups_of_one_key_and_every_weight_tie(
    workspaces: dict[tuple[str, str], Workspace],
) -> None:
    """Keys split over channels, decisions tying at the top rank, sums of exactly 1."""
    every = frozenset(range(9))
    rows = [
        Group(p, ch, m, 3 + k, 7_000_000 * k)
        for k, (p, ch, m) in enumerate(
            (p, ch, m)
            for p in PERIODS
            for ch in CHANNELS
            for m in (every, frozenset({0, 2}), frozenset({2, 7}), frozenset({5, 1}), every)
        )
    ]
    for key in workspaces:
        assert_same(workspaces[key], Aggregates(tuple(rows), {"r1": 0, "r4": 31, "r6": 700}))


# ------------------------------------------------------------ generated workspaces


def _aggregates(ws_dir: Path, contacts: Path | None = None) -> tuple[Workspace, Aggregates]:
    opts = ReportOptions(workspace=ws_dir, contacts=None if contacts is None else str(contacts))
    ws, loaded = prepare(opts, Steps())
    return ws, polars_engine.aggregate(ws, loaded.frame)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(sc=scenarios())
def test_generated_workspaces_give_the_oracles_exact_figures(sc: Scenario) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        ws_dir, contacts = write_scenario(sc, Path(tmp))
        try:
            ws, aggregates = _aggregates(ws_dir, contacts)
        except ChargebackError:
            assume(False)
            return
        assert_same(ws, aggregates)


# ------------------------------------------------------------------ control baselines


def test_control_world_gives_the_oracles_exact_figures_and_ranges(tmp_path: Path) -> None:
    world(tmp_path / "ws")
    ws, aggregates = _aggregates(tmp_path / "ws")
    got = assert_same(ws, aggregates)
    assert got.ranges and got.cell_factors


def test_shared_control_excess_gives_the_oracles_exact_figures(tmp_path: Path) -> None:
    ws_dir = tmp_path / "ws"
    write_shared_world(ws_dir)
    ws, aggregates = _aggregates(ws_dir)
    assert_same(ws, aggregates)
    assert_same(replace(ws, settings=replace(ws.settings, overlap="priority")), aggregates)


def test_a_marker_beside_a_control_rule_gives_the_oracles_exact_figures(tmp_path: Path) -> None:
    world(tmp_path / "ws")
    rules = (tmp_path / "ws" / "rules" / "main.yaml").read_text() + (
        "  - {id: fee-marker, decision: fee, match: {reason: [billing.fee]}, share: 0.5}\n"
        "  - {id: other-rule, decision: fee, match: {reason: [other]}, share: 0.25}\n"
    )
    (tmp_path / "ws" / "rules" / "main.yaml").write_text(rules)
    ws, aggregates = _aggregates(tmp_path / "ws")
    assert_same(ws, aggregates)


# ---------------------------------------------------------------------------- sample


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> tuple[Workspace, Aggregates]:
    root = tmp_path_factory.mktemp("sample") / "ws"
    generate_sample(root, contacts=40_000, seed=7)
    return _aggregates(root)


@pytest.mark.parametrize("overlap", ["split", "priority"])
def test_the_sample_gives_the_oracles_exact_figures(
    sample: tuple[Workspace, Aggregates], overlap: str
) -> None:
    ws, aggregates = sample
    ws = replace(ws, settings=replace(ws.settings, overlap=overlap))
    got = assert_same(ws, aggregates)
    assert len(got.lines) > 20 and got.ranges


# ------------------------------------------- the columns' edges (engine/columnar.py)

# Twenty-four decisions of one rule each, every share its own: a key's ranks then take
# more than 64 bits to pack (columnar.row_ids renumbers as it goes); three rules of
# priority 1, two flat baselines.
WIDE = 24
WIDE_RULES = (
    "decisions:\n"
    + "".join(
        f"  - {{id: d{k}, title: D{k}, kind: fee, department: "
        f"{'billing' if k % 2 else 'product'}, effective: 2026-02-0{1 + k % 9}}}\n"
        for k in range(WIDE)
    )
    + "rules:\n"
    + "".join(
        f"  - {{id: w{k}, decision: d{k}, match: {{reason: [x{k}]}}, share: 0.0{k + 10}"
        + (", priority: 1" if k in (3, 11, 19) else "")
        + (", baseline: {lookback_days: 14}" if k in (5, 17) else "")
        + "}\n"
        for k in range(WIDE)
    )
)
huge = st.integers(2**62, 2**64)


@pytest.fixture(scope="module")
def wide(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], Workspace]:
    root = tmp_path_factory.mktemp("wide")
    out = {}
    for method, costs in (("rates", RATES), ("pool", POOL)):
        for overlap in ("split", "priority"):
            folder = root / f"{method}-{overlap}"
            write_workspace(folder, WIDE_RULES, CONTACTS, f"overlap: {overlap}\n", costs=costs)
            out[method, overlap] = load_workspace(folder)
    return out


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    rows=st.lists(
        st.tuples(
            st.sampled_from(PERIODS),
            st.sampled_from(CHANNELS),
            st.one_of(
                st.frozensets(st.integers(0, WIDE - 1), max_size=4),
                st.frozensets(st.integers(0, WIDE - 1), min_size=14, max_size=WIDE),
            ),
            st.integers(1, 10**6),
            st.integers(0, 10**12),
        ),
        min_size=1,
        max_size=40,
    ),
    past=st.one_of(st.none(), st.tuples(st.integers(0, 39), huge, huge)),
    counts=st.tuples(st.integers(0, 5000), st.integers(0, 5000)),
    method=st.sampled_from(["rates", "pool"]),
    overlap=st.sampled_from(["split", "priority"]),
)
def test_many_decisions_on_a_key_and_sums_past_64_bits(
    wide: dict[tuple[str, str], Workspace],
    rows: list[tuple[str, str, frozenset[int], int, int]],
    past: tuple[int, int, int] | None,
    counts: tuple[int, int],
    method: str,
    overlap: str,
) -> None:
    """Keys of up to 24 decisions (their ranks packed past 64 bits), and a group whose
    contacts and handle time do not fit in 64 bits (then amounts.py, one key at a time):
    the oracle's figures."""
    if past is not None:
        at = past[0] % len(rows)
        p, ch, m, _, _ = rows[at]
        rows[at] = (p, ch, m, past[1], past[2])
    groups = tuple(Group(p, ch, m, n, hs) for p, ch, m, n, hs in rows)
    baseline = dict(zip(("w5", "w17"), counts, strict=True))
    assert_same(wide[method, overlap], Aggregates(groups=groups, baseline_counts=baseline))


def test_the_polars_engines_table_is_its_groups(sample: tuple[Workspace, Aggregates]) -> None:
    """The engine's groups come as columns (aggregates.GroupTable): equal to the Group
    objects they stand for, channel by channel alike."""
    _, aggregates = sample
    as_groups = replace(aggregates, groups=tuple(aggregates.groups))
    assert isinstance(aggregates.groups, GroupTable)
    assert aggregates == as_groups and as_groups == aggregates
    assert list(aggregates.groups) == list(as_groups.groups)
    got, want = aggregates.contacts_by_channel(), as_groups.contacts_by_channel()
    assert list(got.items()) == list(want.items())
