"""Values as ruamel should write them: a new value put where an old one stands, in its style.

A mapping or list is updated in place (keeping its comments, key order and flow or block
style), an unchanged scalar stays the very object ruamel read (keeping its quotes), a new
string takes the old one's quotes, and a string a YAML reader could take for something else
(`Yes`, `02134`, `+1415...`, `1e6`, `2001-06-05`) is always quoted.
"""

from __future__ import annotations

import io
from typing import Any

import yaml
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.scalarstring import (
    DoubleQuotedScalarString,
    FoldedScalarString,
    LiteralScalarString,
    SingleQuotedScalarString,
)

from reconciler.writeback.edits import difference
from reconciler.yamlio import quote_like_the_reader

_FLOW_WIDTH = 80  # a new list of plain values up to this long goes on one line, as import does
_STR_TAG = "tag:yaml.org,2002:str"


class _Missing:
    """The value of a key a mapping does not hold yet."""


MISSING = _Missing()


class _Misread(yaml.SafeDumper):
    """Resolves plain scalars as YAML 1.1 readers and reconciler's reader do, to find the
    strings that must be quoted (`Yes`, `02134`, `+1415...`, `1e6`, `2001-06-05`)."""


quote_like_the_reader(_Misread)
_PROBE = _Misread(io.StringIO())


def _misread(text: str) -> bool:
    tag: object = _PROBE.resolve(yaml.ScalarNode, text, (True, False))  # type: ignore[no-untyped-call]
    return tag != _STR_TAG


def converted(old: Any, new: Any) -> Any:
    """`new` as the value to put where `old` stands (`MISSING` for a key not there yet), in
    `old`'s style: a mapping or list is updated in place (keeping its comments, key order and
    flow or block style), an unchanged scalar stays the very object read (keeping its quotes),
    a string takes `old`'s quotes."""
    if isinstance(new, dict) and isinstance(old, CommentedMap):
        for key in [key for key in old if key not in new]:
            del old[key]
        for key, value in new.items():
            old[key] = converted(old.get(key, MISSING), value)
        return old
    if isinstance(new, list) and isinstance(old, CommentedSeq):
        quotes = _shared_quotes(old)
        items = [_item(old, index, value, quotes) for index, value in enumerate(new)]
        # Item by item (a slice assignment would drop every item's comment), extras from the end.
        del old[len(items) :]
        for index, item in enumerate(items):
            if index < len(old):
                old[index] = item
            else:
                old.append(item)
        return old
    if _plain(old) is not MISSING and difference(_plain(old), new) is None:
        return old
    return _fresh(new, _quotes_of(old))


def _item(old: CommentedSeq, index: int, value: Any, quotes: type[str] | None) -> Any:
    """A list item: the old item at its index updated, or the same old scalar, or a new one."""
    if isinstance(value, dict | list) and index < len(old):
        return converted(old[index], value)
    for item in old:
        if _plain(item) is not MISSING and difference(_plain(item), value) is None:
            return item
    return _fresh(value, quotes)


def _plain(value: Any) -> Any:
    """A scalar read by ruamel as a plain JSON value, or MISSING for anything else."""
    for kind in (bool, str, int, float):
        if isinstance(value, kind):
            return kind(value)
    return MISSING


def _quotes_of(old: Any) -> type[str] | None:
    for style in (DoubleQuotedScalarString, SingleQuotedScalarString, LiteralScalarString):
        if isinstance(old, style):
            return style
    return LiteralScalarString if isinstance(old, FoldedScalarString) else None


def _shared_quotes(items: CommentedSeq) -> type[str] | None:
    """The quote style every string item of a list shares, if they share one."""
    styles = {_quotes_of(item) for item in items if isinstance(item, str)}
    return styles.pop() if len(styles) == 1 else None


def _fresh(value: Any, quotes: type[str] | None = None) -> Any:
    """A new ruamel value: block mappings, short lists of plain values in flow style, strings
    quoted when `quotes` says so or a reader could take them for something else."""
    if isinstance(value, dict):
        mapping = CommentedMap()
        for key, item in value.items():
            mapping[key] = _fresh(item)
        return mapping
    if isinstance(value, list):
        sequence = CommentedSeq(_fresh(item, quotes) for item in value)
        plain = all(not isinstance(item, dict | list) for item in value)
        if plain and len(", ".join(map(str, value))) <= _FLOW_WIDTH:
            sequence.fa.set_flow_style()
        else:
            sequence.fa.set_block_style()
        return sequence
    if not isinstance(value, str):
        return value
    if quotes is LiteralScalarString:
        return LiteralScalarString(value) if "\n" in value else DoubleQuotedScalarString(value)
    if quotes is SingleQuotedScalarString and value.isprintable():
        return SingleQuotedScalarString(value)
    if quotes is not None or _misread(value) or not value.isprintable():
        return DoubleQuotedScalarString(value)
    return value
