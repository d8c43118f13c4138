"""The `reconciler` command line: parse arguments into options objects and dispatch.

Exit codes: 0 success, 1 any error (usage errors included, so that `plan --detailed-exitcode`
can keep 2 for "changes present").
"""

from __future__ import annotations

import traceback
from pathlib import Path
from typing import Any

import click

from reconciler import commands
from reconciler.commands import Console, default_console
from reconciler.errors import ReconcilerError

FORMATS = click.Choice(["text", "json", "markdown"])
_STATE_HELP = "State: a JSON file path or postgresql://… (default: $RECONCILER_STATE or "
_STATE_HELP += ".reconciler/state.json)."


class _UsageError(click.UsageError):
    """A usage error that exits 1 like every other error (click's own exits 2)."""

    exit_code = commands.EXIT_ERROR


class _Cli(click.Group):
    """Maps errors to exit codes: user errors print one clean message, bugs say they are bugs."""

    def invoke(self, ctx: click.Context) -> Any:
        console = ctx.ensure_object(_Context).console
        try:
            code = super().invoke(ctx)
        except click.UsageError as exc:
            raise _UsageError(exc.message, exc.ctx) from None
        except (click.exceptions.Exit, click.Abort, click.ClickException):
            raise
        except ReconcilerError as exc:
            commands.report_error(exc, console)
            ctx.exit(commands.EXIT_ERROR)
        except KeyboardInterrupt:
            console.note("Interrupted. Every lead applied so far is recorded in the state.")
            ctx.exit(130)
        except Exception:
            console.note("Internal error: this is a bug in reconciler; please report it.")
            console.note(traceback.format_exc().rstrip())
            ctx.exit(commands.EXIT_ERROR)
        if isinstance(code, int) and code:
            ctx.exit(code)
        return code


class _Context:
    def __init__(self) -> None:
        self.console: Console = default_console()


def _console() -> Console:
    return click.get_current_context().ensure_object(_Context).console


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
format_option = click.option("--format", "fmt", type=FORMATS, default="text", show_default=True)
show_sensitive_option = click.option(
    "--show-sensitive", is_flag=True, help="Do not mask emails and phones (markdown)."
)
lock_timeout_option = click.option(
    "--lock-timeout",
    default=0.0,
    show_default=True,
    type=click.FloatRange(min=0),
    metavar="SECONDS",
    help="How long to wait for another run's lock.",
)


@click.group(cls=_Cli, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="reconciler")
def main() -> None:
    """GitOps for Lofty CRM leads: validate, plan and apply lead YAML files."""


@main.command()
@dir_option
@click.option("--strict", is_flag=True, help="Treat silent truncation as an error.")
def validate(dir_: Path, strict: bool) -> int:
    """Check every lead file and report every problem at once."""
    return commands.validate(commands.ValidateOptions(dir_, strict), _console())


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
@click.option("--detailed-exitcode", is_flag=True, help="Exit 2 when there are changes.")
@click.option("--strict", is_flag=True, help="Treat silent truncation as an error.")
def plan(
    dir_: Path,
    state: str | None,
    targets: tuple[str, ...],
    out: Path | None,
    fmt: str,
    show_sensitive: bool,
    detailed_exitcode: bool,
    strict: bool,
) -> int:
    """Show what apply would change, lead by lead and field by field."""
    options = commands.PlanOptions(
        dir_, state, targets, out, fmt, show_sensitive, detailed_exitcode, strict
    )
    return commands.plan(options, _console())


@main.command()
@click.argument("planfile", required=False, type=click.Path(path_type=Path, dir_okay=False))
@dir_option
@state_option
@target_option
@click.option("--auto-approve", is_flag=True, help="Apply without asking for 'yes'.")
@click.option("--parallelism", default=4, show_default=True, type=click.IntRange(1, 64))
@click.option(
    "--rate-limit",
    type=click.FloatRange(min=0, min_open=True),
    metavar="PER_MIN",
    help="Never send more than this many requests per minute.",
)
@lock_timeout_option
def apply(
    planfile: Path | None,
    dir_: Path,
    state: str | None,
    targets: tuple[str, ...],
    auto_approve: bool,
    parallelism: int,
    rate_limit: float | None,
    lock_timeout: float,
) -> int:
    """Send PUT /v1.0/leads/{leadId} for exactly the leads and fields that changed."""
    options = commands.ApplyOptions(
        planfile, dir_, state, targets, auto_approve, parallelism, rate_limit, lock_timeout
    )
    return commands.apply(options, _console())


@main.command()
@click.argument("planfile", type=click.Path(path_type=Path, dir_okay=False))
@format_option
@show_sensitive_option
def show(planfile: Path, fmt: str, show_sensitive: bool) -> int:
    """Render a saved plan file."""
    return commands.show(commands.ShowOptions(planfile, fmt, show_sensitive), _console())


@main.group()
def state() -> None:
    """Inspect or edit the last-applied state."""


@state.command("list")
@state_option
def state_list(state: str | None) -> int:
    """List the leads in the state."""
    return commands.state_list(commands.StateOptions(state), _console())


@state.command("show")
@click.argument("lead_id", type=click.IntRange(min=1))
@state_option
def state_show(lead_id: int, state: str | None) -> int:
    """Show what was last applied for LEAD_ID."""
    return commands.state_show(commands.StateOptions(state), lead_id, _console())


@state.command("rm")
@click.argument("lead_id", type=click.IntRange(min=1))
@state_option
@lock_timeout_option
def state_rm(lead_id: int, state: str | None, lock_timeout: float) -> int:
    """Forget LEAD_ID (nothing changes in Lofty)."""
    return commands.state_rm(commands.StateOptions(state, lock_timeout), lead_id, _console())


@state.command("migrate")
@click.option("--from", "source", required=True, metavar="S", help="State to copy from.")
@click.option("--to", "destination", required=True, metavar="S", help="State to copy to.")
@click.option("--force", is_flag=True, help="Replace a destination holding another history.")
@lock_timeout_option
def state_migrate(source: str, destination: str, force: bool, lock_timeout: float) -> int:
    """Move a whole state between a local file and PostgreSQL."""
    return commands.state_migrate(
        source, destination, force=force, lock_timeout=lock_timeout, console=_console()
    )


@main.command()
def schema() -> int:
    """Print the JSON Schema of a lead file, for editors and pre-commit."""
    return commands.schema(_console())


@main.command()
@click.option(
    "--port",
    default=0,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="0 picks a free port.",
)
@click.option("--latency-ms", default=0.0, show_default=True, type=click.FloatRange(min=0))
@click.option(
    "--fault-rate",
    default=0.0,
    show_default=True,
    type=click.FloatRange(0, 1),
    help="Fraction of PUTs answered with 500/503 or a dropped connection.",
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
)
@click.option(
    "--seed",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="JSON/YAML leads that exist; without it every leadId exists.",
)
@click.option("--random-seed", type=int, help="Make injected faults reproducible.")
def sandbox(
    port: int,
    latency_ms: float,
    fault_rate: float,
    rate_limit: int | None,
    rate_window: float,
    seed: Path | None,
    random_seed: int | None,
) -> int:
    """Run a Lofty-compatible API on loopback for demos and tests."""
    options = commands.SandboxOptions(
        port, latency_ms, fault_rate, rate_limit, rate_window, seed, random_seed
    )
    return commands.sandbox(options, _console())
