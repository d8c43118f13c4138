"""The `reconciler` command line: parse arguments into options objects and dispatch.

Each callback fills one keyword-only options object and hands the command to
`error_handler.run_command`, which maps errors to exit codes. Command modules are imported
only when their command runs, so `plan` never pays for apply's HTTP client.

Exit codes: 0 success, 1 any error (usage errors included, so that `plan --detailed-exitcode`
can keep 2 for "changes present"), 130 interrupted.

This module is longer than the project's other modules on purpose: it is nothing but the
command line's declaration (one decorated function per command, each a few lines of options
and one dispatch), and reading it top to bottom is reading `reconciler --help`. Splitting it
would scatter that without making any part simpler.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import click

from reconciler.commands import EXIT_ERROR
from reconciler.commands.error_handler import run_command
from reconciler.console import Console, default_console

FORMATS = click.Choice(["text", "json", "markdown"])
_STATE_HELP = "State: a JSON file path or postgresql://… (default: $RECONCILER_STATE or "
_STATE_HELP += ".reconciler/state.json)."


class _UsageError(click.UsageError):
    """A usage error that exits 1 like every other error (click's own exits 2)."""

    exit_code = EXIT_ERROR


class _Cli(click.Group):
    """Usage errors exit 1; a command's own exit code becomes the process's."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except click.UsageError as exc:  # bare `reconciler` too: it shows the help, exit 1
            exc.exit_code = EXIT_ERROR  # type: ignore[misc]  # click reads it per instance
            raise

    def invoke(self, ctx: click.Context) -> Any:
        try:
            code = super().invoke(ctx)
        except click.UsageError as exc:
            raise _UsageError(exc.message, exc.ctx) from None
        if isinstance(code, int) and code:
            ctx.exit(code)
        return code


class _Context:
    def __init__(self) -> None:
        self.console: Console = default_console()


def _run(command: Callable[[Console], int], *, show_sensitive: bool = False) -> int:
    """Run one command on the invocation's console, through the one error handler."""
    console = click.get_current_context().ensure_object(_Context).console
    console.show_sensitive = show_sensitive
    return run_command(lambda: command(console), console)


dir_option = click.option(
    "--dir",
    "dir_",
    default=Path("leads"),
    show_default=True,
    type=click.Path(path_type=Path, file_okay=False),
    help="Folder of lead files.",
)
state_option = click.option("--state", default=None, metavar="S", help=_STATE_HELP)
target_option = click.option(
    "--target",
    "targets",
    multiple=True,
    metavar="ID|FILE",
    help="Only this leadId or lead file (repeatable).",
)
format_option = click.option(
    "--format",
    "fmt",
    type=FORMATS,
    default="text",
    show_default=True,
    help="text for a terminal, json for scripts (docs/plan-format.md), markdown for a PR.",
)
show_sensitive_option = click.option(
    "--show-sensitive", is_flag=True, help="Show emails and phone numbers unmasked."
)
lock_timeout_option = click.option(
    "--lock-timeout",
    default=0.0,
    show_default=True,
    type=click.FloatRange(min=0),
    metavar="SECONDS",
    help="How long to wait for another run's lock.",
)
config_option = click.option(
    "--config",
    type=click.Path(path_type=Path, dir_okay=False),
    metavar="PATH",
    help="Field ownership (shared, enforce, initial per field); default: ./reconciler.yaml.",
)
parallelism_option = click.option(
    "--parallelism",
    default=4,
    show_default=True,
    type=click.IntRange(1, 64),
    help="How many requests to Lofty may be under way at once.",
)
rate_limit_option = click.option(
    "--rate-limit",
    type=click.FloatRange(min=0, min_open=True),
    metavar="PER_MIN",
    help="Never send more than this many requests per minute.",
)


@click.group(cls=_Cli, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="reconciler")
def main() -> None:
    """GitOps for Lofty CRM leads: validate, plan and apply lead YAML files."""


@main.command()
@dir_option
@click.option("--strict", is_flag=True, help="Treat silent truncation as an error.")
@show_sensitive_option
def validate(dir_: Path, strict: bool, show_sensitive: bool) -> int:
    """Check every lead file and report every problem at once."""
    from reconciler.commands.validate import ValidateOptions
    from reconciler.commands.validate import validate as command

    options = ValidateOptions(dir=dir_, strict=strict)
    return _run(lambda console: command(options, console), show_sensitive=show_sensitive)


@main.command()
@dir_option
@state_option
@target_option
@click.option(
    "--out",
    type=click.Path(path_type=Path, dir_okay=False),
    metavar="PLANFILE",
    help="Save the plan for `reconciler apply PLANFILE`.",
)
@format_option
@show_sensitive_option
@click.option(
    "--detailed-exitcode",
    is_flag=True,
    help="Exit 2 when there are changes (refreshed: or drift, conflicts, missing leads).",
)
@click.option("--strict", is_flag=True, help="Treat silent truncation as an error.")
@click.option(
    "--refresh",
    is_flag=True,
    help="Also read the managed leads from Lofty: show drift and conflicts (needs a credential).",
)
@click.option(
    "--write-drift",
    is_flag=True,
    help="With --refresh: write the drifted values Lofty holds into the lead files.",
)
@config_option
@parallelism_option
@rate_limit_option
def plan(
    dir_: Path,
    state: str | None,
    targets: tuple[str, ...],
    out: Path | None,
    fmt: str,
    show_sensitive: bool,
    detailed_exitcode: bool,
    strict: bool,
    refresh: bool,
    write_drift: bool,
    config: Path | None,
    parallelism: int,
    rate_limit: float | None,
) -> int:
    """Show what apply would change, lead by lead and field by field.

    Offline by default (no credential, no call). With --refresh, each managed field is also
    compared with Lofty: changed in git, already so in Lofty, drift (edited in Lofty), or a
    conflict (both changed).
    """
    from reconciler.commands.plan import PlanOptions
    from reconciler.commands.plan import plan as command

    options = PlanOptions(
        dir=dir_,
        state=state,
        targets=targets,
        out=out,
        format=fmt,
        detailed_exitcode=detailed_exitcode,
        strict=strict,
        refresh=refresh,
        write_drift=write_drift,
        config=config,
        parallelism=parallelism,
        rate_limit=rate_limit,
    )
    return _run(lambda console: command(options, console), show_sensitive=show_sensitive)


@main.command()
@click.argument("planfile", required=False, type=click.Path(path_type=Path, dir_okay=False))
@dir_option
@state_option
@target_option
@click.option("--auto-approve", is_flag=True, help="Apply without asking for 'yes'.")
@parallelism_option
@rate_limit_option
@lock_timeout_option
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="json: per-lead outcomes on stdout for scripts (the plan and progress go to stderr).",
)
@click.option(
    "--no-refresh",
    is_flag=True,
    help="Do not read Lofty first: plan against the state alone (conflicts go unnoticed).",
)
@click.option(
    "--force-conflicts",
    is_flag=True,
    help="Send leads whose fields were also edited in Lofty, overwriting those edits.",
)
@config_option
@show_sensitive_option
def apply(
    planfile: Path | None,
    dir_: Path,
    state: str | None,
    targets: tuple[str, ...],
    auto_approve: bool,
    parallelism: int,
    rate_limit: float | None,
    lock_timeout: float,
    fmt: Literal["text", "json"],
    no_refresh: bool,
    force_conflicts: bool,
    config: Path | None,
    show_sensitive: bool,
) -> int:
    """Send PUT /v1.0/leads/{leadId} for exactly the leads and fields that changed.

    Without PLANFILE it plans first, reading the managed leads from Lofty (unless
    --no-refresh) so that a field also edited in Lofty is a conflict, not overwritten; with
    PLANFILE it re-reads each lead just before its PUT.
    """
    from reconciler.commands.apply import ApplyOptions
    from reconciler.commands.apply import apply as command

    options = ApplyOptions(
        planfile=planfile,
        dir=dir_,
        state=state,
        targets=targets,
        auto_approve=auto_approve,
        parallelism=parallelism,
        rate_limit=rate_limit,
        lock_timeout=lock_timeout,
        format=fmt,
        refresh=not no_refresh,
        force_conflicts=force_conflicts,
        config=config,
    )
    return _run(lambda console: command(options, console), show_sensitive=show_sensitive)


