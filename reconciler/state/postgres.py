"""The shared backend: the state in PostgreSQL, for CI runners that take turns applying.

Same meaning as the local file (lineage, serial, a record per lead), but each write is one
small transaction touching only the leads it names. Several independent states ("workspaces")
can share one database. The apply lock is a session-level advisory lock held on a connection
of its own, so the server releases it when the holder's connection ends, however it ended; a
`reconciler_lock_holders` row says who holds it, for the message a waiting runner shows.

The password in the DSN never leaves this module: messages use `mask_dsn`, and error text from
psycopg/libpq is scrubbed of it before it is passed on.

It is longer than the project's ~400-line habit because the DSN handling, the lock session and
the schema must stay together: each is where a password or a lock could escape, and the one
place that scrubs and masks them is this module.
"""

from __future__ import annotations

import hashlib
import re
import threading
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from typing import Any
from urllib.parse import unquote

import psycopg
from psycopg.conninfo import conninfo_to_dict

from reconciler.errors import StateError
from reconciler.state import LeadRecord, Snapshot, mask_dsn, require_lineage
from reconciler.state.lock import LockHolder, WaitNotice, wait_for_lock

SCHEMA_VERSION = 1
DEFAULT_WORKSPACE = "default"

# Advisory lock keys are (class, object) pairs of int4. The class says "reconciler"; the object
# is 0 for schema creation and a hash of the workspace name for that workspace's apply lock.
_SCHEMA_LOCK_CLASS = 0x52454330  # "REC0"
_APPLY_LOCK_CLASS = 0x52454331  # "REC1"
_WORKSPACE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS reconciler_schema_version (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    version integer NOT NULL
);
CREATE TABLE IF NOT EXISTS reconciler_workspaces (
    workspace text PRIMARY KEY,
    lineage text NOT NULL,
    serial bigint NOT NULL
);
CREATE TABLE IF NOT EXISTS reconciler_sources (
    workspace text NOT NULL REFERENCES reconciler_workspaces ON DELETE CASCADE,
    file text NOT NULL,
    source_hash text NOT NULL,
    file_leads bigint[] NOT NULL,
    PRIMARY KEY (workspace, file, source_hash)
);
CREATE TABLE IF NOT EXISTS reconciler_leads (
    workspace text NOT NULL REFERENCES reconciler_workspaces ON DELETE CASCADE,
    lead_id bigint NOT NULL,
    file text NOT NULL,
    source_hash text NOT NULL,
    applied_json text NOT NULL,
    PRIMARY KEY (workspace, lead_id),
    FOREIGN KEY (workspace, file, source_hash) REFERENCES reconciler_sources
);
CREATE INDEX IF NOT EXISTS reconciler_leads_source
    ON reconciler_leads (workspace, file, source_hash);
CREATE TABLE IF NOT EXISTS reconciler_lock_holders (
    workspace text PRIMARY KEY,
    backend_pid integer NOT NULL,
    pid integer NOT NULL,
    host text NOT NULL,
    since timestamptz NOT NULL DEFAULT now()
);
"""

_UPSERT_SOURCE = """
INSERT INTO reconciler_sources (workspace, file, source_hash, file_leads)
VALUES (%s, %s, %s, %s)
ON CONFLICT (workspace, file, source_hash) DO UPDATE SET file_leads = EXCLUDED.file_leads
"""
_UPSERT_LEAD = """
INSERT INTO reconciler_leads (workspace, lead_id, file, source_hash, applied_json)
VALUES (%s, %s, %s, %s, %s)
ON CONFLICT (workspace, lead_id) DO UPDATE
SET file = EXCLUDED.file, source_hash = EXCLUDED.source_hash, applied_json = EXCLUDED.applied_json
"""
# A source no lead points at any more (its file changed or left): only the files a write
# touched are candidates, so the cost follows the size of the write, not of the state.
_DROP_UNUSED_SOURCES = """
DELETE FROM reconciler_sources s
WHERE s.workspace = %s AND s.file = ANY(%s) AND NOT EXISTS (
    SELECT 1 FROM reconciler_leads l
    WHERE l.workspace = s.workspace AND l.file = s.file AND l.source_hash = s.source_hash
)
"""
_LOCK_HOLDER = """
SELECT h.pid, h.host, h.since FROM reconciler_lock_holders h
JOIN pg_locks l ON l.pid = h.backend_pid AND l.locktype = 'advisory' AND l.granted
    AND l.classid = %s AND l.objid = %s AND l.objsubid = 2
