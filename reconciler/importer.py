"""Adopting leads that already exist in Lofty: one lead file per lead, recorded as applied.

No PUT is sent. Each lead is read from Lofty, mapped into the file's field space
(`live.import_values`), written as a new lead file (`leadfile`) and recorded in the state as
last-applied with the hash of exactly that file, so the next `plan` does not even parse it and
says `No changes.` Files are created atomically and never over another file; records are
written in batches as files are written, so an import interrupted half-way leaves no
half-written file and a valid state (at worst a file not yet recorded, which the next apply
simply sends once).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from reconciler.errors import ApiError, LeadNotFoundError
from reconciler.files import fsync_folder
from reconciler.gitfiles import blob_id
from reconciler.leadfile import file_name, render_lead_file, write_new_file
from reconciler.live import import_values
from reconciler.model import Lead, comparable, effective
from reconciler.state import LeadRecord, StateBackend, canonical_json

Status = Literal["imported", "skipped", "failed"]
RECORD_BATCH = 100  # records written to the state together: about one list page


class LeadReader(Protocol):
    """What an import needs of the Lofty client."""

    async def get_lead(self, lead_id: int) -> dict[str, Any]: ...

    def list_leads(
        self,
        filters: Mapping[str, str],
        *,
        return_fields: Sequence[str] | None = None,
        page_size: int = 100,
    ) -> AsyncIterator[dict[str, Any]]: ...


@dataclass(frozen=True, slots=True)
class Adoption:
    """How one lead's import ended; `file` as shown to the user."""

    lead_id: int
    status: Status
    file: str = ""
    message: str = ""
    notes: tuple[str, ...] = ()


@dataclass
class ImportResult:
    """Every lead's outcome, in the order Lofty gave them."""

    adoptions: list[Adoption] = field(default_factory=list)

    def count(self, status: Status) -> int:
        return sum(a.status == status for a in self.adoptions)

    @property
    def ok(self) -> bool:
        return all(a.status != "failed" for a in self.adoptions)


@dataclass(frozen=True)
class Target:
    """Where imported files go: the leads folder, how it is shown, what it already holds."""

    root: Path
    shown_root: str
    in_tree: Mapping[int, str]  # leadId -> the file that already defines it
    modeline: str | None


Progress = Callable[[Adoption, int], None]


async def adopt(
    leads: AsyncIterator[dict[str, Any] | Adoption],
    target: Target,
    state: StateBackend | None,
    *,
    today: str,
    progress: Progress | None = None,
) -> ImportResult:
    """Write a file and a state record for each lead of `leads` (raw Lofty leads, or failures
    already decided); `state` None is a dry run: nothing is written.

    Lofty is read ahead while leads are written: the next pages arrive (at the pace the rate
    limit allows) while a worker thread renders and writes the files of the last ones.
    """
    result = ImportResult()
    pending: list[LeadRecord] = []
    queue: asyncio.Queue[dict[str, Any] | Adoption | None] = asyncio.Queue(_READ_AHEAD)
    reader = asyncio.create_task(_read_into(leads, queue))
    try:
        ended = False
        while not ended:
            chunk, ended = await _next_chunk(queue)
            for done in await _adopt_chunk(chunk, target, state, today, pending):
                result.adoptions.append(done)
                if progress:
                    progress(done, len(result.adoptions))
            if state is not None and len(pending) >= RECORD_BATCH:
                await asyncio.to_thread(state.write, pending)
                pending = []
        await reader  # a failure of the read (say, the list stopped) is raised here
    finally:
        reader.cancel()
        if state is not None and pending:
            state.write(pending)  # even when interrupted: every written file gets its record
    return result


_READ_AHEAD = 2 * RECORD_BATCH  # leads read from Lofty before they are written: two pages
_WRITERS = 4  # lead files written at once


async def _read_into(
    leads: AsyncIterator[dict[str, Any] | Adoption],
    queue: asyncio.Queue[dict[str, Any] | Adoption | None],
) -> None:
    try:
        async for item in leads:
            await queue.put(item)
    finally:
        await queue.put(None)


async def _next_chunk(
    queue: asyncio.Queue[dict[str, Any] | Adoption | None],
) -> tuple[list[dict[str, Any] | Adoption], bool]:
    """The next lead (waiting for it) and whatever else has already arrived, up to a batch;
    True once the end was met."""
    chunk: list[dict[str, Any] | Adoption] = []
    item = await queue.get()
    while item is not None:
        chunk.append(item)
        if len(chunk) >= RECORD_BATCH or queue.empty():
            return chunk, False
        item = queue.get_nowait()
    return chunk, True


