"""Rules -> SQL expression trees (SQLGlot) for the SQL engines. Pure: no I/O, no data.

The mirror of compile.py: the same conditions, built as `sqlglot.exp` nodes so
quoting and syntax are SQLGlot's. What engines mean differently (lower-casing,
case-insensitive regex search, substring tests) is a `Primitives` method each
dialect writes itself, so the rule's meaning stays ours (SPEC 4, issue 15).
The relation these run on has compile.py's columns: strings for the match
columns, `tags` as `|a|b|`, `date` as the local date, and `text_lower` made by
`Primitives.lower` when a rule reads `text`.
"""

from __future__ import annotations

from datetime import date
from functools import reduce
from typing import TYPE_CHECKING, TypeAlias

from sqlglot import exp

from chargeback.engine.dates import shift_day, window_bounds
from chargeback.engine.pushdown_sql import balanced
from chargeback.workspace.model import Decision, Match, Rule

if TYPE_CHECKING:  # sqlglot 30 names the base class Expr; older ones Expression
    Node: TypeAlias = exp.Expr
else:
    Node = getattr(exp, "Expr", exp.Expression)

MATCH_KEYS = ("reason", "channel", "product", "region", "outcome")


class Primitives:
    """The per-dialect pieces whose meaning differs between engines."""

    dialect = ""

    def lower(self, column: Node) -> Node:
        """Lower-case text exactly as polars' `str.to_lowercase` does."""
        raise NotImplementedError(f"lower-casing text on {self.dialect or 'this engine'}")

    def regex_search(self, column: Node, pattern: str) -> Node:
        """Case-insensitive search with RE2's meaning (SPEC 4)."""
        raise NotImplementedError(f"text_regex on {self.dialect or 'this engine'}")

    def contains(self, column: Node, needle: str) -> Node:
        """A byte-exact substring test."""
        return exp.func("contains", column, exp.Literal.string(needle))

    def starts_with(self, column: Node, prefix: str) -> Node:
        return exp.StartsWith(this=column, expression=exp.Literal.string(prefix))

    def as_text(self, column: Node) -> Node:
        """A non-text column compared as text (only types whose text form is the same)."""
        return exp.cast(column, "VARCHAR")

    def first_part(self, column: Node, separator: str) -> Node:
        """The text before the first `separator` (a reason's family), the whole if none."""
        return exp.func("split_part", column, exp.Literal.string(separator), exp.Literal.number(1))


def text_needles(values: tuple[str, ...]) -> list[str]:
    """What text_any_of searches text_lower for: each phrase lower-cased, a trailing `*`
    dropped (pushdown_tables.phrases_once finds these same searches)."""
    return [v.removesuffix("*").lower() for v in values]


def col(name: str) -> exp.Column:
    return exp.column(name, quoted=True)


def day(value: date) -> Node:
    return exp.cast(exp.Literal.string(value.isoformat()), "DATE")


def _or(parts: list[Node]) -> Node:
    return reduce(lambda a, b: exp.or_(a, b, copy=False), parts)


def _and(parts: list[Node]) -> Node:
    return reduce(lambda a, b: exp.and_(a, b, copy=False), parts)


class Compiler:
    """Rules to conditions for one dialect; `text_columns`: columns already text."""

    def __init__(self, prims: Primitives, text_columns: set[str]) -> None:
        self.prims = prims
        self.text_columns = text_columns

    def text_of(self, column: str) -> Node:
        c = col(column)
        return c if column in self.text_columns else self.prims.as_text(c)

    def any_of(self, column: str, values: tuple[str, ...]) -> Node:
        """Exact, case-sensitive membership; a value ending in `*` is a prefix."""
        c = self.text_of(column)
        exact = [v for v in values if not v.endswith("*")]
        parts: list[Node] = []
        if exact:
            parts.append(c.isin(*[exp.Literal.string(v) for v in exact]))
        parts.extend(self.prims.starts_with(c.copy(), v[:-1]) for v in values if v.endswith("*"))
        return exp.paren(_or(parts), copy=False)

    def tags_any_of(self, values: tuple[str, ...]) -> Node:
        """`|fee|` finds a tag and `|fee` a tag prefix, as compile.tags_any_of."""
        needles = [f"|{v[:-1]}" if v.endswith("*") else f"|{v}|" for v in values]
        return exp.paren(_or([self.prims.contains(col("tags"), n) for n in needles]), copy=False)

    def text_any_of(self, values: tuple[str, ...]) -> Node:
        """Needles lower-cased by Python, as compile.text_any_of does."""
        return exp.paren(
            _or([self.prims.contains(col("text_lower"), n) for n in text_needles(values)]),
            copy=False,
        )

    def conditions(self, match: Match) -> list[Node]:
        cheap, costly = self.split_conditions(match)
        return cheap + costly

    def split_conditions(self, match: Match) -> tuple[list[Node], list[Node]]:
        """(value tests, text searches): the searches cost a pass over every text."""
        cheap: list[Node] = []
        for key in MATCH_KEYS:
            values = getattr(match, key)
            if values is not None:
                cheap.append(self.any_of(key, values))
        if match.tags is not None:
            cheap.append(self.tags_any_of(match.tags))
        for column, values in match.fields:
            cheap.append(
                self.tags_any_of(values) if column == "tags" else self.any_of(column, values)
            )
        costly: list[Node] = []
        if match.text is not None:
            costly.append(self.text_any_of(match.text))
        if match.text_regex is not None:
            costly.append(self.prims.regex_search(col("text"), match.text_regex))
        return cheap, costly

    def match(self, match: Match) -> Node:
        """Every key holds; a null never matches (COALESCE, like compile's fill_null).

        Text searches run only where the value tests hold (a CASE, which engines
        evaluate on those rows alone); the answer is the same as one AND.
        """
        cheap, costly = self.split_conditions(match)
        if not cheap and not costly:
            return exp.true()
        if not cheap or not costly:
            return exp.Coalesce(this=_and(cheap + costly), expressions=[exp.false()])
        first = exp.Coalesce(this=_and(cheap), expressions=[exp.false()])
        then = exp.Coalesce(this=_and(costly), expressions=[exp.false()])
        return exp.Case().when(first, then).else_(exp.false())


def window(rule: Rule, decision: Decision) -> Node:
    first, last = window_bounds(rule, decision)
    expr: Node = col("date") >= day(first)
    if last is not None:
        expr = exp.and_(expr, col("date") <= day(last))
    return expr


def lookback(rule: Rule, decision: Decision) -> Node:
    """The flat baseline's lookback: [effective - lookback_days, effective)."""
    assert rule.baseline_lookback_days is not None
    start = shift_day(decision.effective, -rule.baseline_lookback_days)
    return exp.and_(col("date") >= day(start), col("date") < day(decision.effective))


def flag(condition: Node, value: int) -> Node:
    """`value` where the condition holds, else 0, as BIGINT (masks: sums of powers of two)."""
    return (
        exp.Case()
        .when(condition, exp.cast(exp.Literal.number(value), "BIGINT"))
        .else_(exp.cast(exp.Literal.number(0), "BIGINT"))
    )


def bit_sum(conditions: list[Node]) -> Node:
    """Condition k adds 2**k: a mask with no bit operations (every engine can sum)."""
    if not conditions:
        return exp.cast(exp.Literal.number(0), "BIGINT")
    return balanced(  # planners slow down on deep chains of additions
        [flag(c, 1 << k) for k, c in enumerate(conditions)],
        lambda a, b: exp.Paren(this=exp.Add(this=a, expression=b)),
    )
