"""The local state's journal: one line per write since the snapshot, and replaying it.

An entry is `{"serial":N,"lineage":"...","records":[...],"forget":[...]}` on one line. A write
appends one and fsyncs it, so its cost does not grow with the state; a reader applies the
entries newer than the snapshot (`replay`). The records after each write are kept as a
`Leads` view over the snapshot's, so a write does not copy every record.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from itertools import compress
from operator import not_
from typing import Any

from reconciler.errors import StateError
from reconciler.state import Columns, IndexedLeads, LeadRecord, Snapshot, Source, canonical_json
from reconciler.state.snapshot_file import json_string, one_line


class Leads(IndexedLeads):
    """Records after some writes: a mapping never changed, and what the writes since did to it
    (None: forgotten). A write makes a new one without copying every record, and reading it
    builds no record of the base that was not asked for."""

    __slots__ = ("_base", "_changes", "_len")

    def __init__(self, base: Mapping[int, LeadRecord], changes: dict[int, LeadRecord | None]):
        self._base = base
        self._changes = changes
        size = len(base)
        for lead_id, record in changes.items():
            size += (record is not None) - (lead_id in base)
        self._len = size

    def __getitem__(self, lead_id: int) -> LeadRecord:
        if lead_id in self._changes:
            record = self._changes[lead_id]
            if record is None:
                raise KeyError(lead_id)
            return record
        return self._base[lead_id]

    def __contains__(self, lead_id: object) -> bool:
        if lead_id in self._changes:
            return self._changes[lead_id] is not None
        return lead_id in self._base

    def __iter__(self) -> Iterator[int]:
        changes = self._changes
        for lead_id in self._base:
            if lead_id not in changes:
                yield lead_id
        for lead_id, record in changes.items():
            if record is not None:
                yield lead_id

    def __len__(self) -> int:
        return self._len

    def __repr__(self) -> str:
        return repr(dict(self))

    def columns(self) -> Columns | None:
        """The base's columns without the changed leads, and the written records after them,
        each (file, hash, lead list) of theirs a source past the base's."""
        base = self._base.columns() if isinstance(self._base, IndexedLeads) else None
        if base is None or not self._changes:
            return base
        changes = self._changes
        kept = list(map(not_, map(changes.__contains__, base.lead_ids)))
        lead_ids = list(compress(base.lead_ids, kept))
        indices = list(compress(base.source_indices, kept))
        added: dict[Source, int] = {}
        for lead_id, record in changes.items():
            if record is not None:
                source = (record.file, record.source_hash, record.file_leads)
                lead_ids.append(lead_id)
                indices.append(added.setdefault(source, len(base.sources) + len(added)))
        return Columns(lead_ids, indices, [*base.sources, *added])


def after(
    leads: Mapping[int, LeadRecord], records: list[LeadRecord], forget: list[int]
) -> Mapping[int, LeadRecord]:
    """`leads` after one write, sharing what it did not change; each written record's lead list
    also becomes that of the other records of its file at its hash (the latest write wins, as
    in the snapshot file and in PostgreSQL)."""
    base, changes = (leads._base, dict(leads._changes)) if isinstance(leads, Leads) else (leads, {})
    view = Leads(base, changes)
    for record in records:
        changes[record.lead_id] = record
    for record in records:
        source = (record.file, record.source_hash)
        previous = leads.get(record.lead_id)
        neighbours = set(record.file_leads) | set(previous.file_leads if previous else ())
        for other_id in neighbours - {record.lead_id}:
            other = view.get(other_id)
            if (
                other is not None
                and (other.file, other.source_hash) == source
                and (other.file_leads != record.file_leads)
            ):
                changes[other_id] = LeadRecord(
                    other_id, other.file, other.source_hash, record.file_leads, other.applied_json
                )
    for lead_id in forget:
        changes[lead_id] = None
    return Leads(base, changes)


