"""Carry out a plan: PUT each changed lead, record each success in the state at once.

Calls run concurrently (bounded by `parallelism`); the state is written by one writer task so
the event loop never blocks on disk or database. Successes that finish while a write is under
way are committed together in the next write (group commit): each is durable a moment after
its PUT, and a run killed at any point loses nothing but the calls still in flight, which the
next apply simply sends again.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal, Protocol

from reconciler.errors import ApiError, ApiUnreachableError, AuthError
from reconciler.plan import LeadChange, Plan
from reconciler.state import LeadRecord, StateBackend

Status = Literal["applied", "failed", "skipped", "conflict"]


class LeadUpdater(Protocol):
    """What apply needs of the Lofty client."""

    async def update_lead(self, lead_id: int, body: dict[str, object]) -> None: ...


# Failures that would repeat for every lead: the first one ends the run, and says why once.
_RUN_ENDING: dict[type[ApiError], str] = {
    ApiUnreachableError: "no answer from Lofty; the run stopped",
    AuthError: "Lofty refused the credential; the run stopped",
}


@dataclass(frozen=True, slots=True)
class Outcome:
    """How one lead of the plan ended."""

    lead_id: int
    file: str
    action: str
    status: Status
    message: str = ""
    called: bool = False


Progress = Callable[[Outcome, int, int], None]
# Asked right before a lead's PUT (a saved plan's leads are re-read then): why the lead must
# not be sent after all, as (status, message), or None to send it.
Recheck = Callable[[LeadChange], Awaitable[tuple[Status, str] | None]]


@dataclass(frozen=True)
class ApplyResult:
    """Every lead's outcome, in plan order, and why the run stopped early if it did (then the
    leads not yet sent are `skipped`)."""

    outcomes: tuple[Outcome, ...]
    stopped: str | None = None

    def count(self, status: Status) -> int:
        return sum(o.status == status for o in self.outcomes)

    @property
    def ok(self) -> bool:
        return all(o.status == "applied" for o in self.outcomes)


def record_without_calls(plan: Plan, state: StateBackend) -> list[Outcome]:
    """Write everything that needs no call in one step: forgotten leads, leads whose only
    change is a field no longer managed, and refreshed file hashes."""
    quiet = [c for c in plan.changes if not c.needs_call]
    records = [c.record for c in quiet if c.record is not None] + list(plan.refresh)
    forget = [c.lead_id for c in quiet if c.action == "forget"]
    if records or forget:
        state.write(records, forget=forget)
    return [Outcome(c.lead_id, c.file, c.action, "applied") for c in quiet]


async def apply_plan(
    plan: Plan,
    state: StateBackend,
    client: LeadUpdater,
    *,
    parallelism: int,
    progress: Progress | None = None,
    force_conflicts: bool = False,
    recheck: Recheck | None = None,
) -> ApplyResult:
    """Apply `plan`; the caller holds the state lock and has checked the plan is not stale.

    A lead held back by a conflict is not sent unless `force_conflicts`; `recheck` may hold
    back a lead right before its PUT."""
    outcomes: dict[int, Outcome] = {}
    total, done = len(plan.changes), 0
    for outcome in record_without_calls(plan, state):
        outcomes[outcome.lead_id] = outcome
        done += 1
        if progress:
            progress(outcome, done, total)
    calls = [c for c in plan.changes if c.needs_call]
    writer = _StateWriter(state)
    writer_task = asyncio.create_task(writer.run())
    gate = asyncio.Semaphore(max(1, parallelism))
    stopping: list[ApiError] = []

    async def one(change: LeadChange) -> None:
        nonlocal done
        if change.conflicts and not force_conflicts:
            outcome = _held(change)
        else:
            outcome = await _apply_one(change, client, gate, writer, stopping, recheck)
        outcomes[change.lead_id] = outcome
        done += 1
        if progress:
            progress(outcome, done, total)

    try:
        await asyncio.gather(*(one(c) for c in calls))
    finally:
        await writer.close()
        await writer_task
    stopped = str(stopping[0]) if stopping else None
    return ApplyResult(tuple(outcomes[c.lead_id] for c in plan.changes), stopped)


async def _apply_one(
    change: LeadChange,
    client: LeadUpdater,
    gate: asyncio.Semaphore,
    writer: _StateWriter,
    stopping: list[ApiError],
    recheck: Recheck | None,
) -> Outcome:
    def end(status: Status, message: str = "", called: bool = True) -> Outcome:
        return Outcome(change.lead_id, change.file, change.action, status, message, called)

    assert change.body is not None and change.record is not None
    try:
        # Only the call holds a slot: waiting for the state write must not idle one.
        async with gate:
            if stopping:
                return end("skipped", "not sent: the run stopped before it", called=False)
            held = await recheck(change) if recheck is not None else None
            if held is not None:
                return end(held[0], held[1], called=False)
            await client.update_lead(change.lead_id, change.body)
    except ApiError as exc:
        for kind, short in _RUN_ENDING.items():
            if isinstance(exc, kind):
                # The reason is said once for the whole run (ApplyResult.stopped), not per lead.
                stopping.append(exc)
                return end("failed", short)
        return end("failed", str(exc))
    try:
        await writer.record(change.record)
    except Exception as exc:  # the PUT landed but the state did not take it: say so plainly
        return end("failed", f"applied in Lofty but not recorded in the state: {exc}")
    return end("applied")


def _held(change: LeadChange) -> Outcome:
    fields = ", ".join(c.field for c in change.conflicts)
    message = (
        f"not sent: {fields} changed both in the files and in Lofty since the last apply "
        "(a conflict); settle it in the file, or pass --force-conflicts to overwrite Lofty"
    )
    return Outcome(change.lead_id, change.file, change.action, "conflict", message)


_GATHER_FACTOR = 2.0


class _StateWriter:
    """One task that writes records to the state, batching those that arrive while it writes."""

    def __init__(self, state: StateBackend) -> None:
        self._state = state
        self._queue: asyncio.Queue[tuple[LeadRecord, asyncio.Future[None]] | None] = asyncio.Queue()

    async def record(self, record: LeadRecord) -> None:
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        await self._queue.put((record, done))
        await done

    async def close(self) -> None:
        await self._queue.put(None)

    async def run(self) -> None:
        closing = False
        while not closing:
            item = await self._queue.get()
            batch: list[tuple[LeadRecord, asyncio.Future[None]]] = []
            while item is not None:
                batch.append(item)
                if self._queue.empty():
                    break
                item = self._queue.get_nowait()
            closing = item is None
            if not batch:
                continue
            started = time.monotonic()
            try:
                await asyncio.to_thread(self._state.write, [r for r, _ in batch])
            except Exception as exc:
                _settle(batch, exc)
            else:
                _settle(batch, None)
            if not closing:
                # A write costs about the same for one record or many (the local file is
                # rewritten whole): let successes gather for a moment rather than writing
                # back to back, which would hold the GIL and slow the calls.
                await asyncio.sleep(min(_GATHER_FACTOR * (time.monotonic() - started), 0.5))


def _settle(
    batch: list[tuple[LeadRecord, asyncio.Future[None]]], failure: Exception | None
) -> None:
    """Tell each waiting lead how its write went. A lead whose task was cancelled (Ctrl-C)
    no longer waits; its record was still written if the write succeeded."""
    for _, done in batch:
        if done.done():
            continue
        if failure is None:
            done.set_result(None)
        else:
            done.set_exception(failure)
