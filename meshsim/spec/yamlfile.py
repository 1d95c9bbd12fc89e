"""Read one spec file as YAML, bounded, with the line of every key path.

A spec file is small hand-written YAML, so anything else is refused with a :class:`SpecError`
naming the file (and the line where there is one) before it can cost memory or time: files that
are not regular files (a link to ``/dev/zero``, a FIFO, a folder), files over
:data:`MAX_SPEC_BYTES`, bytes that are not UTF-8, values nested deeper than
:data:`MAX_YAML_DEPTH` (counted after aliases are expanded), more than :data:`MAX_ALIASES`
aliases, aliases that expand to more than :data:`MAX_YAML_VALUES` values (an alias bomb), aliases
that refer to a value containing themselves, characters YAML does not allow (a NUL byte) and
integers of more than :data:`MAX_INT_DIGITS` digits.

A key written twice in one mapping is refused too: YAML keeps the last silently, so
``{classification: pii, classification: public}`` would quietly drop a protection.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import yaml

from meshsim.errors import SpecError

KeyPath = tuple[str | int, ...]

MAX_SPEC_BYTES = 1024 * 1024
MAX_YAML_DEPTH = 64
MAX_ALIASES = 1000
MAX_YAML_VALUES = 100_000
MAX_INT_DIGITS = 100
_INT_TAG = "tag:yaml.org,2002:int"

_FILE_KINDS = {
    stat.S_IFDIR: "a directory",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFIFO: "a FIFO",
    stat.S_IFSOCK: "a socket",
}


def read_spec_bytes(path: Path) -> bytes:
    """The bytes of a regular file of at most MAX_SPEC_BYTES; SpecError otherwise.

    Opened non-blocking and checked on the open descriptor, so a FIFO cannot hang the read
    and the file checked is the file read."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as exc:
        raise SpecError([f"{path}: cannot read: {exc.strerror}"]) from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            kind = _FILE_KINDS.get(stat.S_IFMT(mode), "not a file")
            raise SpecError(
                [f"{path}: is not a regular file ({kind}); a spec file must be a plain YAML file"]
            )
        chunks, size = [], 0
        while size <= MAX_SPEC_BYTES:
            chunk = os.read(fd, MAX_SPEC_BYTES + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        data = b"".join(chunks)
    except OSError as exc:
        raise SpecError([f"{path}: cannot read: {exc.strerror}"]) from None
    finally:
        os.close(fd)
    if len(data) > MAX_SPEC_BYTES:
        raise SpecError(
            [f"{path}: is larger than {MAX_SPEC_BYTES} bytes; a spec file is small YAML"]
        )
    return data


def decode_spec(path: Path, data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line_start = data.rfind(b"\n", 0, exc.start) + 1
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - line_start + 1
        raise SpecError(
            [
                f"{path}:{line}: not UTF-8 text (byte 0x{data[exc.start]:02x} at column "
                f"{column}); save the file as UTF-8"
            ]
        ) from None


try:  # libyaml's parser: the events of a spec file ten times faster than PyYAML's own
    from yaml._yaml import CParser as _EventParser
except ImportError:  # pragma: no cover - PyYAML built without libyaml
    _EventParser = None


class _PythonEvents(yaml.reader.Reader, yaml.scanner.Scanner, yaml.parser.Parser):
    def __init__(self, stream: str) -> None:
        yaml.reader.Reader.__init__(self, stream)
        yaml.scanner.Scanner.__init__(self)
        yaml.parser.Parser.__init__(self)


_Events: Any = _EventParser or _PythonEvents


class _BoundedLoader(
    yaml.composer.Composer, _Events, yaml.constructor.SafeConstructor, yaml.resolver.Resolver
):
    """A safe loader that stops composing past MAX_YAML_DEPTH levels or MAX_ALIASES aliases,
    before PyYAML's recursive composer can exhaust the stack. Its events come from libyaml
    (PyYAML's own parser without it); the nodes are composed here in Python, so every bound
    is checked as each node is composed, whichever parser read the text."""

    def __init__(self, stream: str) -> None:
        _Events.__init__(self, stream)
        yaml.composer.Composer.__init__(self)
        yaml.constructor.SafeConstructor.__init__(self)
        yaml.resolver.Resolver.__init__(self)
        self._depth = 0
        self._aliases = 0
        self.composed = 0  # nodes composed (aliases not counted): the values of a tree
        self.anchor_names: dict[int, str] = {}  # id(node) -> anchor, for messages

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            self._aliases += 1
            if self._aliases > MAX_ALIASES:
                mark = self.peek_event().start_mark
                raise _Refused(
                    f"more than {MAX_ALIASES} aliases; write the values out instead", mark
                )
        self._depth += 1
        try:
            event = self.peek_event()
            if self._depth > MAX_YAML_DEPTH:
                raise _Refused(_too_deep(), event.start_mark)
            node = super().compose_node(parent, index)
            if not isinstance(event, yaml.AliasEvent):
                self.composed += 1
                if event.anchor:
                    self.anchor_names[id(node)] = event.anchor
            return node
        finally:
            self._depth -= 1

    @property
    def aliased(self) -> bool:
        return self._aliases > 0


class _Refused(yaml.MarkedYAMLError):
    def __init__(self, problem: str, mark: Any) -> None:
        super().__init__(problem=problem, problem_mark=mark)


def _too_deep() -> str:
    return f"values nested more than {MAX_YAML_DEPTH} levels deep"


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    return []


def check_expansion(root: yaml.Node, anchors: dict[int, str]) -> None:
    """Refuse a node graph that refers to itself, or that expands (every alias replaced by a
    copy of its value) to more than MAX_YAML_VALUES values or MAX_YAML_DEPTH levels.

    Iterative and memoised by node, so a bomb is measured without being expanded."""
    measured: dict[int, tuple[int, int]] = {}  # id(node) -> (values, depth) once expanded
    entered: set[int] = set()  # nodes on the current path
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, leaving = stack.pop()
        key = id(node)
        if leaving:
            entered.discard(key)
            sizes = [measured[id(child)] for child in _children(node)]
            values = 1 + sum(size for size, _ in sizes)
            depth = 1 + max((d for _, d in sizes), default=0)
            if values > MAX_YAML_VALUES:
                raise _Refused(
                    f"aliases expand to more than {MAX_YAML_VALUES} values (an alias bomb?); "
                    f"write the values out instead",
                    node.start_mark,
                )
            if depth > MAX_YAML_DEPTH:
                raise _Refused(_too_deep(), node.start_mark)
            measured[key] = (values, depth)
            continue
        if key in measured:
            continue
        if key in entered:
            name = f"alias '*{anchors[key]}'" if key in anchors else "an alias"
            raise _Refused(
                f"{name} refers to a value that contains it; YAML that refers to itself "
                f"cannot be a spec",
                node.start_mark,
            )
        entered.add(key)
        stack.append((node, True))
        stack.extend((child, False) for child in _children(node) if id(child) not in measured)


def check_keys_and_numbers(root: yaml.Node) -> None:
    """Refuse a key that appears twice in one mapping, and an integer too long to be a spec
    value (Python refuses to convert more than 4300 digits)."""
    seen: set[int] = set()
    stack = [root]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, yaml.ScalarNode) and node.tag == _INT_TAG:
            digits = sum(ch.isdigit() for ch in str(node.value))
            if digits > MAX_INT_DIGITS:
                raise _Refused(
                    f"an integer of {digits} digits; a spec number has at most {MAX_INT_DIGITS}",
                    node.start_mark,
                )
        if isinstance(node, yaml.MappingNode):
            first: dict[str, int] = {}
            for key_node, _ in node.value:
                if not isinstance(key_node, yaml.ScalarNode) or key_node.tag.endswith(":merge"):
                    continue
                key = str(key_node.value)
                if key in first:
                    raise _Refused(
                        f"the key '{key}' appears twice in the same mapping (first on line "
                        f"{first[key]}); YAML would silently keep only the last",
                        key_node.start_mark,
                    )
                first[key] = key_node.start_mark.line + 1
        stack.extend(_children(node))


def _where(path: Path, exc: yaml.YAMLError, text: str) -> str:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    if mark is not None:
        return f"{path}:{mark.line + 1}"
    position = getattr(exc, "position", None)  # ReaderError: a character offset
    if isinstance(position, int):
        return f"{path}:{text.count(chr(10), 0, position) + 1}"
    return str(path)


def _line_map(node: yaml.Node, path: KeyPath, out: dict[KeyPath, int]) -> None:
    out[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = str(key_node.value) if isinstance(key_node, yaml.ScalarNode) else "?"
            out[(*path, key)] = key_node.start_mark.line + 1
            _line_map(value_node, (*path, key), out)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _line_map(item, (*path, index), out)


def parse_yaml(path: Path, text: str) -> tuple[Any, dict[KeyPath, int]]:
    """Parse bounded YAML text and map every key path to its line; SpecError on bad YAML."""
    loader = None
    try:
        loader = _BoundedLoader(text)  # its reader refuses characters YAML does not allow
        node = loader.get_single_node()
        # without aliases the nodes are a tree of ``composed`` values whose depth composing
        # bounded already: only a graph (or too many values) needs measuring
        if node is not None and (loader.aliased or loader.composed > MAX_YAML_VALUES):
            check_expansion(node, loader.anchor_names)
        if node is not None:
            check_keys_and_numbers(node)
        data = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as exc:
        problem = getattr(exc, "problem", None) or getattr(exc, "reason", None) or str(exc)
        if isinstance(exc, yaml.reader.ReaderError):
            problem = f"character #x{exc.character:04x} is not allowed in YAML"
        message = problem if isinstance(exc, _Refused) else f"invalid YAML: {problem}"
        raise SpecError([f"{_where(path, exc, text)}: {message}"]) from None
    except ValueError as exc:  # a value PyYAML cannot construct
        raise SpecError([f"{path}: invalid value: {exc}"]) from None
    finally:
        if loader is not None:
            loader.dispose()
    lines: dict[KeyPath, int] = {}
    if node is not None:
        _line_map(node, (), lines)
    return data, lines


def read_yaml(path: Path) -> tuple[Any, dict[KeyPath, int], bytes]:
    """A spec file's data, the line of every key path, and its bytes (for fingerprints)."""
    data = read_spec_bytes(path)
    parsed, lines = parse_yaml(path, decode_spec(path, data))
    return parsed, lines, data
