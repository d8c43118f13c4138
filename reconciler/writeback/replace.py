"""The checked replace: the new text written beside the lead file, read back, then renamed.

The new text is checked as it stands on disk, beside the file, with reconciler's own reader
and loader: it must read back as exactly the intended values (the edited ones, and everything
else as it was) and load as valid leads. Only then does it take the file's name, atomically
(`reconciler.files`); on any failure the file is left byte for byte as it was.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from reconciler.errors import WriteBackError
from reconciler.files import replace_file
from reconciler.loader import format_path, load_tree
from reconciler.writeback.edits import FieldEdit, difference
from reconciler.yamlio import YamlProblem, decode, load_documents

_UNCHANGED = "; the file is left as it was: plan again, or edit it by hand"


def replace_checked(
    root: Path,
    target: Path,
    file: str,
    data: bytes,
    intended: list[Any],
    edits: Sequence[FieldEdit],
) -> None:
    """Make `target` (the lead file `file` of the leads folder `root`) hold `data`, if that
    reads back as `intended` and loads as valid leads; WriteBackError otherwise."""

    def check(temp: Path) -> None:
        _check(root, temp, file, data, intended, edits)

    try:
        replace_file(target, data, check=check)
    except OSError as exc:
        raise WriteBackError(
            f"{file}: cannot be written ({exc.strerror}): {_edited(edits)}{_UNCHANGED}"
        ) from None


def _check(
    root: Path,
    temp: Path,
    file: str,
    data: bytes,
    intended: list[Any],
    edits: Sequence[FieldEdit],
) -> None:
    """The new text must read back as the intended values and load as valid leads."""
    try:
        values = [document.value for document in load_documents(decode(data))]
    except YamlProblem as exc:
        raise WriteBackError(
            f"{file}: {_edited(edits)}: the new text would not read back ({exc}){_UNCHANGED}"
        ) from None
    differs = difference(values, intended)
    if differs is not None:
        document = intended[differs[0]] if differs and isinstance(differs[0], int) else None
        lead = document.get("leadId") if isinstance(document, dict) else None
        where = f"lead {lead}: {format_path(differs[1:])}" if lead else _edited(edits)
        raise WriteBackError(f"{file}: {where}: would not read back as written{_UNCHANGED}")
    inside = os.path.realpath(root)
    loaded = load_tree(Path(inside), only=[os.path.relpath(temp, inside)])
    if loaded.problems:
        problem = loaded.problems[0]
        field = f"{problem.field}: " if problem.field else ""
        line = f" (line {problem.line})" if problem.line else ""
        raise WriteBackError(
            f"{file}: {_edited(edits)}: {field}Lofty's value would make the file invalid{line}: "
            f"{problem.message}{_UNCHANGED}"
        )


def _edited(edits: Sequence[FieldEdit]) -> str:
    """`lead 12 (stage, tags), lead 13 (inquiry.priceMax)`: what a failed write was about."""
    fields: dict[int, list[str]] = {}
    for edit in edits:
        fields.setdefault(edit.lead_id, []).append(format_path(edit.path))
    return ", ".join(f"lead {lead} ({', '.join(names)})" for lead, names in fields.items())
