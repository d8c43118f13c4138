"""`reconciler plan` and `reconciler show`: make (or read) a plan and render it.

A plan is offline by default: it compares the lead files with the last-applied state, needs
no credential and makes no call, so a pull request from a fork can be planned. `--refresh`
also reads the managed leads from Lofty and shows drift and conflicts (`plan.threeway`);
`--write-drift` then writes the drifted values Lofty holds into the lead files, so accepting
them is a git change like any other.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from reconciler.commands import EXIT_CHANGES, EXIT_OK
from reconciler.console import Console
from reconciler.errors import UsageError
from reconciler.gc_pause import gc_paused
from reconciler.loader import prefetch
from reconciler.ownership import load_ownership
from reconciler.plan import Plan, Planner, load_plan, save_plan, start_plan
from reconciler.render import RenderOptions, render_chunks
from reconciler.state import Snapshot, StateBackend, open_state
from reconciler.state.local import LocalState

if TYPE_CHECKING:  # the client is imported only when a plan reads Lofty (--refresh)
    from reconciler.commands.lofty import ClientFactory


@dataclass(frozen=True, kw_only=True)
class PlanOptions:
    dir: Path
    state: str | None = None
    targets: tuple[str, ...] = ()
    out: Path | None = None
    format: str = "text"
    detailed_exitcode: bool = False
    strict: bool = False
    refresh: bool = False
    write_drift: bool = False
    config: Path | None = None
    parallelism: int = 4
    rate_limit: float | None = None


def plan(
    options: PlanOptions, console: Console, *, client_factory: ClientFactory | None = None
) -> int:
    """Show what apply would change (and, refreshed, what drifted in Lofty); optionally save
    it for `apply PLANFILE`. With `--detailed-exitcode`, 2 means changes, drift or conflicts."""
    if options.write_drift and not options.refresh:
        raise UsageError("--write-drift needs --refresh: drift is what Lofty holds, read live")
    ownership = load_ownership(options.config)
    state = open_state(options.state, env=console.env)
    try:
        prefetch(options.dir)  # git lists the files while the state is read
        snapshot = state.read()
        with gc_paused():
            source = start_plan(
                options.dir,
                snapshot,
                refresh=options.refresh,
                state_name=state.describe(),
                strict=options.strict,
                targets=options.targets,
                ownership=ownership,
            )
    finally:
        state.close()
    if isinstance(source, Planner):  # decided once Lofty is read
        made = asyncio.run(_refreshed(source, options, console, client_factory))
    else:
        made = source
    note_no_state(state, snapshot, made, console)
    render_to(console, made, options.format)
    if options.write_drift:
        _write_drift(made, options.dir, console)
    if options.out is not None:
        save_plan(made, options.out)
        console.note(
            f"Saved the plan to {options.out}; apply exactly it with "
            f"`reconciler apply {options.out}`."
        )
    return EXIT_CHANGES if options.detailed_exitcode and made.needs_attention else EXIT_OK


async def _refreshed(
    planner: Planner, options: PlanOptions, console: Console, client_factory: ClientFactory | None
) -> Plan:
    from reconciler.client import settings_from_env
    from reconciler.commands.lofty import lofty_client
    from reconciler.refresh import read_live

    client_factory = client_factory or lofty_client

    settings = settings_from_env(
        console.env, parallelism=options.parallelism, rate_limit_per_minute=options.rate_limit
    )
    async with client_factory(settings, console.note) as client:
        await client.check_access()
        live, info = await read_live(
            client,
            planner.lead_ids,
            managed=planner.managed_fields(),
            parallelism=options.parallelism,
        )
    return planner.plan(live=live, refreshed=info)


def _write_drift(made: Plan, root: Path, console: Console) -> None:
    """Write the drift kept (not reverted) into the lead files: Lofty's values become the
    desired ones, to be reviewed and merged like any change."""
    from reconciler.writeback import FieldEdit, write_back

    by_file: dict[str, list[FieldEdit]] = defaultdict(list)
    for item in made.drift:
        if item.action != "kept":
            continue
        rel = _relative(item.file, root)
        by_file[rel].append(FieldEdit(item.lead_id, tuple(item.field.split(".")), item.live))
    for rel, edits in sorted(by_file.items()):
        write_back(root, rel, edits)
    count = sum(len(edits) for edits in by_file.values())
    if count:
        console.note(
            f"Wrote {count} drifted value{'s' * (count != 1)} from Lofty into "
            f"{len(by_file)} lead file{'s' * (len(by_file) != 1)}; review with `git diff`."
        )
    else:
        console.note("No drift to write: the lead files already say what Lofty holds.")


def _relative(shown: str, root: Path) -> str:
    """A file as the plan shows it (under --dir as given) relative to the leads folder."""
    prefix = "" if str(root) in ("", ".") else f"{root.as_posix()}/"
    return shown[len(prefix) :] if prefix and shown.startswith(prefix) else shown


@dataclass(frozen=True, kw_only=True)
class ShowOptions:
    planfile: Path
    format: str = "text"


def show(options: ShowOptions, console: Console) -> int:
    """Render a saved plan."""
    saved = load_plan(options.planfile)
    render_to(console, saved, options.format)
    return EXIT_OK


def note_no_state(state: StateBackend, snapshot: Snapshot, made: Plan, console: Console) -> None:
    """A state that does not exist yet is fine (the first apply creates it), but when it was
    probably meant to exist (run from another folder, a mistyped --state) every lead would
    silently count as new: say where the state was looked for."""
    if snapshot.lineage is None and made.has_changes:
        where = state.describe()
        if isinstance(state, LocalState):
            where += f" (looked for {state.path.absolute()})"
        console.note(
            f"note: no state found at {where}, so every lead counts as new. If this "
            "team has applied before, run from the folder that holds its state or pass --state."
        )


def render_to(console: Console, made: Plan, fmt: str) -> None:
    """Write `made` in format `fmt` to the console's result stream, masked unless the console
    shows sensitive values."""
    options = RenderOptions(
        color=console.color and fmt == "text", show_sensitive=console.show_sensitive
    )
    with gc_paused():
        for chunk in render_chunks(made, fmt, options):
            console.write(chunk)
