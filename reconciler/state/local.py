"""The embedded default backend: a JSON snapshot, and a journal of the writes since.

The snapshot's layout (documented in docs/state-format.md) stores each lead as one line that
points into a table of source files, so a file path, its hash and its list of leads are written,
read and held in memory once however many leads the file holds.

A write appends one line to `<name>.journal` and fsyncs it, so its cost does not grow with the
number of leads in the state. When the journal has grown to a share of the snapshot, the next
write folds it in: the whole state goes to a temporary file that is fsynced and renamed over
the snapshot, after the previous snapshot was kept as `<name>.backup`; the journal keeps the
entries since that backup, so the backup and the journal together are the current state too.
A file this module cannot read is never overwritten: it is reported and left for a human.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from itertools import chain
from json.encoder import encode_basestring
from pathlib import Path
from typing import Any

from reconciler.errors import StateError
from reconciler.gc_pause import gc_paused
from reconciler.state import LeadRecord, Snapshot, canonical_json, require_lineage
from reconciler.state.lock import LockHolder, WaitNotice, wait_for_lock

FORMAT_VERSION = 2  # 2: a journal may lie beside the snapshot (a reader of 1 would ignore it)
READABLE_VERSIONS = (1, 2)
# The journal is folded into the snapshot once its entries since the snapshot exceed this many
# bytes, or a quarter of the snapshot's size if that is more: folding rewrites every lead, so it
# happens after a number of writes that grows with the state, and its cost per write stays flat.
FOLD_MIN_BYTES = 1024 * 1024
FOLD_SHARE = 4

# JSON's own string escaping, in C; typeshed types it loosely.
_json_string: Callable[[str], str] = encode_basestring

# A source is (file, source_hash, file_leads); records of one file at one hash share one.
_Source = tuple[str, str, tuple[int, ...]]
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
            added = self._append(_journal_line(serial, current.lineage, records, forget))
            with gc_paused():
                snapshot = Snapshot(current.lineage, serial, _after(current.leads, records, forget))
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
        journal = self._journal_stamp()
        if stamp is None:
            if journal is not None:
                raise StateError(
                    f"state {self.describe()} is missing but its journal {self.journal_path} "
                    "is there; it was left untouched. Restore the state from "
                    f"{self.backup_path}, or move the journal away to start a new state"
                )
            return Snapshot(None, 0, {})
        cached = self._cached
        if cached is not None and (cached.base_stamp, cached.journal_stamp) == (stamp, journal):
            return cached.snapshot
        base, base_stamp, base_bytes = self._read_base(stamp)
        if journal is None:
            self._cached = _Cached(base_stamp, None, base, base_bytes, 0, 0)
            return base
        journal, data = self._read_journal()
        with gc_paused():
            snapshot, end, live = _replay(base, data, str(self.journal_path))
        self._cached = _Cached(base_stamp, journal, snapshot, base_bytes, end, live)
        return snapshot

    def _read_base(self, stamp: _Stamp) -> tuple[Snapshot, _Stamp, int]:
        if self._base is not None and self._base[0] == stamp:
            return self._base[1], stamp, self._base[2]
        stamp, text = self._read_text()
        with gc_paused():
            snapshot = _decode(text, self.describe())
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
        try:
            st = self.journal_path.stat()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StateError(
                f"cannot read state journal {self.journal_path}: {_reason(exc)}"
            ) from None
        return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)

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
        self._replace_journal(_entries_after(data, backup_serial))

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
        journal = self._journal_stamp()
        size = journal[2] if journal is not None else 0
        self._cached = _Cached(
            cached.base_stamp, journal, cached.snapshot, cached.base_bytes, size, 0
        )

    def _store(self, snapshot: Snapshot, *, newest: Iterable[LeadRecord]) -> None:
        with gc_paused():
            source_leads, agreed = _source_leads(snapshot, newest=newest)
            data = _encode(snapshot, source_leads)
            if not agreed:
                snapshot = _as_read_back(snapshot, source_leads)
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
        journal = self._journal_stamp()
        size = journal[2] if journal is not None else 0
        self._cached = _Cached(stamp, journal, snapshot, st.st_size, size, 0)

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
            raise _unreadable(self.describe(), f"not UTF-8: {exc}") from None
        return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns), text

    def _stamp(self) -> _Stamp | None:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StateError(f"cannot read state {self.describe()}: {_reason(exc)}") from None
        return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)

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


def _source_leads(
    snapshot: Snapshot, *, newest: Iterable[LeadRecord]
) -> tuple[dict[tuple[str, str], tuple[int, ...]], bool]:
    """The lead list of each (file, hash), stored once, and whether all records agreed on it.

    Where records disagree, `newest` wins, as the PostgreSQL backend's upsert does, so both
    backends read back alike.
    """
    source_leads = {(record.file, record.source_hash): record.file_leads for record in newest}
    agreed = True
    for record in snapshot.leads.values():
        stored = source_leads.setdefault((record.file, record.source_hash), record.file_leads)
        if stored is not record.file_leads and stored != record.file_leads:
            agreed = False
    return source_leads, agreed


def _encode(snapshot: Snapshot, source_leads: dict[tuple[str, str], tuple[int, ...]]) -> bytes:
    """The file's bytes: JSON, one line per source and per lead, so diffs stay small.

    Each lead's applied values are written as the JSON object itself, not as a string, so the
    file reads naturally and `_decode_layout` can take the line's tail as `applied_json` as is.
    Lines are formatted directly (strings through the json module's own escaping) because
    calling `json.dumps` once per line costs several times more at a hundred thousand leads.
    """
    keys = sorted(source_leads)
    index = {key: position for position, key in enumerate(keys)}
    head = {"version": FORMAT_VERSION, "lineage": snapshot.lineage, "serial": snapshot.serial}
    leads = snapshot.leads
    lines = [
        json.dumps(head)[:-1] + ",",
        '"sources":[',
        ",\n".join(
            f"[{_json_string(file)},{_json_string(source_hash)},"
            f"[{','.join(map(str, source_leads[file, source_hash]))}]]"
            for file, source_hash in keys
        ),
        "],",
        '"leads":{',
        ",\n".join(
            f'"{lead_id}":[{index[record.file, record.source_hash]},{_one_line(record)}]'
            for lead_id, record in zip(
                sorted(leads), map(leads.__getitem__, sorted(leads)), strict=True
            )
        ),
        "}}\n",
    ]
    # A lone surrogate (from a "\ud800" escape in YAML) cannot be UTF-8; its escape can.
    return "\n".join(lines).encode("utf-8", "backslashreplace")


def _one_line(record: LeadRecord) -> str:
    """`applied_json` as written: canonical JSON has no newline, but be sure of it."""
    if "\n" in record.applied_json:
        return canonical_json(record.applied)
    return record.applied_json


def _unreadable(where: str, why: str) -> StateError:
    return StateError(
        f"state {where} is unreadable ({why}); it was left untouched. Restore it from "
        f"{where}.backup, or move it away to start a new state"
    )


def _decode(text: str, where: str) -> Snapshot:
    """Parse and check a state file; any surprise is a StateError and the file stays as it is."""

    def broken(why: str) -> StateError:
        return _unreadable(where, why)

    fast = _decode_layout(text)
    if fast is not None:
        return fast
    # Not in the layout this module writes (say, reformatted by hand): parse it as any JSON.
    try:
        document: Any = json.loads(text)
    except ValueError as exc:
        raise broken(f"not valid JSON: {exc}") from None
    if not isinstance(document, dict):
        raise broken("not a JSON object")
    version = document.get("version")
    if version not in READABLE_VERSIONS:
        raise StateError(
            f"state {where} has format version {version!r}, but this reconciler reads only "
            f"versions {' and '.join(map(str, READABLE_VERSIONS))}; it was left untouched. "
            "Use the reconciler that wrote it"
        )
    lineage, serial = document.get("lineage"), document.get("serial")
    raw_sources, raw_leads = document.get("sources"), document.get("leads")
    if not isinstance(lineage, str) or not lineage:
        raise broken("'lineage' is not a string")
    if type(serial) is not int or serial < 1:
        raise broken("'serial' is not a positive integer")
    if not isinstance(raw_sources, list) or not isinstance(raw_leads, dict):
        raise broken("'sources' must be a list and 'leads' an object")
    sources = _checked_sources(raw_sources)
    if sources is None:
        raise broken("an item of 'sources' is not [file, hash, [leadId, ...]]")
    leads: dict[int, LeadRecord] = {}
    for key, value in raw_leads.items():
        try:
            position, applied = value
            file, source_hash, file_leads = sources[position]
        except (TypeError, ValueError, IndexError):
            raise broken(f"lead {key!r} is not [source index, applied values]") from None
        if not (_is_id(key) and type(position) is int and position >= 0):
            raise broken(f"lead {key!r} is not [source index, applied values]")
        if not isinstance(applied, dict):
            raise broken(f"lead {key!r}: the applied values are not a JSON object")
        lead_id = int(key)
        leads[lead_id] = LeadRecord(lead_id, file, source_hash, file_leads, canonical_json(applied))
    return Snapshot(lineage, serial, leads)


_SOURCES_START = '\n"sources":[\n'
_LEADS_START = '\n],\n"leads":{\n'
_END = "\n}}\n"


def _decode_layout(text: str) -> Snapshot | None:
    """Read a file in exactly the layout `_encode` writes; None when it is not in that layout.

    Slicing each lead's line is several times faster than a JSON parser building every applied
    object only for it to be serialized again. Anything unexpected falls back to the full
    parser, which also produces the precise error.
    """
    # Positions, not str.partition: each partition would copy most of a large file once more.
    sources_at = text.find(_SOURCES_START)
    leads_at = text.find(_LEADS_START, sources_at)
    if not (0 < sources_at < leads_at and text.endswith(_END)):
        return None
    head_line = text[:sources_at]
    source_block = text[sources_at + len(_SOURCES_START) : leads_at]
    if not head_line.endswith(","):
        return None
    try:
        head = json.loads(head_line[:-1] + "}")
        raw_sources = json.loads(f"[{source_block}]")
    except ValueError:
        return None
    if not (
        isinstance(head, dict)
        and head.keys() == {"version", "lineage", "serial"}
        and head["version"] in READABLE_VERSIONS
        and isinstance(head["lineage"], str)
        and head["lineage"]
        and type(head["serial"]) is int
        and head["serial"] >= 1
    ):
        return None
    sources = _checked_sources(raw_sources)
    if sources is None:
        return None
    leads: dict[int, LeadRecord] = {}
    # Neither a JSON string nor canonical JSON holds a raw newline: ",\n" ends each lead's line.
    try:
        start, end = leads_at + len(_LEADS_START), len(text) - len(_END)
        for line in text[start:end].split(",\n") if end > start else ():
            # '"<leadId>":[<source index>,{...}]': positions, not partitions, copy less
            brace = line.find(",{")
            bracket = line.find('":[', 0, brace)
            lead_id, index = int(line[1:bracket]), int(line[bracket + 3 : brace])
            if lead_id < 1 or index < 0 or bracket < 1 or line[0] != '"' or line[-2:] != "}]":
                return None
            leads[lead_id] = LeadRecord(lead_id, *sources[index], line[brace + 1 : -1])
    except (ValueError, IndexError):
        return None
    return Snapshot(head["lineage"], head["serial"], leads)


def _checked_sources(raw: Any) -> list[_Source] | None:
    """Sources as (file, hash, file_leads) tuples; None if any item is malformed.

    The checks run as whole-list passes (`map` over builtins) rather than a Python loop per
    item, which makes them several times faster at a hundred thousand sources.
    """
    if type(raw) is not list:
        return None
    if not raw:
        return []
    if not (set(map(type, raw)) <= {list} and set(map(len, raw)) <= {3}):
        return None
    files, hashes, id_lists = zip(*raw, strict=True)
    if not (
        set(map(type, files)) <= {str}
        and set(map(type, hashes)) <= {str}
        and set(map(type, id_lists)) <= {list}
        and set(map(type, chain.from_iterable(id_lists))) <= {int}
    ):
        return None
    return list(zip(files, hashes, map(tuple, id_lists), strict=True))


def _is_id(key: str) -> bool:
    """A leadId as a JSON object key: decimal digits, no sign or leading zero, at least 1."""
    return key.isascii() and key.isdigit() and key[0] != "0"


def _as_read_back(
    snapshot: Snapshot, source_leads: dict[tuple[str, str], tuple[int, ...]]
) -> Snapshot:
    """`snapshot` as reading the file just written would return it, without parsing it."""
    leads = dict(snapshot.leads)
    for lead_id, record in snapshot.leads.items():
        file_leads = source_leads[record.file, record.source_hash]
        if file_leads is not record.file_leads and file_leads != record.file_leads:
            leads[lead_id] = LeadRecord(
                lead_id, record.file, record.source_hash, file_leads, record.applied_json
            )
    return Snapshot(snapshot.lineage, snapshot.serial, leads)


def _fsync_directory(directory: Path) -> None:
    """Make the rename itself durable; directories cannot be opened this way on Windows."""
    if os.name != "posix":
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


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


class _Leads(Mapping[int, LeadRecord]):
    """Records after some writes: a mapping never changed, and what the writes since did to it
    (None: forgotten). A write makes a new one without copying every record."""

    __slots__ = ("_base", "_changes", "_len")

    def __init__(self, base: Mapping[int, LeadRecord], changes: dict[int, LeadRecord | None]):
        self._base = base
        self._changes = changes
        size = len(base)
        for lead_id, record in changes.items():
            size += (record is not None) - (lead_id in base)
        self._len = size

    def __getitem__(self, lead_id: int) -> LeadRecord:
        if lead_id in self._changes:
            record = self._changes[lead_id]
            if record is None:
                raise KeyError(lead_id)
            return record
        return self._base[lead_id]

    def __contains__(self, lead_id: object) -> bool:
        if lead_id in self._changes:
            return self._changes[lead_id] is not None
        return lead_id in self._base

    def __iter__(self) -> Iterator[int]:
        changes = self._changes
        for lead_id in self._base:
            if lead_id not in changes:
                yield lead_id
        for lead_id, record in changes.items():
            if record is not None:
                yield lead_id

    def __len__(self) -> int:
        return self._len

    def __repr__(self) -> str:
        return repr(dict(self))


def _after(
    leads: Mapping[int, LeadRecord], records: list[LeadRecord], forget: list[int]
) -> Mapping[int, LeadRecord]:
    """`leads` after one write, sharing what it did not change; each written record's lead list
    also becomes that of the other records of its file at its hash (the latest write wins, as
    in the snapshot file and in PostgreSQL)."""
    base, changes = (
        (leads._base, dict(leads._changes)) if isinstance(leads, _Leads) else (leads, {})
    )
    view = _Leads(base, changes)
    for record in records:
        changes[record.lead_id] = record
    for record in records:
        source = (record.file, record.source_hash)
        previous = leads.get(record.lead_id)
        neighbours = set(record.file_leads) | set(previous.file_leads if previous else ())
        for other_id in neighbours - {record.lead_id}:
            other = view.get(other_id)
            if (
                other is not None
                and (other.file, other.source_hash) == source
                and (other.file_leads != record.file_leads)
            ):
                changes[other_id] = LeadRecord(
                    other_id, other.file, other.source_hash, record.file_leads, other.applied_json
                )
    for lead_id in forget:
        changes[lead_id] = None
    return _Leads(base, changes)


def _journal_line(serial: int, lineage: str, records: list[LeadRecord], forget: list[int]) -> bytes:
    """One journal entry: `{"serial":N,"lineage":"...","records":[...],"forget":[...]}` and a
    newline; each record is `[leadId, file, hash, [leadId, ...], {applied values}]`."""
    items = ",".join(
        f"[{record.lead_id},{_json_string(record.file)},{_json_string(record.source_hash)},"
        f"[{','.join(map(str, record.file_leads))}],{_one_line(record)}]"
        for record in records
    )
    text = (
        f'{{"serial":{serial},"lineage":{_json_string(lineage)},"records":[{items}],'
        f'"forget":[{",".join(str(int(i)) for i in forget)}]}}\n'
    )
    return text.encode("utf-8", "backslashreplace")


_ENTRY_HEAD = re.compile(rb'\{"serial":([1-9][0-9]*),"lineage":("[0-9a-f-]*"),')


def _entry_serial(line: bytes) -> int | None:
    match = _ENTRY_HEAD.match(line)
    return int(match.group(1)) if match else None


def _entry_lineage(line: bytes) -> bytes:
    match = _ENTRY_HEAD.match(line)
    return match.group(2) if match else b""


def _entries_after(data: bytes, serial: int) -> bytes:
    """The whole entries of a journal newer than `serial` (a torn tail is dropped)."""
    end = data.rfind(b"\n") + 1
    lines = data[:end].splitlines(keepends=True)
    return b"".join(line for line in lines if (_entry_serial(line) or 0) > serial)


def _replay(base: Snapshot, data: bytes, where: str) -> tuple[Snapshot, int, int]:
    """`base` with the journal's entries newer than it applied: the snapshot, the journal's
    length in whole entries, and the bytes of the entries applied.

    Bytes after the last newline are an append that never completed (its write was never
    acknowledged), so they are not part of the state. Anything else unexpected is an error
    and the journal is left as it is."""
    assert base.lineage is not None

    def broken(why: str) -> StateError:
        return StateError(
            f"state journal {where} is unreadable ({why}); it was left untouched. Restore the "
            "state from a copy of both files, or move both away to start a new state"
        )

    end = data.rfind(b"\n") + 1
    leads: Mapping[int, LeadRecord] = base.leads
    serial, live = base.serial, 0
    lineage = _json_string(base.lineage).encode()
    for number, line in enumerate(data[:end].splitlines(), 1):
        entry_serial = _entry_serial(line)
        if entry_serial is None:
            raise broken(f"entry {number} does not start with a serial")
        if _entry_lineage(line) != lineage:
            raise broken(f"entry {number} belongs to another lineage")
        if entry_serial <= base.serial:
            continue  # already in the snapshot
        if entry_serial != serial + 1:
            raise broken(f"entry {number} has serial {entry_serial}, expected {serial + 1}")
        try:
            records, forget = _entry(json.loads(line))
        except (ValueError, TypeError, KeyError) as exc:
            raise broken(f"entry {number}: {exc}") from None
        leads = _after(leads, records, forget)
        serial, live = entry_serial, live + len(line) + 1
    if isinstance(leads, _Leads):
        leads = dict(leads)  # one copy: lookups in a plain dict are faster for the planner
    return Snapshot(base.lineage, serial, leads), end, live


def _entry(document: Any) -> tuple[list[LeadRecord], list[int]]:
    """The records and forgotten leads of one parsed journal entry (ValueError if malformed)."""
    if not isinstance(document, dict):
        raise ValueError("not a JSON object")
    raw_records, raw_forget = document["records"], document["forget"]
    if not isinstance(raw_records, list) or not isinstance(raw_forget, list):
        raise ValueError("'records' and 'forget' must be lists")
    records = []
    for item in raw_records:
        lead_id, file, source_hash, file_leads, applied = item
        if not (
            type(lead_id) is int
            and lead_id >= 1
            and isinstance(file, str)
            and isinstance(source_hash, str)
            and isinstance(file_leads, list)
            and all(type(i) is int for i in file_leads)
            and isinstance(applied, dict)
        ):
            raise ValueError(
                f"record {item!r:.60} is not [leadId, file, hash, [leadId...], {{...}}]"
            )
        records.append(
            LeadRecord(lead_id, file, source_hash, tuple(file_leads), canonical_json(applied))
        )
    if not all(type(i) is int for i in raw_forget):
        raise ValueError("'forget' holds something that is not a leadId")
    return records, raw_forget
