"""A decision's matched-to-charged reconciliation, worded so it adds up as printed.

engine/reconcile.py gives the exact steps; here they are rounded to thousandths
by largest remainder onto the line's printed contacts (half-up, as ledger.csv
prints them), so `1480 - 73 = 1407 - 279.424 = 1127.576` holds to the last
digit on paper. Whole steps (duplicates, priority) stay whole numbers.
"""

from __future__ import annotations

from fractions import Fraction
from functools import lru_cache
from typing import Any

from chargeback.engine.ledger import half_up_units, largest_remainder, units_decimal
from chargeback.engine.reconcile import (
    BASELINE,
    CONTROL,
    DUPLICATE,
    PRIORITY,
    SHARE,
    SPLIT,
    Reconciliation,
    Step,
)

MINUS = "\u2212"


@lru_cache(maxsize=4096)  # a month's steps name the same few sets of decisions again and again
def _names(others: tuple[str, ...]) -> str:
    if len(others) <= 1:
        return "".join(others)
    return ", ".join(others[:-1]) + " and " + others[-1]


NAMED = 4  # priority or split steps worded one by one; smaller ones are added up into one


def folded(steps: list[Step]) -> list[Step]:
    """The steps, with each kind's priority or split steps beyond its NAMED largest added
    up into one: a decision whose contacts meet many others' in many combinations took a
    line per combination (hundreds on one summary line), which nobody reads. The sums
    are exact, so the line still adds up as printed."""
    out: list[Step] = []
    for kind in dict.fromkeys(s.kind for s in steps):
        mine = [s for s in steps if s.kind == kind]
        if kind not in (PRIORITY, SPLIT) or len(mine) <= NAMED + 1:
            out += mine
            continue
        largest = sorted(mine, key=lambda s: (-s.contacts, s.others))[:NAMED]
        rest = [s for s in mine if s not in largest]
        out += [s for s in mine if s in largest]
        out.append(
            Step(
                kind,
                sum((s.contacts for s in rest), Fraction(0)),
                tuple(sorted({d for s in rest for d in s.others})),
                sum(s.shared for s in rest),
                sum(s.ways for s in rest),
            )
        )
    return out


def step_words(step: Step) -> str:
    """What a step takes away, in a few words (after its number)."""
    if step.ways > 1:
        return _ways(step) + (
            f" ({step.shared} contact{'' if step.shared == 1 else 's'} shared)"
            if step.kind == SPLIT
            else ""
        )
    if step.kind == DUPLICATE:
        return "matched by two or more of its rules, counted once"
    if step.kind == PRIORITY:
        return f"taken by higher-priority rules of {_names(step.others)}"
    if step.kind == BASELINE:
        return "at the usual level before the decision (baseline)"
    if step.kind == CONTROL:
        return "expected anyway (control baseline)"
    if step.kind == SHARE:
        return "left out by rule shares below 100%"
    return (
        f"split with {_names(step.others)}"
        f" ({step.shared} contact{'' if step.shared == 1 else 's'} shared)"
    )


SHORT = {
    DUPLICATE: "counted once",
    PRIORITY: "lost on priority to",
    BASELINE: "baseline",
    CONTROL: "expected anyway",
    SHARE: "rule shares",
    SPLIT: "split with",
}


def _ways(step: Step) -> str:
    """A folded step: how many decisions, in how many combinations."""
    n = len(step.others)
    which = f"{n} other decision{'' if n == 1 else 's'} in {step.ways} combinations"
    if step.kind == PRIORITY:
        return f"taken by higher-priority rules of {which}"
    return f"split with {which}"


def _number(units: int, whole: bool) -> str:
    if whole and units % 1000 == 0:
        return str(units // 1000)
    return str(units_decimal(units, 3))


def reconciliation(
    rec: Reconciliation | None, charged: Fraction, rule_matches: list[int] | None = None
) -> dict[str, Any] | None:
    """The template's `reconcile` dict for a line charged `charged` contacts; None when the
    run's groups do not give exactly that (a document built without them)."""
    if rec is None or rec.charged != charged:
        return None
    steps = folded(rec.ordered())
    target = rec.matches * 1000 - half_up_units(charged, 3)
    placed = (
        largest_remainder([((str(k), ""), s.contacts * 10) for k, s in enumerate(steps)], target)
        if steps
        else {}
    )
    rows = []
    for k, step in enumerate(steps):
        units = placed[str(k), ""]
        rows.append(
            {
                "kind": step.kind,
                "contacts": _number(units, step.kind in (DUPLICATE, PRIORITY)),
                "units": units,
                "words": step_words(step),
                "short": SHORT[step.kind],
                "others": list(step.others),
                "shared": step.shared,
            }
        )
    charged_text = str(units_decimal(half_up_units(charged, 3), 3))
    addends = [str(m) for m in rule_matches or [] if m]
    if sum(int(m) for m in addends) != rec.matches:
        addends = []
    text = (
        " + ".join(addends) + " = " if len(addends) > 1 else ""
    ) + f"{rec.matches} rule match{'' if rec.matches == 1 else 'es'}"
    short = f"{rec.matches} rule match{'' if rec.matches == 1 else 'es'}"
    for k, (row, step) in enumerate(zip(rows, steps, strict=True)):
        text += f" {MINUS} {row['contacts']} {row['words']}"
        short += f" {MINUS} {row['contacts']} {row['short']}"
        if step.ways > 1:
            short += f" {len(step.others)} others"
        elif step.kind in (PRIORITY, SPLIT):
            short += " " + _names(step.others)
        if row["kind"] == DUPLICATE and k < len(rows) - 1:
            text += f" = {rec.contacts} contacts matched"
    text += f" = {charged_text} charged"
    short += f" = {charged_text} charged"
    return {
        "matches": rec.matches,
        "contacts": rec.contacts,
        "charged": charged_text,
        "steps": rows,
        "differs": bool(rows),
        "text": text,
        "short": short,
    }
