"""From exact attributed amounts to a ledger that adds up to the cent.

Within every period the lines (decisions plus the unattributed line) add up to
the period's total cost rounded half-up to cents. Each line's exact amount is
floored to cents and the missing cents go, one each, to the lines with the
largest remainders; ties by department_id, then decision_id (SPEC 4).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from itertools import groupby
from operator import itemgetter

from chargeback.engine.amounts import fraction_sum
from chargeback.engine.attribute import Attribution
from chargeback.engine.costing import US_PER_MINUTE
from chargeback.engine.dates import month_bounds
from chargeback.workspace.model import Decision, Workspace

UNATTRIBUTED = "unattributed"
CENT = Decimal("0.01")


@dataclass(frozen=True)
class LedgerLine:
    period: str
    department_id: str
    cost_center: str
    decision_id: str
    contacts: Fraction
    handle_minutes: Fraction
    cost: Decimal  # cents, exact
    revenue: Decimal
    title: str = ""
    kind: str = ""
    # SPEC 4b: (level, (contacts low, high), (cost low, high)) where a control rule weighs
    range: tuple[Decimal, tuple[Fraction, Fraction], tuple[Fraction, Fraction]] | None = None

    @property
    def net(self) -> Decimal:
        return self.revenue - self.cost

    @property
    def is_unattributed(self) -> bool:
        return self.decision_id == UNATTRIBUTED

    @property
    def has_revenue(self) -> bool:
        """Revenue declared for this period, as printed to the cent (SPEC 4)."""
        return half_up_units(Fraction(self.revenue), 2) != 0

    @property
    def net_negative(self) -> bool:
        """The one flag (SPEC 4): it costs more in service than it collects.

        Every output reads this property: ledger.json's `net_negative`, the
        terminal's ▲, the statements, the summary and the e-mails.
        """
        return not self.is_unattributed and flags_net(self.revenue, self.cost)


def flags_net(revenue: Decimal, cost: Decimal) -> bool:
    """Revenue and a negative net, both as printed to the cent (SPEC 4, "Revenue and net").

    A figure without revenue (an outage, a launch) is a cost, not a bad bargain:
    its net is -cost but it is never flagged. Shared by lines and the totals of
    several lines (a department's net on its statement), so they cannot disagree.
    """
    revenue_cents = half_up_units(Fraction(revenue), 2)  # exact at any size, unlike quantize
    net_cents = revenue_cents - half_up_units(Fraction(cost), 2)
    return revenue_cents != 0 and net_cents < 0


@dataclass(frozen=True)
class PeriodSummary:
    period: str
    contacts: int
    handle_minutes: Fraction
    cost: Decimal
    attributed_cost: Decimal
    unattributed_cost: Decimal
    revenue: Decimal

    @property
    def attributed_share(self) -> Fraction:
        return Fraction(self.attributed_cost) / Fraction(self.cost) if self.cost else Fraction(0)

    @property
    def net(self) -> Decimal:
        return self.revenue - self.cost


@dataclass(frozen=True)
class Ledger:
    currency: str
    periods: tuple[PeriodSummary, ...]
    lines: tuple[LedgerLine, ...]

    def lines_for(self, period: str) -> list[LedgerLine]:
        return [line for line in self.lines if line.period == period]


_RANK_BITS = 64  # a remainder's leading bits, enough to rank nearly all of them


def half_up_units(value: Fraction, places: int) -> int:
    """An exact value in units of 10**-places, rounded half-up (away from zero on .5)."""
    scaled = abs(value) * 10**places
    units = int((scaled.numerator * 2 + scaled.denominator) // (scaled.denominator * 2))
    return units if value >= 0 else -units


def units_decimal(units: int, places: int) -> Decimal:
    """units x 10**-places as a Decimal, exactly: built from its digits, so no decimal
    context (28 significant digits by default) rounds it, as scaleb or * would."""
    return Decimal(f"{units}E-{places}")


def half_up(value: Fraction, places: int) -> Decimal:
    """Round an exact value half-up (away from zero on .5) to `places` decimals."""
    return units_decimal(half_up_units(value, places), places)


def largest_remainder(
    amounts: list[tuple[tuple[str, str], Fraction]], total_cents: int
) -> dict[tuple[str, str], int]:
    """Cents per key: floors, then one cent each to the largest remainders.

    Keys are (department_id, decision_id) and also break ties, ascending.
    Remainders are ranked by their first 64 bits, and exactly only where those
    tie: sorting Fractions of hundreds of bits compared them by cross products,
    seconds at 300 rules.
    """
    floors: dict[tuple[str, str], int] = {}
    ranked: list[tuple[int, tuple[str, str], int, int]] = []
    for key, amount in amounts:
        num, den = amount.numerator * 100, amount.denominator
        floor = num // den
        floors[key] = floor
        rest = num - floor * den  # 0 <= rest < den
        ranked.append((-((rest << _RANK_BITS) // den), key, rest, den))
    missing = total_cents - sum(floors.values())
    if not 0 <= missing <= len(ranked):
        raise ArithmeticError(f"largest remainder cannot place {missing} cents")  # not reachable
    ranked.sort()
    placed: list[tuple[int, tuple[str, str], int, int]] = []
    for _, run in groupby(ranked, key=itemgetter(0)):  # equal leading bits: exactly, then key
        tied = list(run)
        if len(tied) > 1:
            tied.sort(key=lambda r: (Fraction(-r[2], r[3]), r[1]))
        placed += tied
    for _, key, _, _ in placed[:missing]:
        floors[key] += 1
    return floors


def decision_revenue(decision: Decision, period: str) -> Decimal:
    """The decision's revenue in the period, to the cent (0 outside its months)."""
    if decision.revenue is None:
        return Decimal("0.00")
    first, last = month_bounds(period)
    if not decision.in_force_during(first, last):
        return Decimal("0.00")
    # exactly, whatever its size: Decimal.quantize raises past the context's 28 digits
    return half_up(Fraction(decision.revenue.for_period(period)), 2)


def _range(
    ws: Workspace, attribution: Attribution, period: str, decision_id: str
) -> tuple[Decimal, tuple[Fraction, Fraction], tuple[Fraction, Fraction]] | None:
    """The line's low and high contacts and cost at its control rules' level (SPEC 4b)."""
    amounts = attribution.ranges.get((period, decision_id))
    if amounts is None:
        return None
    low, high = amounts
    level = max(
        r.control.interval for r in ws.rules if r.decision == decision_id and r.control is not None
    )
    return (
        level,
        (min(low.contacts, high.contacts), max(low.contacts, high.contacts)),
        (min(low.cost, high.cost), max(low.cost, high.cost)),
    )


def build_ledger(ws: Workspace, attribution: Attribution, periods: list[str]) -> Ledger:
    lines: list[LedgerLine] = []
    summaries: list[PeriodSummary] = []
    for period in periods:
        totals = attribution.periods.get(period)
        n = totals.contacts if totals else 0
        hs = totals.hs_us if totals else 0
        exact_total = totals.cost if totals else Fraction(0)
        total_cents = half_up_units(exact_total, 2)

        candidates = []
        for decision in ws.decisions:
            amount = attribution.lines.get((period, decision.id))
            revenue = decision_revenue(decision, period)
            if (amount is not None and amount.weighted) or revenue != 0:
                candidates.append((decision, amount, revenue))
        charged = [a for _, a, _ in candidates if a is not None and a.weighted]
        exact = [
            ((d.department, d.id), a.cost if a and a.weighted else Fraction(0))
            for d, a, _ in candidates
        ]
        attributed = fraction_sum(a.cost for a in charged)
        exact.append(((UNATTRIBUTED, UNATTRIBUTED), exact_total - attributed))
        cents = largest_remainder(exact, total_cents)

        left_contacts = n - fraction_sum(a.contacts for a in charged)
        left_hs = hs - fraction_sum(a.hs_us for a in charged)
        for decision, amount, revenue in candidates:
            weighted = amount is not None and amount.weighted
            contacts = amount.contacts if amount and weighted else Fraction(0)
            hs_w = amount.hs_us if amount and weighted else Fraction(0)
            lines.append(
                LedgerLine(
                    period=period,
                    department_id=decision.department,
                    cost_center=ws.department(decision.department).cost_center,
                    decision_id=decision.id,
                    contacts=contacts,
                    handle_minutes=hs_w / US_PER_MINUTE,
                    cost=units_decimal(cents[decision.department, decision.id], 2),
                    revenue=revenue,
                    title=decision.title,
                    kind=decision.kind,
                    range=_range(ws, attribution, period, decision.id),
                )
            )
        unattributed_cents = cents[UNATTRIBUTED, UNATTRIBUTED]
        unattributed_cost = units_decimal(unattributed_cents, 2)
        lines.append(
            LedgerLine(
                period=period,
                department_id=UNATTRIBUTED,
                cost_center="",
                decision_id=UNATTRIBUTED,
                contacts=left_contacts,
                handle_minutes=left_hs / US_PER_MINUTE,
                cost=unattributed_cost,
                revenue=Decimal("0.00"),
            )
        )
        summaries.append(
            PeriodSummary(
                period=period,
                contacts=n,
                handle_minutes=Fraction(hs, US_PER_MINUTE),
                cost=units_decimal(total_cents, 2),
                attributed_cost=units_decimal(total_cents - unattributed_cents, 2),
                unattributed_cost=unattributed_cost,
                revenue=half_up(sum((Fraction(r) for _, _, r in candidates), Fraction(0)), 2),
            )
        )
    lines.sort(key=lambda ln: (ln.period, ln.department_id, ln.decision_id))
    return Ledger(currency=ws.costs.currency, periods=tuple(summaries), lines=tuple(lines))