WHERE h.workspace = %s
"""


def split_workspace(url: str) -> tuple[str, str]:
    """`url` without its `workspace` query parameter, and that workspace ("default" if none).

    The rest of the URL is kept byte for byte, since libpq reads it.
    """
    base, question, query = url.partition("?")
    if not question:
        return url, DEFAULT_WORKSPACE
    kept, workspace = [], DEFAULT_WORKSPACE
    for item in query.split("&"):
        key, _, value = item.partition("=")
        if key == "workspace":
            workspace = unquote(value)
        elif item:
            kept.append(item)
    return (f"{base}?{'&'.join(kept)}" if kept else base), workspace


class PostgresState:
    """The state of one workspace in a PostgreSQL database (psycopg 3).

    Safe to share between threads. Nothing connects until first use. The schema is created on
    first use, idempotently; a database whose schema is newer than this reconciler knows is
    refused, not altered.
    """

    def __init__(self, dsn: str, *, workspace: str = DEFAULT_WORKSPACE) -> None:
        if not _WORKSPACE_NAME.fullmatch(workspace):
            raise StateError(
                f"invalid workspace name {workspace!r}: use 1-63 letters, digits, '.', '_' or '-'"
            )
        self._dsn = dsn
        self.workspace = workspace
        self._secrets = _secrets_of(dsn)
        self._conn: psycopg.Connection[Any] | None = None
        # One connection serves reads and writes; threads of one apply take turns on it.
        self._mutex = threading.RLock()
        self._lock_key = int.from_bytes(hashlib.sha256(workspace.encode()).digest()[:4]) >> 1

    @classmethod
    def from_url(cls, url: str) -> PostgresState:
        """From `postgresql://...?workspace=NAME` (the parameter is not passed to libpq)."""
        _check_userinfo(url)
        dsn, workspace = split_workspace(url)
        return cls(dsn, workspace=workspace)

    def __repr__(self) -> str:
        return f"PostgresState({self.describe()!r})"

    def describe(self) -> str:
        return f"{mask_dsn(self._dsn)} (workspace {self.workspace})"

    @contextmanager
    def lock(self, *, timeout: float, on_wait: WaitNotice | None = None) -> Iterator[None]:
        """Hold the workspace's advisory lock on a dedicated connection for the whole block."""
        with self._mutex:
            self._connection()  # the schema must exist before the holder table is used
        conn = self._connect()
        try:
            with self._errors("lock"):
                if conn.info.server_version >= 140000:
                    # A server-wide idle timeout would end this quiet session, and the lock
                    # with it, in the middle of a long apply.
                    conn.execute("SET idle_session_timeout = 0")
                self._acquire(conn, timeout, on_wait)
            try:
                yield
            finally:
                # Closing the connection alone would release the lock; saying so is tidier.
                with suppress(psycopg.Error):
                    conn.execute(
                        "DELETE FROM reconciler_lock_holders "
                        "WHERE workspace = %s AND backend_pid = pg_backend_pid()",
                        (self.workspace,),
                    )
                    conn.execute(
                        "SELECT pg_advisory_unlock(%s, %s)", (_APPLY_LOCK_CLASS, self._lock_key)
                    )
        finally:
            conn.close()

    def read(self) -> Snapshot:
        with self._mutex:
            return self._read()

    def write(self, records: Iterable[LeadRecord] = (), *, forget: Iterable[int] = ()) -> int:
        with self._mutex:
            return self._write(list(records), list(forget))

    def replace_all(self, snapshot: Snapshot) -> None:
        require_lineage(snapshot)
        with self._mutex:
            conn = self._connection()
            with self._errors("write"), conn.transaction():
                conn.execute(
                    "DELETE FROM reconciler_workspaces WHERE workspace = %s", (self.workspace,)
                )
                conn.execute(
                    "INSERT INTO reconciler_workspaces (workspace, lineage, serial) "
                    "VALUES (%s, %s, %s)",
                    (self.workspace, snapshot.lineage, snapshot.serial),
                )
                self._copy(conn, snapshot)

    def close(self) -> None:
        with self._mutex:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def _read(self) -> Snapshot:
        conn = self._connection()
        with self._errors("read"), conn.transaction():
            # One snapshot of the database for all three queries, even while others write.
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            head = conn.execute(
                "SELECT lineage, serial FROM reconciler_workspaces WHERE workspace = %s",
                (self.workspace,),
            ).fetchone()
            if head is None:
                return Snapshot(None, 0, {})
            sources = {
                (file, source_hash): (file, source_hash, tuple(file_leads))
                for file, source_hash, file_leads in conn.execute(
                    "SELECT file, source_hash, file_leads FROM reconciler_sources "
                    "WHERE workspace = %s",
                    (self.workspace,),
                )
            }
            leads: dict[int, LeadRecord] = {}
            for lead_id, file, source_hash, applied_json in conn.execute(
                "SELECT lead_id, file, source_hash, applied_json FROM reconciler_leads "
                "WHERE workspace = %s",
                (self.workspace,),
            ):
                # Records of one source share its strings and tuple, as the local backend's do.
                file, source_hash, file_leads = sources[file, source_hash]
                leads[lead_id] = LeadRecord(lead_id, file, source_hash, file_leads, applied_json)
        return Snapshot(head[0], head[1], leads)

    def _write(self, records: list[LeadRecord], forget: list[int]) -> int:
        conn = self._connection()
        with self._errors("write"), conn.pipeline(), conn.transaction():
            cursor = conn.execute(
                "INSERT INTO reconciler_workspaces (workspace, lineage, serial) "
                "VALUES (%s, %s, 1) ON CONFLICT (workspace) "
                "DO UPDATE SET serial = reconciler_workspaces.serial + 1 RETURNING serial",
                (self.workspace, str(uuid.uuid4())),
            )
            files = self._files_of(conn, [r.lead_id for r in records] + forget)
            self._put(conn, records)
            if forget:
                conn.execute(
                    "DELETE FROM reconciler_leads WHERE workspace = %s AND lead_id = ANY(%s)",
                    (self.workspace, forget),
                )
            files.update(record.file for record in records)
            if files:
                conn.execute(_DROP_UNUSED_SOURCES, (self.workspace, sorted(files)))
            row = cursor.fetchone()
        assert row is not None  # INSERT ... RETURNING always returns its row
        serial: int = row[0]
        return serial

    def _put(self, conn: psycopg.Connection[Any], records: list[LeadRecord]) -> None:
        """Upsert records and their sources; a record's lead list wins over an older one."""
        if not records:
            return
        sources = {(r.file, r.source_hash): list(r.file_leads) for r in records}
        with conn.cursor() as cursor:
            cursor.executemany(
                _UPSERT_SOURCE,
                [(self.workspace, f, h, leads) for (f, h), leads in sorted(sources.items())],
            )
            cursor.executemany(
                _UPSERT_LEAD,
                [
                    (self.workspace, r.lead_id, r.file, r.source_hash, r.applied_json)
                    for r in records
                ],
            )

    def _copy(self, conn: psycopg.Connection[Any], snapshot: Snapshot) -> None:
        """Insert a whole state with COPY: a migration may carry a hundred thousand leads."""
        sources = {(r.file, r.source_hash): r.file_leads for r in snapshot.leads.values()}
        with conn.cursor() as cursor:
            with cursor.copy(
                "COPY reconciler_sources (workspace, file, source_hash, file_leads) FROM STDIN"
            ) as copy:
                copy.set_types(["text", "text", "text", "int8[]"])
                for (file, source_hash), file_leads in sources.items():
                    copy.write_row((self.workspace, file, source_hash, list(file_leads)))
            with cursor.copy(
                "COPY reconciler_leads (workspace, lead_id, file, source_hash, applied_json) "
                "FROM STDIN"
            ) as copy:
                copy.set_types(["text", "int8", "text", "text", "text"])
                for r in snapshot.leads.values():
                    copy.write_row(
                        (self.workspace, r.lead_id, r.file, r.source_hash, r.applied_json)
                    )

    def _files_of(self, conn: psycopg.Connection[Any], lead_ids: list[int]) -> set[str]:
        """The files these leads were recorded from, before this write changes them."""
        if not lead_ids:
            return set()
        rows = conn.execute(
            "SELECT DISTINCT file FROM reconciler_leads WHERE workspace = %s AND lead_id = ANY(%s)",
            (self.workspace, lead_ids),
        ).fetchall()
        return {file for (file,) in rows}

    def _acquire(
        self, conn: psycopg.Connection[Any], timeout: float, on_wait: WaitNotice | None
    ) -> None:
        key = (_APPLY_LOCK_CLASS, self._lock_key)
        wait_for_lock(
            lambda: bool(_scalar(conn, "SELECT pg_try_advisory_lock(%s, %s)", key)),
            lambda: self._holder(conn),
            state_name=self.describe(),
            timeout=timeout,
            on_wait=on_wait,
        )
        holder = LockHolder.current()
        # A row left by a holder that died is simply overwritten: the advisory lock is the truth.
        conn.execute(
            "INSERT INTO reconciler_lock_holders (workspace, backend_pid, pid, host, since) "
            "VALUES (%s, pg_backend_pid(), %s, %s, now()) ON CONFLICT (workspace) DO UPDATE "
            "SET backend_pid = EXCLUDED.backend_pid, pid = EXCLUDED.pid, host = EXCLUDED.host, "
            "since = EXCLUDED.since",
            (self.workspace, holder.pid, holder.host),
        )

    def _holder(self, conn: psycopg.Connection[Any]) -> LockHolder | None:
        row = conn.execute(
            _LOCK_HOLDER, (_APPLY_LOCK_CLASS, self._lock_key, self.workspace)
        ).fetchone()
        if row is None:  # the holder has not written its row yet, or is not a reconciler
            return None
        pid, host, since = row
        return LockHolder(pid, host, since.isoformat(timespec="seconds"))

    def _connection(self) -> psycopg.Connection[Any]:
        """The connection for reads and writes, opened (and the schema made) on first use."""
        if self._conn is not None and self._conn.broken:
            self.close()
        if self._conn is None:
            conn = self._connect()
            try:
                with self._errors("prepare"):
                    version = _ensure_schema(conn)
            except StateError:
                conn.close()
                raise
            if version != SCHEMA_VERSION:
                conn.close()
                raise StateError(
                    f"state {self.describe()} has reconciler schema version {version}, but this "
                    f"reconciler knows only version {SCHEMA_VERSION}; it was left untouched. "
                    "Use the newer reconciler that wrote it"
                )
            self._conn = conn
        return self._conn

    def _connect(self) -> psycopg.Connection[Any]:
        settings: dict[str, Any] = {"autocommit": True}
        try:
            given = conninfo_to_dict(self._dsn)
            # Without these a dead server would hang a CI job, and the holder would be anonymous
            # in pg_stat_activity. Settings in the DSN win.
            for key, value in (("connect_timeout", 10), ("application_name", "reconciler")):
                if key not in given:
                    settings[key] = value
            return psycopg.connect(self._dsn, **settings)
        except psycopg.Error as exc:
            raise self._error("connect to", exc) from None

    @contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        try:
            yield
        except psycopg.Error as exc:
            raise self._error(doing, exc) from None

    def _error(self, doing: str, exc: psycopg.Error) -> StateError:
        """A psycopg error as StateError naming the masked DSN, scrubbed of the password.

        Raise it `from None`: the original error, which may quote the DSN, must not be shown.
        """
        message = self._scrub(str(exc).strip()) or type(exc).__name__
        return StateError(f"cannot {doing} state {self.describe()}: {message}")

    def _scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return mask_dsn(text)


