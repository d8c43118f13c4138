"""The one place commands write to the terminal: results on stdout, messages on stderr.

Commands never print; they call a `Console`, and everything it writes passes the same checks,
so no command can leak what it should not: the credential is scrubbed, emails and phone numbers
are masked (unless `--show-sensitive`), and control characters and lines that would start a
GitHub workflow command are escaped (`reconciler.sanitize`).

It keeps output going when a reader goes away (`reconciler state list | head -1`): a closed pipe
silences that stream instead of raising, so an apply whose output is cut off still finishes and
records every lead it applied.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TextIO

from reconciler.sanitize import mask_text, safe_lines, scrub

# Environment variables whose values must never be written, whatever carries them.
SECRET_VARS = ("LOFTY_ACCESS_TOKEN", "LOFTY_API_KEY")


@dataclass(kw_only=True)
class Console:
    """Where a command writes: results to `out`, messages and progress to `err`."""

    out: TextIO
    err: TextIO
    color: bool = False
    interactive: bool = False
    ask: Callable[[str], str] = input
    env: Mapping[str, str] = field(default_factory=dict)
    show_sensitive: bool = False  # emails and phones shown in full
    secrets: tuple[str, ...] = ()  # never written, whatever text carries them
    closed: set[str] = field(default_factory=set)  # streams whose reader went away

    def say(self, text: str = "") -> None:
        """A line of the command's result, on stdout."""
        self._write("out", text + "\n")

    def note(self, text: str) -> None:
        """A message for the person running the command, on stderr."""
        self._write("err", text + "\n")

    def write(self, text: str) -> None:
        """Result text exactly as given (a rendered plan carries its own newlines)."""
        self._write("out", text)

    def progress(self, text: str, *, last: bool = False) -> None:
        """A progress line on stderr that redraws itself; `last` ends it with a newline."""
        self._write("err", text, redraw=True)
        if last:
            self._write("err", "\n")

    def to_stderr(self) -> Console:
        """This console with results on stderr too, for when stdout carries a document."""
        return dataclasses.replace(self, out=self.err)

    def confirm(self, prompt: str) -> bool:
        """Ask for 'yes'; anything else, Ctrl-D or a closed stdin is a no."""
        try:
            answer = self.ask(prompt)
        except EOFError:
            self.note("")
            return False
        return answer.strip() == "yes"

    def _write(self, name: str, text: str, *, redraw: bool = False) -> None:
        if name in self.closed:
            return
        text = scrub(text, self.secrets)
        if not self.show_sensitive:
            text = mask_text(text)
        text = ("\r" if redraw else "") + safe_lines(text, keep_colour=self.color)
        stream = self.out if name == "out" else self.err
        try:
            stream.write(text)
            stream.flush()
        except BrokenPipeError:
            self.closed.add(name)
            _silence(stream)


def _silence(stream: TextIO) -> None:
    """Point a stream whose reader is gone at /dev/null, so that nothing later (not even the
    interpreter's flush at exit) raises on it again."""
    try:
        fd = stream.fileno()
    except (OSError, ValueError):  # not a real file (a test's StringIO): nothing to redirect
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, fd)
    finally:
        os.close(devnull)


def default_console() -> Console:
    """The console of a real run: colour only on a terminal and without NO_COLOR."""
    env = dict(os.environ)
    return Console(
        out=sys.stdout,
        err=sys.stderr,
        color=sys.stdout.isatty() and not env.get("NO_COLOR"),
        interactive=sys.stdin.isatty(),
        env=env,
        secrets=secrets_in(env),
    )


def secrets_in(env: Mapping[str, str]) -> tuple[str, ...]:
    """The credentials set in `env`, longest first (so one containing another goes whole)."""
    found = {value.strip() for name in SECRET_VARS if (value := env.get(name, "")).strip()}
    return tuple(sorted(found, key=len, reverse=True))
