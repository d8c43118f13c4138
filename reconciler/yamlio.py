"""The one place YAML is read: safe, bounded, and keeping line numbers for error messages.

PyYAML's composer (the C one when libyaml is present) builds a node tree; we construct plain
Python values from it ourselves so that we can reject duplicate keys, bound alias expansion
before anything walks a bomb, and find the line of any field path later.

Plain scalars resolve as in YAML 1.2's core schema, the one editors and their JSON Schema
checks use: only true/false are booleans (so `preQual: Yes` stays the string "Yes" that Lofty
expects), `1e6` is a number, `017` is seventeen, and there are no timestamps (`2001-06-05` is
text) or sexagesimal numbers.

Every limit holds per file (a file, not a document, is what a user hands us): its size, the
values it expands to (aliases included), its documents and how deeply they nest.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import yaml
from yaml.events import AliasEvent, CollectionStartEvent, ScalarEvent
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

try:  # libyaml's parser is several times faster; the pure-Python one behaves the same
    from yaml import CSafeLoader as _BaseLoader
except ImportError:  # pragma: no cover - depends on how PyYAML was built
    from yaml import SafeLoader as _BaseLoader  # type: ignore[assignment]

MAX_FILE_BYTES = 4 * 1024 * 1024
# Values built from one file, alias expansions included. A 4 MiB file of ordinary leads holds
# about 250,000; an alias bomb, or thousands of small documents each expanding a little, stops
# here instead of taking minutes and gigabytes.
MAX_VALUES_PER_FILE = 500_000
MAX_DOCUMENTS_PER_FILE = 10_000
MAX_DEPTH = 32  # a lead nests 5 levels deep at most; 500 nested `[` is not a lead
_SHOWN_DEPTH = 6  # a flaw's path is named this deep at most: `tags[0][0][0]...` tells nothing
# Composing a document builds its whole node tree before we see it (about 300 bytes a node), so
# a large file's nodes are counted from the parser's events first, in constant memory.
_COUNT_FIRST_CHARS = 256 * 1024

PathPart = str | int
FieldPath = tuple[PathPart, ...]


class YamlProblem(Exception):
    """A YAML file that cannot be turned into values; carries the 1-based line if known."""

    def __init__(self, message: str, line: int | None = None) -> None:
        self.line = line
        super().__init__(message)


@dataclass(frozen=True, slots=True)
class Flaw:
    """A problem inside one document that does not stop the rest of the file from being read
    (a duplicate key, a number too long to read, nesting too deep): where it is and what."""

    path: FieldPath
    line: int
    message: str
    covers: bool = True  # it stands for the value at `path`: nothing more need be said of it


class _Loader(_BaseLoader):
    """Safe loader resolving plain scalars as YAML 1.2's core schema does."""


_Loader.yaml_implicit_resolvers = {}
for _tag, _pattern, _first in (
    ("bool", r"true|True|TRUE|false|False|FALSE", "tTfF"),
    ("int", r"[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+", "-+0123456789"),
    (
        "float",
        r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN)",
        "-+.0123456789",
    ),
    ("null", r"~|null|Null|NULL|", ["~", "n", "N", ""]),
    ("merge", r"<<", "<"),  # not YAML 1.2, but refused with a clear message rather than as a key
):
    _Loader.add_implicit_resolver(
        f"tag:yaml.org,2002:{_tag}", re.compile(f"^(?:{_pattern})$"), list(_first)
    )


def quote_like_the_reader(dumper: type[yaml.SafeDumper]) -> None:
    """Make `dumper` quote every string this reader would read as something else (`1e6`,
    `0o17`), besides those YAML 1.1 would: what it writes reads back as written."""
    for first, resolvers in _Loader.yaml_implicit_resolvers.items():
        for tag, pattern in resolvers:
            dumper.add_implicit_resolver(tag, pattern, [first])


@dataclass(frozen=True, slots=True)
class Document:
    """One YAML document: its value, its first line, and its node tree for line look-ups.

    `flaws` are the problems found while building the value (only when the document was read
    with `collect=True`); where one is, the value holds the first of two duplicate keys, or
    None in place of what could not be read.
    """

    value: Any
    line: int
    node: Node
    has_null: bool = False  # whether any value is null (so callers need not search for one)
    flaws: tuple[Flaw, ...] = ()

    def line_of(self, path: FieldPath) -> int:
        """The line of the deepest part of `path` present in the document."""
        node, line = self.node, self.line
        for part in path:
            child = _child(node, part)
            if child is None:
                break
            key_node, node = child
            line = (key_node or node).start_mark.line + 1
        return line


