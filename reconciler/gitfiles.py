"""What git already knows about the lead files: each tracked file's content id, unread.

One `git ls-files` lists every file below the leads folder with the blob id of its indexed
content, and, by git's own stat check (size, times, inode), which of them differ from the index
and which git does not track at all. A file that git tracks and does not report changed holds
exactly the content of its index entry, so that entry's blob id is the file's content hash and
the file need not be read to know it is unchanged.

Nothing else is trusted: a file git does not track, reports modified or deleted, holds in a
merge conflict, marks assume-unchanged or skip-worktree (git no longer checks those), or that
is a symlink or a submodule, is read and hashed like any file outside git.

Git is optional. No git binary, a folder outside any checkout, a repository git refuses (say,
owned by another user), an answer slower than `GIT_TIMEOUT` or larger than `MAX_OUTPUT`, or
anything unexpected in it: `list_files` returns None and the caller walks and hashes the folder
itself.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Any

GIT_TIMEOUT = 20.0  # seconds; a 100,000-file checkout answers in a quarter of a second
MAX_OUTPUT = 256 * 1024 * 1024  # bytes; about 80 bytes a file
_POLL = 0.05  # seconds between looks at how much git has written

# Where git would look for the repository if told so by the environment: cleared, so that git
# finds the checkout the leads folder belongs to (a hook's temporary index, say, is not it).
_LOCATION_VARIABLES = (
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_COMMON_DIR",
    "GIT_NAMESPACE",
)

_HASHES: dict[str, Callable[..., Any]] = {
    "sha1": hashlib.sha1,
    "sha256": hashlib.sha256,
}

# `git ls-files -z -v -s` entries: "<tag> <mode> <id> <stage>\t<path>\0", "? <path>\0".
# A lead file's path: every part visible (no leading dot), ending in .yaml or .yml, any case.
_LEAD_PATH = r"(?:[^\x00/.][^\x00/]*/)*[^\x00/.][^\x00/]*\.(?i:ya?ml)(?=\x00)"
_TRUSTED = re.compile(r"\x00H 100(?:644|755) ([0-9a-f]{40}|[0-9a-f]{64}) 0\t(" + _LEAD_PATH + ")")
_STAGED = re.compile(
    r"\x00(?!H 100(?:644|755) [0-9a-f]+ 0\t)([A-Za-z]) (\d{6}) [0-9a-f]+ \d\t(" + _LEAD_PATH + ")"
)
_OTHER = re.compile(r"\x00\? (" + _LEAD_PATH + ")")
_FOLDER = re.compile(r"\x00(?:\? ([^\x00]*)/|[A-Za-z] 160000 [0-9a-f]+ \d\t([^\x00]*))(?=\x00)")


@dataclass(frozen=True, slots=True)
class GitListing:
    """Git's answer for one leads folder; paths are relative to it, with `/`.

    `ids` holds the files whose content git vouches for (tracked, unchanged); `files` every lead
    file git lists there, tracked or not (deleted ones aside), unsorted; `folders` the folders
    git does not look into (untracked folders, submodules), to be walked (`""`: the leads folder
    itself, when git tracks nothing in it); `algorithm` the
    repository's hash (`sha1`, or `sha256` for a SHA-256 repository).
    """

    algorithm: str
    ids: dict[str, str]
    files: list[str]
    folders: list[str]


def blob_id(data: bytes, algorithm: str = "sha1") -> str:
    """Git's blob id of `data`: the hash of `blob <size>\\0` and the bytes, as git computes it.

    It is the content hash of a lead file everywhere, in git or not, so that a file hashed by
    reading it and one git vouches for compare equal.
    """
    digest = _HASHES[algorithm](b"blob %d\x00" % len(data), usedforsecurity=False)
    digest.update(data)
    hexdigest: str = digest.hexdigest()
    return hexdigest


class PendingListing:
    """A `git ls-files` started in the background; `result()` waits for it (bounded)."""

    def __init__(self, folder: str, *, timeout: float = GIT_TIMEOUT) -> None:
        self.folder = folder
        self._timeout = timeout
        self._done = threading.Event()
        self._listing: GitListing | None = None
        self._thread = threading.Thread(target=self._run, name="git-ls-files", daemon=True)
        self._thread.start()

    def result(self) -> GitListing | None:
        """Git's listing, or None when git cannot tell (see the module's docstring)."""
        self._done.wait(self._timeout + 5)
        return self._listing

    def _run(self) -> None:
        try:
            output = _ls_files(self.folder, self._timeout)
            self._listing = None if output is None else parse_listing(output, self.folder)
        except (OSError, ValueError, subprocess.SubprocessError):
            self._listing = None
        finally:
            self._done.set()


def list_files(folder: str, *, timeout: float = GIT_TIMEOUT) -> GitListing | None:
    """Git's listing of `folder`, or None when git cannot tell."""
    return PendingListing(folder, timeout=timeout).result()


