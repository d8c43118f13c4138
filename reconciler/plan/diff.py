"""Field-level differences between two comparable values of one top-level field.

What a PUT does to what it omits decides the words: Lofty keeps a field, or a key of a nested
object, that a PUT leaves out, so one removed from a file is "no longer managed" (`unmanage`),
never "removed". Only a list sent whole drops what it no longer holds.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from difflib import SequenceMatcher
from typing import Any

from reconciler.model import KEYED_PATHS, SET_LIKE_PATHS
from reconciler.plan.result import ChangeKind, FieldChange
from reconciler.state import canonical_json


def explain(name: str, before: Any, after: Any) -> list[FieldChange]:
    """Field-level differences inside one top-level field, between comparable values.

    - An object compares key by key; a key gone from the file is `unmanage` (Lofty keeps what
      a PUT omits), except inside an item of a list, which is sent whole.
    - A set-like list changes as a whole.
    - A keyed list (customAttributeList) matches items by their key (`customAttributeList
      ["School District"].value`); an item gone from the file is `unmanage`.
    - An ordered list is diffed as a sequence: an inserted item is one `add` at its new index,
      a removed one one `remove` at its old index, not every later item changed.
    - Anything else changes as a whole.

    Empty when the two differ only in a way Lofty does not see (keyed items in another order).
    """
    return list(_walk(name, (name,), before, after, in_item=False))


def _walk(
    where: str, shape: tuple[str, ...], before: Any, after: Any, *, in_item: bool
) -> Iterator[FieldChange]:
    """Differences at `where` (display path); `shape` is the path's field names alone."""
    if before == after:
        return
    if isinstance(before, dict) and isinstance(after, dict):
        for key in [*after, *(k for k in before if k not in after)]:
            at, inner = f"{where}.{key}", (*shape, key)
            if key not in after:
                gone: ChangeKind = "remove" if in_item else "unmanage"
                yield FieldChange(at, gone, before[key], None)
            elif key not in before:
                yield FieldChange(at, "add", None, after[key])
            else:
                yield from _walk(at, inner, before[key], after[key], in_item=in_item)
    elif isinstance(before, list) and isinstance(after, list) and shape not in SET_LIKE_PATHS:
        key = KEYED_PATHS.get(shape)
        if key is not None:
            yield from _keyed(where, shape, key, before, after)
        else:
            yield from _ordered(where, shape, before, after)
    else:
        yield FieldChange(where, "change", before, after)


def _keyed(
    where: str, shape: tuple[str, ...], key: str, before: list[Any], after: list[Any]
) -> Iterator[FieldChange]:
    old = {str(item.get(key)): item for item in before if isinstance(item, dict)}
    new = {str(item.get(key)): item for item in after if isinstance(item, dict)}
    for name in [*new, *(n for n in old if n not in new)]:
        at = f"{where}[{json.dumps(name, ensure_ascii=False)}]"
        if name not in new:
            yield FieldChange(at, "unmanage", old[name], None)
        elif name not in old:
            yield FieldChange(at, "add", None, new[name])
        else:
            yield from _walk(at, shape, old[name], new[name], in_item=False)


def _ordered(
    where: str, shape: tuple[str, ...], before: list[Any], after: list[Any]
) -> Iterator[FieldChange]:
    spelled = [canonical_json(item) for item in before], [canonical_json(item) for item in after]
    matcher = SequenceMatcher(None, *spelled, autojunk=False)
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            continue
        paired = min(i2 - i1, j2 - j1)  # a replaced run: its items changed in place
        for k in range(paired):
            at = f"{where}[{j1 + k}]"
            yield from _walk(at, shape, before[i1 + k], after[j1 + k], in_item=True)
        for i in range(i1 + paired, i2):
            yield FieldChange(f"{where}[{i}]", "remove", before[i], None)
        for j in range(j1 + paired, j2):
            yield FieldChange(f"{where}[{j}]", "add", None, after[j])
