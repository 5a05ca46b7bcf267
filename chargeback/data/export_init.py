"""`chargeback init`: the starter workspace, or one set up for the user's own export.

With `--from-export FILE`, the export is looked at (chargeback.data.inference)
and a commented chargeback.yaml is written for it: the preset it was recognised
as, or a `columns:` mapping inferred from its headers; the `timestamp_format`
and `tags_separator` its first rows need; and its channel words as a commented
`values:` block to fill in. The lines to print are returned, what could not be
inferred among them, so the command line stays a thin shell.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from chargeback.data.inference import SAMPLE_ROWS, Inference, guess_channel, inspect_export
from chargeback.errors import Problem, UsageError, display_path
from chargeback.workspace.model import CONTACT_COLUMNS, REQUIRED_CONTACT_COLUMNS
from chargeback.workspace.scaffold import scaffold

LISTED = 40  # channel words written into the values: block
COMMENT_AT = 34  # the column trailing comments start at


def init_workspace(dest: Path | None, export: Path | None) -> list[str]:
    """Scaffold a workspace (from an export, when given); the lines to print."""
    if export is None:
        if dest is None:
            raise UsageError(
                Problem(
                    "name the new workspace's folder: chargeback init DIR, or "
                    "chargeback init --from-export FILE [DIR]"
                )
            )
        written = scaffold(dest)
        return [
            f"Created {display_path(dest)} with {_count(len(written), 'file')}:",
            *(f"  {display_path(p)}" for p in written),
            f"Next: edit rules/*.yaml, then  chargeback report --workspace {display_path(dest)}",
        ]
    dest = dest if dest is not None else Path(".")
    found = inspect_export(export)
    text = render_settings(found, contacts_setting(export, dest))
    written = scaffold(dest, text)
    lines = [_recognised(found), *_seen(found)]
    lines.append(f"Wrote {_count(len(written), 'file')} in {display_path(dest)}:")
    lines += [f"  {display_path(p)}" for p in written]
    if found.notes:
        lines.append("Could not infer everything:")
        lines += [f"  - {note}" for note in found.notes]
    settings = display_path(dest / "chargeback.yaml")
    words = " (and fill in values: for the channel words)" if "# values:" in text else ""
    lines.append(
        f"Next: read {settings}{words}, then  chargeback check --workspace {display_path(dest)}"
    )
    return lines


def contacts_setting(export: Path, dest: Path) -> str:
    """The export's path as chargeback.yaml names it: relative to the workspace if it can be."""
    target = export.resolve()
    try:
        return Path(os.path.relpath(target, dest.resolve())).as_posix()
    except ValueError:  # another drive: no relative path
        return target.as_posix()


def render_settings(found: Inference, contacts: str) -> str:
    """A commented chargeback.yaml for this export; every line is valid YAML or a comment."""
    out = [
        f"# chargeback settings for the export {found.path.name}, written by "
        "`chargeback init --from-export`.",
        "# Reference: docs/workspace.md; platform presets and their sources: docs/exports/.",
        _line(f"contacts: {_q(contacts)}", "the export; a glob (exports/*.csv) or folder works"),
        _line(
            "timezone: UTC",
            "IANA name; the export's times carry no offset: set their zone"
            if found.naive
            else "IANA name: days and months are counted in it",
        ),
        _line("overlap: split", "split | priority"),
        "output: reports",
        "",
    ]
    out += _columns(found)
    out += _formats(found)
    out += _values(found)
    return "\n".join(out) + "\n"


def _columns(found: Inference) -> list[str]:
    preset = found.preset
    out: list[str] = []
    if preset is not None:
        out += [
            f"# Recognised as {preset.title} ({preset.docs}).",
            "# The preset maps its headers and gives timestamp_format, tags_separator and",
            "# values: defaults; what you set here wins, and columns: {preset: ...,",
            "# <column>: <header>} adds or overrides a header.",
        ]
        if not found.columns:
            return [*out, f"columns: {preset.name}", ""]
        out += ["columns:", f"  preset: {preset.name}"]
    else:
        out.append(_line("columns:", "chargeback's column: the export's header"))
    for column in CONTACT_COLUMNS:
        if column in found.columns:
            out.append(f"  {column}: {_q(found.columns[column])}")
        elif column in REQUIRED_CONTACT_COLUMNS and found.header_of(column) is None:
            out.append(_line(f'  # {column}: "???"', "not found: name the export's header"))
    if len(out) == 1 and preset is None:  # every header is chargeback's own name already
        out = ["# columns: not needed, the export's headers are chargeback's own names"]
    return [*out, ""]


