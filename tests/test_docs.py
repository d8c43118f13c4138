"""The README and docs/ say what the code does: every command and option, the bounds, the
generated tables, and nothing that points outside the repository."""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import pytest

from reconciler.cli import main
from reconciler.client import DEFAULT_API_URL, ClientSettings
from reconciler.commands import EXIT_CHANGES, EXIT_ERROR, EXIT_INTERRUPTED, EXIT_OK
from reconciler.reference import with_read_back
from tests.vendor import REPO

README = REPO / "README.md"
DOCS = REPO / "docs"
CLI_DOC = DOCS / "cli.md"
READING_DOC = DOCS / "reading.md"
LAYOUT_DOC = DOCS / "layout.md"
MARKDOWN = [README, *sorted(DOCS.glob("*.md"))]


def _commands(
    group: click.Group, prefix: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    """Every command the CLI has, as (path, command); a group's subcommands, not the group."""
    for name, command in sorted(group.commands.items()):
        path = (*prefix, name)
        if isinstance(command, click.Group):
            yield from _commands(command, path)
        else:
            yield path, command


def _words(command: click.Command) -> Iterator[str]:
    """What a reference must name of a command: each option's long name, each argument, each
    choice a parameter takes."""
    for param in command.params:
        if isinstance(param, click.Option):
            if param.name == "help":
                continue
            yield from (opt for opt in param.opts if opt.startswith("--"))
        else:
            yield re.sub(r"[\[\].]", "", param.human_readable_name)
        if isinstance(param.type, click.Choice):
            yield from (str(choice) for choice in param.type.choices)


def _section(text: str, title: str) -> str:
    """The part of a markdown document under the heading that is `title` or holds it in
    backticks, up to the next heading of the same or a higher level."""
    lines = text.splitlines()
    for start, line in enumerate(lines):
        heading = re.match(r"(#+) ", line)
        if heading and (f"`{title}`" in line or line[heading.end() :] == title):
            level = len(heading.group(1))
            end = next(
                (
                    i
                    for i in range(start + 1, len(lines))
                    if (m := re.match(r"(#+) ", lines[i])) and len(m.group(1)) <= level
                ),
                len(lines),
            )
            return "\n".join(lines[start:end])
    raise AssertionError(f"no heading with `{title}`")


def test_cli_md_documents_every_command_option_argument_and_choice() -> None:
    text = CLI_DOC.read_text("utf-8")
    missing = []
    for path, command in _commands(main):
        name = "reconciler " + " ".join(path)
        section = _section(text, name)
        missing += [f"{name} {word}" for word in _words(command) if word not in section]
    assert not missing, f"docs/cli.md does not document: {missing}"


def test_the_readme_commands_block_lists_every_command_with_its_options() -> None:
    text = README.read_text("utf-8")
    block = text.split("## Commands", 1)[1].split("```", 2)[1]
    entries: dict[str, str] = {}
    current = ""
    for line in block.splitlines():
        if line.startswith("reconciler "):
            current = line.split()[1]
            entries[current] = ""
        if current:
            entries[current] += line + "\n"
    assert sorted(entries) == sorted(main.commands)
    missing = [
        f"{path[0]} {word}"
        for path, command in _commands(main)
        for word in _words(command)
        if word not in entries[path[0]]
    ]
    assert not missing, f"the README's commands block lacks: {missing}"


def _links(text: str) -> Iterator[str]:
    yield from re.findall(r"\]\(([^)\s]+)\)", text)


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    text = heading.strip().lower().replace("`", "")
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", path.read_text("utf-8"), flags=re.DOTALL)
    return {_slug(m) for m in re.findall(r"^#+ (.+)$", text, flags=re.MULTILINE)}


@pytest.mark.parametrize("doc", MARKDOWN, ids=lambda p: p.name)
def test_docs_point_at_nothing_outside_the_repository(doc: Path) -> None:
    text = doc.read_text("utf-8")
    for outside in ("../shared", "shared/DESIGN", "/work/", "file://"):
        assert outside not in text, f"{doc.name} names {outside!r}, outside the repository"
    for link in _links(text):
        if re.match(r"[a-z]+://", link) or link.startswith("mailto:"):
            continue
        target, _, anchor = link.partition("#")
        assert not target.startswith("/"), f"{doc.name}: absolute link {link}"
        resolved = (doc.parent / target).resolve() if target else doc
        assert resolved.is_relative_to(REPO), f"{doc.name}: {link} leaves the repository"
        assert resolved.exists(), f"{doc.name}: {link} does not exist"
        if anchor and resolved.suffix == ".md":
            assert anchor in _anchors(resolved), f"{doc.name}: no heading for {link}"


def test_the_readme_links_every_doc() -> None:
    text = README.read_text("utf-8")
    for doc in sorted(DOCS.glob("*.md")):
        assert f"](docs/{doc.name})" in text, f"the README does not link docs/{doc.name}"


def test_the_committed_read_back_table_is_up_to_date() -> None:
    text = READING_DOC.read_text("utf-8")
    assert with_read_back(text) == text, (
        "regenerate: python -m reconciler.reference --read-back docs/reading.md"
    )


def test_the_layout_names_every_module_and_package() -> None:
    text = LAYOUT_DOC.read_text("utf-8")
    package = REPO / "reconciler"
    names = [
        f"`{entry.stem}`" if entry.is_file() else f"`{entry.name}/`"
        for entry in package.iterdir()
        if (entry.suffix == ".py" and entry.name != "__init__.py")
        or (entry.is_dir() and not entry.name.startswith("__"))
    ]
    missing = [name for name in sorted(names) if name not in text]
    assert not missing, f"docs/layout.md does not name {missing}"


def test_cli_md_states_the_exit_codes_and_environment_the_code_uses() -> None:
    text = CLI_DOC.read_text("utf-8")
    codes = _section(text, "Exit codes")
    for code in (EXIT_OK, EXIT_ERROR, EXIT_CHANGES, EXIT_INTERRUPTED):
        assert f"\n| {code} |" in codes, code
    for variable in (
        "LOFTY_API_URL",
        "LOFTY_ACCESS_TOKEN",
        "LOFTY_API_KEY",
        "RECONCILER_STATE",
        "NO_COLOR",
        "HTTPS_PROXY",
        "NO_PROXY",
    ):
        assert f"`{variable}`" in text, variable
    assert f"`{DEFAULT_API_URL}`" in text
    assert f"`{DEFAULT_API_URL}`" in README.read_text("utf-8")


def test_cli_md_states_the_client_bounds_the_code_keeps() -> None:
    bounds: dict[str, Any] = {f.name: f.default for f in dataclasses.fields(ClientSettings)}
    text = " ".join(CLI_DOC.read_text("utf-8").split())
    for phrase in (
        f"timeouts of {bounds['timeout']:g} s each",
        f"At most {bounds['max_attempts']} attempts per request",
        f"within {bounds['lead_deadline']:g} seconds",
        f"longer than **{bounds['max_wait']:g} seconds**",
        f"each attempt (request and whole response) within {bounds['attempt_deadline']:g} s",
        f"for **{bounds['unreachable_deadline'] / 60:g} minutes**",
        f"up to {bounds['max_body_bytes'] // 2**20} MiB",
        f"up to {bounds['max_page_bytes'] // 2**20} MiB",
        f"`--parallelism` requests under way (default {bounds['parallelism']})",
    ):
        assert phrase in text, phrase


def test_the_documented_shell_completion_works() -> None:
    """`_RECONCILER_COMPLETE=bash_source reconciler`, as the README says, and the completion
    it installs answers."""
    assert "_RECONCILER_COMPLETE=bash_source reconciler" in README.read_text("utf-8")
    script = Path(sys.executable).parent / "reconciler"
    env = {**os.environ, "_RECONCILER_COMPLETE": "bash_complete"}
    env.update(COMP_WORDS="reconciler plan --ref", COMP_CWORD="2")
    done = subprocess.run(
        [str(script)], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["plain,--refresh"]
