"""`reconciler apply`: plan (or load a saved plan), confirm, carry it out, record each success.

The Lofty client comes from a factory the caller passes in (`client_factory`), so tests run
this whole command in-process against `httpx.MockTransport` rather than a server.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from reconciler.apply import ApplyResult, Outcome, Status, apply_plan
from reconciler.client import settings_from_env
from reconciler.commands import EXIT_ERROR, EXIT_OK
from reconciler.commands.lofty import ClientFactory, LoftyApi, lofty_client
from reconciler.commands.plan import note_no_state, render_to
from reconciler.console import Console
from reconciler.errors import ConfigError, LeadNotFoundError, StalePlanError, UsageError
from reconciler.gc_pause import gc_paused, heap_frozen
from reconciler.live import live_view
from reconciler.loader import prefetch
from reconciler.ownership import load_ownership
from reconciler.plan import LeadChange, Plan, Planner, load_plan, start_plan, verify
from reconciler.plan.threeway import MISSING, value_at
from reconciler.refresh import read_live
from reconciler.state import Snapshot, StateBackend, open_state

APPLY_FORMAT_VERSION = 1
_ETA_MIN_LEADS = 100  # below this an apply is over before an estimate would help


@dataclass(frozen=True, kw_only=True)
class ApplyOptions:
    planfile: Path | None = None
    dir: Path = Path("leads")
    state: str | None = None
    targets: tuple[str, ...] = ()
    auto_approve: bool = False
    parallelism: int = 4
    rate_limit: float | None = None
    lock_timeout: float = 0.0
    format: Literal["text", "json"] = "text"
    refresh: bool = True  # read Lofty first (or, for a saved plan, each lead before its PUT)
    force_conflicts: bool = False
    config: Path | None = None


def apply(
    options: ApplyOptions, console: Console, *, client_factory: ClientFactory = lofty_client
) -> int:
    """Plan (or load a saved plan), confirm, and carry it out, recording each success.

    The order is the one that answers a user soonest: the credential and the URL are checked
    with one cheap request before anything else is asked of Lofty; a fresh plan reads the
    managed leads (unless --no-refresh) so that conflicts are caught before anything is sent;
    the plan is shown, and only then is the user asked to confirm.
    """
    if options.planfile is not None and options.targets:
        raise UsageError(
            "--target cannot be used with a saved plan: the plan already fixed which "
            "leads it applies. Plan again with --target, then apply that plan"
        )
    ownership = load_ownership(options.config) if options.planfile is None else None
    state = open_state(options.state, env=console.env)
    try:
        with state.lock(timeout=options.lock_timeout, on_wait=console.note):
            if options.planfile is None:
                prefetch(options.dir)  # git lists the files while the state is read
            snapshot = state.read()
            if options.planfile is not None:
                source: Plan | Planner = _saved_plan(options.planfile, snapshot, state)
            else:
                with gc_paused():  # as `plan` does: no collector passes over 100k leads' objects
                    source = start_plan(
                        options.dir,
                        snapshot,
                        refresh=options.refresh,
                        state_name=state.describe(),
                        targets=options.targets,
                        ownership=ownership,
                    )
            session = _Session(options, console, state, client_factory)
            with heap_frozen():
                result = asyncio.run(session.run(source, snapshot))
    finally:
        state.close()
    if result is None:
        console.note("Apply cancelled; nothing was sent.")
        return EXIT_ERROR
    if options.format == "json":
        console.say(json.dumps(_result_doc(result), indent=2, ensure_ascii=False))
    else:
        _summarize(result, console)
    return EXIT_OK if result.ok else EXIT_ERROR


class _Session:
    """One apply against Lofty: read (if asked), show, confirm, send."""

    def __init__(
        self,
        options: ApplyOptions,
        console: Console,
        state: StateBackend,
        client_factory: ClientFactory,
    ) -> None:
        self.options = options
        self.console = console
        self.state = state
        self.client_factory = client_factory
        self.shown = console if options.format == "text" else console.to_stderr()

    async def run(self, source: Plan | Planner, snapshot: Snapshot) -> ApplyResult | None:
        """The result, or None when the user said no."""
        options = self.options
        if isinstance(source, Plan) and options.planfile is None:  # a fresh offline plan
            note_no_state(self.state, snapshot, source, self.console)
        if isinstance(source, Plan) and not any(c.needs_call for c in source.changes):
            return await self._without_calls(source)  # no credential needed: no call is made
        settings = settings_from_env(
            self.console.env,
            parallelism=options.parallelism,
            rate_limit_per_minute=options.rate_limit,
        )
        async with self.client_factory(settings, self.console.note) as client:
            await client.check_access()
            if isinstance(source, Planner):
                live, info = await read_live(
                    client,
                    source.lead_ids,
                    managed=source.managed_fields(),
                    parallelism=options.parallelism,
                )
                made = source.plan(live=live, refreshed=info, force=options.force_conflicts)
                note_no_state(self.state, snapshot, made, self.console)
            else:
                made = source
            render_to(self.shown, made, "text")
            if not made.has_changes:
                if made.refresh:
                    self.state.write(made.refresh)
                return _with_missing(ApplyResult(()), made)
            if not self._confirmed():
                return None
            recheck = None
            if options.planfile is not None and options.refresh:
                recheck = _Recheck(client, force=options.force_conflicts)
            result = await apply_plan(
                made,
                self.state,
                client,
                parallelism=options.parallelism,
                progress=_progress(self.console, lines=options.format == "text"),
                force_conflicts=options.force_conflicts,
                recheck=recheck,
            )
            return _with_missing(result, made)

    async def _without_calls(self, made: Plan) -> ApplyResult | None:
        render_to(self.shown, made, "text")
        if not made.has_changes:
            if made.refresh:
                self.state.write(made.refresh)
            return ApplyResult(())
        if not self._confirmed():
            return None
        progress = _progress(self.console, lines=self.options.format == "text")
        return await apply_plan(made, self.state, _NoCalls(), parallelism=1, progress=progress)

    def _confirmed(self) -> bool:
        """A saved plan was reviewed when it was made; a fresh one is confirmed here."""
        if self.options.planfile is not None or self.options.auto_approve:
            return True
        if not self.console.interactive:
            raise ConfigError(
                "refusing to apply without confirmation: there is no terminal to ask on. "
                "Review the plan, then pass --auto-approve (or apply a saved plan file)."
            )
        return self.console.confirm("Apply these changes to Lofty? Only 'yes' is accepted: ")


class _Recheck:
    """Re-reads a saved plan's lead right before its PUT: a field the PUT would overwrite that
    no longer holds what Lofty held when the plan was made is a conflict (edited since)."""

    def __init__(self, client: LoftyApi, *, force: bool) -> None:
        self._client = client
        self._force = force

    async def __call__(self, change: LeadChange) -> tuple[Status, str] | None:
        if change.record is None or not change.expect:
            return None
        try:
            raw = await self._client.get_lead(change.lead_id)
        except LeadNotFoundError:
            return "failed", "not sent: Lofty has no such lead any more (404 when re-read)"
        desired = change.record.applied
        live = live_view(raw, desired)
        moved = [
            path
            for path, held in change.expect.items()
            if path not in live.unreadable
            and path.partition(".")[0] not in live.unreadable
            and (now := _shown(value_at(live.values, path))) != held
            and now != _shown(value_at(desired, path))
        ]
        if not moved or self._force:
            return None
        return "conflict", (
            f"not sent: {', '.join(moved)} changed in Lofty after the plan was made (a "
            "conflict); plan again, or pass --force-conflicts to overwrite Lofty"
        )


def _shown(value: object) -> object:
    return None if value is MISSING else value


def _with_missing(result: ApplyResult, made: Plan) -> ApplyResult:
    """The result with a failure for each lead Lofty does not have (never sent)."""
    if not made.missing:
        return result
    gone = tuple(
        Outcome(
            m.lead_id,
            m.file,
            "update" if m.managed else "manage",
            "failed",
            "not sent: Lofty has no such lead (404 when read); "
            + (
                "deleted in Lofty?"
                if m.managed
                else "apply updates leads, never creates them: it must exist in Lofty first"
            ),
        )
        for m in made.missing
    )
    return dataclasses.replace(result, outcomes=result.outcomes + gone)


def _saved_plan(path: Path, snapshot: Snapshot, state: StateBackend) -> Plan:
    saved = load_plan(path)
    if (saved.lineage, saved.serial) != (snapshot.lineage, snapshot.serial):
        raise StalePlanError(
            f"the saved plan {path} is stale: it was made against state serial "
            f"{saved.serial} (lineage {saved.lineage}), but {state.describe()} is now at "
            f"serial {snapshot.serial} (lineage {snapshot.lineage}). Nothing was sent; run "
            "`reconciler plan --out PLANFILE` again and apply the new plan"
        )
    verify(saved, snapshot, where=path)
    return saved


class _NoCalls:
    """Stands in for the client when every change is state-only; any call is a bug."""

    async def update_lead(self, lead_id: int, body: dict[str, object]) -> None:
        raise AssertionError(f"lead {lead_id} needs no call")


def _progress(console: Console, *, lines: bool) -> Callable[[Outcome, int, int], None]:
    """A redrawn bar with an ETA on a terminal; otherwise (a CI log) a line per lead when
    `lines`, and on long runs a line every tenth of the way with the time left."""
    bar = console.err.isatty()
    started = time.monotonic()

    def eta(done: int, total: int) -> str:
        elapsed = time.monotonic() - started
        if done == 0 or done == total or elapsed < 2:
            return ""
        return f", about {_duration(elapsed / done * (total - done))} left"

    def report(outcome: Outcome, done: int, total: int) -> None:
        if bar:
            filled = int(30 * done / total) if total else 30
            console.progress(
                f"  applying [{'#' * filled}{'.' * (30 - filled)}] {done}/{total}"
                f"{eta(done, total)}  ",
                last=done == total,
            )
            return
        if lines:
            detail = f": {outcome.message}" if outcome.message else ""
            if outcome.status == "skipped":
                detail = ""  # the reason the run stopped is said once, in the summary
            console.say(
                f"  [{done}/{total}] {outcome.status} lead {outcome.lead_id} "
                f"({outcome.file}, {outcome.action}){detail}"
            )
        if total >= _ETA_MIN_LEADS and done % max(1, total // 10) == 0 and done < total:
            console.note(f"  {done}/{total} leads done{eta(done, total)}")

    return report


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds + 0.5), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def _summarize(result: ApplyResult, console: Console) -> None:
    counts = {s: result.count(s) for s in ("applied", "failed", "skipped", "conflict")}
    calls = sum(o.called and o.status == "applied" for o in result.outcomes)
    held = f", {counts['conflict']} held back by conflicts" if counts["conflict"] else ""
    console.say(
        f"\nApply {'complete' if result.ok else 'finished with failures'}: "
        f"{counts['applied']} applied ({calls} PUT), {counts['failed']} failed, "
        f"{counts['skipped']} skipped{held}."
    )
    for outcome in result.outcomes:
        if outcome.status in ("failed", "conflict"):
            console.say(
                f"  {outcome.status}: lead {outcome.lead_id} ({outcome.file}): {outcome.message}"
            )
    if result.stopped is not None:
        skipped = counts["skipped"]
        console.say(
            f"The run stopped: {result.stopped}. {skipped} lead{'s' * (skipped != 1)} "
            f"{'were' if skipped != 1 else 'was'} not sent."
        )
    if not result.ok:
        console.say(
            "Failed, skipped and held-back leads stay unapplied; run apply again to retry them."
        )


def _result_doc(result: ApplyResult) -> dict[str, object]:
    """`apply --format json`: the outcome of every lead, for scripts (docs/plan-format.md)."""
    return {
        "format_version": APPLY_FORMAT_VERSION,
        "ok": result.ok,
        "stopped": result.stopped,
        "summary": {s: result.count(s) for s in ("applied", "failed", "skipped", "conflict")},
        "outcomes": [
            {
                "lead_id": o.lead_id,
                "file": o.file,
                "action": o.action,
                "status": o.status,
                "called": o.called,
                "message": o.message,
            }
            for o in result.outcomes
        ],
    }
