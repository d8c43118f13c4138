"""`reconciler validate`: check every lead file and report every problem at once."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from reconciler.commands import EXIT_ERROR, EXIT_OK
from reconciler.commands.error_handler import report_error
from reconciler.console import Console
from reconciler.errors import InvalidLeadFilesError
from reconciler.loader import load_tree


@dataclass(frozen=True, kw_only=True)
class ValidateOptions:
    dir: Path
    strict: bool = False


def validate(options: ValidateOptions, console: Console) -> int:
    """Check every lead file; warnings and problems on stderr, the verdict on stdout."""
    load = load_tree(options.dir, strict=options.strict)
    for warning in load.warnings:
        console.note(f"warning: {warning}")
    if load.problems:
        report_error(InvalidLeadFilesError(load.problems), console)
        return EXIT_ERROR
    leads, files, warnings = len(load.leads), len(load.files), len(load.warnings)
    verb = "is" if leads == 1 else "are"
    console.say(
        f"{_count(leads, 'lead')} in {_count(files, 'file')} {verb} valid"
        + (f" ({_count(warnings, 'warning')})." if warnings else ".")
    )
    return EXIT_OK


def _count(count: int, noun: str) -> str:
    return f"{count:,} {noun}{'s' * (count != 1)}"
