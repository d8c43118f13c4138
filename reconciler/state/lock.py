"""What both state backends share about the apply lock: who holds it, how that is worded, and
how a runner waits for it.

Each backend keeps its own mechanism (an flock on a file, a PostgreSQL advisory lock) and its
own place for the holder record; the record, its wording and the wait loop live here once, so
a waiting runner reads the same message whichever backend the team uses.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from reconciler.errors import StateLockedError

POLL_SECONDS = 0.05
# While waiting, say who holds the lock at once and then every so often, not on every poll.
_REPEAT_NOTICE_SECONDS = 30.0

# Told while waiting for another run's lock: one line naming the holder.
WaitNotice = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class LockHolder:
    """The process holding a state's lock, as it recorded itself when it took it."""

    pid: int
    host: str
    since: str  # ISO 8601, seconds

    @classmethod
    def current(cls) -> LockHolder:
        """This process, now."""
        now = datetime.now(UTC).isoformat(timespec="seconds")
        return cls(os.getpid(), socket.gethostname(), now)

    def __str__(self) -> str:
        return f"pid {self.pid} on host {self.host} since {self.since}"


def describe_holder(holder: LockHolder | None) -> str:
    """The holder as a message names it; unknown when it has not recorded itself (yet)."""
    return str(holder) if holder is not None else "another process"


def wait_for_lock(
    try_acquire: Callable[[], bool],
    holder: Callable[[], LockHolder | None],
    *,
    state_name: str,
    timeout: float,
    on_wait: WaitNotice | None = None,
) -> None:
    """Call `try_acquire` until it succeeds or `timeout` seconds pass (then StateLockedError).

    `on_wait` hears who holds the lock when the wait starts, and again every half minute.
    """
    deadline = time.monotonic() + max(timeout, 0.0)
    told_at: float | None = None
    while not try_acquire():
        now = time.monotonic()
        if now >= deadline:
            raise StateLockedError(
                f"state {state_name} is locked by {describe_holder(holder())} "
                f"(waited {timeout:g}s); wait for it or pass a longer --lock-timeout"
            )
        if on_wait is not None and (told_at is None or now - told_at >= _REPEAT_NOTICE_SECONDS):
            told_at = now
            on_wait(
                f"Waiting up to {timeout:g}s for the lock on state {state_name}, "
                f"held by {describe_holder(holder())}"
            )
        time.sleep(min(POLL_SECONDS, max(deadline - now, 0.0)))
