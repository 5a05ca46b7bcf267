"""YAML read on libyaml's events (yamlio._EventsInC) gives what the pure parser gives.

The fast path is taken only for a file it reads without a problem; these hold that
whatever it returns, data and every line mark, is the pure parser's, and that a file
with a problem gets the pure parser's message, at its line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from chargeback.workspace import yamlio

ROOT = Path(__file__).resolve().parent.parent


def marks(value: Any) -> Any:
    """The value with every line mark beside it, to compare both."""
    if isinstance(value, dict):
        return (
            "map",
            value.line,
            sorted((repr(k), v) for k, v in value.key_lines.items()),
            [(repr(k), marks(v)) for k, v in value.items()],
        )
    if isinstance(value, list):
        return ("seq", value.line, value.item_lines, [marks(v) for v in value])
    return (type(value).__name__, repr(value))


def both(text: str) -> tuple[Any, Any]:
    path = Path("w.yaml")
    fast = yamlio._parse(path, text)
    exact = yamlio._parse_exactly(path, text)
    return (marks(fast[0]), fast[1]), (marks(exact[0]), exact[1])


@pytest.mark.skipif(not yaml.__with_libyaml__, reason="PyYAML built without libyaml")
@pytest.mark.parametrize(
    "path",
    sorted((ROOT / "rules").glob("*.yaml")) + sorted((ROOT / "sample_data").rglob("*.yaml")),
    ids=lambda p: p.name,
)
def test_the_sample_workspace_reads_alike(path: Path) -> None:
    fast, exact = both(path.read_text(encoding="utf-8"))
    assert fast == exact


CASES = [
    "a: 1\nb: [x, y]\nc: {d: 2026-03-01, e: 04100}\n",
    "base: &b {x: 1}\nuse: *b\nmore: [*b, *b]\n",
    "a: 1\na: 2\n",  # a duplicate key: a problem, worked out by the pure parser
    "a: [1, 2\nb: 3\n",  # an unclosed [
    "a: b: c\n",
    "- !!python/object:os.system x\n",
    "x: !!binary aGVsbG8=\n",
    "t: yes\nu: True\nv: 1:30\nw: 0o17\nz: ~\n",
    "'quoted key': \"tab\\there\"\nplain: é ü 漢字\n",
    "a:\n  - b: 1\n    c:\n      - d\n      - e: [f, {g: h}]\n",
    "\ufeffa: 1\n",
    "--- \na: 1\n...\n",
    "a: 1\n---\nb: 2\n",
    "",
    "# only a comment\n",
    "key: >\n  folded\n  text\nother: |\n  literal\n   kept\n",
    "a: \x85b\n",  # NEL, a line break to YAML: the same message from both
    "a:\t1\n",  # libyaml takes a tab for a space; the pure parser refuses it
    "a: [1,\t2]\n",
    "rules:\n  - id: r\n    share:\t0.5\n",
    "a: 'x'\t# c\n",
    "a: 😀 \u2028 x\n",
]


@pytest.mark.skipif(not yaml.__with_libyaml__, reason="PyYAML built without libyaml")
@pytest.mark.parametrize("text", CASES)
def test_edge_cases_read_alike(text: str) -> None:
    fast, exact = both(text)
    assert fast == exact


scalars = st.one_of(
    st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs", "Cc"]), max_size=8),
    st.integers(-(10**6), 10**6),
    st.sampled_from(["2026-03-01", "04100", "yes", "null", "1:30", "*", "&a", "- x", "a: b"]),
)
trees = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(scalars, inner, max_size=4),
    max_leaves=20,
)


@pytest.mark.skipif(not yaml.__with_libyaml__, reason="PyYAML built without libyaml")
@settings(max_examples=200, deadline=None)
@given(tree=trees, flow=st.booleans())
def test_any_dumped_document_reads_alike(tree: Any, flow: bool) -> None:
    text = yaml.safe_dump(tree, allow_unicode=True, default_flow_style=flow, sort_keys=False)
    fast, exact = both(text)
    assert fast == exact
