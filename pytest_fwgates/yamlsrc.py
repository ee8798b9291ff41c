"""YAML read through PyYAML's safe loader, keeping the line of every key and list item.

libyaml's ``CSafeLoader`` parses when PyYAML was built with it; the pure-Python
``SafeLoader`` is the fallback and also reads every file libyaml refuses, so the error
messages are the same on both paths. The work per file is bounded: its size in bytes, and
the number of values and characters it holds once its aliases are expanded.
"""

from __future__ import annotations

import gc
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml
from yaml.constructor import ConstructorError

from .fsutil import UnsafePathError, read_regular

__all__ = [
    "MAX_BYTES",
    "MAX_CHARS",
    "MAX_VALUES",
    "LineDict",
    "LineList",
    "SourceError",
    "SourceErrors",
    "leaves",
    "line_of",
    "load_yaml",
]

#: bytes a gate or waivers file may have
MAX_BYTES = 4 * 1024 * 1024
#: values a document may hold once its aliases are expanded
MAX_VALUES = 1_000_000
#: characters of scalars a document may hold once its aliases are expanded
MAX_CHARS = 16 * 1024 * 1024
_MERGE_TAG = "tag:yaml.org,2002:merge"
_VALUE_TAG = "tag:yaml.org,2002:value"
_STR_TAG = "tag:yaml.org,2002:str"
# what YAML does not allow in a document (the same set as PyYAML's reader refuses)
_NON_PRINTABLE = re.compile(
    "[^\x09\x0a\x0d\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]"
)
# what may start an anchor ('&name'); also matches '&&' and '&x' in text, which costs only time
_ANCHOR = re.compile(r"&[^\s,\[\]{}]")
FAST = bool(getattr(yaml, "__with_libyaml__", False)) and hasattr(yaml, "CSafeLoader")


class SourceError(Exception):
    """A user's file is wrong: ``path:line: message``, shown as one line."""

    def __init__(self, path: Path | str, line: int | None, message: str) -> None:
        self.path = Path(path)
        self.line = line
        # a value quoted in the message may hold a line break or an escape sequence
        # (YAML's "\e" or "\n"): written as escapes, the message stays one printable line
        if not message.isprintable():
            message = "".join(c if c.isprintable() else repr(c)[1:-1] for c in message)
        self.message = message
        where = f"{path}:{line}" if line else str(path)
        super().__init__(f"{where}: {message}")


class SourceErrors(SourceError):
    """Several mistakes of one file: one ``path:line: message`` line each, in line order.

    ``path``, ``line`` and ``message`` are those of the first.
    """

    errors: list[SourceError]

    def __init__(self, errors: list[SourceError]) -> None:
        flat: list[SourceError] = []
        for error in errors:
            flat.extend(error.errors if isinstance(error, SourceErrors) else [error])
        flat = list({str(e): e for e in flat}.values())
        flat.sort(key=lambda e: (str(e.path), e.line or 0))
        first = flat[0]
        super().__init__(first.path, first.line, first.message)
        self.errors = flat
        self.args = ("\n".join(str(e) for e in flat),)

    def __str__(self) -> str:
        return str(self.args[0])

    @staticmethod
    def of(errors: list[SourceError]) -> SourceError:
        """One error for ``errors``: itself when there is one."""
        if len(errors) == 1:
            return errors[0]
        return SourceErrors(errors)


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


_Pairs = list[tuple[str, int, yaml.Node]]


