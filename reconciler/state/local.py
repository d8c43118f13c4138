"""The embedded default backend: one JSON file, rewritten atomically on every write.

The layout (documented in docs/state-format.md) stores each lead as one line that points into a
table of source files, so a file path, its hash and its list of leads are written, read and held
in memory once however many leads the file holds. Writes go to a temporary file that
is fsynced and renamed over the state, after the previous version was kept as `<name>.backup`.
A file this module cannot read is never overwritten: it is reported and left for a human.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from itertools import chain
from json.encoder import encode_basestring
from pathlib import Path
from typing import Any

from reconciler.errors import StateError
from reconciler.gc_pause import gc_paused
from reconciler.state import LeadRecord, Snapshot, canonical_json, require_lineage
from reconciler.state.lock import LockHolder, WaitNotice, wait_for_lock

FORMAT_VERSION = 1

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
        # The last version read or written, reused while the file on disk is unchanged, so that
        # an apply writing after every lead does not parse the whole file again each time.
        self._cached: tuple[_Stamp, Snapshot] | None = None
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
            current = self._read()  # refuses to go on when the file on disk is unreadable
            records = list(records)
            leads = dict(current.leads)  # a copy: snapshots handed out earlier must not change
            leads.update((record.lead_id, record) for record in records)
            for lead_id in forget:
                leads.pop(lead_id, None)
            snapshot = Snapshot(current.lineage or str(uuid.uuid4()), current.serial + 1, leads)
            self._store(snapshot, newest=records)
            return snapshot.serial

    def replace_all(self, snapshot: Snapshot) -> None:
        require_lineage(snapshot)
        with self._mutex:
            self._read()  # an unreadable file stays untouched here too
            self._store(snapshot, newest=())

    def close(self) -> None:
        with self._mutex:
            self._cached = None

    def _read(self) -> Snapshot:
        stamp = self._stamp()
        if stamp is None:
            return Snapshot(None, 0, {})
        if self._cached is not None and self._cached[0] == stamp:
            return self._cached[1]
        stamp, text = self._read_text()
        with gc_paused():
            snapshot = _decode(text, self.describe())
        self._cached = (stamp, snapshot)
        return snapshot

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
        self._cached = ((st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns), snapshot)

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
    if version != FORMAT_VERSION:
        raise StateError(
            f"state {where} has format version {version!r}, but this reconciler reads only "
            f"version {FORMAT_VERSION}; it was left untouched. Use the reconciler that wrote it"
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
        and head["version"] == FORMAT_VERSION
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
            # '"<leadId>":[<source index>,{...}]'
            head_part, _, applied = line.partition(",{")
            key, _, position = head_part.partition('":[')
            lead_id, index = int(key[1:]), int(position)
            if lead_id < 1 or index < 0 or key[:1] != '"' or not applied.endswith("}]"):
                return None
            file, source_hash, file_leads = sources[index]
            leads[lead_id] = LeadRecord(lead_id, file, source_hash, file_leads, "{" + applied[:-1])
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
