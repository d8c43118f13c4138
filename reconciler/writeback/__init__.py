"""Accepting drift as a git change: Lofty's values written into the lead files, in place.

`plan --refresh --write-drift` hands over the fields that agents edited in Lofty since the last
apply; writing them into the files turns them into an ordinary diff a reviewer can merge. That
diff must show only those values: every comment, key order, quote and blank line stays.

ruamel.yaml (round-trip mode, used only here) reads the file and takes the edits. Its emitter
also tidies what it was not asked to touch (`[ a,b ]` becomes `[a, b]`, indentation, `...`), so
its output is not written as is: the lines that the edits change in ruamel's rendering of the
file (against its rendering of the unedited file) replace the matching lines of the original,
and every other line is kept byte for byte, newline style included. The result is then read back
with reconciler's own reader and loader; unless the file stays valid and holds exactly the
intended values (the edited ones, and everything else as it was), nothing is written.

The rooms, in the order a write goes through them:
- this module: `write_back`, finding and reading the file, the values it should hold after;
- `edits`: `FieldEdit`, and finding an edit's lead and field in a file's documents;
- `roundtrip`: the edits made through ruamel, one edited document at a time;
- `values`: a new value in the style of the one it replaces (quotes, flow or block);
- `merge`: the lines ruamel's edits change carried into the original text;
- `replace`: the new text checked beside the file, then renamed over it.
"""

from __future__ import annotations

import codecs
import copy
import os
import stat
from collections.abc import Sequence
from pathlib import Path

from reconciler.errors import WriteBackError
from reconciler.writeback.edits import FieldEdit, difference, set_plain
from reconciler.writeback.replace import replace_checked
from reconciler.writeback.roundtrip import rewrite
from reconciler.yamlio import MAX_FILE_BYTES, Document, YamlProblem, decode, load_documents

__all__ = ["FieldEdit", "write_back"]


def write_back(root: Path, file: str, edits: Sequence[FieldEdit]) -> None:
    """Write `edits` into the lead file `file` (relative to the leads folder `root`), in place.

    A field present is replaced where it stands; a missing one is added at the end of its
    mapping. A list keeps its flow or block style, a string is quoted where a YAML reader could
    take it for something else. The file is replaced atomically, and only when it reads back
    valid and holding exactly the intended values; otherwise WriteBackError names the file, lead
    and field, and the file is left as it was.
    """
    if not edits:
        return
    target = _target(root, file)
    data = _read(target, file)
    try:
        text = decode(data)
    except YamlProblem as exc:
        raise WriteBackError(f"{file}: cannot be read: {exc}") from None
    documents = _documents(text, file)
    values = [document.value for document in documents]
    intended = copy.deepcopy(values)
    for edit in edits:
        set_plain(intended, edit, file)
    if difference(values, intended) is None:
        return  # the file holds these values already
    new_text = rewrite(text, documents, edits, file)
    bom = codecs.BOM_UTF8 if data.startswith(codecs.BOM_UTF8) else b""
    replace_checked(root, target, file, bom + new_text.encode("utf-8"), intended, edits)


def _target(root: Path, file: str) -> Path:
    """The real path of `file`, which must be a regular file inside `root`."""
    inside = os.path.realpath(root)
    real = os.path.realpath(os.path.join(root, file))
    if os.path.commonpath([real, inside]) != inside:
        raise WriteBackError(f"{file}: lies outside the leads folder; it is not written")
    try:
        mode = os.stat(real).st_mode
    except OSError as exc:
        raise WriteBackError(f"{file}: cannot be read: {exc.strerror}") from None
    if not stat.S_ISREG(mode):
        raise WriteBackError(f"{file}: is not a regular file; it is not written")
    return Path(real)


def _read(path: Path, file: str) -> bytes:
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise WriteBackError(f"{file}: cannot be read: {exc.strerror}") from None
    if len(data) > MAX_FILE_BYTES:
        raise WriteBackError(f"{file}: is over the {MAX_FILE_BYTES:,}-byte limit of a lead file")
    return data


def _documents(text: str, file: str) -> list[Document]:
    try:
        return list(load_documents(text))
    except YamlProblem as exc:
        where = f"{file}:{exc.line}" if exc.line else file
        raise WriteBackError(f"{where}: cannot be read: {exc}; fix the file first") from None
