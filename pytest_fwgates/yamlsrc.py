"""YAML read through PyYAML's safe loader, keeping the line of every key and list item."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

__all__ = ["LineDict", "LineList", "SourceError", "line_of", "load_yaml"]

_MAX_BYTES = 1024 * 1024
#: values a document may hold once its aliases are expanded
_MAX_VALUES = 200_000
_MERGE_TAG = "tag:yaml.org,2002:merge"


class SourceError(Exception):
    """A user's file is wrong: ``path:line: message``, shown as one line."""

    def __init__(self, path: Path | str, line: int | None, message: str) -> None:
        self.path = Path(path)
        self.line = line
        self.message = message
        where = f"{path}:{line}" if line else str(path)
        super().__init__(f"{where}: {message}")


class LineDict(dict[str, Any]):
    """A mapping that remembers the line of itself and of each key (1-based)."""

    line: int = 0
    key_lines: dict[str, int]

    def __init__(self) -> None:
        super().__init__()
        self.key_lines = {}

    def line_of(self, key: str) -> int:
        return self.key_lines.get(key, self.line)


class LineList(list[Any]):
    """A sequence that remembers the line of itself and of each item (1-based)."""

    line: int = 0
    item_lines: list[int]

    def __init__(self) -> None:
        super().__init__()
        self.item_lines = []

    def line_of(self, index: int) -> int:
        if 0 <= index < len(self.item_lines):
            return self.item_lines[index]
        return self.line


class _Loader(yaml.SafeLoader):
    """The safe loader (no Python object tags), building LineDict/LineList."""

    def __init__(self, stream: str, path: Path) -> None:
        super().__init__(stream)
        self._path = path

    def construct_yaml_map(self, node: yaml.MappingNode) -> Any:
        data = LineDict()
        data.line = node.start_mark.line + 1
        yield data
        if not isinstance(node, yaml.MappingNode):
            raise SourceError(self._path, node.start_mark.line + 1, "expected a mapping")
        explicit = sum(1 for key_node, _ in node.value if key_node.tag != _MERGE_TAG)
        self.flatten_mapping(node)
        # flattening puts the pairs merged in with '<<' first; the mapping's own keys override them
        merged = len(node.value) - explicit
        own: set[str] = set()
        for index, (key_node, value_node) in enumerate(node.value):
            key = self.construct_object(key_node, deep=True)
            if not isinstance(key, str):
                key = str(key)
            line = key_node.start_mark.line + 1
            if index >= merged:
                if key in own:
                    raise SourceError(
                        self._path,
                        line,
                        f"duplicate key '{key}' (first at line {data.key_lines[key]})",
                    )
                own.add(key)
            data[key] = self.construct_object(value_node, deep=True)
            data.key_lines[key] = line

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep=deep)
        except (ValueError, KeyError, TypeError, OverflowError) as exc:
            # e.g. '!!int abc', '!!bool maybe', an integer of thousands of digits
            text = str(exc) if isinstance(exc, ValueError) else "not a valid value"
            tag = str(node.tag).replace("tag:yaml.org,2002:", "!!")
            raise SourceError(
                self._path, node.start_mark.line + 1, f"cannot read {tag}: {text}"
            ) from None

    def construct_yaml_seq(self, node: yaml.SequenceNode) -> Any:
        data = LineList()
        data.line = node.start_mark.line + 1
        yield data
        for item in node.value:
            data.append(self.construct_object(item, deep=True))
            data.item_lines.append(item.start_mark.line + 1)


_Loader.add_constructor("tag:yaml.org,2002:map", _Loader.construct_yaml_map)
_Loader.add_constructor("tag:yaml.org,2002:seq", _Loader.construct_yaml_seq)
# dates stay strings: the schema decides what a value means
_Loader.add_constructor(
    "tag:yaml.org,2002:timestamp",
    lambda loader, node: loader.construct_scalar(node),  # type: ignore[arg-type]
)


def load_yaml(path: Path) -> Any:
    """Read one YAML document safely; errors become :class:`SourceError` with a line."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise SourceError(path, None, f"cannot read: {exc.strerror or exc}") from None
    if len(raw) > _MAX_BYTES:
        raise SourceError(path, None, f"file larger than {_MAX_BYTES} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SourceError(path, None, f"not UTF-8 text ({exc.reason})") from None
    loader = _Loader(text, path)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_size(node, path)
        return loader.construct_document(node)
    except SourceError:
        raise
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        what = exc.problem or exc.context or "invalid YAML"
        if "'\\t'" in what:
            what = "a tab character here; indent YAML with spaces"
        elif exc.problem and exc.context and exc.context_mark and line != exc.context_mark.line + 1:
            # e.g. an unclosed '[': say where it was opened
            what += f" ({exc.context} started at line {exc.context_mark.line + 1})"
        raise SourceError(path, line, f"YAML syntax error: {what}") from None
    except yaml.YAMLError as exc:
        raise SourceError(path, None, f"YAML error: {exc}") from None
    except RecursionError:
        raise SourceError(path, None, "YAML nested too deeply") from None
    finally:
        loader.dispose()


def _check_size(root: yaml.Node, path: Path) -> None:
    """Refuse recursive aliases, and aliases that expand to a huge document."""
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()

    def size(node: yaml.Node) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in open_nodes:
            raise SourceError(path, node.start_mark.line + 1, "an alias refers to itself")
        open_nodes.add(key)
        total = 1
        if isinstance(node, yaml.SequenceNode):
            children: list[yaml.Node] = list(node.value)
        elif isinstance(node, yaml.MappingNode):
            children = [part for pair in node.value for part in pair]
        else:
            children = []
        for child in children:
            total += size(child)
            if total > _MAX_VALUES:
                raise SourceError(
                    path,
                    node.start_mark.line + 1,
                    f"more than {_MAX_VALUES} values once aliases are expanded",
                )
        open_nodes.discard(key)
        sizes[key] = total
        return total

    size(root)


def _child(node: Any, part: str | int) -> tuple[int, Any] | None:
    if isinstance(node, LineDict) and isinstance(part, str) and part in node:
        return node.line_of(part), node[part]
    if isinstance(node, LineList) and isinstance(part, int) and 0 <= part < len(node):
        return node.line_of(part), node[part]
    return None


def line_of(document: Any, path: tuple[str | int, ...] | list[str | int]) -> int:
    """The line of the deepest element of ``path`` that can be found in ``document``."""
    line = getattr(document, "line", 0) or 1
    node = document
    for part in path:
        child = _child(node, part)
        if child is None:
            break
        line, node = child
    return line