@main.command("import")
@click.argument("lead_ids", nargs=-1, type=click.IntRange(min=1), metavar="[LEAD_ID]...")
@click.option(
    "--query",
    multiple=True,
    metavar="KEY=VALUE",
    help="Import every lead the list matches (stage, source, segments, anyTags, allTags, "
    "assignedUserId); repeatable, all must match.",
)
@dir_option
@state_option
@click.option(
    "--dry-run", is_flag=True, help="Read Lofty and say what would be written; write nothing."
)
@parallelism_option
@rate_limit_option
@lock_timeout_option
@show_sensitive_option
def import_(
    lead_ids: tuple[int, ...],
    query: tuple[str, ...],
    dir_: Path,
    state: str | None,
    dry_run: bool,
    parallelism: int,
    rate_limit: float | None,
    lock_timeout: float,
    show_sensitive: bool,
) -> int:
    """Adopt leads that already exist in Lofty: a lead file for each, recorded as applied.

    Nothing is sent to Lofty. Existing files and leads already in the tree are never
    replaced. Afterwards `reconciler plan` says `No changes.`
    """
    from reconciler.commands.import_leads import ImportOptions, import_leads

    options = ImportOptions(
        lead_ids=lead_ids,
        query=query,
        dir=dir_,
        state=state,
        dry_run=dry_run,
        parallelism=parallelism,
        rate_limit=rate_limit,
        lock_timeout=lock_timeout,
    )
    return _run(lambda console: import_leads(options, console), show_sensitive=show_sensitive)