async def _adopt_chunk(
    chunk: list[dict[str, Any] | Adoption],
    target: Target,
    state: StateBackend | None,
    today: str,
    pending: list[LeadRecord],
) -> list[Adoption]:
    """Write the chunk's files in a worker thread (one thread hand-off and one folder sync per
    chunk, not per lead); their records join `pending`, even when interrupted meanwhile."""
    work = asyncio.ensure_future(asyncio.to_thread(_adopt_many, chunk, target, state, today))
    try:
        outcomes = await asyncio.shield(work)
    except asyncio.CancelledError:  # Ctrl-C: the files already written still get records
        pending.extend(o[1] for o in await work if isinstance(o, tuple))
        raise
    adoptions = []
    for outcome in outcomes:
        if isinstance(outcome, tuple):
            adoptions.append(outcome[0])
            pending.append(outcome[1])
        else:
            adoptions.append(outcome)
    return adoptions


def _adopt_many(
    chunk: list[dict[str, Any] | Adoption], target: Target, state: StateBackend | None, today: str
) -> list[Adoption | tuple[Adoption, LeadRecord]]:
    def one(item: dict[str, Any] | Adoption) -> Adoption | tuple[Adoption, LeadRecord]:
        return item if isinstance(item, Adoption) else _adopt_one(item, target, state, today)

    # Each file is fsynced before it takes its name; a few at a time, the disk syncs them
    # together (one file at a time, an import spends most of its time waiting for the disk).
    with ThreadPoolExecutor(_WRITERS) as writers:
        outcomes = list(writers.map(one, chunk))
    if any(isinstance(o, tuple) for o in outcomes):
        fsync_folder(target.root)  # the new names are durable before their records are written
    return outcomes


def _adopt_one(
    raw: dict[str, Any], target: Target, state: StateBackend | None, today: str
) -> Adoption | tuple[Adoption, LeadRecord]:
    lead_id = int(raw["leadId"])
    if lead_id in target.in_tree:
        return Adoption(lead_id, "skipped", target.in_tree[lead_id], "already in the lead files")
    values, notes = import_values(raw)
    lead = Lead.model_validate(values)
    name = file_name(values)
    shown = f"{target.shown_root}{name}"
    updated = raw.get("lastUpdateTime")
    comment = f"Imported from Lofty on {today}" + (
        f" (lastUpdateTime {updated})" if isinstance(updated, str) and updated.isprintable() else ""
    )
    text = render_lead_file(values, modeline=target.modeline, comment=comment)
    path = target.root / name
    if os.path.lexists(path):  # a file, a folder or a symlink (dangling ones too)
        return Adoption(lead_id, "failed", shown, f"{shown} already exists; it was not replaced")
    adoption = Adoption(lead_id, "imported", shown, notes=tuple(notes))
    if state is None:
        return adoption
    try:
        write_new_file(path, text, sync_folder=False)  # synced once per chunk
    except FileExistsError:
        return Adoption(lead_id, "failed", shown, f"{shown} already exists; it was not replaced")
    except OSError as exc:
        return Adoption(lead_id, "failed", shown, f"cannot write {shown}: {exc.strerror or exc}")
    digest = blob_id(text.encode("utf-8"))  # the loader's content hash: the next plan skips it
    applied = canonical_json(comparable(effective(lead)))
    return adoption, LeadRecord(lead_id, name, digest, (lead_id,), applied)


async def by_ids(
    client: LeadReader, lead_ids: Iterable[int], *, parallelism: int
) -> AsyncIterator[dict[str, Any] | Adoption]:
    """Each lead asked for, in the order asked, read `parallelism` at a time; a lead Lofty
    does not have (or cannot give) comes as a failed Adoption, and the others still come."""
    gate = asyncio.Semaphore(parallelism)

    async def one(lead_id: int) -> dict[str, Any] | Adoption:
        async with gate:
            try:
                return await client.get_lead(lead_id)
            except LeadNotFoundError:
                return Adoption(lead_id, "failed", message="no such lead in Lofty")
            except ApiError as exc:
                return Adoption(lead_id, "failed", message=str(exc))

    tasks = [asyncio.ensure_future(one(lead_id)) for lead_id in dict.fromkeys(lead_ids)]
    try:
        for task in tasks:
            yield await task
    finally:
        for task in tasks:
            task.cancel()
