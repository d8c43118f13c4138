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
"""

from __future__ import annotations

import codecs
import copy
import difflib
import io
import os
import re
import stat
import tempfile
from collections.abc import Iterator, MutableMapping, MutableSequence, Sequence
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import YAMLError as RoundTripError
from ruamel.yaml.scalarstring import (
    DoubleQuotedScalarString,
    FoldedScalarString,
    LiteralScalarString,
    SingleQuotedScalarString,
)

from reconciler.errors import WriteBackError
from reconciler.loader import format_path, load_tree
from reconciler.yamlio import (
    MAX_FILE_BYTES,
    Document,
    FieldPath,
    YamlProblem,
    decode,
    load_documents,
    quote_like_the_reader,
)

# Indentations tried for ruamel's rendering (mapping, sequence, dash offset); the one closest to
# the file wins, so that fewer lines around an edit differ from the original only by indentation.
_INDENTS = ((2, 4, 2), (2, 2, 0), (4, 6, 4), (4, 4, 2), (4, 4, 0))
_FLOW_WIDTH = 80  # a new list of plain values up to this long goes on one line, as import does
_DOCUMENT_START = re.compile(r"---(?:[ \t\r\n]|\Z)")
_WHITE_SPACE = re.compile(r"\s+")
_LINE = re.compile(r"[^\n]*\n|[^\n]+\Z")  # lines with their own ending (`\r\n` or `\n`)
_STR_TAG = "tag:yaml.org,2002:str"


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
        _set_plain(intended, edit, file)
    if _difference(values, intended) is None:
        return  # the file holds these values already
    new_text = _rewrite(text, documents, edits, file)
    bom = codecs.BOM_UTF8 if data.startswith(codecs.BOM_UTF8) else b""
    _replace_checked(root, target, file, bom + new_text.encode("utf-8"), intended, edits)


# --- finding the file and the values --------------------------------------------------------


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


def _lead_of(documents: Sequence[Any], edit: FieldEdit, file: str) -> int:
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


def _parent_of(document: Any, edit: FieldEdit, file: str) -> tuple[Any, str | int]:
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


def _set_plain(documents: Sequence[Any], edit: FieldEdit, file: str) -> None:
    """Apply `edit` to plain values (what the file should read back as)."""
    parent, key = _parent_of(documents[_lead_of(documents, edit, file)], edit, file)
    parent[key] = _json(edit, edit.value)


def _json(edit: FieldEdit, value: Any) -> Any:
    """A plain copy of a JSON value; anything else cannot be written into a lead file."""
    if isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, list | tuple):
        return [_json(edit, item) for item in value]
    if isinstance(value, dict) and all(isinstance(key, str) for key in value):
        return {key: _json(edit, item) for key, item in value.items()}
    raise WriteBackError(
        f"lead {edit.lead_id}: {format_path(edit.path)}: a {type(value).__name__} value cannot "
        "be written into a lead file"
    )


def _difference(a: Any, b: Any, path: FieldPath = ()) -> FieldPath | None:
    """The first path where two plain values differ (type included: 1, 1.0 and True differ)."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(a.keys() | b.keys()):
            if key not in a or key not in b:
                return (*path, key)
            found = _difference(a[key], b[key], (*path, key))
            if found is not None:
                return found
        return None
    if isinstance(a, list) and isinstance(b, list):
        for index, (x, y) in enumerate(zip(a, b, strict=False)):
            found = _difference(x, y, (*path, index))
            if found is not None:
                return found
        return None if len(a) == len(b) else path
    return None if type(a) is type(b) and a == b else path


# --- the round-trip rewrite ------------------------------------------------------------------


def _rewrite(
    text: str, documents: Sequence[Document], edits: Sequence[FieldEdit], file: str
) -> str:
    """The file's text with `edits` applied, every line they do not change kept as it was.

    Only the documents holding an edited lead go through ruamel (a file of a thousand leads
    need not be parsed and rendered again for one), each on its own: a `---` line at the
    start of a line always begins a document, so the text splits there without parsing.
    """
    newline = "\r\n" if text.count("\r\n") * 2 > text.count("\n") else "\n"
    missing_newline = bool(text) and not text.endswith("\n")
    lines = _lines(text + newline if missing_newline else text)
    starts = [0, *(at for at, line in enumerate(lines) if at and _DOCUMENT_START.match(line))]
    ends = [*starts[1:], len(lines)]
    values = [document.value for document in documents]
    edits_of: dict[int, list[FieldEdit]] = {}
    for edit in edits:
        line = documents[_lead_of(values, edit, file)].line - 1
        chunk = max(index for index, start in enumerate(starts) if start <= line)
        edits_of.setdefault(chunk, []).append(edit)
    result: list[str] = []
    for chunk, (start, end) in enumerate(zip(starts, ends, strict=True)):
        piece = lines[start:end]
        result += (
            _rewrite_document(piece, edits_of[chunk], newline, file) if chunk in edits_of else piece
        )
    merged = "".join(result)
    return merged[: -len(newline)] if missing_newline and merged.endswith(newline) else merged


