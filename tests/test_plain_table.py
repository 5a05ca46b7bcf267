"""The summary as plain text is, character for character, what rich draws without colour.

rich is the independent implementation here: terminal.summary_tables builds its
tables, plain_table.py lays out the same cells by hand, and any ledger whose
cells are plain (where summary_text answers at all) must come out identical,
trailing spaces included.
"""

from __future__ import annotations

import io
from decimal import Decimal
from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st
from rich.console import Console

from chargeback.engine.ledger import UNATTRIBUTED, Ledger, LedgerLine, PeriodSummary
from chargeback.plain_table import spread
from chargeback.terminal import summary_tables, summary_text

IDS = st.text(
    alphabet=st.sampled_from("abcdefghij-_0123456789") | st.sampled_from("é漢[:▲ "),
    min_size=1,
    max_size=40,
)
MONEY = st.integers(min_value=0, max_value=10**12).map(lambda c: Decimal(c).scaleb(-2))


def drawn_by_rich(ledger: Ledger, top: int | None, width: int) -> str:
    screen = Console(width=width, color_system=None, highlight=False, file=io.StringIO())
    for table in summary_tables(ledger, False, top, width):
        screen.print(table)
        screen.print()
    got = screen.file.getvalue()  # type: ignore[attr-defined]
    assert isinstance(got, str)
    return got


def line(
    period: str, decision: str, department: str, cost: Decimal, revenue: Decimal
) -> LedgerLine:
    return LedgerLine(
        period=period,
        department_id=department,
        cost_center="",
        decision_id=decision,
        contacts=Fraction(int(cost * 7), 3),
        handle_minutes=Fraction(0),
        cost=cost,
        revenue=revenue,
    )


@st.composite
def ledgers(draw: st.DrawFn, ids: st.SearchStrategy[str] = IDS) -> Ledger:
    currency = draw(st.sampled_from(["USD", "EUR", "JPY", ":x:", "[b]EUR"]))
    periods, lines = [], []
    for month in range(1, draw(st.integers(1, 3)) + 1):
        period = f"2026-{month:02d}"
        decisions = draw(st.lists(ids, max_size=8, unique=True))
        costs = [draw(MONEY) for _ in decisions]
        for decision, cost in zip(decisions, costs, strict=True):
            revenue = draw(st.sampled_from([Decimal(0), cost * 2, cost / 2]).map(round2))
            lines.append(line(period, decision, draw(ids), cost, revenue))
        rest = draw(MONEY)
        lines.append(line(period, UNATTRIBUTED, "", rest, Decimal(0)))
        total = sum(costs, rest)
        periods.append(
            PeriodSummary(
                period=period,
                contacts=draw(st.integers(0, 10**9)),
                handle_minutes=Fraction(0),
                cost=total,
                attributed_cost=total - rest,
                unattributed_cost=rest,
                revenue=Decimal(0),
            )
        )
    return Ledger(currency, tuple(periods), tuple(lines))


def round2(value: Decimal) -> Decimal:
    return value.quantize(Decimal("0.01"))


@settings(max_examples=300, deadline=None)
@given(
    ledgers(),
    st.sampled_from([None, 0, 1, 5]),
    st.sampled_from([30, 40, 60, 80, 132, 200]),
)
def test_plain_text_is_what_rich_draws(ledger: Ledger, top: int | None, width: int) -> None:
    got = summary_text(ledger, top, width)
    if got is not None:
        assert got == drawn_by_rich(ledger, top, width)


PLAIN_IDS = st.text(alphabet=st.sampled_from("abcdefghij-_0123456789"), min_size=1, max_size=24)


@settings(max_examples=100, deadline=None)
@given(ledgers(PLAIN_IDS), st.sampled_from([None, 5]), st.just(132))
def test_plain_ids_are_drawn_plainly(ledger: Ledger, top: int | None, width: int) -> None:
    """Ids of plain characters, at the width cron's output gets (console.py): the fast
    path answers. (A title wider than the terminal wraps, and rich draws that.)"""
    got = summary_text(ledger, top, width)
    assert got is not None
    assert got == drawn_by_rich(ledger, top, width)


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 300), st.lists(st.integers(1, 80), min_size=1, max_size=8))
def test_a_table_is_widened_as_rich_widens_it(extra: int, widths: list[int]) -> None:
    from rich._ratio import ratio_distribute  # rich's own, private: held here, not imported

    assert spread(extra, widths) == ratio_distribute(extra, widths)
