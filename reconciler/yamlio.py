"""The one place YAML is read: safe, bounded, and keeping line numbers for error messages.

PyYAML's composer (the C one when libyaml is present) builds a node tree; we construct plain
Python values from it ourselves so that we can reject duplicate keys, bound alias expansion
before anything walks a bomb, and find the line of any field path later.

Scalars resolve as in YAML 1.2's core schema for booleans: only true/false are booleans, so
`preQual: Yes` stays the string "Yes" that Lofty expects (YAML 1.1 would make it True).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

try:  # libyaml's parser is several times faster; the pure-Python one behaves the same
    from yaml import CSafeLoader as _BaseLoader
except ImportError:  # pragma: no cover - depends on how PyYAML was built
    from yaml import SafeLoader as _BaseLoader  # type: ignore[assignment]

MAX_FILE_BYTES = 4 * 1024 * 1024
MAX_NODES_PER_DOCUMENT = 20_000

PathPart = str | int
FieldPath = tuple[PathPart, ...]


class YamlProblem(Exception):
    """A YAML file that cannot be turned into values; carries the 1-based line if known."""

    def __init__(self, message: str, line: int | None = None) -> None:
        self.line = line
        super().__init__(message)


class _Loader(_BaseLoader):
    """Safe loader with YAML 1.2 booleans (no yes/no/on/off)."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in _BaseLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool",
    re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
    list("tTfF"),
)

_constructor = yaml.constructor.SafeConstructor()


@dataclass(frozen=True, slots=True)
class Document:
    """One YAML document: its value, its first line, and its node tree for line look-ups."""

    value: Any
    line: int
    node: Node
    has_null: bool = False  # whether any value is null (so callers need not search for one)

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
        raise YamlProblem(
            f"file is {len(data):,} bytes, over the {MAX_FILE_BYTES:,}-byte limit; split it"
        )
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise YamlProblem(
            f"not valid UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start}); "
            "save the file as UTF-8",
            line,
        ) from None


def load_documents(text: str) -> Iterator[Document]:
    """Every non-empty document of a YAML stream, as values with their node trees."""
    loader = _Loader(text)
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is None or _is_empty(node):
                continue
            builder = _Builder()
            value = builder.build(node)
            yield Document(value, node.start_mark.line + 1, node, builder.saw_null)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        raise YamlProblem(f"YAML syntax error: {exc.problem or exc.context}", line) from None
    except yaml.YAMLError as exc:
        raise YamlProblem(f"YAML error: {exc}") from None
    finally:
        loader.dispose()


def _is_empty(node: Node) -> bool:
    return isinstance(node, ScalarNode) and node.tag.endswith(":null") and node.value in ("", "~")


_STR, _NULL = "tag:yaml.org,2002:str", "tag:yaml.org,2002:null"
_BOOL, _INT = "tag:yaml.org,2002:bool", "tag:yaml.org,2002:int"
_BOOLS = {"true": True, "True": True, "TRUE": True, "false": False, "False": False, "FALSE": False}
_COLLECTION_TAGS = frozenset({"tag:yaml.org,2002:seq", "tag:yaml.org,2002:map"})


class _Builder:
    """Builds values from nodes, refusing duplicate keys, merge keys and runaway aliases."""

    def __init__(self) -> None:
        self.visited = 0
        self.active: set[int] = set()
        self.saw_null = False

    def build(self, node: Node) -> Any:
        self.visited += 1
        if self.visited > MAX_NODES_PER_DOCUMENT:
            raise YamlProblem(
                f"document expands to over {MAX_NODES_PER_DOCUMENT:,} values "
                "(an alias bomb?); aliases are not expanded that far",
                node.start_mark.line + 1,
            )
        if isinstance(node, ScalarNode):
            return self._scalar(node)
        if node.tag not in _COLLECTION_TAGS:
            raise YamlProblem(f"unsupported YAML tag {node.tag}", node.start_mark.line + 1)
        if id(node) in self.active:
            raise YamlProblem("an alias refers to its own parent", node.start_mark.line + 1)
        self.active.add(id(node))
        try:
            if isinstance(node, SequenceNode):
                return [self.build(item) for item in node.value]
            if isinstance(node, MappingNode):
                return self._mapping(node)
        finally:
            self.active.discard(id(node))
        raise YamlProblem(f"unsupported YAML node {node.tag}", node.start_mark.line + 1)

    def _scalar(self, node: ScalarNode) -> Any:
        # The common scalars are built directly: PyYAML's constructor bookkeeping costs more
        # than parsing them. Anything unusual (octal, floats, dates, tags) goes to it.
        tag, value = node.tag, node.value
        if tag == _STR:
            return value
        if tag == _NULL:
            self.saw_null = True
            return None
        if tag == _BOOL and value in _BOOLS:
            return _BOOLS[value]
        if tag == _INT and value.isascii() and value.isdigit() and value[0] != "0":
            return int(value)
        if tag == "tag:yaml.org,2002:merge":
            raise YamlProblem("merge keys (<<) are not supported", node.start_mark.line + 1)
        try:
            return _constructor.construct_object(node, deep=True)
        except yaml.constructor.ConstructorError as exc:
            raise YamlProblem(str(exc.problem), node.start_mark.line + 1) from None

    def _mapping(self, node: MappingNode) -> dict[Any, Any]:
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, ScalarNode):
                raise YamlProblem("mapping keys must be plain names", key_node.start_mark.line + 1)
            key = self._scalar(key_node)
            if not isinstance(key, str):
                raise YamlProblem(
                    f"key {key_node.value or 'null'!r} is not a field name (quote it?)",
                    key_node.start_mark.line + 1,
                )
            if key in result:
                raise YamlProblem(f"duplicate key {key!r}", key_node.start_mark.line + 1)
            result[key] = self.build(value_node)
        return result
