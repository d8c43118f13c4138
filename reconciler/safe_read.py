"""Reading one lead file without trusting the folder: only a regular file inside it, capped.

The file is opened without following a last-component symlink and without blocking (a FIFO
opens at once), then checked with fstat before a byte is read; a symlink must resolve to a path
inside the folder; no more than `MAX_FILE_BYTES` (+1, to see that a file grew) is ever read.
Each refusal is a `Problem` for that path, in words a user can act on.
"""

from __future__ import annotations

import errno
import os
import stat

from reconciler.errors import Problem
from reconciler.yamlio import MAX_FILE_BYTES, too_large

_OPEN_FLAGS = (
    os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
)


def read_lead_file(
    path: str, inside: str, shown: str, problems: list[Problem], resolve: bool
) -> bytes | None:
    """The bytes of the regular file at `path`, if it lies inside the folder `inside` (a real
    path) and is within the size limit; else None, with a problem saying why.

    The file is opened without following a last-component symlink and without blocking (a FIFO
    opens at once), then checked with fstat before a byte is read. A symlink, or with `resolve`
    any path, is first resolved and must stay inside the folder.
    """
    try:
        fd = _open_inside(path, inside, resolve)
    except _Refused as exc:
        problems.append(Problem(shown, None, None, str(exc)))
        return None
    except OSError as exc:
        problems.append(Problem(shown, None, None, f"cannot read: {exc.strerror}"))
        return None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            problems.append(Problem(shown, None, None, _not_regular(info.st_mode)))
            return None
        if info.st_size > MAX_FILE_BYTES:
            problems.append(Problem(shown, None, None, too_large(info.st_size)))
            return None
        data = _read_capped(fd, info.st_size)
    except OSError as exc:
        problems.append(Problem(shown, None, None, f"cannot read: {exc.strerror}"))
        return None
    finally:
        os.close(fd)
    if len(data) > MAX_FILE_BYTES:  # it grew after the check
        problems.append(Problem(shown, None, None, too_large(len(data))))
        return None
    return data


class _Refused(Exception):
    """A path that is not read, and why (the message)."""


def _open_inside(path: str, inside: str, resolve: bool) -> int:
    if not resolve:
        try:
            return os.open(path, _OPEN_FLAGS)
        except OSError as exc:
            if exc.errno == errno.ENXIO:  # a socket cannot be opened at all
                raise _Refused(_not_regular(os.lstat(path).st_mode)) from None
            if exc.errno != errno.ELOOP:  # ELOOP: the last component is a symlink
                raise
    real = os.path.realpath(path)
    if os.path.commonpath([real, inside]) != inside:
        raise _Refused(
            "is a symlink to a file outside the leads folder; only files inside it are read"
        )
    return _open_inside(real, inside, resolve=False)


def _not_regular(mode: int) -> str:
    kinds = (
        (stat.S_ISFIFO, "a FIFO (named pipe)"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISCHR, "a device"),
        (stat.S_ISBLK, "a device"),
        (stat.S_ISDIR, "a folder"),
    )
    kind = next((name for test, name in kinds if test(mode)), "not a regular file")
    return f"is {kind}, not a regular file; only regular files are read as lead files"


def _read_capped(fd: int, size: int) -> bytes:
    """At most MAX_FILE_BYTES + 1 bytes (one more than allowed shows the file grew)."""
    data = os.read(fd, min(size, MAX_FILE_BYTES) + 1)
    while len(data) <= MAX_FILE_BYTES:
        more = os.read(fd, MAX_FILE_BYTES + 1 - len(data))
        if not more:
            break
        data += more
    return data