def _ensure_schema(conn: psycopg.Connection[Any]) -> Any:
    """Create the tables unless they exist; return the schema version the database holds."""
    version = None
    if _scalar(conn, "SELECT to_regclass('reconciler_schema_version') IS NOT NULL", ()):
        version = _scalar(conn, "SELECT max(version) FROM reconciler_schema_version", ())
    if version is None:
        with conn.transaction():
            # Two runners creating the schema at once would collide; this makes them take turns.
            conn.execute("SELECT pg_advisory_xact_lock(%s, 0)", (_SCHEMA_LOCK_CLASS,))
            conn.execute(_SCHEMA)
            conn.execute(
                "INSERT INTO reconciler_schema_version (version) VALUES (%s) "
                "ON CONFLICT (singleton) DO NOTHING",
                (SCHEMA_VERSION,),
            )
            version = _scalar(conn, "SELECT version FROM reconciler_schema_version", ())
    return version


def _scalar(conn: psycopg.Connection[Any], query: str, params: tuple[Any, ...]) -> Any:
    row = conn.execute(query, params).fetchone()
    return None if row is None else row[0]


# Characters that end the user name or password part of a URL when left unencoded.
_URL_DELIMITERS = frozenset("@/?#")


def _check_userinfo(url: str) -> None:
    """Refuse a URL whose user name or password holds an unencoded `@`, `/`, `?` or `#`.

    libpq would split such a URL elsewhere than its author meant and name a piece of the
    password as the host in its error message; so it is refused before it is used, without
    echoing any of it.
    """
    _scheme, sep, rest = url.partition("://")
    before_query = rest.partition("?")[0]
    at = before_query.rfind("@")
    if sep and at >= 0 and _URL_DELIMITERS & set(before_query[:at]):
        raise StateError(
            "the user name or password in the PostgreSQL state URL holds an @, /, ? or # that "
            "is not percent-encoded; encode it (@ as %40, / as %2F, ? as %3F, # as %23) or "
            "pass the password in PGPASSWORD or a .pgpass file instead"
        )


def _secrets_of(dsn: str) -> list[str]:
    """Every spelling of the password(s) in `dsn` that an error message could quote."""
    found: set[str] = set()
    with suppress(psycopg.Error):
        for key in ("password", "sslpassword"):
            value = conninfo_to_dict(dsn).get(key)
            if value:
                found.add(str(value))
    _scheme, sep, rest = dsn.partition("://")
    if sep and "@" in rest:
        _user, colon, password = rest[: rest.rfind("@")].partition(":")
        if colon and password:
            found.update({password, unquote(password)})
    # Longest first, so a password that contains another is replaced whole.
    return sorted(found, key=len, reverse=True)