@main.command()
@click.argument("planfile", type=click.Path(path_type=Path, dir_okay=False))
@format_option
@show_sensitive_option
def show(planfile: Path, fmt: str, show_sensitive: bool) -> int:
    """Render a saved plan file."""
    from reconciler.commands.plan import ShowOptions
    from reconciler.commands.plan import show as command

    options = ShowOptions(planfile=planfile, format=fmt)
    return _run(lambda console: command(options, console), show_sensitive=show_sensitive)


@main.group()
def state() -> None:
    """Inspect or edit the last-applied state."""


@state.command("list")
@state_option
@dir_option
def state_list(state: str | None, dir_: Path) -> int:
    """List the leads in the state, each with its file (shown under --dir, as plan shows it)."""
    from reconciler.commands.state import StateOptions
    from reconciler.commands.state import state_list as command

    options = StateOptions(state=state, dir=dir_)
    return _run(lambda console: command(options, console))


@state.command("show")
@click.argument("lead_id", type=click.IntRange(min=1))
@state_option
@dir_option
@show_sensitive_option
def state_show(lead_id: int, state: str | None, dir_: Path, show_sensitive: bool) -> int:
    """Show what was last applied for LEAD_ID."""
    from reconciler.commands.state import StateOptions
    from reconciler.commands.state import state_show as command

    options = StateOptions(state=state, dir=dir_)
    return _run(lambda console: command(options, lead_id, console), show_sensitive=show_sensitive)


@state.command("rm")
@click.argument("lead_id", type=click.IntRange(min=1))
@state_option
@lock_timeout_option
def state_rm(lead_id: int, state: str | None, lock_timeout: float) -> int:
    """Forget LEAD_ID (nothing changes in Lofty)."""
    from reconciler.commands.state import StateOptions
    from reconciler.commands.state import state_rm as command

    options = StateOptions(state=state, lock_timeout=lock_timeout)
    return _run(lambda console: command(options, lead_id, console))


