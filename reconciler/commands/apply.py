"""`reconciler apply`: plan (or load a saved plan), confirm, carry it out, record each success.

The Lofty client comes from a factory the caller passes in (`client_factory`), so tests run
this whole command in-process against `httpx.MockTransport` rather than a server.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from pathlib import Path

from reconciler.apply import ApplyResult, LeadUpdater, Outcome, apply_plan
from reconciler.client import ClientSettings, LoftyClient, settings_from_env
from reconciler.commands import EXIT_ERROR, EXIT_OK
from reconciler.commands.plan import plan_against, render_to
from reconciler.console import Console
from reconciler.errors import ConfigError, StalePlanError
from reconciler.plan import Plan, load_plan
from reconciler.state import StateBackend, open_state

ClientFactory = Callable[[ClientSettings], AbstractAsyncContextManager[LeadUpdater]]


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


def apply(
    options: ApplyOptions, console: Console, *, client_factory: ClientFactory = LoftyClient
) -> int:
    """Plan (or load a saved plan), confirm, and carry it out, recording each success."""
    state = open_state(options.state, env=console.env)
    try:
        with state.lock(timeout=options.lock_timeout, on_wait=console.note):
            made = _plan_for_apply(options, state, console)
            if made is None:
                return EXIT_ERROR
            if not made.has_changes:
                if made.refresh:
                    state.write(made.refresh)
                return EXIT_OK
            result = asyncio.run(_carry_out(made, state, options, console, client_factory))
    finally:
        state.close()
    _summarize(result, console)
    return EXIT_OK if result.ok else EXIT_ERROR


async def _carry_out(
    made: Plan,
    state: StateBackend,
    options: ApplyOptions,
    console: Console,
    client_factory: ClientFactory,
) -> ApplyResult:
    progress = _progress(console)
    if not any(c.needs_call for c in made.changes):
        return await apply_plan(made, state, _NoCalls(), parallelism=1, progress=progress)
    settings = settings_from_env(
        console.env, parallelism=options.parallelism, rate_limit_per_minute=options.rate_limit
    )
    async with client_factory(settings) as client:
        return await apply_plan(
            made, state, client, parallelism=options.parallelism, progress=progress
        )


def _plan_for_apply(options: ApplyOptions, state: StateBackend, console: Console) -> Plan | None:
    if options.planfile is not None:
        saved = load_plan(options.planfile)
        snapshot = state.read()
        if (saved.lineage, saved.serial) != (snapshot.lineage, snapshot.serial):
            raise StalePlanError(
                f"{options.planfile} was planned against state serial {saved.serial} "
                f"(lineage {saved.lineage}), but {state.describe()} is now at serial "
                f"{snapshot.serial} (lineage {snapshot.lineage}); run `reconciler plan` again"
            )
        render_to(console, saved, "text")
        return saved
    made = plan_against(state, options.dir, targets=options.targets)
    render_to(console, made, "text")
    if not made.has_changes or options.auto_approve:
        return made
    if not console.interactive:
        raise ConfigError(
            "refusing to apply without confirmation: there is no terminal to ask on. "
            "Review the plan, then pass --auto-approve (or apply a saved plan file)."
        )
    if not console.confirm("Apply these changes to Lofty? Only 'yes' is accepted: "):
        console.note("Apply cancelled; nothing was sent.")
        return None
    return made


class _NoCalls:
    """Stands in for the client when every change is state-only; any call is a bug."""

    async def update_lead(self, lead_id: int, body: dict[str, object]) -> None:
        raise AssertionError(f"lead {lead_id} needs no call")


def _progress(console: Console) -> Callable[[Outcome, int, int], None]:
    bar = console.err.isatty()

    def report(outcome: Outcome, done: int, total: int) -> None:
        if bar:
            filled = int(30 * done / total) if total else 30
            console.progress(
                f"  applying [{'#' * filled}{'.' * (30 - filled)}] {done}/{total}",
                last=done == total,
            )
            return
        detail = f": {outcome.message}" if outcome.message else ""
        console.say(
            f"  [{done}/{total}] {outcome.status} lead {outcome.lead_id} "
            f"({outcome.file}, {outcome.action}){detail}"
        )

    return report


def _summarize(result: ApplyResult, console: Console) -> None:
    applied, failed, skipped = (result.count(s) for s in ("applied", "failed", "skipped"))
    calls = sum(o.called and o.status == "applied" for o in result.outcomes)
    console.say(
        f"\nApply {'complete' if result.ok else 'finished with failures'}: {applied} applied "
        f"({calls} PUT), {failed} failed, {skipped} skipped."
    )
    for outcome in result.outcomes:
        if outcome.status != "applied":
            console.say(
                f"  {outcome.status}: lead {outcome.lead_id} ({outcome.file}): {outcome.message}"
            )
    if not result.ok:
        console.say("Failed and skipped leads stay unapplied; run apply again to retry them.")