def _child(node: Node, part: PathPart) -> tuple[Node | None, Node] | None:
    if isinstance(node, MappingNode) and isinstance(part, str):
        for key, value in node.value:
            if isinstance(key, ScalarNode) and key.value == part:
                return key, value
    if isinstance(node, SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
        return None, node.value[part]
    return None


def decode(data: bytes) -> str:
    """UTF-8 text of a file (a leading BOM is allowed), or a YamlProblem saying where it breaks."""
    if len(data) > MAX_FILE_BYTES:
        raise YamlProblem(too_large(len(data)))
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise YamlProblem(
            f"not valid UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start}); "
            "save the file as UTF-8",
            line,
        ) from None


def too_large(size: int) -> str:
    """The message for a file over MAX_FILE_BYTES."""
    return f"file is {size:,} bytes, over the {MAX_FILE_BYTES:,}-byte limit; split it"


def load_documents(text: str, *, collect: bool = False) -> Iterator[Document]:
    """Every non-empty document of a YAML stream, as values with their node trees.

    A problem that spoils the whole file (bad syntax, a limit) raises YamlProblem, after the
    documents before it were yielded. With `collect`, a problem confined to one value is
    recorded in `Document.flaws` and reading goes on; without it, it raises too.
    """
    if len(text) > _COUNT_FIRST_CHARS:
        _count_nodes(text)
    loader = _Loader(text)
    builder = _Builder(collect)
    documents = 0
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is None or _is_empty(node):
                continue
            documents += 1
            if documents > MAX_DOCUMENTS_PER_FILE:
                raise YamlProblem(
                    f"file holds over {MAX_DOCUMENTS_PER_FILE:,} documents; split it",
                    node.start_mark.line + 1,
                )
            yield builder.document(node)
    except yaml.MarkedYAMLError as exc:
        raise _syntax_problem(exc, text) from None
    except yaml.YAMLError as exc:
        raise YamlProblem(f"YAML error: {exc}") from None
    finally:
        loader.dispose()


def _count_nodes(text: str) -> None:
    """Refuse, before composing, a file whose nodes alone exceed MAX_VALUES_PER_FILE."""
    count = 0
    try:
        for event in yaml.parse(text, Loader=_Loader):
            if isinstance(event, ScalarEvent | CollectionStartEvent | AliasEvent):
                count += 1
                if count > MAX_VALUES_PER_FILE:
                    mark = event.start_mark
                    raise YamlProblem(_too_many_values(), mark.line + 1 if mark else None)
    except yaml.MarkedYAMLError as exc:
        raise _syntax_problem(exc, text) from None


def _too_many_values() -> str:
    return (
        f"file expands to over {MAX_VALUES_PER_FILE:,} values (an alias bomb?); "
        "aliases are not expanded that far, and a larger file should be split"
    )


def _syntax_problem(exc: yaml.MarkedYAMLError, text: str) -> YamlProblem:
    mark = exc.problem_mark or exc.context_mark
    message = f"YAML syntax error: {exc.problem or exc.context}"
    if mark is None:
        return YamlProblem(message)
    lines = text.split("\n", mark.line + 1)
    here = lines[mark.line] if mark.line < len(lines) else ""
    if "\t" in here[: len(here) - len(here.lstrip())]:
        message += "; indent with spaces: YAML does not allow tabs in indentation"
    return YamlProblem(message, mark.line + 1)


def _is_empty(node: Node) -> bool:
    return isinstance(node, ScalarNode) and node.tag.endswith(":null") and node.value in ("", "~")


_STR, _NULL = "tag:yaml.org,2002:str", "tag:yaml.org,2002:null"
_BOOL, _INT, _FLOAT = "tag:yaml.org,2002:bool", "tag:yaml.org,2002:int", "tag:yaml.org,2002:float"
_MERGE = "tag:yaml.org,2002:merge"
_BOOLS = {"true": True, "True": True, "TRUE": True, "false": False, "False": False, "FALSE": False}
_COLLECTION_TAGS = frozenset({"tag:yaml.org,2002:seq", "tag:yaml.org,2002:map"})
_NOT_READ = object()  # a scalar that could not be read; its flaw says why


class _Builder:
    """Builds values from nodes, refusing duplicate keys, merge keys and runaway aliases.

    One builder reads a whole file, so its count of values built spans the file's documents.
    """

    def __init__(self, collect: bool) -> None:
        self.collect = collect
        self.visited = 0
        self.active: set[int] = set()  # collections being built: the current nesting
        self.saw_null = False
        self.flaws: list[tuple[Node, PathPart | None, str, bool]] = []

    def document(self, node: Node) -> Document:
        self.saw_null, self.flaws = False, []
        value = self.build(node)
        flaws = tuple(_place(node, self.flaws)) if self.flaws else ()
        return Document(value, node.start_mark.line + 1, node, self.saw_null, flaws)

    def flaw(
        self, node: Node, message: str, key: PathPart | None = None, *, covers: bool = True
    ) -> None:
        """Record a problem of one value, or raise it when not collecting. A key's problem
        belongs to its mapping's path (`key` extends it to the key's), and `covers` says
        whether the problem stands for the value at that path."""
        if not self.collect:
            raise YamlProblem(message, node.start_mark.line + 1)
        self.flaws.append((node, key, message, covers))

    def build(self, node: Node) -> Any:
        self.visited += 1
        if self.visited > MAX_VALUES_PER_FILE:
            raise YamlProblem(_too_many_values(), node.start_mark.line + 1)
        if isinstance(node, ScalarNode):
            value = self._scalar(node)
            return None if value is _NOT_READ else value
        if node.tag not in _COLLECTION_TAGS:
            raise YamlProblem(f"unsupported YAML tag {node.tag}", node.start_mark.line + 1)
        if id(node) in self.active:
            raise YamlProblem("an alias refers to its own parent", node.start_mark.line + 1)
        if len(self.active) >= MAX_DEPTH:
            self.flaw(node, f"nested more than {MAX_DEPTH} levels deep; no lead field is")
            return None
        self.active.add(id(node))
        try:
            if isinstance(node, SequenceNode):
                return [self.build(item) for item in node.value]
            assert isinstance(node, MappingNode)  # the only other collection tag
            return self._mapping(node)
        finally:
            self.active.discard(id(node))

    def _scalar(self, node: ScalarNode) -> Any:
        # The common scalars are built directly: PyYAML's constructor bookkeeping costs more
        # than parsing them.
        tag, value = node.tag, node.value
        if tag == _STR:
            return value
        if tag == _NULL:
            self.saw_null = True
            return None
        if tag == _INT and value.isascii() and value.isdigit() and len(value) < 100:
            return int(value)
        if tag == _BOOL and value in _BOOLS:
            return _BOOLS[value]
        try:
            if tag == _INT:
                return _int(value)
            if tag == _FLOAT:
                return _float(value)
        except ValueError:
            self.flaw(node, f"is a number too long to read ({len(value):,} characters)")
            return _NOT_READ
        if tag == _MERGE:  # `<<` as a value is just text; as a key, _key refuses it
            return value
        raise YamlProblem(f"unsupported YAML tag {tag}", node.start_mark.line + 1)

    def _mapping(self, node: MappingNode) -> dict[Any, Any]:
        result: dict[Any, Any] = {}
        lines: dict[str, int] = {}
        for key_node, value_node in node.value:
            key = self._key(key_node)
            if key is None:
                continue
            if key in result:
                first = lines[key]
                self.flaw(key_node, f"duplicate key {key!r} (also on line {first}); keep one", key)
                continue
            lines[key] = key_node.start_mark.line + 1
            result[key] = self.build(value_node)
        return result

    def _key(self, node: Node) -> str | None:
        """A mapping key as a field name, or None (and a flaw) when it cannot be one."""
        if not isinstance(node, ScalarNode):
            self.flaw(node, "mapping keys must be plain names", covers=False)
            return None
        if node.tag == _MERGE:
            self.flaw(node, "merge keys (<<) are not supported", covers=False)
            return None
        key = self._scalar(node)
        if isinstance(key, str):
            return key
        if key is not _NOT_READ:  # a number too long to read already has its flaw
            shown = node.value or "null"
            self.flaw(node, f"key {shown!r} is not a field name (quote it?)", covers=False)
        return None


def _int(text: str) -> int:
    """A YAML 1.2 core integer: decimal (leading zeros allowed), 0o octal or 0x hexadecimal."""
    if text.startswith("0o"):
        return int(text[2:], 8)
    if text.startswith("0x"):
        return int(text[2:], 16)
    return int(text, 10)


def _float(text: str) -> float:
    special = text.lstrip("+-").lower()
    if special == ".inf":
        return -math.inf if text.startswith("-") else math.inf
    if special == ".nan":
        return math.nan
    return float(text)


def _place(root: Node, flaws: list[tuple[Node, PathPart | None, str, bool]]) -> Iterator[Flaw]:
    """Flaws with the field path of their node, found by walking the tree from the root (only
    documents with a flaw pay for it). A key's flaw belongs to its mapping's path; a duplicate
    key's, to the key."""
    wanted = {id(flaw[0]) for flaw in flaws}
    paths = _paths_to(root, wanted)
    for node, key, message, covers in flaws:
        path = paths.get(id(node), ())
        where = path if key is None else (*path, key)
        yield Flaw(where[:_SHOWN_DEPTH], node.start_mark.line + 1, message, covers)


def _paths_to(root: Node, wanted: set[int]) -> dict[int, FieldPath]:
    """The field path of each wanted node (a key node maps to its mapping's path)."""
    found: dict[int, FieldPath] = {}
    seen: set[int] = set()
    stack: list[tuple[Node, FieldPath]] = [(root, ())]
    while stack and len(found) < len(wanted):
        node, path = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if id(node) in wanted:
            found.setdefault(id(node), path)
        if isinstance(node, SequenceNode):
            stack.extend((item, (*path, index)) for index, item in enumerate(node.value))
        elif isinstance(node, MappingNode):
            for key, value in node.value:
                if id(key) in wanted:
                    found.setdefault(id(key), path)
                name = key.value if isinstance(key, ScalarNode) else "?"
                stack.append((value, (*path, name)))
    return found
