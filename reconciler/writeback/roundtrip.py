"""The round-trip rewrite: the edits made through ruamel, one edited document at a time.

ruamel.yaml (round-trip mode, used only in this package) reads a document and takes the
edits; its renderings of the document before and after them go to `merge`, which keeps every
line of the original the edits do not change. Only the documents holding an edited lead are
parsed and rendered again (a file of a thousand leads need not be for one).
"""

from __future__ import annotations

import difflib
import io
import re
from collections.abc import MutableMapping, Sequence
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError as RoundTripError

from reconciler.errors import WriteBackError
from reconciler.writeback.edits import FieldEdit, lead_of, parent_of, plain_json
from reconciler.writeback.merge import merge
from reconciler.writeback.values import MISSING, converted
from reconciler.yamlio import Document

# Indentations tried for ruamel's rendering (mapping, sequence, dash offset); the one closest to
# the file wins, so that fewer lines around an edit differ from the original only by indentation.
_INDENTS = ((2, 4, 2), (2, 2, 0), (4, 6, 4), (4, 4, 2), (4, 4, 0))
_DOCUMENT_START = re.compile(r"---(?:[ \t\r\n]|\Z)")
_LINE = re.compile(r"[^\n]*\n|[^\n]+\Z")  # lines with their own ending (`\r\n` or `\n`)


def rewrite(text: str, documents: Sequence[Document], edits: Sequence[FieldEdit], file: str) -> str:
    """The file's text with `edits` applied, every line they do not change kept as it was.

    Only the documents holding an edited lead go through ruamel, each on its own: a `---` line
    at the start of a line always begins a document, so the text splits there without parsing.
    """
    newline = "\r\n" if text.count("\r\n") * 2 > text.count("\n") else "\n"
    missing_newline = bool(text) and not text.endswith("\n")
    lines = _lines(text + newline if missing_newline else text)
    starts = [0, *(at for at, line in enumerate(lines) if at and _DOCUMENT_START.match(line))]
    ends = [*starts[1:], len(lines)]
    values = [document.value for document in documents]
    edits_of: dict[int, list[FieldEdit]] = {}
    for edit in edits:
        line = documents[lead_of(values, edit, file)].line - 1
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
        parent, key = parent_of(documents[lead_of(documents, edit, file)], edit, file)
        old = parent.get(key, MISSING) if isinstance(parent, MutableMapping) else parent[key]
        parent[key] = converted(old, plain_json(edit, edit.value))
    edited = [line.removesuffix("\n") + newline for line in _lines(_render(indent, documents))]
    noop = [line.rstrip("\n") for line in _lines(renderings[indent])]
    return merge(original, noop, _above_comments(noop, edited))


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