class _LineConstructor:
    """Builds LineDict/LineList; shared by the C and the pure-Python loader."""

    _path: Path
    _merged: dict[int, _Pairs]

    # provided by PyYAML's constructor
    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:  # pragma: no cover
        raise NotImplementedError

    def _key(self, key_node: yaml.Node) -> str:
        if key_node.tag == _VALUE_TAG:
            key_node.tag = _STR_TAG
        key = self.construct_object(key_node, deep=True)
        return key if isinstance(key, str) else str(key)

    def _own_pairs(self, node: yaml.MappingNode) -> tuple[_Pairs, yaml.Node | None]:
        """The mapping's own keys (each once) and the value of its one ``<<`` key."""
        pairs: _Pairs = []
        seen: dict[str, int] = {}
        merge: yaml.Node | None = None
        merge_line = 0
        for key_node, value_node in node.value:
            line = key_node.start_mark.line + 1
            if key_node.tag == _MERGE_TAG:
                if merge is not None:
                    raise SourceError(
                        self._path, line, f"duplicate key '<<' (first at line {merge_line})"
                    )
                merge, merge_line = value_node, line
                continue
            key = self._key(key_node)
            if key in seen:
                raise SourceError(
                    self._path, line, f"duplicate key '{key}' (first at line {seen[key]})"
                )
            seen[key] = line
            pairs.append((key, line, value_node))
        return pairs, merge

    def _flat_pairs(self, node: yaml.MappingNode) -> _Pairs:
        """Every pair of ``node`` with its merge keys resolved: merged first, own keys after."""
        cached = self._merged.get(id(node))
        if cached is not None:
            return cached
        own, merge = self._own_pairs(node)
        pairs: _Pairs = []
        if merge is not None:
            if isinstance(merge, yaml.MappingNode):
                pairs = list(self._flat_pairs(merge))
            elif isinstance(merge, yaml.SequenceNode):
                sources: list[_Pairs] = []
                for sub in merge.value:
                    if not isinstance(sub, yaml.MappingNode):
                        raise ConstructorError(
                            "while constructing a mapping",
                            node.start_mark,
                            f"expected a mapping for merging, but found {sub.id}",
                            sub.start_mark,
                        )
                    sources.append(self._flat_pairs(sub))
                # a mapping earlier in the list wins over a later one
                for source in reversed(sources):
                    pairs.extend(source)
            else:
                raise ConstructorError(
                    "while constructing a mapping",
                    node.start_mark,
                    "expected a mapping or list of mappings for merging, "
                    f"but found {getattr(merge, 'id', 'a value')}",
                    merge.start_mark,
                )
        pairs.extend(own)
        self._merged[id(node)] = pairs
        return pairs

    def construct_yaml_map(self, node: yaml.MappingNode) -> Any:
        data = LineDict()
        data.line = node.start_mark.line + 1
        yield data
        if not isinstance(node, yaml.MappingNode):
            raise SourceError(self._path, node.start_mark.line + 1, "expected a mapping")
        # the mapping's own keys override those merged in with '<<'
        for key, line, value_node in self._flat_pairs(node):
            data[key] = self.construct_object(value_node, deep=True)
            data.key_lines[key] = line

    def construct_yaml_seq(self, node: yaml.SequenceNode) -> Any:
        data = LineList()
        data.line = node.start_mark.line + 1
        yield data
        for item in node.value:
            data.append(self.construct_object(item, deep=True))
            data.item_lines.append(item.start_mark.line + 1)

    def _construct_checked(self, node: yaml.Node, deep: bool) -> Any:
        try:
            return super().construct_object(node, deep=deep)  # type: ignore[misc]
        except (ValueError, KeyError, TypeError, OverflowError) as exc:
            # e.g. '!!int abc', '!!bool maybe', an integer of thousands of digits
            text = str(exc) if isinstance(exc, ValueError) else "not a valid value"
            tag = str(node.tag).replace("tag:yaml.org,2002:", "!!")
            raise SourceError(
                self._path, node.start_mark.line + 1, f"cannot read {tag}: {text}"
            ) from None


def _setup(cls: type[Any]) -> None:
    cls.add_constructor("tag:yaml.org,2002:map", cls.construct_yaml_map)
    cls.add_constructor("tag:yaml.org,2002:seq", cls.construct_yaml_seq)
    # dates stay strings: the schema decides what a value means
    cls.add_constructor(
        "tag:yaml.org,2002:timestamp", lambda loader, node: loader.construct_scalar(node)
    )


class _Loader(_LineConstructor, yaml.SafeLoader):
    """The pure-Python safe loader (no Python object tags)."""

    def __init__(self, stream: str, path: Path) -> None:
        yaml.SafeLoader.__init__(self, stream)
        self._path = path
        self._merged = {}

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        return self._construct_checked(node, deep)


_setup(_Loader)

_CLoader: type[Any] | None = None
if FAST:

    class _FastLoader(_LineConstructor, yaml.CSafeLoader):
        """libyaml's parser with the same constructor."""

        def __init__(self, stream: str, path: Path) -> None:
            yaml.CSafeLoader.__init__(self, stream)
            self._path = path
            self._merged = {}

        def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
            return self._construct_checked(node, deep)

    _setup(_FastLoader)
    _CLoader = _FastLoader


