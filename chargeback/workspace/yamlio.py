"""Safe YAML loading that remembers where every key and item came from.

PyYAML's SafeLoader is the base (no arbitrary objects). On top of it:
- the file is read within limits (limits.py): a regular file, at most
  MAX_FILE_BYTES, UTF-8, no control characters; a file that breaks one is
  named with the line, never handed to the parser;
- nesting deeper than MAX_DEPTH and aliases that expand past MAX_EXPANDED
  (a "billion laughs") stop the parse at the line where the limit is crossed;
- duplicate keys are an error with both lines, instead of the last one winning;
- mappings and sequences carry the 1-based line of each key or item, so every
  later validation message can say `rules/fees.yaml:14`;
- floats become `Decimal` from their source text, so 0.40 stays exactly 0.40;
- dates stay strings (validation parses them, so `2026-02-30` is a clean error
  instead of a constructor crash); an unquoted one is a `DateText`, so an id
  that YAML would read as a date can be told from a quoted one;
- only `true`/`false` are booleans: a region called `NO` stays a string;
- only plain tags: !!binary, !!set, !!omap, !!pairs, !!timestamp and every
  application tag are refused with their line.
"""

from __future__ import annotations

import re
import stat
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import yaml
from yaml.events import AliasEvent
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from chargeback.errors import Problem, WorkspaceError
from chargeback.workspace.limits import (
    MAX_DEPTH,
    MAX_EXPANDED,
    MAX_FILE_BYTES,
    MAX_NUMBER_CHARS,
    char_name,
    clean_message,
    shown,
)


class DateText(str):
    """An unquoted scalar YAML 1.1 reads as a date: text here, but not an id."""


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


class _Limit(yaml.YAMLError):
    """A limit crossed while composing: stops the parse with its place."""

    def __init__(self, message: str, node_line: int) -> None:
        super().__init__(message)
        self.message = message
        self.line = node_line


class _Loader(yaml.SafeLoader):
    """SafeLoader with line marks, duplicate-key rejection, exact numbers and limits."""

    source: Path | None = None
    problems: list[Problem]
    depth: int = 0
    expanded: int = 0  # nodes + scalar characters so far, every alias followed
    sizes: dict[int, int]  # id(node) -> its expanded size, once composed

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        """Count depth and expanded size as the tree is built, before anything recurses on it."""
        line = self._next_line()
        if self.check_event(AliasEvent):
            node = super().compose_node(parent, index)
            size = self.sizes.get(id(node))
            if size is None:
                raise _Limit("an alias refers to a node that contains it (a loop)", line)
            self._grow(size, line)
            return node
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise _Limit(f"nested more than {MAX_DEPTH} levels deep", line)
        before = self.expanded
        node = super().compose_node(parent, index)
        self.depth -= 1
        self._grow(1 + (len(node.value) if isinstance(node, ScalarNode) else 0), line)
        self.sizes[id(node)] = self.expanded - before
        return node

    def _next_line(self) -> int:
        event = self.peek_event()  # type: ignore[no-untyped-call]
        return int(event.start_mark.line) + 1

    def _grow(self, size: int, line: int) -> None:
        self.expanded += size
        if self.expanded > MAX_EXPANDED:
            raise _Limit(
                f"the document expands to more than {MAX_EXPANDED:,} values and characters "
                "(aliases counted each time they are used)",
                line,
            )


