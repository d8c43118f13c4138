"""Every way a command can end maps to one exit code and one kind of message."""

from __future__ import annotations

import io

import pytest

from reconciler.commands import EXIT_CHANGES, EXIT_ERROR, EXIT_INTERRUPTED, EXIT_OK
from reconciler.commands.error_handler import run_command
from reconciler.console import Console
from reconciler.errors import ConfigError, InvalidLeadFilesError, Problem


@pytest.fixture
def console() -> Console:
    return Console(out=io.StringIO(), err=io.StringIO())


def err(console: Console) -> str:
    assert isinstance(console.err, io.StringIO)
    return console.err.getvalue()


@pytest.mark.parametrize("code", [EXIT_OK, EXIT_ERROR, EXIT_CHANGES])
def test_a_commands_own_exit_code_passes_through(console: Console, code: int) -> None:
    assert run_command(lambda: code, console) == code
    assert err(console) == ""


def test_a_user_error_is_one_clean_line_and_exit_1(console: Console) -> None:
    def fails() -> int:
        raise ConfigError("no Lofty credential: set LOFTY_ACCESS_TOKEN")

    assert run_command(fails, console) == EXIT_ERROR
    assert err(console) == "error: no Lofty credential: set LOFTY_ACCESS_TOKEN\n"


def test_invalid_lead_files_list_every_problem_then_count_them(console: Console) -> None:
    problems = [
        Problem("leads/a.yaml", 3, "stage", "is too long"),
        Problem("leads/a.yaml", 5, None, "duplicate key 'tags'"),
        Problem("leads/b.yaml", None, None, "not valid UTF-8"),
    ]

    def fails() -> int:
        raise InvalidLeadFilesError(problems)

    assert run_command(fails, console) == EXIT_ERROR
    assert err(console).splitlines() == [
        "error: leads/a.yaml:3: stage: is too long",
        "error: leads/a.yaml:5: duplicate key 'tags'",
        "error: leads/b.yaml: not valid UTF-8",
        "3 problems in 2 files; nothing was planned or sent.",
    ]


def test_ctrl_c_exits_130_and_says_applied_leads_are_kept(console: Console) -> None:
    def interrupted() -> int:
        raise KeyboardInterrupt

    assert run_command(interrupted, console) == EXIT_INTERRUPTED
    assert err(console) == "Interrupted. Every lead applied so far is recorded in the state.\n"


def test_an_unexpected_exception_is_reported_as_a_bug_with_its_traceback(
    console: Console,
) -> None:
    def buggy() -> int:
        counts: dict[str, int] = {}
        return counts["missing"]

    assert run_command(buggy, console) == EXIT_ERROR
    lines = err(console).splitlines()
    assert lines[0] == "Internal error: this is a bug in reconciler; please report it."
    assert lines[1] == "Traceback (most recent call last):"
    assert lines[-1] == "KeyError: 'missing'"
