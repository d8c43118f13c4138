"""`reconciler plan` and `reconciler show`: make (or read) a plan and render it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from reconciler.commands import EXIT_CHANGES, EXIT_OK
from reconciler.console import Console
from reconciler.gc_pause import gc_paused
from reconciler.loader import prefetch
from reconciler.plan import Plan, load_plan, make_plan, save_plan
from reconciler.render import RenderOptions, render
from reconciler.state import StateBackend, open_state
from reconciler.state.local import LocalState


@dataclass(frozen=True, kw_only=True)
class PlanOptions:
    dir: Path
    state: str | None = None
    targets: tuple[str, ...] = ()
    out: Path | None = None
    format: str = "text"
    detailed_exitcode: bool = False
    strict: bool = False


def plan(options: PlanOptions, console: Console) -> int:
    """Show what apply would change; optionally save it for `apply PLANFILE`."""
    state = open_state(options.state, env=console.env)
    try:
        made = plan_against(
            state, options.dir, console=console, targets=options.targets, strict=options.strict
        )
    finally:
        state.close()
    render_to(console, made, options.format)
    if options.out is not None:
        save_plan(made, options.out)
        console.note(
            f"Saved the plan to {options.out}; apply exactly it with "
            f"`reconciler apply {options.out}`."
        )
    return EXIT_CHANGES if options.detailed_exitcode and made.has_changes else EXIT_OK


@dataclass(frozen=True, kw_only=True)
class ShowOptions:
    planfile: Path
    format: str = "text"


def show(options: ShowOptions, console: Console) -> int:
    """Render a saved plan."""
    saved = load_plan(options.planfile)
    render_to(console, saved, options.format)
    return EXIT_OK


def plan_against(
    state: StateBackend,
    root: Path,
    *,
    console: Console,
    targets: Sequence[str] = (),
    strict: bool = False,
) -> Plan:
    """The plan of the leads below `root` against what `state` holds now.

    A state that does not exist yet is fine (the first apply creates it), but when it was
    probably meant to exist (run from another folder, a mistyped --state) every lead would
    silently count as new: the console is told where the state was looked for.
    """
    prefetch(root)  # git lists the files while the state is read
    snapshot = state.read()
    with gc_paused():
        made, _ = make_plan(
            root, snapshot, state_name=state.describe(), strict=strict, targets=targets
        )
    if snapshot.lineage is None and made.has_changes:
        console.note(
            f"note: no state found at {_where(state)}, so every lead counts as new. If this "
            "team has applied before, run from the folder that holds its state or pass --state."
        )
    return made


def _where(state: StateBackend) -> str:
    if isinstance(state, LocalState):
        return f"{state.describe()} (looked for {state.path.absolute()})"
    return state.describe()


def render_to(console: Console, made: Plan, fmt: str) -> None:
    """Write `made` in format `fmt` to the console's result stream, masked unless the console
    shows sensitive values."""
    options = RenderOptions(
        color=console.color and fmt == "text", show_sensitive=console.show_sensitive
    )
    with gc_paused():
        text = render(made, fmt, options)
    console.write(text)
