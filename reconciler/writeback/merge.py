"""Keeping the original's lines: ruamel's changes carried into the file's own text.

ruamel's emitter tidies what it was not asked to touch (`[ a,b ]` becomes `[a, b]`,
indentation, `...`), so its rendering is never written as is. Its rendering of a document
before the edits (`noop`) and after them (`edited`) say which lines the edits change; those
changes replace the matching lines of the original, and every other line stays byte for byte.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator, Sequence

_WHITE_SPACE = re.compile(r"\s+")

_Opcodes = Sequence[tuple[str, int, int, int, int]]


def merge(original: list[str], noop: list[str], edited: list[str]) -> list[str]:
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