def load_yaml(path: Path, *, fast: bool | None = None) -> Any:
    """Read one YAML document safely; errors become :class:`SourceError` with a line.

    ``fast`` picks libyaml (``True``) or the pure-Python parser (``False``); by default
    libyaml when PyYAML has it. Both give the same documents, lines and messages.
    """
    try:
        raw = read_regular(path, MAX_BYTES)
    except UnsafePathError as exc:
        raise SourceError(path, None, f"cannot read: {str(exc).split(': ', 1)[-1]}") from None
    except OSError as exc:
        raise SourceError(path, None, f"cannot read: {exc.strerror or exc}") from None
    if len(raw) > MAX_BYTES:
        raise SourceError(path, None, f"file larger than {MAX_BYTES} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SourceError(path, None, f"not UTF-8 text ({exc.reason})") from None
    bad = _NON_PRINTABLE.search(text)
    if bad is not None:
        line = text.count("\n", 0, bad.start()) + 1
        code = ord(bad.group())
        raise SourceError(
            path, line, f"control character U+{code:04X} is not allowed in YAML; remove it"
        )
    # without an anchor there is no alias, and the document is no larger than the file
    aliases = _ANCHOR.search(text) is not None
    if fast is None:
        fast = _CLoader is not None
    if fast and _CLoader is not None:
        try:
            return _load(_CLoader(text, path), path, aliases)
        except SourceError as exc:
            if not isinstance(exc.__cause__, yaml.YAMLError | RecursionError):
                raise
            # libyaml words its syntax errors differently, and does not say where a
            # document nests too deeply: read the file again for ours
        except Exception:
            # libyaml raises the error classes of the yaml module it was first loaded with;
            # where that module was imported again (pytester runs in one process), they are
            # not ours: the pure-Python parser reads the file again and words the error
            pass
    return _load(_Loader(text, path), path, aliases)


def _load(loader: Any, path: Path, aliases: bool = True) -> Any:
    # the collector finds no cycles in a document being built, only spends time looking
    collecting = gc.isenabled()
    gc.disable()
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        if aliases:
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
        raise SourceError(path, line, f"YAML syntax error: {what}") from exc
    except yaml.YAMLError as exc:
        raise SourceError(path, None, f"YAML error: {exc}") from exc
    except RecursionError as exc:
        # the pure-Python reader knows how far it got: the line where the nesting is too deep
        get_mark = getattr(loader, "get_mark", None)
        line = get_mark().line + 1 if get_mark is not None else None
        raise SourceError(path, line, "YAML nested too deeply") from exc
    finally:
        loader.dispose()
        if collecting:
            gc.enable()


def _check_size(root: yaml.Node, path: Path) -> None:
    """Refuse recursive aliases, and aliases that expand to a huge document.

    Counts values and the characters of scalars as if every alias were a copy; each node
    is visited once, so the check itself is linear in the size of the file.
    """
    sizes: dict[int, tuple[int, int]] = {}
    open_nodes: set[int] = set()

    def size(node: yaml.Node) -> tuple[int, int]:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in open_nodes:
            raise SourceError(path, node.start_mark.line + 1, "an alias refers to itself")
        open_nodes.add(key)
        values, chars = 1, 0
        if isinstance(node, yaml.SequenceNode):
            children: list[yaml.Node] = list(node.value)
        elif isinstance(node, yaml.MappingNode):
            children = [part for pair in node.value for part in pair]
        else:
            children = []
            chars = len(node.value)
        for child in children:
            child_values, child_chars = size(child)
            values += child_values
            chars += child_chars
            if values > MAX_VALUES:
                raise SourceError(
                    path,
                    node.start_mark.line + 1,
                    f"more than {MAX_VALUES} values once aliases are expanded",
                )
            if chars > MAX_CHARS:
                raise SourceError(
                    path,
                    node.start_mark.line + 1,
                    f"more than {MAX_CHARS} characters once aliases are expanded",
                )
        open_nodes.discard(key)
        sizes[key] = (values, chars)
        return values, chars

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


def leaves(value: Any) -> Iterator[Any]:
    """Every value in nested mappings, lists and tuples that is none of them (keys aside),
    in no particular order."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, Mapping):
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
        else:
            yield item