def _rewrite_document(
    original: list[str], edits: Sequence[FieldEdit], newline: str, file: str
) -> list[str]:
    """The lines of one document with `edits` applied through ruamel, merged into the original."""
    try:
        documents = list(_round_trip(_INDENTS[0]).load_all("".join(original).replace("\r\n", "\n")))
        renderings = {indent: _render(indent, documents) for indent in _INDENTS}
    except RoundTripError as exc:
        raise WriteBackError(f"{file}: cannot be read for writing back: {exc}") from None
    keys = [line.rstrip("\r\n") for line in original]
    indent = max(_INDENTS, key=lambda i: _likeness(renderings[i], keys))
    for edit in edits:
        parent, key = _parent_of(documents[_lead_of(documents, edit, file)], edit, file)
        old = parent.get(key, _MISSING) if isinstance(parent, MutableMapping) else parent[key]
        parent[key] = _converted(old, _json(edit, edit.value))
    edited = [line.removesuffix("\n") + newline for line in _lines(_render(indent, documents))]
    noop = [line.rstrip("\n") for line in _lines(renderings[indent])]
    return _merge(original, noop, _above_comments(noop, edited))


def _above_comments(noop: list[str], edited: list[str]) -> list[str]:
    """`edited` with each block of added lines moved above the comment and blank lines just
    before it: ruamel hangs a comment on the value before it, so a key added at the end of a
    mapping would come after `# nothing below this line`. Only comments indented no deeper than
    the added lines move (a deeper `#` line may be a block scalar's text), and the check after
    writing would catch a move that changed a value."""
    result = list(edited)
    matcher = difflib.SequenceMatcher(None, noop, [line.rstrip("\r\n") for line in edited])
    equal_from = 0
    for tag, _, _, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            equal_from = j1
            continue
        if tag != "insert":
            continue
        depth = _indent(edited[j1])
        top = j1
        while top > equal_from and _movable(edited[top - 1], depth):
            top -= 1
        result[top:j2] = [*edited[j1:j2], *edited[top:j1]]
    return result


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _movable(line: str, depth: int) -> bool:
    text = line.strip()
    return not text or (text.startswith("#") and _indent(line) <= depth)


def _round_trip(indent: tuple[int, int, int]) -> YAML:
    handler = YAML(typ="rt", pure=True)
    handler.preserve_quotes = True
    handler.width = 1 << 30  # never fold a long line: its value would show as changed
    mapping, sequence, offset = indent
    handler.indent(mapping=mapping, sequence=sequence, offset=offset)
    return handler


def _render(indent: tuple[int, int, int], documents: list[Any]) -> str:
    stream = io.StringIO()
    _round_trip(indent).dump_all(documents, stream)
    return stream.getvalue()


def _likeness(rendering: str, keys: list[str]) -> int:
    """How many lines of `rendering` stand unchanged in the original (whose lines are `keys`)."""
    matcher = difflib.SequenceMatcher(None, rendering.split("\n"), keys)
    return sum(block.size for block in matcher.get_matching_blocks())


def _lines(text: str) -> list[str]:
    return _LINE.findall(text)


# --- values as ruamel should write them -------------------------------------------------------


class _Missing:
    """The value of a key a mapping does not hold yet."""


_MISSING = _Missing()


class _Misread(yaml.SafeDumper):
    """Resolves plain scalars as YAML 1.1 readers and reconciler's reader do, to find the
    strings that must be quoted (`Yes`, `02134`, `+1415...`, `1e6`, `2001-06-05`)."""


quote_like_the_reader(_Misread)
_PROBE = _Misread(io.StringIO())


def _misread(text: str) -> bool:
    tag: object = _PROBE.resolve(yaml.ScalarNode, text, (True, False))  # type: ignore[no-untyped-call]
    return tag != _STR_TAG


def _converted(old: Any, new: Any) -> Any:
    """`new` as the value to put where `old` stands, in `old`'s style: a mapping or list is
    updated in place (keeping its comments, key order and flow or block style), an unchanged
    scalar stays the very object read (keeping its quotes), a string takes `old`'s quotes."""
    if isinstance(new, dict) and isinstance(old, CommentedMap):
        for key in [key for key in old if key not in new]:
            del old[key]
        for key, value in new.items():
            old[key] = _converted(old.get(key, _MISSING), value)
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
    if _plain(old) is not _MISSING and _difference(_plain(old), new) is None:
        return old
    return _fresh(new, _quotes_of(old))


def _item(old: CommentedSeq, index: int, value: Any, quotes: type[str] | None) -> Any:
    """A list item: the old item at its index updated, or the same old scalar, or a new one."""
    if isinstance(value, dict | list) and index < len(old):
        return _converted(old[index], value)
    for item in old:
        if _plain(item) is not _MISSING and _difference(_plain(item), value) is None:
            return item
    return _fresh(value, quotes)


