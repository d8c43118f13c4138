"""The embedded default backend: a JSON snapshot, and a journal of the writes since.

The snapshot's bytes are `snapshot_file`'s (each lead one line pointing into a table of source
files; docs/state-format.md), the journal's lines `journal`'s; this module owns the files, the
lock and when to fold. A write appends one line to `<name>.journal` and fsyncs it, so its cost
does not grow with the number of leads in the state. When the journal has grown to a share of
the snapshot, the next write folds it in: the whole state goes to a temporary file that is
fsynced and renamed over the snapshot, after the previous snapshot was kept as
`<name>.backup`; the journal keeps the entries since that backup, so the backup and the journal
together are the current state too. A file this module cannot read is never overwritten: it is
reported and left for a human.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import threading
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from reconciler.errors import StateError
from reconciler.gc_pause import gc_paused
from reconciler.state import (
    LeadRecord,
    Snapshot,
    journal,
    require_lineage,
    snapshot_file,
)
from reconciler.state.lock import LockHolder, WaitNotice, wait_for_lock

# The journal is folded into the snapshot once its entries since the snapshot exceed this many
# bytes, or a quarter of the snapshot's size if that is more: folding rewrites every lead, so it
# happens after a number of writes that grows with the state, and its cost per write stays flat.
FOLD_MIN_BYTES = 1024 * 1024
FOLD_SHARE = 4

# What identifies one version of the file on disk: any rewrite changes the inode (rename).
_Stamp = tuple[int, int, int, int]


class LocalState:
    """The state in a local JSON file; the lock is `<file>.lock`, its holder `<file>.lock.info`.

    Safe to share between threads: reads and writes on one instance take turns.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.backup_path = path.with_name(path.name + ".backup")
        self.lock_path = path.with_name(path.name + ".lock")
        self.holder_path = path.with_name(path.name + ".lock.info")
        self.journal_path = path.with_name(path.name + ".journal")
        # The last version read or written, reused while the files on disk are unchanged, so
        # that an apply writing after every lead does not parse the whole state again each time.
        self._cached: _Cached | None = None
        self._base: tuple[_Stamp, Snapshot, int] | None = None  # the snapshot file as read
        self._mutex = threading.RLock()

    def __repr__(self) -> str:
        return f"LocalState({str(self.path)!r})"

    def describe(self) -> str:
        return str(self.path)

    @contextmanager
    def lock(self, *, timeout: float, on_wait: WaitNotice | None = None) -> Iterator[None]:
        """Hold an flock on `<file>.lock`; the kernel drops it when the holder dies."""
        self._make_parent()
        from filelock import FileLock, Timeout  # only apply and state edits lock; plans do not

        file_lock = FileLock(str(self.lock_path), thread_local=False)

        def try_acquire() -> bool:
            try:
                file_lock.acquire(timeout=0)
            except Timeout:
                return False
            return True

        try:
            wait_for_lock(
                try_acquire,
                self._holder,
                state_name=self.describe(),
                timeout=timeout,
                on_wait=on_wait,
            )
        except OSError as exc:
            raise StateError(f"cannot lock state {self.describe()}: {_reason(exc)}") from None
        try:
            self._write_holder()
            yield
        finally:
            with suppress(OSError):
                self.holder_path.unlink()
            file_lock.release()

    def read(self) -> Snapshot:
        with self._mutex:
            return self._read()

    def write(self, records: Iterable[LeadRecord] = (), *, forget: Iterable[int] = ()) -> int:
        with self._mutex:
            current = self._read()  # refuses to go on when a file on disk is unreadable
            records, forget = list(records), list(forget)
            if current.lineage is None:  # the first write makes the snapshot
                leads = {record.lead_id: record for record in records}
                self._store(Snapshot(str(uuid.uuid4()), 1, leads), newest=records)
                return 1
            serial = current.serial + 1
            cached = self._cached
            assert cached is not None  # set by the read above
            added = self._append(journal.journal_line(serial, current.lineage, records, forget))
            with gc_paused():
                snapshot = Snapshot(
                    current.lineage, serial, journal.after(current.leads, records, forget)
                )
            self._cached = _Cached(
                cached.base_stamp,
                self._journal_stamp(),
                snapshot,
                cached.base_bytes,
                cached.journal_end + added,
                cached.live_bytes + added,
            )
            if self._cached.live_bytes > max(FOLD_MIN_BYTES, cached.base_bytes // FOLD_SHARE):
                self._fold(snapshot)
            return serial

    def replace_all(self, snapshot: Snapshot) -> None:
        require_lineage(snapshot)
        with self._mutex:
            current = self._read()  # an unreadable file stays untouched here too
            if self.journal_path.exists():
                # The journal's entries belong to the state being replaced: fold them in first,
                # so that no crash can leave a snapshot beside a journal not its own.
                self._fold(current)
                self._remove_journal()
            self._store(snapshot, newest=())

    def compact(self) -> None:
        """Fold the journal into the snapshot now, as a write does once the journal is large."""
        with self._mutex:
            current = self._read()
            if current.lineage is not None and self.journal_path.exists():
                self._fold(current)

    def close(self) -> None:
        with self._mutex:
            self._cached = None
            self._base = None

    def _read(self) -> Snapshot:
        stamp = self._stamp()
        journal_stamp = self._journal_stamp()
        if stamp is None:
            if journal_stamp is not None:
                raise StateError(
                    f"state {self.describe()} is missing but its journal {self.journal_path} "
                    "is there; it was left untouched. Restore the state from "
                    f"{self.backup_path}, or move the journal away to start a new state"
                )
            return Snapshot(None, 0, {})
        cached = self._cached
        if cached is not None and (cached.base_stamp, cached.journal_stamp) == (
            stamp,
            journal_stamp,
        ):
            return cached.snapshot
        base, base_stamp, base_bytes = self._read_base(stamp)
        if journal_stamp is None:
            self._cached = _Cached(base_stamp, None, base, base_bytes, 0, 0)
            return base
        journal_stamp, data = self._read_journal()
        with gc_paused():
            snapshot, end, live = journal.replay(base, data, str(self.journal_path))
        self._cached = _Cached(base_stamp, journal_stamp, snapshot, base_bytes, end, live)
        return snapshot

    def _read_base(self, stamp: _Stamp) -> tuple[Snapshot, _Stamp, int]:
        if self._base is not None and self._base[0] == stamp:
            return self._base[1], stamp, self._base[2]
        stamp, text = self._read_text()
        with gc_paused():
            snapshot = snapshot_file.decode(text, self.describe())
        self._base = (stamp, snapshot, stamp[2])
        return snapshot, stamp, stamp[2]

    def _read_journal(self) -> tuple[_Stamp | None, bytes]:
        try:
            with self.journal_path.open("rb") as file:
                st = os.fstat(file.fileno())
                data = file.read()
        except FileNotFoundError:  # folded away meanwhile
            return None, b""
        except OSError as exc:
            raise StateError(
                f"cannot read state journal {self.journal_path}: {_reason(exc)}"
            ) from None
        return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns), data

    def _journal_stamp(self) -> _Stamp | None:
        return _stamp_of(self.journal_path, f"state journal {self.journal_path}")

    def _append(self, line: bytes) -> int:
        """Append one entry and make it durable; a torn tail left by a crash is cut first."""
        end = self._cached.journal_end if self._cached is not None else 0
        try:
            fd = os.open(
                self.journal_path, os.O_WRONLY | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o600
            )
            try:
                size = os.fstat(fd).st_size
                created = size == 0
                if size != end:  # the tail of an append that never completed: never applied
                    os.ftruncate(fd, end)
                written = os.pwrite(fd, line, end)
                while written < len(line):
                    written += os.pwrite(fd, line[written:], end + written)
                os.fsync(fd)
            finally:
                os.close(fd)
            if created:
                _fsync_directory(self.path.parent)
        except OSError as exc:
            raise StateError(f"cannot write state {self.describe()}: {_reason(exc)}") from None
        return len(line)

    def _fold(self, snapshot: Snapshot) -> None:
        """Write `snapshot` as the new snapshot file, then keep in the journal only the entries
        since the one that became the backup (so backup + journal is the current state too)."""
        backup_serial = self._base[1].serial if self._base is not None else 0
        self._store(snapshot, newest=())
        try:
            data = self.journal_path.read_bytes()
        except FileNotFoundError:
            return
        except OSError as exc:
            raise StateError(
                f"cannot read state journal {self.journal_path}: {_reason(exc)}"
            ) from None
        self._replace_journal(journal.entries_after(data, backup_serial))

    def _replace_journal(self, data: bytes) -> None:
        directory = self.path.parent
        fd, temp_name = tempfile.mkstemp(
            dir=directory, prefix=f".{self.journal_path.name}.", suffix=".tmp"
        )
        try:
            try:
                with os.fdopen(fd, "wb") as out:
                    out.write(data)
                    out.flush()
                    os.fsync(out.fileno())
                os.replace(temp_name, self.journal_path)
            except BaseException:
                with suppress(OSError):
                    os.unlink(temp_name)
                raise
            _fsync_directory(directory)
        except OSError as exc:
            raise StateError(f"cannot write state {self.describe()}: {_reason(exc)}") from None
        self._refresh_cache_after_fold()

    def _remove_journal(self) -> None:
        try:
            self.journal_path.unlink(missing_ok=True)
            _fsync_directory(self.path.parent)
        except OSError as exc:
            raise StateError(f"cannot write state {self.describe()}: {_reason(exc)}") from None
        self._refresh_cache_after_fold()

    def _refresh_cache_after_fold(self) -> None:
        """After a fold the snapshot file holds everything: the cache says so (no reread)."""
        assert self._cached is not None
        cached = self._cached
        journal_stamp = self._journal_stamp()
        size = journal_stamp[2] if journal_stamp is not None else 0
        self._cached = _Cached(
            cached.base_stamp, journal_stamp, cached.snapshot, cached.base_bytes, size, 0
        )

    def _store(self, snapshot: Snapshot, *, newest: Iterable[LeadRecord]) -> None:
        with gc_paused():
            source_leads, agreed = snapshot_file.source_leads(snapshot, newest=newest)
            data = snapshot_file.encode(snapshot, source_leads)
            if not agreed:
                snapshot = snapshot_file.as_read_back(snapshot, source_leads)
        self._make_parent()
        directory = self.path.parent
        fd, temp_name = tempfile.mkstemp(dir=directory, prefix=f".{self.path.name}.", suffix=".tmp")
        temp = Path(temp_name)
        try:
            try:
                with os.fdopen(fd, "wb") as out:
                    out.write(data)
                    out.flush()
                    os.fsync(out.fileno())
                    # The rename keeps inode, size and mtime: this is the stamp of the new state.
                    st = os.fstat(out.fileno())
                if self.path.exists():
                    shutil.copymode(self.path, temp)
                    self._keep_backup()
                os.replace(temp, self.path)
            except BaseException:
                with suppress(OSError):
                    temp.unlink()
                raise
            _fsync_directory(directory)
        except OSError as exc:
            raise StateError(f"cannot write state {self.describe()}: {_reason(exc)}") from None
        # Parsing what was just written would cost a full read; this is the same value.
        stamp = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
        self._base = (stamp, snapshot, st.st_size)
        journal_stamp = self._journal_stamp()
        size = journal_stamp[2] if journal_stamp is not None else 0
        self._cached = _Cached(stamp, journal_stamp, snapshot, st.st_size, size, 0)

    def _keep_backup(self) -> None:
        """Make `<name>.backup` the current version, atomically, before it is replaced."""
        temp = self.backup_path.with_name(f".{self.backup_path.name}.{os.getpid()}.tmp")
        with suppress(FileNotFoundError):
            temp.unlink()
        try:
            os.link(self.path, temp)  # no copy: the old inode lives on under the backup name
        except OSError:
            shutil.copy2(self.path, temp)
        os.replace(temp, self.backup_path)

    def _read_text(self) -> tuple[_Stamp, str]:
        """The file's text and the stamp of exactly that version (the bytes die here)."""
        try:
            with self.path.open("rb") as file:
                st = os.fstat(file.fileno())
                data = file.read()
        except OSError as exc:
            raise StateError(f"cannot read state {self.describe()}: {_reason(exc)}") from None
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise snapshot_file.unreadable(self.describe(), f"not UTF-8: {exc}") from None
        return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns), text

    def _stamp(self) -> _Stamp | None:
        return _stamp_of(self.path, f"state {self.describe()}")

    def _make_parent(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StateError(
                f"cannot create the folder of state {self.describe()}: {_reason(exc)}"
            ) from None

    def _write_holder(self) -> None:
        holder = LockHolder.current()
        record = {"pid": holder.pid, "host": holder.host, "since": holder.since}
        temp = self.holder_path.with_name(f".{self.holder_path.name}.{os.getpid()}.tmp")
        # Holder details only make the lock message friendlier; failing to write them is harmless.
        with suppress(OSError):
            temp.write_text(json.dumps(record), encoding="utf-8")
            os.replace(temp, self.holder_path)

    def _holder(self) -> LockHolder | None:
        try:
            record = json.loads(self.holder_path.read_text(encoding="utf-8"))
            return LockHolder(int(record["pid"]), str(record["host"]), str(record["since"]))
        except (OSError, ValueError, TypeError, KeyError):
            return None


def _fsync_directory(directory: Path) -> None:
    """Make the rename itself durable; directories cannot be opened this way on Windows."""
    if os.name != "posix":
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _stamp_of(path: Path, what: str) -> _Stamp | None:
    """The version of the file at `path` now (None if there is none); `what` names it."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StateError(f"cannot read {what}: {_reason(exc)}") from None
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc)


@dataclass(frozen=True, slots=True)
class _Cached:
    """The state as last read or written, and what is known of the files it came from."""

    base_stamp: _Stamp
    journal_stamp: _Stamp | None
    snapshot: Snapshot
    base_bytes: int  # size of the snapshot file
    journal_end: int  # bytes of the journal made of whole entries (a torn tail follows)
    live_bytes: int  # bytes of the entries newer than the snapshot file
