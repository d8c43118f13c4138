"""Last-applied state: what was applied per lead, behind one small protocol.

Two backends implement it: a local JSON file (the embedded default) and PostgreSQL for teams
whose CI runners share one state. `open_state` picks one from `--state` / `RECONCILER_STATE`.
"""

from __future__ import annotations

import json
import re
from abc import abstractmethod
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from reconciler.errors import StateError
from reconciler.state.lock import WaitNotice

DEFAULT_STATE_PATH = ".reconciler/state.json"
STATE_ENV_VAR = "RECONCILER_STATE"
POSTGRES_SCHEMES = ("postgresql://", "postgres://")


def canonical_json(value: Any) -> str:
    """The one JSON spelling of a value: compact, keys sorted, so equal values compare equal."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True, slots=True)
class LeadRecord:
    """What the state knows of one applied lead.

    `applied_json` is the canonical JSON of the effective field values last applied (by API
    field name). It stays a string until needed, so loading a large state stays cheap and an
    unchanged lead compares by string equality.
    `file_leads` lists every leadId the source file held at `source_hash`: a file whose hash
    matches and whose leads are all recorded at that hash need not be parsed again.
    """

    lead_id: int
    file: str
    source_hash: str
    file_leads: tuple[int, ...]
    applied_json: str

    @property
    def applied(self) -> dict[str, Any]:
        value: dict[str, Any] = json.loads(self.applied_json)
        return value


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The state as read at one moment. `lineage` is None until the first write creates it."""

    lineage: str | None
    serial: int
    leads: Mapping[int, LeadRecord]


# A source is (file, source_hash, file_leads): what the records of one file at one hash share.
Source = tuple[str, str, tuple[int, ...]]


@dataclass(frozen=True, slots=True)
class Columns:
    """Every record as columns: `lead_ids[k]` was applied from `sources[source_indices[k]]`."""

    lead_ids: Sequence[int]
    source_indices: Sequence[int]
    sources: Sequence[Source]


class IndexedLeads(Mapping[int, LeadRecord]):
    """Records that can also be listed as `Columns` without building a `LeadRecord` each.

    A no-op plan of a large state looks at no record's applied values: `applied_files` takes
    the columns instead, and only the records of changed files are ever built.
    """

    __slots__ = ()

    @abstractmethod
    def columns(self) -> Columns | None:
        """The records as columns, or None when they cannot be had without building them."""


class StateBackend(Protocol):
    """Where the last-applied state lives. Every write is atomic and bumps `serial` by one."""

    def describe(self) -> str:
        """A human name for messages (a path, or a DSN with the password masked)."""
        ...

    def lock(
        self, *, timeout: float, on_wait: WaitNotice | None = None
    ) -> AbstractContextManager[None]:
        """Hold the exclusive apply lock; raise StateLockedError after `timeout` seconds.

        While waiting, `on_wait` hears who holds it. The operating system or database releases
        it if the holder dies, even by SIGKILL.
        """
        ...

    def read(self) -> Snapshot:
        """The current state; an empty Snapshot(None, 0, {}) when nothing was written yet."""
        ...

    def write(self, records: Iterable[LeadRecord] = (), *, forget: Iterable[int] = ()) -> int:
        """Record and forget leads in one atomic step; return the new serial."""
        ...

    def replace_all(self, snapshot: Snapshot) -> None:
        """Make the stored state exactly `snapshot` (lineage, serial, records) in one atomic step.

        Only `migrate` uses it: an ordinary write never sets lineage or serial by hand.
        """
        ...

    def close(self) -> None:
        """Release connections and files."""
        ...


def applied_files(leads: Mapping[int, LeadRecord]) -> dict[str, tuple[str, tuple[int, ...]]]:
    """The files fully applied at one hash: file -> (hash, every leadId it held at that hash).

    A file is in it when the records naming it are exactly the leads it held, all at one hash:
    read back at that hash, it would say nothing new, so it need not be parsed (the loader's
    `known_unchanged`). A file with a lead not applied, or leads applied at two hashes, is not.
    """
    columns = leads.columns() if isinstance(leads, IndexedLeads) else None
    if columns is not None:
        by_source = _applied_by_source(columns)
        if by_source is not None:
            return by_source
    first: dict[str, LeadRecord] = {}
    count: dict[str, int] = {}
    broken: set[str] = set()
    for record in leads.values():
        file = record.file
        seen = first.setdefault(file, record)
        if seen is not record:
            count[file] += 1
            if record.source_hash != seen.source_hash or record.file_leads != seen.file_leads:
                broken.add(file)
        else:
            count[file] = 1
    files: dict[str, tuple[str, tuple[int, ...]]] = {}
    for file, record in first.items():
        ids, n = record.file_leads, count[file]
        if file in broken or n != len(ids):
            continue
        if n == 1:  # most files hold one lead: the one whose record this is
            if ids[0] == record.lead_id:
                files[file] = (record.source_hash, ids)
        elif len(set(ids)) == n and all(i in leads and leads[i].file == file for i in ids):
            files[file] = (record.source_hash, ids)
    return files


