"""The command line as a user meets it first: help everywhere, and exit codes that mean one
thing each."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from reconciler.cli import main


def commands(group: click.Group = main, prefix: str = "") -> Iterator[tuple[str, click.Command]]:
    for name, command in group.commands.items():
        yield f"{prefix}{name}", command
        if isinstance(command, click.Group):
            yield from commands(command, f"{prefix}{name} ")


@pytest.mark.parametrize(("name", "command"), list(commands()), ids=lambda v: str(v))
def test_every_command_and_option_has_help(name: str, command: click.Command) -> None:
    assert command.help, name
    for param in command.params:
        if isinstance(param, click.Option):
            assert param.help, f"{name} {param.opts[0]} has no help"


def test_bare_reconciler_shows_usage_and_exits_1_like_any_usage_error() -> None:
    result = CliRunner().invoke(main, [], prog_name="reconciler")
    assert result.exit_code == 1
    assert "Usage: reconciler [OPTIONS] COMMAND" in result.output
    assert CliRunner().invoke(main, ["plan", "--no-such-option"]).exit_code == 1


def test_sandbox_help_says_which_credential_it_accepts() -> None:
    result = CliRunner().invoke(main, ["sandbox", "--help"])
    assert "LOFTY_ACCESS_TOKEN or LOFTY_API_KEY" in " ".join(result.output.split())


def test_validate_counts_in_plain_english(tmp_path: Path) -> None:
    leads = tmp_path / "leads"
    leads.mkdir()
    (leads / "one.yaml").write_text("leadId: 1\n")
    result = CliRunner().invoke(main, ["validate", "--dir", str(leads)])
    assert result.stdout == "1 lead in 1 file is valid.\n"
    (leads / "two.yaml").write_text("leadId: 2\nfirstName: " + "x" * 31 + "\n")
    result = CliRunner().invoke(main, ["validate", "--dir", str(leads)])
    assert result.stdout == "2 leads in 2 files are valid (1 warning).\n"
