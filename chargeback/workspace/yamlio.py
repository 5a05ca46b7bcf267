"""Safe YAML loading that remembers where every key and item came from.

PyYAML's SafeLoader is the base (no arbitrary objects). On top of it:
- duplicate keys are an error with both lines, instead of the last one winning;
- mappings and sequences carry the 1-based line of each key or item, so every
  later validation message can say `rules/fees.yaml:14`;
- floats become `Decimal` from their source text, so 0.40 stays exactly 0.40;
- dates stay strings (validation parses them, so `2026-02-30` is a clean error
  instead of a constructor crash);
- only `true`/`false` are booleans: a region called `NO` stays a string.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from chargeback.errors import Problem, WorkspaceError


class YMap(dict[Any, Any]):
    """A dict that knows the line of itself and of each of its keys."""

    path: Path | None = None
    line: int = 0
    key_lines: dict[Any, int]

    def line_of(self, key: Any) -> int:
        return self.key_lines.get(key, self.line)


class YList(list[Any]):
    """A list that knows the line of itself and of each item."""

    path: Path | None = None
    line: int = 0
    item_lines: list[int]

    def line_of(self, index: int) -> int:
        if 0 <= index < len(self.item_lines):
            return self.item_lines[index]
        return self.line


class _Loader(yaml.SafeLoader):
    """SafeLoader with line marks, duplicate-key rejection and exact numbers."""

    source: Path | None = None
    problems: list[Problem]


# Own copy of the implicit resolvers, minus timestamps and YAML 1.1 booleans.
_Loader.yaml_implicit_resolvers = {
    first: [
        (tag, rx)
        for tag, rx in resolvers
        if tag not in ("tag:yaml.org,2002:timestamp", "tag:yaml.org,2002:bool")
    ]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
# Integers only in plain decimal: 04100 (a cost center) stays the text "04100"
# instead of YAML 1.1's octal 2112, and 1:30 is not sexagesimal 90.
for _first, _resolvers in _Loader.yaml_implicit_resolvers.items():
    _resolvers[:] = [(t, rx) for t, rx in _resolvers if t != "tag:yaml.org,2002:int"]
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:int", re.compile(r"^[-+]?(?:0|[1-9][0-9_]*)$"), list("-+0123456789")
)
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def _line(node: Node) -> int:
    return int(node.start_mark.line) + 1


def _construct_map(loader: _Loader, node: MappingNode) -> YMap:
    loader.flatten_mapping(node)
    result = YMap()
    result.path = loader.source
    result.line = _line(node)
    result.key_lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            hash(key)
        except TypeError:
            loader.problems.append(
                Problem("a mapping key must be a plain value", loader.source, _line(key_node))
            )
            continue
        if key in result.key_lines:
            loader.problems.append(
                Problem(
                    f"duplicate key '{key}' (first at line {result.key_lines[key]})",
                    loader.source,
                    _line(key_node),
                )
            )
            continue
        result.key_lines[key] = _line(key_node)
        result[key] = loader.construct_object(value_node, deep=True)
    return result


def _construct_seq(loader: _Loader, node: SequenceNode) -> YList:
    result = YList(loader.construct_object(child, deep=True) for child in node.value)
    result.path = loader.source
    result.line = _line(node)
    result.item_lines = [_line(child) for child in node.value]
    return result


def _construct_float(loader: _Loader, node: ScalarNode) -> Decimal | str:
    text = str(loader.construct_scalar(node)).replace("_", "")
    try:
        value = Decimal(text)
    except InvalidOperation:
        value = Decimal("NaN")
    if not value.is_finite():
        loader.problems.append(
            Problem(f"'{text}' is not a finite number", loader.source, _line(node))
        )
        return text
    return value


_Loader.add_constructor("tag:yaml.org,2002:map", _construct_map)
_Loader.add_constructor("tag:yaml.org,2002:seq", _construct_seq)
_Loader.add_constructor("tag:yaml.org,2002:float", _construct_float)


def load_yaml(path: Path, text: str | None = None) -> Any:
    """Parse one YAML file; raise WorkspaceError listing every problem found in it."""
    data, problems = load_yaml_collect(path, text)
    if problems:
        raise WorkspaceError(problems)
    return data


def load_yaml_collect(path: Path, text: str | None = None) -> tuple[Any, list[Problem]]:
    """Parse one YAML file; return the data (None if unreadable) and its problems.

    A duplicate key still yields the document (first value kept), so the
    workspace check can go on and report the file's other mistakes too.
    """
    if text is None:
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            return None, [Problem(f"not UTF-8 text ({exc.reason})", path)]
        except OSError as exc:
            return None, [Problem(f"cannot read: {exc.strerror}", path)]
    loader = _Loader(text)
    loader.source = path
    loader.problems = []
    try:
        data = loader.get_single_data()
    except yaml.constructor.ConstructorError as exc:
        mark = exc.problem_mark
        line = int(mark.line) + 1 if mark is not None else None
        tag = str(exc.problem or "").split("tag ")[-1].strip()
        return None, [Problem(f"tag {tag} is not allowed: only plain YAML is read", path, line)]
    except yaml.MarkedYAMLError as exc:
        return None, [_syntax_problem(path, exc)]
    except yaml.YAMLError as exc:
        return None, [Problem(f"malformed YAML: {exc}", path)]
    finally:
        loader.dispose()
    return data, loader.problems


def _syntax_problem(path: Path, exc: yaml.MarkedYAMLError) -> Problem:
    """Name the line a user must fix: for an unclosed [ or { that is where it opened."""
    problem, context = exc.problem_mark, exc.context_mark
    what = exc.problem or "malformed YAML"
    if context is not None and "flow" in str(exc.context or ""):
        opener = "[" if "sequence" in str(exc.context) else "{"
        if 0 <= context.index < len(str(context.buffer or "")):
            opener = str(context.buffer)[context.index]
        stop = f" (parsing stopped at line {problem.line + 1})" if problem is not None else ""
        return Problem(
            f"malformed YAML: this '{opener}' is not closed: {what}{stop}", path, context.line + 1
        )
    mark = problem or context
    return Problem(f"malformed YAML: {what}", path, mark.line + 1 if mark is not None else None)
