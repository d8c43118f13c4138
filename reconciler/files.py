"""Writing a file atomically: a reader sees the old file or the whole new one, never a part.

The bytes go to a hidden temporary file beside the target (same folder, so same file system),
are fsynced, and only then take the target's name: renamed over it (`replace_file`), or linked
to a name nothing holds yet (`create_file`, which never replaces). The folder is fsynced after,
so the new name survives a crash too. Whatever fails, and on Ctrl-C as well, the temporary file
is removed and the target is left as it was; the OSError goes to the caller, which says in its
own words what could not be written.

Temporary names start with a dot and end in `.partial`, so no reader of lead files or plans
ever takes one for the real thing. (The local state backend writes its own way: it keeps a
backup of the version it replaces.)
"""

from __future__ import annotations

import errno
import os
import secrets
import stat
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path

# A random name clashes with an existing one about never; the bound keeps a folder full of
# leftovers (or a file system that reports every name as taken) from looping for ever.
_NAME_ATTEMPTS = 100
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)


def replace_file(path: Path, data: bytes, *, check: Callable[[Path], None] | None = None) -> None:
    """Make `path` hold `data`, atomically, whether or not it exists.

    A file replaced keeps its permission bits; a new one gets the usual ones (0o666 less the
    umask). `check`, if given, is called with the written temporary file before the rename;
    whatever it raises propagates and `path` is untouched. OSError if the file cannot be
    written, with nothing left behind.
    """
    temp = _written_beside(path, data)
    try:
        with suppress(FileNotFoundError):
            os.chmod(temp, stat.S_IMODE(os.stat(path).st_mode))
        if check is not None:
            check(temp)
        os.replace(temp, path)
    finally:
        with suppress(FileNotFoundError):
            temp.unlink()
    fsync_folder(path.parent)


def create_file(path: Path, data: bytes, *, sync_folder: bool = True) -> None:
    """Create `path` holding `data`, atomically, never replacing anything already there.

    FileExistsError if `path` exists (a dangling symlink included), and that file is kept;
    any other OSError if it cannot be written. Either way nothing is left behind. A caller
    creating many files in one folder may pass `sync_folder=False` and call
    :func:`fsync_folder` once, before it relies on the names having survived a crash.
    """
    temp = _written_beside(path, data)
    try:
        os.link(temp, path)  # unlike a rename, a link fails if the name is taken
    finally:
        temp.unlink(missing_ok=True)
    if sync_folder:
        fsync_folder(path.parent)


def _written_beside(path: Path, data: bytes) -> Path:
    """A new hidden file in `path`'s folder holding `data`, fsynced; removed if that fails."""
    for _ in range(_NAME_ATTEMPTS):
        temp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.partial")
        try:
            fd = os.open(temp, _CREATE, 0o666)  # the umask applies, as for any new file
        except FileExistsError:
            continue
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
        except BaseException:
            with suppress(OSError):
                temp.unlink()
            raise
        return temp
    raise FileExistsError(errno.EEXIST, "no free temporary name", str(path.parent))


def fsync_folder(directory: Path) -> None:
    """Make the names created in `directory` durable; a system that cannot sync a folder
    (Windows) still has the files, so that failure is not one."""
    with suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