@state.command("migrate")
@click.option("--from", "source", required=True, metavar="S", help="State to copy from.")
@click.option("--to", "destination", required=True, metavar="S", help="State to copy to.")
@click.option("--force", is_flag=True, help="Replace a destination holding another history.")
@lock_timeout_option
def state_migrate(source: str, destination: str, force: bool, lock_timeout: float) -> int:
    """Move a whole state between a local file and PostgreSQL."""
    from reconciler.commands.state import MigrateOptions
    from reconciler.commands.state import state_migrate as command

    options = MigrateOptions(
        source=source, destination=destination, force=force, lock_timeout=lock_timeout
    )
    return _run(lambda console: command(options, console))


@main.command()
def schema() -> int:
    """Print the JSON Schema of a lead file, for editors and pre-commit."""
    from reconciler.commands.schema import schema as command

    return _run(command)


@main.command()
@click.option(
    "--port",
    default=0,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="0 picks a free port.",
)
@click.option(
    "--latency-ms",
    default=0.0,
    show_default=True,
    type=click.FloatRange(min=0),
    help="Delay every API answer by this many milliseconds, like a distant server.",
)
@click.option(
    "--fault-rate",
    default=0.0,
    show_default=True,
    type=click.FloatRange(0, 1),
    help="Fraction of API requests (reads too) answered with 500/503 or a dropped connection.",
)
@click.option(
    "--rate-limit",
    type=click.IntRange(min=1),
    metavar="R",
    help="Requests allowed per window (default: unlimited).",
)
@click.option(
    "--rate-window",
    default=60.0,
    show_default=True,
    type=click.FloatRange(min=0, min_open=True),
    metavar="SECONDS",
    help="Length of a rate-limit window.",
)
@click.option(
    "--seed",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="JSON/YAML leads that exist; without it (or --generate) every leadId exists.",
)
@click.option(
    "--random-seed",
    type=int,
    help="Make faults, short list pages and generated leads reproducible.",
)
@click.option(
    "--generate",
    default=0,
    show_default=True,
    type=click.IntRange(min=0),
    metavar="N",
    help="Create N realistic leads at start, from leadId 100001 (after any seeded id); then "
    "only they, seeded and registered leads exist.",
)
@click.option(
    "--metadata-key",
    default="_metadata",
    show_default=True,
    type=click.Choice(["_metadata", "get_metadata"]),
    help="Where GET /v1.0/leads puts paging metadata (Lofty: _metadata; its schema: get_metadata).",
)
@click.option(
    "--short-page-rate",
    default=0.25,
    show_default=True,
    type=click.FloatRange(0, 1),
    metavar="F",
    help="Fraction of list pages answered short of the limit before the end, so that clients "
    "must never assume full pages.",
)
def sandbox(
    port: int,
    latency_ms: float,
    fault_rate: float,
    rate_limit: int | None,
    rate_window: float,
    seed: Path | None,
    random_seed: int | None,
    generate: int,
    metadata_key: Literal["_metadata", "get_metadata"],
    short_page_rate: float,
) -> int:
    """Run a Lofty-compatible API on loopback for demos and tests.

    It accepts the credential set in LOFTY_ACCESS_TOKEN or LOFTY_API_KEY (as `Bearer` or
    `token`); with neither set, any non-empty secret. Each request is logged on stderr.
    """
    from reconciler.commands.sandbox import SandboxOptions
    from reconciler.commands.sandbox import sandbox as command

    options = SandboxOptions(
        port=port,
        latency_ms=latency_ms,
        fault_rate=fault_rate,
        rate_limit=rate_limit,
        rate_window=rate_window,
        seed=seed,
        random_seed=random_seed,
        generate=generate,
        metadata_key=metadata_key,
        short_page_rate=short_page_rate,
    )
    return _run(lambda console: command(options, console))
