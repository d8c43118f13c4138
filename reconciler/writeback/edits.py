"""What an edit is and where it lands: `FieldEdit`, and finding its lead and field in a file.

The same lookups serve both views of a file: the plain values reconciler's reader gives (what
the file must read back as) and ruamel's round-trip documents (what gets rendered). A lead or
field the plan saw but the file no longer has means the file changed since: plan again.
"""

from __future__ import annotations

from collections.abc import MutableMapping, MutableSequence, Sequence
from dataclasses import dataclass
from typing import Any

from reconciler.errors import WriteBackError
from reconciler.loader import format_path
from reconciler.yamlio import FieldPath


@dataclass(frozen=True)
class FieldEdit:
    """One value to write: the field at `path` of the lead `lead_id` becomes `value`.

    `path` starts with a top-level field name and may go deeper (`("inquiry", "priceMax")`, or
    `("customAttributeList", 0, "value")`); `value` is a plain JSON value (str, int, float,
    bool, or lists and dicts of them), the value Lofty holds in the file's field space.
    """

    lead_id: int
    path: tuple[str | int, ...]
    value: Any


def lead_of(documents: Sequence[Any], edit: FieldEdit, file: str) -> int:
    """The index of the document (a mapping) of the lead `edit` targets."""
    for index, document in enumerate(documents):
        if isinstance(document, MutableMapping):
            lead_id = document.get("leadId")
            if (
                isinstance(lead_id, int)
                and not isinstance(lead_id, bool)
                and lead_id == edit.lead_id
            ):
                return index
    raise WriteBackError(
        f"{file}: holds no lead {edit.lead_id}; the file changed since the plan was made: "
        "plan again"
    )


def parent_of(document: Any, edit: FieldEdit, file: str) -> tuple[Any, str | int]:
    """The mapping or list holding the last part of `edit.path`, and that part.

    Every part but the last must exist; the last may be a mapping key not there yet.
    """
    path = edit.path
    if not path or not isinstance(path[0], str) or path[0] == "leadId":
        raise WriteBackError(
            f"{file}: lead {edit.lead_id}: {format_path(path) or '(no field)'}: "
            "is not a field whose value can be written back"
        )
    node = document
    for depth, part in enumerate(path):
        last = depth == len(path) - 1
        if isinstance(part, str) and isinstance(node, MutableMapping):
            if last:
                return node, part
            if part in node:
                node = node[part]
                continue
        elif isinstance(part, int) and isinstance(node, MutableSequence) and 0 <= part < len(node):
            if last:
                return node, part
            node = node[part]
            continue
        raise WriteBackError(
            f"{file}: lead {edit.lead_id}: {format_path(path)}: no such field in the file "
            f"({format_path(path[: depth + 1])} is not there); the file changed since the plan "
            "was made: plan again"
        )
    raise AssertionError("unreachable: a non-empty path returns from its last part")


def set_plain(documents: Sequence[Any], edit: FieldEdit, file: str) -> None:
    """Apply `edit` to plain values (what the file should read back as)."""
    parent, key = parent_of(documents[lead_of(documents, edit, file)], edit, file)
    parent[key] = plain_json(edit, edit.value)


def plain_json(edit: FieldEdit, value: Any) -> Any:
    """A plain copy of a JSON value; anything else cannot be written into a lead file."""
    if isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, list | tuple):
        return [plain_json(edit, item) for item in value]
    if isinstance(value, dict) and all(isinstance(key, str) for key in value):
        return {key: plain_json(edit, item) for key, item in value.items()}
    raise WriteBackError(
        f"lead {edit.lead_id}: {format_path(edit.path)}: a {type(value).__name__} value cannot "
        "be written into a lead file"
    )


def difference(a: Any, b: Any, path: FieldPath = ()) -> FieldPath | None:
    """The first path where two plain values differ (type included: 1, 1.0 and True differ)."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(a.keys() | b.keys()):
            if key not in a or key not in b:
                return (*path, key)
            found = difference(a[key], b[key], (*path, key))
            if found is not None:
                return found
        return None
    if isinstance(a, list) and isinstance(b, list):
        for index, (x, y) in enumerate(zip(a, b, strict=False)):
            found = difference(x, y, (*path, index))
            if found is not None:
                return found
        return None if len(a) == len(b) else path
    return None if type(a) is type(b) and a == b else path