def _formats(found: Inference) -> list[str]:
    out: list[str] = []
    seen = found.timestamp_seen
    if found.timestamp_format is not None:
        out.append(_line(f"timestamp_format: {_q(found.timestamp_format)}", f"as in {_q(seen)}"))
    elif found.iso_over_preset:
        out.append(_line("timestamp_format: null", f"ISO 8601 ({_q(seen)}), not the preset's"))
    elif found.layout_unknown:
        out.append(
            _line('# timestamp_format: "???"', f"could not tell the layout of {_q(seen)}: set it")
        )
    elif seen is not None:
        how = "are ISO 8601" if found.preset is None else "are read by the preset"
        out.append(f"# timestamp_format is not needed: timestamps such as {_q(seen)} {how}")
    if found.tags_separator is not None:
        seen_tags = f"as in {_q(found.tags_seen)}"
        out.append(_line(f"tags_separator: {_q(found.tags_separator)}", seen_tags))
    return [*out, ""] if out else []


def _values(found: Inference) -> list[str]:
    """The channel words seen, as a commented values: block; the preset's are left out."""
    if not found.channels:
        return []
    covered: dict[str, str] = {}
    if found.preset is not None:
        for vm in found.preset.values:
            if vm.column == "channel":
                covered = dict(vm.pairs)
    left = [(w, n) for w, n in found.channels if w not in covered]
    mapped = [w for w, _ in found.channels if w in covered]
    out: list[str] = []
    if mapped:
        out.append(f"# The preset maps these channel words: {', '.join(_q(w) for w in mapped)}")
    if not left:
        return out
    rows = f"the first {found.rows:,} rows" if found.rows >= SAMPLE_ROWS else "the export"
    out += [
        _line("# values:", f"the channel words in {rows}: map each to a channel"),
        _line("#   channel:", "your costs price (rules/costs.yaml), then uncomment"),
    ]
    for word, count in left[:LISTED]:
        guess = guess_channel(word)
        rows_of = _count(count, "row")
        if guess == word:
            out.append(_line(f"#     {_q(word)}: {word}", f"{rows_of}; already yours, no need"))
        else:
            target = guess if guess else '""'
            aside = rows_of if guess else f"{rows_of}: fill in"
            out.append(_line(f"#     {_q(word)}: {target}", aside))
    if len(left) > LISTED:
        out.append(f"#     ... and {len(left) - LISTED} more channel words")
    return out


def _recognised(found: Inference) -> str:
    if found.preset is not None:
        extra = f", and {len(found.columns)} more column(s)" if found.columns else ""
        return (
            f"Recognised {found.path.name} as {found.preset.title}: columns: {found.preset.name}"
            f"{extra} (see {found.preset.docs})."
        )
    pairs = [f'{c} <- "{h}"' for c, h in found.columns.items()]
    if not pairs and all(c in found.headers for c in REQUIRED_CONTACT_COLUMNS):
        return f"{found.path.name} has chargeback's own column names: no mapping needed."
    if not pairs:
        return f"Recognised none of the headers of {found.path.name} as chargeback's columns."
    return f"Mapped the headers of {found.path.name}: " + ", ".join(pairs) + "."


def _seen(found: Inference) -> list[str]:
    out = []
    if found.timestamp_format is not None:
        out.append(f'Timestamps such as "{found.timestamp_seen}": "{found.timestamp_format}".')
    if found.tags_separator is not None:
        out.append(f'Tags split on "{found.tags_separator}".')
    if found.channels:
        out.append(
            f"{_count(len(found.channels), 'channel word')} seen: "
            + ", ".join(w for w, _ in found.channels[:8])
            + (", ..." if len(found.channels) > 8 else "")
            + "."
        )
    return out


def _q(text: str | None) -> str:
    """A YAML double-quoted scalar (JSON's string syntax is YAML's too).

    The characters YAML takes for line breaks (NEL, LS, PS) are escaped as well.
    """
    quoted = json.dumps(text or "", ensure_ascii=False)
    for ch in ("\x85", "\u2028", "\u2029", "\ufeff"):
        quoted = quoted.replace(ch, f"\\u{ord(ch):04x}")
    return quoted


def _line(code: str, comment: str) -> str:
    return f"{code.ljust(COMMENT_AT - 1)} # {comment}"


def _count(n: int, word: str) -> str:
    return f"{n:,} {word}" + ("" if n == 1 else "s")