# Own copy of the implicit resolvers, minus YAML 1.1 booleans; timestamps become DateText.
_DATE_TAG = "tag:chargeback,2026:date-text"
_Loader.yaml_implicit_resolvers = {
    first: [
        (_DATE_TAG if tag == "tag:yaml.org,2002:timestamp" else tag, rx)
        for tag, rx in resolvers
        if tag != "tag:yaml.org,2002:bool"
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


class _EventsInC(_Loader):
    """_Loader on libyaml's events: the same composing (line marks, limits), constructing
    and resolving, with scanning and parsing in C (a 300-rule file: 0.25 s to 0.05 s).
    Only a file it reads without a problem is taken from it: any problem is worked out
    again by _Loader, so messages stay the pure parser's."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._events = yaml.cyaml.CParser(stream)  # type: ignore[attr-defined]
        # libyaml's own methods on the instance: no Python frame in between on the
        # composer's 30,000 calls for a 300-rule file (a tenth of its reading time)
        self.check_event = self._events.check_event  # type: ignore[method-assign]
        self.peek_event = self._events.peek_event  # type: ignore[method-assign]
        self.get_event = self._events.get_event  # type: ignore[method-assign]

    def dispose(self) -> None:
        self._events.dispose()
        super().dispose()


_FastLoader: type[_EventsInC] | None = _EventsInC if yaml.__with_libyaml__ else None


def _line(node: Node) -> int:
    return int(node.start_mark.line) + 1


def _construct_map(loader: _Loader, node: Node) -> YMap | None:
    if not isinstance(node, MappingNode):
        loader.problems.append(
            Problem("!!map on a value that is not a mapping", *_at(loader, node))
        )
        return None
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
                    f"duplicate key '{shown(key)}' (first at line {result.key_lines[key]})",
                    loader.source,
                    _line(key_node),
                )
            )
            continue
        result.key_lines[key] = _line(key_node)
        result[key] = loader.construct_object(value_node, deep=True)
    return result


def _construct_seq(loader: _Loader, node: Node) -> YList | None:
    if not isinstance(node, SequenceNode):
        loader.problems.append(Problem("!!seq on a value that is not a list", *_at(loader, node)))
        return None
    result = YList(loader.construct_object(child, deep=True) for child in node.value)
    result.path = loader.source
    result.line = _line(node)
    result.item_lines = [_line(child) for child in node.value]
    return result


def _at(loader: _Loader, node: Node) -> tuple[Path | None, int]:
    return loader.source, _line(node)


def _scalar(loader: _Loader, node: Node) -> str:
    if not isinstance(node, ScalarNode):
        raise yaml.constructor.ConstructorError(
            None, None, "expected a plain value, not a list or mapping", node.start_mark
        )
    return str(loader.construct_scalar(node))


def _construct_int(loader: _Loader, node: Node) -> int | str:
    """Plain decimal digits only; a number too long to be one stays text for the field to refuse."""
    text = _scalar(loader, node)
    digits = text.replace("_", "")
    if len(digits) > MAX_NUMBER_CHARS or not _INT.fullmatch(digits):
        return text  # e.g. !!int 0x1F, or 10**200: the typed field says what is wrong
    return int(digits)


def _construct_float(loader: _Loader, node: Node) -> Decimal | str:
    """A Decimal from the source text; .nan, .inf and over-long numbers stay text.

    The typed field that reads the value then refuses it with its own limits
    (money's magnitude, a share's range), at the key's line.
    """
    text = _scalar(loader, node)
    clean = text.replace("_", "")
    if len(clean) > MAX_NUMBER_CHARS:
        return text
    try:
        value = Decimal(clean)
    except InvalidOperation:
        return text
    return value if value.is_finite() else text


def _construct_bool(loader: _Loader, node: Node) -> bool | str:
    text = _scalar(loader, node)
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    loader.problems.append(
        Problem(f"!!bool '{shown(text)}' is not true or false", *_at(loader, node))
    )
    return text


def _construct_date_text(loader: _Loader, node: Node) -> DateText:
    return DateText(_scalar(loader, node))


def _refuse_tag(loader: _Loader, node: Node) -> None:
    tag = str(node.tag).replace("tag:yaml.org,2002:", "!!")
    loader.problems.append(
        Problem(f"tag {shown(tag)} is not allowed: only plain YAML is read", *_at(loader, node))
    )


_INT = re.compile(r"[-+]?[0-9]+")
_Loader.yaml_constructors = dict(yaml.SafeLoader.yaml_constructors)
_Loader.add_constructor("tag:yaml.org,2002:map", _construct_map)
_Loader.add_constructor("tag:yaml.org,2002:seq", _construct_seq)
_Loader.add_constructor("tag:yaml.org,2002:int", _construct_int)
_Loader.add_constructor("tag:yaml.org,2002:float", _construct_float)
_Loader.add_constructor("tag:yaml.org,2002:bool", _construct_bool)
_Loader.add_constructor(_DATE_TAG, _construct_date_text)
for _tag in ("binary", "set", "omap", "pairs", "timestamp"):
    _Loader.add_constructor(f"tag:yaml.org,2002:{_tag}", _refuse_tag)


def load_yaml(path: Path, text: str | None = None) -> Any:
    """Parse one YAML file; raise WorkspaceError listing every problem found in it."""
    data, problems = load_yaml_collect(path, text)
    if problems:
        raise WorkspaceError(problems)
    return data


def read_source(path: Path) -> tuple[str | None, list[Problem]]:
    """A YAML file's text, read within the limits, or None and why not (with the line)."""
    try:
        info = path.stat()
    except OSError as exc:
        return None, [Problem(f"cannot read: {exc.strerror or exc}", path)]
    if stat.S_ISDIR(info.st_mode):
        return None, [Problem("is a folder, not a YAML file", path)]
    if not stat.S_ISREG(info.st_mode):
        return None, [Problem("is not a regular file (a device, pipe or socket?)", path)]
    if info.st_size > MAX_FILE_BYTES:
        return None, [_too_big(path, info.st_size)]
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        return None, [Problem(f"cannot read: {exc.strerror or exc}", path)]
    if len(raw) > MAX_FILE_BYTES:
        return None, [_too_big(path, len(raw))]
    try:
        return raw.decode("utf-8"), []
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        column = exc.start - raw.rfind(b"\n", 0, exc.start)
        return None, [
            Problem(
                f"not UTF-8 text: byte 0x{raw[exc.start]:02X} at column {column} ({exc.reason}); "
                "save the file as UTF-8",
                path,
                line,
            )
        ]


def _too_big(path: Path, size: int) -> Problem:
    return Problem(
        f"is {size / 1024 / 1024:.1f} MB; a YAML file may hold at most "
        f"{MAX_FILE_BYTES // 1024 // 1024} MB",
        path,
    )


# What YAML itself refuses to read (PyYAML's Reader), found here with its line.
_UNREADABLE = re.compile(
    "[^\x09\x0a\x0d\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]"
)


def text_problem(path: Path, text: str) -> Problem | None:
    """A character YAML cannot hold (NUL, other controls), named with its line and column."""
    if len(text) > MAX_FILE_BYTES:
        return _too_big(path, len(text.encode("utf-8", "surrogatepass")))
    found = _UNREADABLE.search(text)
    if found is None:
        return None
    start = found.start()
    line = text.count("\n", 0, start) + 1
    column = start - text.rfind("\n", 0, start)
    return Problem(
        f"holds the control character {char_name(found.group())} at column {column}: "
        'a YAML file holds only printable text (write it as an escape, such as "\\t", '
        "inside double quotes)",
        path,
        line,
    )


def load_yaml_collect(path: Path, text: str | None = None) -> tuple[Any, list[Problem]]:
    """Parse one YAML file; return the data (None if unreadable) and its problems.

    A duplicate key still yields the document (first value kept), so the
    workspace check can go on and report the file's other mistakes too.
    """
    data, problems = _parse(path, text)
    return data, _cleaned(problems)


def _parse(path: Path, text: str | None) -> tuple[Any, list[Problem]]:
    if text is None:
        text, problems = read_source(path)
        if text is None:
            return None, problems
    bad = text_problem(path, text)
    if bad is not None:
        return None, [bad]
    # a clean file read fast; anything else the same as ever. libyaml takes a tab for a
    # space where the pure parser refuses it: such a file is always read by _Loader
    if _FastLoader is not None and "\t" not in text:
        fast: _EventsInC | None = None
        try:
            fast = _FastLoader(text)  # its reader checks the text too: inside the try
            fast.source, fast.problems, fast.sizes = path, [], {}
            data = fast.get_single_data()
            if not fast.problems:
                return data, []
        except (yaml.YAMLError, RecursionError):
            pass
        finally:
            if fast is not None:
                fast.dispose()
    return _parse_exactly(path, text)


def _parse_exactly(path: Path, text: str) -> tuple[Any, list[Problem]]:
    loader: _Loader | None = None
    try:
        loader = _Loader(text)
        loader.source = path
        loader.problems = []
        loader.sizes = {}
        data = loader.get_single_data()
    except _Limit as exc:
        return None, [Problem(exc.message, path, exc.line)]
    except yaml.constructor.ConstructorError as exc:
        mark = exc.problem_mark
        line = int(mark.line) + 1 if mark is not None else None
        if "tag" not in str(exc.problem or ""):
            return None, [Problem(f"malformed YAML: {exc.problem}", path, line)]
        tag = str(exc.problem or "").split("tag ")[-1].strip().strip("'")
        tag = tag.replace("tag:yaml.org,2002:", "!!")
        return None, [
            Problem(f"tag {shown(tag)} is not allowed: only plain YAML is read", path, line)
        ]
    except yaml.MarkedYAMLError as exc:
        return None, [_syntax_problem(path, exc)]
    except yaml.YAMLError as exc:
        return None, [Problem(f"malformed YAML: {exc}", path)]
    except RecursionError:
        return None, [Problem(f"nested too deeply to read (at most {MAX_DEPTH} levels)", path)]
    finally:
        if loader is not None:
            loader.dispose()
    return data, loader.problems


def _cleaned(problems: list[Problem]) -> list[Problem]:
    """Messages quote the file's own text: escape what a terminal would act on."""
    return [Problem(clean_message(p.message), p.path, p.line) for p in problems]


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
