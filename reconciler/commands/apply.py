"""`reconciler apply`: plan (or load a saved plan), confirm, carry it out, record each success.

The Lofty client comes from a factory the caller passes in (`client_factory`), so tests run
this whole command in-process against `httpx.MockTransport` rather than a server.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

from reconciler.apply import ApplyResult, LeadUpdater, Outcome, apply_plan
from reconciler.client import ClientSettings, LoftyClient, settings_from_env
from reconciler.commands import EXIT_ERROR, EXIT_OK
from reconciler.commands.plan import plan_against, render_to
from reconciler.console import Console
from reconciler.errors import ConfigError, StalePlanError, UsageError
from reconciler.plan import Plan, load_plan
from reconciler.state import StateBackend, open_state

APPLY_FORMAT_VERSION = 1
_ETA_MIN_LEADS = 100  # below this an apply is over before an estimate would help
# Builds the client from its settings and where its one-time notices go (the console).
ClientFactory = Callable[
    [ClientSettings, Callable[[str], None]], AbstractAsyncContextManager["ApplyClient"]
]


class ApplyClient(LeadUpdater, Protocol):
    """What the apply command needs of the Lofty client: updates, and a first access check."""

    async def check_access(self) -> None: ...


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


def lofty_client(settings: ClientSettings, notice: Callable[[str], None]) -> LoftyClient:
    """The real client: the default `client_factory`."""
    return LoftyClient(settings, notice=notice)


def apply(
    options: ApplyOptions, console: Console, *, client_factory: ClientFactory = lofty_client
) -> int:
    """Plan (or load a saved plan), confirm, and carry it out, recording each success.

    The order is the one that answers a user soonest: the plan is shown, the credential and
    the URL are checked with one cheap request, and only then is the user asked to confirm.
    """
    if options.planfile is not None and options.targets:
        raise UsageError(
            "--target cannot be used with a saved plan: the plan already fixed which "
            "leads it applies. Plan again with --target, then apply that plan"
        )
    state = open_state(options.state, env=console.env)
    try:
        with state.lock(timeout=options.lock_timeout, on_wait=console.note):
            made = _plan_for_apply(options, state, console)
            if not made.has_changes:
                if made.refresh:
                    state.write(made.refresh)
                result: ApplyResult | None = ApplyResult(())
            else:
                _check_can_confirm(options, console)
                result = asyncio.run(_session(made, state, options, console, client_factory))
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


async def _session(
    made: Plan,
    state: StateBackend,
    options: ApplyOptions,
    console: Console,
    client_factory: ClientFactory,
) -> ApplyResult | None:
    """Check access, confirm, apply: None when the user said no."""
    progress = _progress(console, lines=options.format == "text")
    if not any(c.needs_call for c in made.changes):
        if not _confirmed(options, console):
            return None
        return await apply_plan(made, state, _NoCalls(), parallelism=1, progress=progress)
    settings = settings_from_env(
        console.env, parallelism=options.parallelism, rate_limit_per_minute=options.rate_limit
    )
    async with client_factory(settings, console.note) as client:
        await client.check_access()
        if not _confirmed(options, console):
            return None
        return await apply_plan(
            made, state, client, parallelism=options.parallelism, progress=progress
        )


def _plan_for_apply(options: ApplyOptions, state: StateBackend, console: Console) -> Plan:
    shown = console if options.format == "text" else console.to_stderr()
    if options.planfile is None:
        made = plan_against(state, options.dir, targets=options.targets, console=console)
        render_to(shown, made, "text")
        return made
    saved = load_plan(options.planfile)
    snapshot = state.read()
    if (saved.lineage, saved.serial) != (snapshot.lineage, snapshot.serial):
        raise StalePlanError(
            f"the saved plan {options.planfile} is stale: it was made against state serial "
            f"{saved.serial} (lineage {saved.lineage}), but {state.describe()} is now at "
            f"serial {snapshot.serial} (lineage {snapshot.lineage}). Nothing was sent; run "
            "`reconciler plan --out PLANFILE` again and apply the new plan"
        )
    render_to(shown, saved, "text")
    return saved


def _check_can_confirm(options: ApplyOptions, console: Console) -> None:
    """A plan made here needs a yes; without a terminal to ask on, refuse before any call."""
    if options.planfile is None and not options.auto_approve and not console.interactive:
        raise ConfigError(
            "refusing to apply without confirmation: there is no terminal to ask on. "
            "Review the plan, then pass --auto-approve (or apply a saved plan file)."
        )


def _confirmed(options: ApplyOptions, console: Console) -> bool:
    """A saved plan was reviewed when it was made; a fresh one is confirmed here."""
    if options.planfile is not None or options.auto_approve:
        return True
    return console.confirm("Apply these changes to Lofty? Only 'yes' is accepted: ")


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
    counts = {s: result.count(s) for s in ("applied", "failed", "skipped")}
    calls = sum(o.called and o.status == "applied" for o in result.outcomes)
    console.say(
        f"\nApply {'complete' if result.ok else 'finished with failures'}: "
        f"{counts['applied']} applied ({calls} PUT), {counts['failed']} failed, "
        f"{counts['skipped']} skipped."
    )
    for outcome in result.outcomes:
        if outcome.status == "failed":
            console.say(f"  failed: lead {outcome.lead_id} ({outcome.file}): {outcome.message}")
    if result.stopped is not None:
        skipped = counts["skipped"]
        console.say(
            f"The run stopped: {result.stopped}. {skipped} lead{'s' * (skipped != 1)} "
            f"{'were' if skipped != 1 else 'was'} not sent."
        )
    if not result.ok:
        console.say("Failed and skipped leads stay unapplied; run apply again to retry them.")


def _result_doc(result: ApplyResult) -> dict[str, object]:
    """`apply --format json`: the outcome of every lead, for scripts (docs/plan-format.md)."""
    return {
        "format_version": APPLY_FORMAT_VERSION,
        "ok": result.ok,
        "stopped": result.stopped,
        "summary": {s: result.count(s) for s in ("applied", "failed", "skipped")},
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