def _applied_by_source(columns: Columns) -> dict[str, tuple[str, tuple[int, ...]]]:
    """`applied_files` from columns, counting records per source rather than building them."""
    sources, counts = columns.sources, Counter(columns.source_indices)
    source_of = dict(zip(columns.lead_ids, columns.source_indices, strict=True))
    used_files = [sources[index][0] for index in counts]
    broken: set[str] = set()
    if len(set(used_files)) != len(used_files):  # rare: a file named by two sources in use
        broken, alias = _shared_files(sources, counts)
        if alias:  # equal sources are one: count their records together
            for index, first in alias.items():
                counts[first] += counts.pop(index)
            source_of = {i: alias.get(index, index) for i, index in source_of.items()}
    files: dict[str, tuple[str, tuple[int, ...]]] = {}
    for index, n in counts.items():
        file, source_hash, ids = sources[index]
        if n != len(ids) or file in broken:
            continue
        # n records point at this source; they are its leads if each of its leads is one of them.
        if n == 1:
            if source_of.get(ids[0]) == index:
                files[file] = (source_hash, ids)
        elif len(set(ids)) == n and all(source_of.get(i) == index for i in ids):
            files[file] = (source_hash, ids)
    return files


def _shared_files(
    sources: Sequence[Source], counts: Mapping[int, int]
) -> tuple[set[str], dict[int, int]]:
    """Of the sources in use, the files named at two hashes or lead lists (never applied), and
    each source equal to an earlier one, mapped to that one."""
    broken: set[str] = set()
    alias: dict[int, int] = {}
    first_of: dict[str, int] = {}
    for index in counts:
        file = sources[index][0]
        first = first_of.setdefault(file, index)
        if first == index:
            continue
        if sources[first] == sources[index]:
            alias[index] = first
        else:
            broken.add(file)
    return broken, alias


def require_lineage(snapshot: Snapshot) -> None:
    """A whole state being stored must belong to a history (`lineage`); only writes make one."""
    if snapshot.lineage is None:
        raise StateError("cannot store a state without a lineage")


def open_state(spec: str | None, *, env: Mapping[str, str]) -> StateBackend:
    """The backend named by `--state` (`spec`), else `RECONCILER_STATE`, else the default file.

    `postgresql://...` or `postgres://...` selects PostgreSQL (`?workspace=NAME` picks one of
    several independent states in the database, "default" when absent); anything else is a path.
    Nothing is opened or connected until the backend is first used.
    """
    chosen = spec or env.get(STATE_ENV_VAR) or DEFAULT_STATE_PATH
    if chosen.lower().startswith(POSTGRES_SCHEMES):
        from reconciler.state.postgres import PostgresState  # psycopg loads only when needed

        return PostgresState.from_url(chosen)
    from reconciler.state.local import LocalState

    return LocalState(Path(chosen))


# `sslpassword` unlocks a client key, so it is as secret as `password`.
_KEYWORD_PASSWORD = re.compile(r"(\b(?:ssl)?password\s*=\s*)('(?:[^'\\]|\\.)*'|\S*)", re.IGNORECASE)
_QUERY_PASSWORD = re.compile(r"([?&](?:ssl)?password=)[^&]*", re.IGNORECASE)


def mask_dsn(dsn: str) -> str:
    """`dsn` with any password replaced by `***`, safe to print.

    Handles URLs (`postgresql://user:secret@host/db`, `?password=secret`) and libpq keyword
    strings (`host=h password=secret`). Where a URL is ambiguous it masks too much, never too
    little: everything up to the last `@` counts as user credentials.
    """
    scheme, sep, rest = dsn.partition("://")
    if not sep:
        return _KEYWORD_PASSWORD.sub(r"\1***", dsn)
    at = rest.rfind("@")
    if at >= 0:
        user, colon, _password = rest[:at].partition(":")
        if colon:
            rest = f"{user}:***{rest[at:]}"
    return scheme + sep + _QUERY_PASSWORD.sub(r"\1***", rest)


def migrate(
    source: StateBackend,
    destination: StateBackend,
    *,
    force: bool = False,
    lock_timeout: float = 0.0,
) -> Snapshot:
    """Copy a whole state (lineage, serial, every record) from `source` to `destination`.

    Both locks are held throughout. A destination that already holds leads of another lineage,
    or a newer serial of the same lineage, is refused unless `force`: that is another team's
    history, or a later one, and replacing it would lose applied records. Returns what was copied.
    """
    if source.describe() == destination.describe():
        raise StateError(f"cannot migrate state {source.describe()} onto itself")
    with source.lock(timeout=lock_timeout), destination.lock(timeout=lock_timeout):
        snapshot = source.read()
        if snapshot.lineage is None:
            raise StateError(f"state {source.describe()} is empty; there is nothing to migrate")
        current = destination.read()
        if not force and current.lineage is not None:
            if current.lineage != snapshot.lineage and current.leads:
                raise StateError(
                    f"state {destination.describe()} already holds {len(current.leads)} leads of "
                    f"another lineage ({current.lineage}); pass --force to replace them"
                )
            if current.lineage == snapshot.lineage and current.serial > snapshot.serial:
                raise StateError(
                    f"state {destination.describe()} is newer (serial {current.serial}) than "
                    f"{source.describe()} (serial {snapshot.serial}); pass --force to replace it"
                )
        destination.replace_all(snapshot)
        return snapshot
