"""How every command ends: one place maps errors and interrupts to messages and exit codes.

A `ReconcilerError` is something a user can fix: it prints as `error: ...` lines (one per
problem in a lead file) and exits 1. Ctrl-C exits 130. Anything else is a bug in reconciler
and says so, with its traceback.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable

from reconciler.commands import EXIT_ERROR, EXIT_INTERRUPTED
from reconciler.console import Console
from reconciler.errors import InvalidLeadFilesError, ReconcilerError


def run_command(command: Callable[[], int], console: Console) -> int:
    """Run `command` and return its exit code, reporting whatever stopped it."""
    try:
        return command()
    except ReconcilerError as exc:
        report_error(exc, console)
        return EXIT_ERROR
    except KeyboardInterrupt:
        console.note("Interrupted. Every lead applied so far is recorded in the state.")
        return EXIT_INTERRUPTED
    except Exception:
        console.note("Internal error: this is a bug in reconciler; please report it.")
        console.note(traceback.format_exc().rstrip())
        return EXIT_ERROR


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
