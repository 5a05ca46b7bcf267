"""The cost of contacts, exactly: `rates` per channel, or a monthly `pool`."""

from __future__ import annotations

from fractions import Fraction
from math import lcm
from typing import Protocol

from chargeback.errors import Problem, problem_at
from chargeback.workspace.model import Costs

US_PER_MINUTE = 60_000_000
# A month's cost beyond this is a pricing mistake (a rate in cents read as dollars,
# a per-minute rate meant per hour ...), and past it the figures would no longer
# print exactly: every later step keeps money in Decimals of 28 digits and in
# 64-bit cents, and 10**15 leaves both room to sum many months.
MAX_PERIOD_COST = 10**15


class _Totals(Protocol):
    contacts: int
    hs_us: int


class GroupCoster:
    """Cost of a group of contacts sharing a month and channel.

    Works on sums (count, handle microseconds), which is exact for both
    methods because each is linear in the contacts it prices.
    """

    def __init__(self, costs: Costs) -> None:
        self.costs = costs
        self._rates: dict[str, tuple[Fraction, Fraction] | None] = {}
        self._empty_pools: set[str] = set()

    def _rate(self, channel: str) -> tuple[Fraction, Fraction] | None:
        if channel not in self._rates:
            rate = self.costs.rate_for(channel)
            self._rates[channel] = (
                None if rate is None else (Fraction(rate.per_contact), Fraction(rate.per_minute))
            )
        return self._rates[channel]

    def group_cost(
        self, period: str, channel: str, n: int, hs_us: int, totals: _Totals
    ) -> Fraction:
        if self.costs.method == "pool":
            pool = Fraction(self.costs.pool_for(period))
            if pool == 0:
                self._empty_pools.add(period)
            if totals.hs_us > 0:
                return pool * hs_us / totals.hs_us
            return pool * n / totals.contacts
        rate = self._rate(channel)
        if rate is None:  # only check gets here: every run refuses it (unpriced_channels)
            return Fraction(0)
        per_contact, per_minute = rate
        return per_contact * n + per_minute * Fraction(hs_us, US_PER_MINUTE)

    def linear(self, period: str, channel: str, totals: _Totals) -> tuple[Fraction, Fraction]:
        """(a, b) such that group_cost(period, channel, n, hs_us, totals) = a x n + b x hs_us.

        Both methods are linear in a group's sums, so attribution puts a month's
        coefficients over one denominator and prices its groups in integers.
        """
        if self.costs.method == "pool":
            pool = Fraction(self.costs.pool_for(period))
            if pool == 0:
                self._empty_pools.add(period)
            if totals.hs_us > 0:
                return Fraction(0), pool / totals.hs_us
            return pool / totals.contacts, Fraction(0)
        rate = self._rate(channel)
        if rate is None:  # as group_cost
            return Fraction(0), Fraction(0)
        per_contact, per_minute = rate
        return per_contact, per_minute / US_PER_MINUTE

    def rates_denominator(self) -> int:
        """With `rates`: a denominator of every channel's coefficients (linear), listed or not."""
        rates = [rate for _, rate in self.costs.channels]
        rates += [self.costs.default] if self.costs.default is not None else []
        parts = [Fraction(r.per_contact) for r in rates]
        parts += [Fraction(r.per_minute) / US_PER_MINUTE for r in rates]
        return lcm(1, *(x.denominator for x in parts))

    def warnings(self) -> list[str]:
        out = []
        if self._empty_pools:
            out.append(f"the cost pool is 0 for {', '.join(sorted(self._empty_pools))}")
        return out


def unpriced_channels(costs: Costs, contacts_by_channel: dict[str, int]) -> list[Problem]:
    """SPEC 3: with `rates`, a channel with no rate and no `default` stops the run.

    Pricing it at 0 by omission would hide a whole channel's cost from every
    statement; the user prices it (even at 0) or sets `default`.
    """
    if costs.method != "rates" or costs.default is not None:
        return []
    listed = dict(costs.channels)
    return [
        problem_at(
            f"channel '{channel}' has no rate and costs has no 'default' "
            f"({n:,} contact{'s use' if n != 1 else ' uses'} it): price it, even at 0, "
            "or set a default",
            costs.place,
        )
        for channel, n in sorted(contacts_by_channel.items())
        if channel not in listed
    ]


def too_costly(costs: Costs, period_costs: dict[str, Fraction]) -> list[Problem]:
    """Months whose contacts the costs price at MAX_PERIOD_COST or more, at the costs' place."""
    return [
        problem_at(
            f"the contacts of {period} cost {float(cost):.4g} {costs.currency} at these "
            f"{'rates' if costs.method == 'rates' else 'pools'}: a month's cost must be below "
            f"{MAX_PERIOD_COST:,} (10^15) to be carried to the cent; check the amounts "
            "(a rate per hour given per minute, cents given as units)",
            costs.place,
        )
        for period, cost in sorted(period_costs.items())
        if cost >= MAX_PERIOD_COST
    ]