def _plain(value: Any) -> Any:
    """A scalar read by ruamel as a plain JSON value, or _MISSING for anything else."""
    for kind in (bool, str, int, float):
        if isinstance(value, kind):
            return kind(value)
    return _MISSING


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


# --- keeping the original's lines -------------------------------------------------------------

_Opcodes = Sequence[tuple[str, int, int, int, int]]


def _merge(original: list[str], noop: list[str], edited: list[str]) -> list[str]:
    """The original lines with the changes that turn `noop` into `edited` (ruamel's renderings
    of the file before and after the edits) applied where `noop`'s lines stand in it.

    Lines of `noop` and the original are paired ignoring white space, which is most of what
    ruamel tidies (`[ a,b ]`, indentation). A change whose lines ruamel renders otherwise
    still takes those lines along: its zone grows until both ends sit where the texts agree.
    """
    to_original = difflib.SequenceMatcher(
        None, [_squeezed(line) for line in noop], [_squeezed(line) for line in original]
    )
    to_edited = difflib.SequenceMatcher(None, noop, [line.rstrip("\r\n") for line in edited])
    by_original: _Opcodes = to_original.get_opcodes()
    by_edit: _Opcodes = to_edited.get_opcodes()
    result: list[str] = []
    taken = 0
    for start, end in _zones(by_original, by_edit):
        begin = _point(by_original, start, last=start != end)
        result += original[taken:begin]
        result += edited[_point(by_edit, start, last=False) : _point(by_edit, end, last=True)]
        taken = _point(by_original, end, last=False)
    return result + original[taken:]


def _squeezed(line: str) -> str:
    return _WHITE_SPACE.sub("", line)


def _zones(by_original: _Opcodes, by_edit: _Opcodes) -> Iterator[tuple[int, int]]:
    """Spans of `noop` lines to take from the edited rendering: each change, grown until
    neither end falls inside a block where `noop` differs from the original or the edit."""
    blocks = [
        (a1, a2)
        for tag, a1, a2, b1, b2 in [*by_original, *by_edit]
        if not _linear(tag, a1, a2, b1, b2)
    ]
    spans = []
    for tag, start, end, _, _ in by_edit:
        if tag == "equal":
            continue
        grown = True
        while grown:
            grown = False
            for low, high in blocks:
                if low < start < high or low < end < high:
                    start, end, grown = min(start, low), max(end, high), True
        spans.append((start, end))
    spans.sort()
    merged: list[tuple[int, int]] = []
    for start, end in spans:
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return iter(merged)


def _linear(tag: str, a1: int, a2: int, b1: int, b2: int) -> bool:
    """Whether a block's lines stand for each other one by one: equal ones, and as many lines
    replaced by as many (ruamel re-spaces a line; it does not move its content elsewhere)."""
    return tag == "equal" or (tag == "replace" and a2 - a1 == b2 - b1)


def _point(opcodes: _Opcodes, at: int, *, last: bool) -> int:
    """Where the boundary before `noop` line `at` falls in the other text; where lines were
    only inserted there, the position after them (`last`) or before them."""
    places = []
    for tag, a1, a2, b1, b2 in opcodes:
        if _linear(tag, a1, a2, b1, b2):
            places += [b1 + at - a1] if a1 <= at <= a2 else []
        else:
            places += [b1] if at == a1 else []
            places += [b2] if at == a2 else []
    return max(places) if last else min(places)


# --- checking and replacing the file ----------------------------------------------------------


def _replace_checked(
    root: Path,
    target: Path,
    file: str,
    data: bytes,
    intended: list[Any],
    edits: Sequence[FieldEdit],
) -> None:
    """Write `data` beside `target`, check it there as the loader reads lead files, then rename
    it over `target`; on any failure the temporary file goes and `target` is untouched."""
    try:
        fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".drift")
    except OSError as exc:
        raise _unwritable(file, edits, exc) from None
    temp = Path(name)
    try:
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            os.chmod(temp, stat.S_IMODE(os.stat(target).st_mode))
        except OSError as exc:
            raise _unwritable(file, edits, exc) from None
        _check(root, temp, file, data, intended, edits)
        try:
            os.replace(temp, target)
        except OSError as exc:
            raise _unwritable(file, edits, exc) from None
    finally:
        with suppress(OSError):
            temp.unlink()
    _fsync_directory(target.parent)


_UNCHANGED = "; the file is left as it was: plan again, or edit it by hand"


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
    differs = _difference(values, intended)
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


def _unwritable(file: str, edits: Sequence[FieldEdit], exc: OSError) -> WriteBackError:
    return WriteBackError(
        f"{file}: cannot be written ({exc.strerror}): {_edited(edits)}{_UNCHANGED}"
    )


def _fsync_directory(directory: Path) -> None:
    """Make the rename durable; a file system that cannot sync a folder still has the file."""
    with suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
