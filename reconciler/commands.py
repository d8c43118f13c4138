"""Each CLI command as a plain function: typed options in, text to a Console, an exit code out.

The click layer (`cli.py`) only parses arguments into these options objects and dispatches.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from reconciler.collector import paused
from reconciler.errors import (
    ConfigError,
    InvalidLeadFilesError,
    ReconcilerError,
    StalePlanError,
    StateError,
)
from reconciler.loader import load_tree
from reconciler.model import json_schema
from reconciler.plan import Plan, load_plan, make_plan, save_plan
from reconciler.render import RenderOptions, render
from reconciler.state import StateBackend, migrate, open_state

if TYPE_CHECKING:  # apply (and with it asyncio) loads only for `apply`, to keep plans quick
    from reconciler.apply import ApplyResult, Outcome

EXIT_OK, EXIT_ERROR, EXIT_CHANGES = 0, 1, 2


@dataclass
class Console:
    """Where a command writes: results to `out`, messages and progress to `err`."""

    out: TextIO
    err: TextIO
    color: bool = False
    interactive: bool = False
    ask: Callable[[str], str] = input
    env: Mapping[str, str] = field(default_factory=dict)

    def say(self, text: str = "") -> None:
        print(text, file=self.out, flush=True)

    def note(self, text: str) -> None:
        print(text, file=self.err, flush=True)


# --- validate / schema -------------------------------------------------------------------------


@dataclass(frozen=True)
class ValidateOptions:
    dir: Path
    strict: bool = False


def validate(options: ValidateOptions, console: Console) -> int:
    """Check every lead file; report every problem at once."""
    load = load_tree(options.dir, strict=options.strict)
    for warning in load.warnings:
        console.note(f"warning: {warning}")
    if load.problems:
        report_error(InvalidLeadFilesError(load.problems), console)
        return EXIT_ERROR
    console.say(
        f"{len(load.leads)} leads in {len(load.files)} files are valid"
        + (f" ({len(load.warnings)} warnings)." if load.warnings else ".")
    )
    return EXIT_OK


def report_error(exc: ReconcilerError, console: Console) -> None:
    """How every user-facing error is shown: one `error:` line per problem, on stderr."""
    if not isinstance(exc, InvalidLeadFilesError):
        console.note(f"error: {exc}")
        return
    for problem in exc.problems:
        console.note(f"error: {problem}")
    count, files = len(exc.problems), len({p.file for p in exc.problems})
    console.note(
        f"{count} problem{'s' * (count != 1)} in {files} file{'s' * (files != 1)}; "
        "nothing was planned or sent."
    )


def schema(console: Console) -> int:
    """Print the JSON Schema of one lead document."""
    console.say(json.dumps(json_schema(), indent=2, ensure_ascii=False))
    return EXIT_OK


# --- plan / show -------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlanOptions:
    dir: Path
    state: str | None = None
    targets: tuple[str, ...] = ()
    out: Path | None = None
    format: str = "text"
    show_sensitive: bool = False
    detailed_exitcode: bool = False
    strict: bool = False


def plan(options: PlanOptions, console: Console) -> int:
    """Show what apply would change; optionally save it for `apply PLANFILE`."""
    state = open_state(options.state, env=console.env)
    try:
        made = _make_plan(options.dir, state, options.targets, options.strict, console)
    finally:
        state.close()
    _render(made, options.format, options.show_sensitive, console)
    if options.out is not None:
        save_plan(made, options.out)
        console.note(
            f"Saved the plan to {options.out}; apply exactly it with "
            f"`reconciler apply {options.out}`."
        )
    return EXIT_CHANGES if options.detailed_exitcode and made.has_changes else EXIT_OK


def _make_plan(
    root: Path, state: StateBackend, targets: tuple[str, ...], strict: bool, console: Console
) -> Plan:
    with paused():
        made, _ = make_plan(
            root, state.read(), state_name=state.describe(), strict=strict, targets=targets
        )
    return made


def _render(made: Plan, fmt: str, show_sensitive: bool, console: Console) -> None:
    options = RenderOptions(color=console.color and fmt == "text", show_sensitive=show_sensitive)
    with paused():
        text = render(made, fmt, options)
    console.out.write(text)
    console.out.flush()


@dataclass(frozen=True)
class ShowOptions:
    planfile: Path
    format: str = "text"
    show_sensitive: bool = False


def show(options: ShowOptions, console: Console) -> int:
    """Render a saved plan."""
    _render(load_plan(options.planfile), options.format, options.show_sensitive, console)
    return EXIT_OK


# --- apply -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ApplyOptions:
    planfile: Path | None = None
    dir: Path = Path("leads")
    state: str | None = None
    targets: tuple[str, ...] = ()
    auto_approve: bool = False
    parallelism: int = 4
    rate_limit: float | None = None
    lock_timeout: float = 0.0


def apply(options: ApplyOptions, console: Console) -> int:
    """Plan (or load a saved plan), confirm, and carry it out, recording each success."""
    import asyncio

    from reconciler.apply import apply_plan
    from reconciler.client import LoftyClient, settings_from_env

    state = open_state(options.state, env=console.env)
    try:
        with state.lock(timeout=options.lock_timeout):
            made = _plan_for_apply(options, state, console)
            if made is None:
                return EXIT_ERROR
            if not made.has_changes:
                if made.refresh:
                    state.write(made.refresh)
                return EXIT_OK
            settings = None
            if any(c.needs_call for c in made.changes):
                settings = settings_from_env(
                    console.env,
                    parallelism=options.parallelism,
                    rate_limit_per_minute=options.rate_limit,
                )

            async def run() -> ApplyResult:
                if settings is None:
                    return await apply_plan(
                        made, state, _NoCalls(), parallelism=1, progress=_progress(console)
                    )
                async with LoftyClient(settings) as client:
                    return await apply_plan(
                        made,
                        state,
                        client,
                        parallelism=options.parallelism,
                        progress=_progress(console),
                    )

            result = asyncio.run(run())
    finally:
        state.close()
    _summarize(result, console)
    return EXIT_OK if result.ok else EXIT_ERROR


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
        _render(saved, "text", False, console)
        return saved
    made = _make_plan(options.dir, state, options.targets, False, console)
    _render(made, "text", False, console)
    if not made.has_changes or options.auto_approve:
        return made
    if not console.interactive:
        raise ConfigError(
            "refusing to apply without confirmation: there is no terminal to ask on. "
            "Review the plan, then pass --auto-approve (or apply a saved plan file)."
        )
    answer = console.ask("Apply these changes to Lofty? Only 'yes' is accepted: ")
    if answer.strip() != "yes":
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
            console.err.write(f"\r  applying [{'#' * filled}{'.' * (30 - filled)}] {done}/{total}")
            if done == total:
                console.err.write("\n")
            console.err.flush()
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


# --- state -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StateOptions:
    state: str | None = None
    lock_timeout: float = 0.0


def state_list(options: StateOptions, console: Console) -> int:
    """List the leads the state knows, with the file each came from."""
    backend = open_state(options.state, env=console.env)
    try:
        snapshot = backend.read()
    finally:
        backend.close()
    console.note(
        f"state {backend.describe()}: lineage {snapshot.lineage or '-'}, serial "
        f"{snapshot.serial}, {len(snapshot.leads)} lead{'s' * (len(snapshot.leads) != 1)}"
    )
    for record in sorted(snapshot.leads.values(), key=lambda r: (r.file, r.lead_id)):
        console.say(f"{record.lead_id}\t{record.file}")
    return EXIT_OK


def state_show(options: StateOptions, lead_id: int, console: Console) -> int:
    """Show what was last applied for one lead."""
    backend = open_state(options.state, env=console.env)
    try:
        record = backend.read().leads.get(lead_id)
    finally:
        backend.close()
    if record is None:
        raise StateError(f"lead {lead_id} is not in state {backend.describe()}")
    doc = {
        "lead_id": record.lead_id,
        "file": record.file,
        "source_hash": record.source_hash,
        "file_leads": list(record.file_leads),
        "applied": record.applied,
    }
    console.say(json.dumps(doc, indent=2, ensure_ascii=False))
    return EXIT_OK


def state_rm(options: StateOptions, lead_id: int, console: Console) -> int:
    """Forget one lead; the next plan manages it again from scratch (every field sent)."""
    backend = open_state(options.state, env=console.env)
    try:
        with backend.lock(timeout=options.lock_timeout):
            if lead_id not in backend.read().leads:
                raise StateError(f"lead {lead_id} is not in state {backend.describe()}")
            serial = backend.write(forget=[lead_id])
    finally:
        backend.close()
    console.say(
        f"Removed lead {lead_id} from the state (serial {serial}); nothing was changed in "
        "Lofty. The next plan sends every field of its file."
    )
    return EXIT_OK


def state_migrate(
    source: str, destination: str, *, force: bool, lock_timeout: float, console: Console
) -> int:
    """Copy a whole state to another backend (local file <-> PostgreSQL)."""
    src = open_state(source, env={})
    dst = open_state(destination, env={})
    try:
        copied = migrate(src, dst, force=force, lock_timeout=lock_timeout)
    finally:
        src.close()
        dst.close()
    console.say(
        f"Migrated {len(copied.leads)} leads (lineage {copied.lineage}, serial {copied.serial}) "
        f"from {src.describe()} to {dst.describe()}."
    )
    return EXIT_OK


# --- sandbox -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SandboxOptions:
    port: int = 0
    latency_ms: float = 0.0
    fault_rate: float = 0.0
    rate_limit: int | None = None
    rate_window: float = 60.0
    seed: Path | None = None
    random_seed: int | None = None


def sandbox(options: SandboxOptions, console: Console) -> int:
    """Serve a Lofty-compatible API on loopback until interrupted."""
    from reconciler.sandbox import SandboxConfig, serve

    secrets = frozenset(
        v for k in ("LOFTY_ACCESS_TOKEN", "LOFTY_API_KEY") if (v := console.env.get(k, ""))
    )
    try:
        config = SandboxConfig(
            port=options.port,
            latency_ms=options.latency_ms,
            fault_rate=options.fault_rate,
            rate_limit=options.rate_limit,
            rate_window=options.rate_window,
            seed_file=options.seed,
            credentials=secrets,
            random_seed=options.random_seed,
        )
    except ValueError as exc:
        raise ConfigError(str(exc)) from None

    def ready(url: str) -> None:
        console.say(f"Sandbox listening on {url}")
        console.note(f"Point the tool at it: export LOFTY_API_URL={url}  (Ctrl-C stops it)")

    serve(config, ready=ready)
    return EXIT_OK


def default_console() -> Console:
    """The console of a real run: colour only on a terminal and without NO_COLOR."""
    env = dict(os.environ)
    return Console(
        out=sys.stdout,
        err=sys.stderr,
        color=sys.stdout.isatty() and not env.get("NO_COLOR"),
        interactive=sys.stdin.isatty(),
        env=env,
    )