def journal_line(serial: int, lineage: str, records: list[LeadRecord], forget: list[int]) -> bytes:
    """One journal entry: `{"serial":N,"lineage":"...","records":[...],"forget":[...]}` and a
    newline; each record is `[leadId, file, hash, [leadId, ...], {applied values}]`."""
    items = ",".join(
        f"[{record.lead_id},{json_string(record.file)},{json_string(record.source_hash)},"
        f"[{','.join(map(str, record.file_leads))}],{one_line(record)}]"
        for record in records
    )
    text = (
        f'{{"serial":{serial},"lineage":{json_string(lineage)},"records":[{items}],'
        f'"forget":[{",".join(str(int(i)) for i in forget)}]}}\n'
    )
    return text.encode("utf-8", "backslashreplace")


_ENTRY_HEAD = re.compile(rb'\{"serial":([1-9][0-9]*),"lineage":("[0-9a-f-]*"),')


def _serial_of(line: bytes) -> int | None:
    match = _ENTRY_HEAD.match(line)
    return int(match.group(1)) if match else None


def _entry_lineage(line: bytes) -> bytes:
    match = _ENTRY_HEAD.match(line)
    return match.group(2) if match else b""


def entries_after(data: bytes, serial: int) -> bytes:
    """The whole entries of a journal newer than `serial` (a torn tail is dropped)."""
    end = data.rfind(b"\n") + 1
    lines = data[:end].splitlines(keepends=True)
    return b"".join(line for line in lines if (_serial_of(line) or 0) > serial)


def replay(base: Snapshot, data: bytes, where: str) -> tuple[Snapshot, int, int]:
    """`base` with the journal's entries newer than it applied: the snapshot, the journal's
    length in whole entries, and the bytes of the entries applied.

    Bytes after the last newline are an append that never completed (its write was never
    acknowledged), so they are not part of the state. Anything else unexpected is an error
    and the journal is left as it is."""
    assert base.lineage is not None

    def broken(why: str) -> StateError:
        return StateError(
            f"state journal {where} is unreadable ({why}); it was left untouched. Restore the "
            "state from a copy of both files, or move both away to start a new state"
        )

    end = data.rfind(b"\n") + 1
    leads: Mapping[int, LeadRecord] = base.leads
    serial, live = base.serial, 0
    lineage = json_string(base.lineage).encode()
    for number, line in enumerate(data[:end].splitlines(), 1):
        entry_serial = _serial_of(line)
        if entry_serial is None:
            raise broken(f"entry {number} does not start with a serial")
        if _entry_lineage(line) != lineage:
            raise broken(f"entry {number} belongs to another lineage")
        if entry_serial <= base.serial:
            continue  # already in the snapshot
        if entry_serial != serial + 1:
            raise broken(f"entry {number} has serial {entry_serial}, expected {serial + 1}")
        try:
            records, forget = _entry(json.loads(line))
        except (ValueError, TypeError, KeyError) as exc:
            raise broken(f"entry {number}: {exc}") from None
        leads = after(leads, records, forget)
        serial, live = entry_serial, live + len(line) + 1
    if isinstance(leads, Leads) and not isinstance(base.leads, IndexedLeads):
        leads = dict(leads)  # one copy: lookups in a plain dict are faster for the planner
    # Over a snapshot read lazily the view stays: a copy would build every record.
    return Snapshot(base.lineage, serial, leads), end, live


def _entry(document: Any) -> tuple[list[LeadRecord], list[int]]:
    """The records and forgotten leads of one parsed journal entry (ValueError if malformed)."""
    if not isinstance(document, dict):
        raise ValueError("not a JSON object")
    raw_records, raw_forget = document["records"], document["forget"]
    if not isinstance(raw_records, list) or not isinstance(raw_forget, list):
        raise ValueError("'records' and 'forget' must be lists")
    records = []
    for item in raw_records:
        lead_id, file, source_hash, file_leads, applied = item
        if not (
            type(lead_id) is int
            and lead_id >= 1
            and isinstance(file, str)
            and isinstance(source_hash, str)
            and isinstance(file_leads, list)
            and all(type(i) is int for i in file_leads)
            and isinstance(applied, dict)
        ):
            raise ValueError(
                f"record {item!r:.60} is not [leadId, file, hash, [leadId...], {{...}}]"
            )
        records.append(
            LeadRecord(lead_id, file, source_hash, tuple(file_leads), canonical_json(applied))
        )
    if not all(type(i) is int for i in raw_forget):
        raise ValueError("'forget' holds something that is not a leadId")
    return records, raw_forget