# One `git ls-files -z -v -c -m -d -o --directory --no-empty-directory -s` prints the union of
# these two; run at once, git checks the tracked files and walks for untracked ones in parallel
# (at 100,000 files: 0.25 s as one command, 0.16 s as two).
_TRACKED_FLAGS = (
    "-v",  # lowercase tags for assume-unchanged files: git does not check those
    "--cached",
    "--modified",
    "--deleted",
    "--stage",
)
_UNTRACKED_FLAGS = (
    "-v",  # "? <path>" for each
    "--others",
    "--directory",  # an untracked folder as one entry, walked by the caller
    "--no-empty-directory",
)


def _ls_files(folder: str, timeout: float) -> bytes | None:
    """The raw answer of git for `folder`, or None (no git, not a checkout, too slow, too big).

    Git writes to temporary files rather than pipes: a pipe holds 64 KiB, so git would wait for
    this thread to read each piece, and this thread waits for the interpreter's lock while the
    main thread reads the state in long C calls (a 100,000-file answer took 0.42 s instead of
    0.19 s that way). The files are watched, so an answer larger than `MAX_OUTPUT` ends git.
    """
    env = {k: v for k, v in os.environ.items() if k not in _LOCATION_VARIABLES}
    env["GIT_OPTIONAL_LOCKS"] = "0"  # a read must never take the index lock
    with tempfile.TemporaryFile() as tracked, tempfile.TemporaryFile() as untracked:
        outputs = (tracked, untracked)
        processes: list[subprocess.Popen[bytes]] = []
        try:
            for flags, output in zip((_TRACKED_FLAGS, _UNTRACKED_FLAGS), outputs, strict=True):
                processes.append(
                    subprocess.Popen(
                        ["git", "ls-files", "-z", *flags, "--", "."],
                        cwd=folder,
                        env=env,
                        stdin=subprocess.DEVNULL,
                        stdout=output,
                        stderr=subprocess.DEVNULL,
                    )
                )
            if not _finished(processes, outputs, time.monotonic() + timeout):
                return None
        except OSError:  # no git binary, or the folder is gone
            return None
        finally:
            for process in processes:
                if process.poll() is None:
                    process.kill()
                    process.wait()
        if any(process.returncode for process in processes):
            return None
        if _written(outputs) > MAX_OUTPUT:
            return None
        return b"".join(_read_from_start(output) for output in outputs)


def _finished(
    processes: list[subprocess.Popen[bytes]], outputs: tuple[IO[bytes], ...], deadline: float
) -> bool:
    """Wait for every process; False (and they are killed) once past the deadline or once
    their output together exceeds `MAX_OUTPUT`. A watcher thread looks every `_POLL` seconds,
    so the wait itself ends the moment git does."""
    done, overrun = threading.Event(), threading.Event()

    def watch() -> None:
        while not done.wait(_POLL):
            if _written(outputs) > MAX_OUTPUT or time.monotonic() > deadline:
                overrun.set()
                for process in processes:
                    process.kill()
                return

    watcher = threading.Thread(target=watch, name="git-ls-files-watch", daemon=True)
    watcher.start()
    try:
        for process in processes:
            process.wait()
    finally:
        done.set()
        watcher.join()
    return not overrun.is_set()


def _written(outputs: tuple[IO[bytes], ...]) -> int:
    return sum(os.fstat(output.fileno()).st_size for output in outputs)


def _read_from_start(output: IO[bytes]) -> bytes:
    output.seek(0)
    return output.read()  # its size was checked: at most MAX_OUTPUT


def parse_listing(output: bytes, folder: str) -> GitListing:
    """Read `git ls-files -z -v -c -m -d -o --directory -s` output for `folder`."""
    text = output.decode("utf-8", "surrogateescape")
    if text and not text.endswith("\x00"):
        raise ValueError("git's answer ended mid-entry")
    text = "\x00" + text  # every entry now starts after a NUL
    ids = {path: blob for blob, path in _TRUSTED.findall(text)}
    algorithm = "sha256" if ids and len(next(iter(ids.values()))) == 64 else "sha1"
    # In git's order, which is sorted: the caller's sort then has next to nothing to do.
    listed = dict.fromkeys(ids)
    deleted: set[str] = set()
    maybe_links = _OTHER.findall(text)  # git lists a symlink it does not track as a file
    for tag, mode, path in _STAGED.findall(text):  # the few entries not trusted as such
        listed[path] = None
        if tag == "R":
            deleted.add(path)
        if mode == "120000":
            maybe_links.append(path)
        # Anything but a plain, unconflicted, checked entry: read it like an untracked file.
        ids.pop(path, None)
    # The walk skips symlinked folders (and hidden ones); so does this listing.
    for path in maybe_links:
        if os.path.isdir(os.path.join(folder, path)):
            deleted.add(path)
        else:
            listed[path] = None
    folders = [untracked or tracked for untracked, tracked in _FOLDER.findall(text)]
    if "." in folders:  # the leads folder itself is untracked: git looked at nothing in it
        return GitListing(algorithm, {}, [], [""])
    folders = [f for f in folders if not any(p.startswith(".") for p in f.split("/"))]
    files = [path for path in listed if path not in deleted] if deleted else list(listed)
    return GitListing(algorithm, ids, files, folders)
