"""Where the rules and the data disagree in shape, before any figure is wrong.

A help-desk export that separates tags with spaces, calls the phone channel
"Phone Call (Incoming)" or spells a reason differently makes tag, channel and
reason rules match nothing, silently. These findings name each mismatch with a
did-you-mean taken from the values the data does hold.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from chargeback.engine.review_counts import VALUE_COLUMNS
from chargeback.errors import display_path
from chargeback.workspace.fields import suggest
from chargeback.workspace.model import Rule, Workspace

SEPARATOR_HINTS = ((" ", "a space"), (",", "a comma"), (";", "a semicolon"))


def _occurs(value: str, present: Iterable[str]) -> bool:
    """A match value found among values (a trailing `*` is a prefix), or a value among them."""
    if value.endswith("*"):
        return any(v.startswith(value[:-1]) for v in present)
    return value in present or any(v.endswith("*") and value.startswith(v[:-1]) for v in present)


def _place(rule: Rule, line: int | None = None) -> dict[str, Any]:
    if rule.place is None:
        return {"rule": rule.id, "decision": rule.decision}
    return {
        "file": display_path(rule.place.path),
        "line": line or rule.place.line,
        "rule": rule.id,
        "decision": rule.decision,
    }


def tags_finding(tags: dict[str, int], separator: str = "|") -> dict[str, Any] | None:
    """Tags that hold another separator than the one set: one tag where the export meant several."""
    if not tags:
        return None
    named = dict(SEPARATOR_HINTS) | {"|": "a '|'"}
    for sep, name in (*SEPARATOR_HINTS, ("|", "a '|'")):
        if sep == separator:
            continue
        joined = sum(n for tag, n in tags.items() if sep in tag.strip())
        if joined and joined * 2 >= sum(tags.values()):
            example = next(tag for tag in sorted(tags, key=lambda t: -tags[t]) if sep in tag)
            return {
                "severity": "warning",
                "code": "tags-separator",
                "message": f"the tags column holds values such as '{example}' with {name}, "
                f"while tags are split on {named.get(separator, repr(separator))}: each such "
                f'value is one tag and tag rules match nothing; set tags_separator: "{sep}" '
                "in chargeback.yaml",
                "separator": sep,
            }
    return None


def channel_findings(ws: Workspace, channels: dict[str, int]) -> list[dict[str, Any]]:
    """Channels in the data that neither a rate nor a rule names (a mapping slip, usually)."""
    if ws.costs.method == "pool":
        return []  # the pool prices every channel; an unnamed one is no surprise
    named = {ch for ch, _ in ws.costs.channels}
    for rule in ws.rules:
        named |= set(rule.match.channel or ())
    out = []
    for channel, n in sorted(channels.items()):
        if _occurs(channel, named) or ws.costs.default is None:
            continue  # named, or already an unpriced-channel error
        out.append(
            {
                "severity": "warning",
                "code": "unnamed-channel",
                "message": f"channel '{channel}' ({n:,} contact{'s' if n != 1 else ''}) is named "
                f"by no rate and no rule (priced by the default rate)"
                f"{suggest(channel, sorted(named))}",
                "channel": channel,
                "contacts": n,
            }
        )
    return out


def value_findings(ws: Workspace, present: dict[str, dict[str, int]]) -> list[dict[str, Any]]:
    """Match values that never occur in the data, with the closest value that does."""
    out = []
    for rule in ws.rules:
        keyed: list[tuple[str, str, tuple[str, ...], int | None]] = [
            (key, key, getattr(rule.match, key), None)
            for key in (*VALUE_COLUMNS, "tags")
            if getattr(rule.match, key) is not None
        ]
        lines = dict(rule.match.field_lines)
        keyed += [
            (f"fields.{column}", column, values, lines.get(column))
            for column, values in rule.match.fields
        ]
        for label, column, values, line in keyed:
            if column not in present:
                continue  # a missing column has its own message
            for value in values:
                if _occurs(value, present[column]):
                    continue
                out.append(
                    {
                        "severity": "warning",
                        "code": "unknown-value",
                        "message": f"rule '{rule.id}': {label} value '{value}' never occurs in "
                        f"the data{suggest(value.rstrip('*'), sorted(present[column]))}",
                        **_place(rule, line),
                        "key": label,
                        "value": value,
                    }
                )
    return out
