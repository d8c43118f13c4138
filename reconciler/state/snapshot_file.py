"""The local state's snapshot file: its bytes from a `Snapshot`, and back.

The layout (documented in docs/state-format.md) stores each lead as one line that points into
a table of source files, so a file path, its hash and its list of leads are written, read and
held in memory once however many leads the file holds. `decode` reads exactly that layout by
taking every lead's id and source index in one pass, and builds a lead's record only when it
is looked at (`LayoutLeads`); anything else (a file reformatted by hand) goes to a full JSON
parser.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from itertools import chain
from json.encoder import encode_basestring
from typing import Any

from reconciler.errors import StateError
from reconciler.state import Columns, IndexedLeads, LeadRecord, Snapshot, Source, canonical_json

FORMAT_VERSION = 2  # 2: a journal may lie beside the snapshot (a reader of 1 would ignore it)
READABLE_VERSIONS = (1, 2)

# JSON's own string escaping, in C; typeshed types it loosely.
json_string: Callable[[str], str] = encode_basestring


def source_leads(
    snapshot: Snapshot, *, newest: Iterable[LeadRecord]
) -> tuple[dict[tuple[str, str], tuple[int, ...]], bool]:
    """The lead list of each (file, hash), stored once, and whether all records agreed on it.

    Where records disagree, `newest` wins, as the PostgreSQL backend's upsert does, so both
    backends read back alike.
    """
    source_leads = {(record.file, record.source_hash): record.file_leads for record in newest}
    agreed = True
    for record in snapshot.leads.values():
        stored = source_leads.setdefault((record.file, record.source_hash), record.file_leads)
        if stored is not record.file_leads and stored != record.file_leads:
            agreed = False
    return source_leads, agreed


def encode(snapshot: Snapshot, source_leads: dict[tuple[str, str], tuple[int, ...]]) -> bytes:
    """The file's bytes: JSON, one line per source and per lead, so diffs stay small.

    Each lead's applied values are written as the JSON object itself, not as a string, so the
    file reads naturally and `decode_layout` can take the line's tail as `applied_json` as is.
    Lines are formatted directly (strings through the json module's own escaping) because
    calling `json.dumps` once per line costs several times more at a hundred thousand leads.
    """
    keys = sorted(source_leads)
    index = {key: position for position, key in enumerate(keys)}
    head = {"version": FORMAT_VERSION, "lineage": snapshot.lineage, "serial": snapshot.serial}
    leads = snapshot.leads
    lines = [
        json.dumps(head)[:-1] + ",",
        '"sources":[',
        ",\n".join(
            f"[{json_string(file)},{json_string(source_hash)},"
            f"[{','.join(map(str, source_leads[file, source_hash]))}]]"
            for file, source_hash in keys
        ),
        "],",
        '"leads":{',
        ",\n".join(
            f'"{lead_id}":[{index[record.file, record.source_hash]},{one_line(record)}]'
            for lead_id, record in zip(
                sorted(leads), map(leads.__getitem__, sorted(leads)), strict=True
            )
        ),
        "}}\n",
    ]
    # A lone surrogate (from a "\ud800" escape in YAML) cannot be UTF-8; its escape can.
    return "\n".join(lines).encode("utf-8", "backslashreplace")


def one_line(record: LeadRecord) -> str:
    """`applied_json` as written: canonical JSON has no newline, but be sure of it."""
    if "\n" in record.applied_json:
        return canonical_json(record.applied)
    return record.applied_json


def unreadable(where: str, why: str) -> StateError:
    return StateError(
        f"state {where} is unreadable ({why}); it was left untouched. Restore it from "
        f"{where}.backup, or move it away to start a new state"
    )


def decode(text: str, where: str) -> Snapshot:
    """Parse and check a state file; any surprise is a StateError and the file stays as it is."""

    def broken(why: str) -> StateError:
        return unreadable(where, why)

    fast = decode_layout(text)
    if fast is not None:
        return fast
    # Not in the layout this module writes (say, reformatted by hand): parse it as any JSON.
    try:
        document: Any = json.loads(text)
    except ValueError as exc:
        raise broken(f"not valid JSON: {exc}") from None
    if not isinstance(document, dict):
        raise broken("not a JSON object")
    version = document.get("version")
    if version not in READABLE_VERSIONS:
        raise StateError(
            f"state {where} has format version {version!r}, but this reconciler reads only "
            f"versions {' and '.join(map(str, READABLE_VERSIONS))}; it was left untouched. "
            "Use the reconciler that wrote it"
        )
    lineage, serial = document.get("lineage"), document.get("serial")
    raw_sources, raw_leads = document.get("sources"), document.get("leads")
    if not isinstance(lineage, str) or not lineage:
        raise broken("'lineage' is not a string")
    if type(serial) is not int or serial < 1:
        raise broken("'serial' is not a positive integer")
    if not isinstance(raw_sources, list) or not isinstance(raw_leads, dict):
        raise broken("'sources' must be a list and 'leads' an object")
    sources = _checked_sources(raw_sources)
    if sources is None:
        raise broken("an item of 'sources' is not [file, hash, [leadId, ...]]")
    leads: dict[int, LeadRecord] = {}
    for key, value in raw_leads.items():
        try:
            position, applied = value
            file, source_hash, file_leads = sources[position]
        except (TypeError, ValueError, IndexError):
            raise broken(f"lead {key!r} is not [source index, applied values]") from None
        if not (_is_id(key) and type(position) is int and position >= 0):
            raise broken(f"lead {key!r} is not [source index, applied values]")
        if not isinstance(applied, dict):
            raise broken(f"lead {key!r}: the applied values are not a JSON object")
        lead_id = int(key)
        leads[lead_id] = LeadRecord(lead_id, file, source_hash, file_leads, canonical_json(applied))
    return Snapshot(lineage, serial, leads)


_SOURCES_START = '\n"sources":[\n'
_LEADS_START = '\n],\n"leads":{\n'
_END = "\n}}\n"
# A lead's line up to its applied values: '"<leadId>":[<source index>,{'. The first line is
# matched alone; every other is matched with the end of the line before it ('}],' and the
# newline), so that one pass over the text checks how each line ends and starts.
_LEAD_HEAD = r'"([1-9][0-9]*)":\[(0|[1-9][0-9]*),\{'
_FIRST_LEAD = re.compile(_LEAD_HEAD)
_NEXT_LEAD = re.compile(r"\}\],\n" + _LEAD_HEAD)


def decode_layout(text: str) -> Snapshot | None:
    """Read a file in exactly the layout `encode` writes; None when it is not in that layout.

    Only each lead's id and source index are read here, for all leads at once with one regular
    expression, and the layout is checked by counting (every newline of the leads block must
    end a lead's line, and every line must be matched); a lead's applied values stay in the
    text until its record is asked for. Anything unexpected falls back to the full parser,
    which also produces the precise error.
    """
    # Positions, not str.partition: each partition would copy most of a large file once more.
    sources_at = text.find(_SOURCES_START)
    leads_at = text.find(_LEADS_START, sources_at)
    if not (0 < sources_at < leads_at and text.endswith(_END)):
        return None
    head_line = text[:sources_at]
    source_block = text[sources_at + len(_SOURCES_START) : leads_at]
    if not head_line.endswith(","):
        return None
    try:
        head = json.loads(head_line[:-1] + "}")
        raw_sources = json.loads(f"[{source_block}]")
    except ValueError:
        return None
    if not (
        isinstance(head, dict)
        and head.keys() == {"version", "lineage", "serial"}
        and head["version"] in READABLE_VERSIONS
        and isinstance(head["lineage"], str)
        and head["lineage"]
        and type(head["serial"]) is int
        and head["serial"] >= 1
    ):
        return None
    sources = _checked_sources(raw_sources)
    if sources is None:
        return None
    start, end = leads_at + len(_LEADS_START), len(text) - len(_END)
    leads: Mapping[int, LeadRecord] | None = (
        LayoutLeads.of(text, start, end, sources) if end > start else {}
    )
    if leads is None:
        return None
    return Snapshot(head["lineage"], head["serial"], leads)


class LayoutLeads(IndexedLeads):
    """The leads of a snapshot file as written, each record built from its line when asked for.

    Holds the file's text, each lead's id and source index, and the sources table; reading a
    large state thus costs one pass over its text, and a plan that changes nothing builds no
    record. Records come out equal to those an eager read would build (not the same objects).
    """

    __slots__ = ("_text", "_start", "_end", "_ids", "_indices", "_sources", "_rows", "_spans")

    def __init__(
        self,
        text: str,
        span: tuple[int, int],
        columns: tuple[list[int], list[int], list[Source]],
        rows: dict[int, int],
    ) -> None:
        self._text = text
        self._start, self._end = span
        self._ids, self._indices, self._sources = columns
        self._rows = rows  # leadId -> its line's number in the block
        self._spans: tuple[list[int], list[int]] | None = None  # where each line's values are

    @classmethod
    def of(cls, text: str, start: int, end: int, sources: list[Source]) -> LayoutLeads | None:
        """The leads in `text[start:end]` (one non-empty block of lead lines), or None when the
        block is not exactly in the layout: a line that does not start '"<leadId>":[<index>,{'
        or end '}]', a newline inside a line, a repeated leadId, an index past the sources."""
        first = _FIRST_LEAD.match(text, start, end)
        if first is None or not text.endswith("}]", start, end):
            return None
        found = _NEXT_LEAD.findall(text, first.end(), end)
        # Each match holds one newline; if they are all the newlines, every line was matched.
        if text.count("\n", start, end) != len(found):
            return None
        ids = [int(first[1]), *map(int, [lead_id for lead_id, _ in found])]
        indices = [int(first[2]), *map(int, [index for _, index in found])]
        rows = dict(zip(ids, range(len(ids)), strict=True))
        if len(rows) != len(ids) or max(indices) >= len(sources):
            return None
        return cls(text, (start, end), (ids, indices, sources), rows)

    def columns(self) -> Columns:
        return Columns(self._ids, self._indices, self._sources)

    def __getitem__(self, lead_id: int) -> LeadRecord:
        row = self._rows[lead_id]
        starts, stops = self._spans or self._find_spans()
        applied_json = self._text[starts[row] : stops[row]]
        return LeadRecord(lead_id, *self._sources[self._indices[row]], applied_json)

    def _find_spans(self) -> tuple[list[int], list[int]]:
        """Where each line's applied values start and stop; found once, on the first lookup."""
        text, start, end = self._text, self._start, self._end
        first = _FIRST_LEAD.match(text, start, end)
        assert first is not None  # checked by `of`
        found = list(_NEXT_LEAD.finditer(text, first.end(), end))
        # A match starts at the '}' closing the line before it, ends past the '{' opening its own.
        starts = [first.end() - 1, *[match.end() - 1 for match in found]]
        stops = [*[match.start() + 1 for match in found], end - 1]
        self._spans = (starts, stops)
        return self._spans

    def __contains__(self, lead_id: object) -> bool:
        return lead_id in self._rows

    def __iter__(self) -> Iterator[int]:
        return iter(self._rows)

    def __len__(self) -> int:
        return len(self._ids)

    def __repr__(self) -> str:
        return repr(dict(self))


def _checked_sources(raw: Any) -> list[Source] | None:
    """Sources as (file, hash, file_leads) tuples; None if any item is malformed.

    The checks run as whole-list passes (`map` over builtins) rather than a Python loop per
    item, which makes them several times faster at a hundred thousand sources.
    """
    if type(raw) is not list:
        return None
    if not raw:
        return []
    if not (set(map(type, raw)) <= {list} and set(map(len, raw)) <= {3}):
        return None
    files, hashes, id_lists = zip(*raw, strict=True)
    if not (
        set(map(type, files)) <= {str}
        and set(map(type, hashes)) <= {str}
        and set(map(type, id_lists)) <= {list}
        and set(map(type, chain.from_iterable(id_lists))) <= {int}
    ):
        return None
    return list(zip(files, hashes, map(tuple, id_lists), strict=True))


def _is_id(key: str) -> bool:
    """A leadId as a JSON object key: decimal digits, no sign or leading zero, at least 1."""
    return key.isascii() and key.isdigit() and key[0] != "0"


def as_read_back(
    snapshot: Snapshot, source_leads: dict[tuple[str, str], tuple[int, ...]]
) -> Snapshot:
    """`snapshot` as reading the file just written would return it, without parsing it."""
    leads = dict(snapshot.leads)
    for lead_id, record in snapshot.leads.items():
        file_leads = source_leads[record.file, record.source_hash]
        if file_leads is not record.file_leads and file_leads != record.file_leads:
            leads[lead_id] = LeadRecord(
                lead_id, record.file, record.source_hash, file_leads, record.applied_json
            )
    return Snapshot(snapshot.lineage, snapshot.serial, leads)
