"""Last-applied state: what was applied per lead, behind one small protocol.

Two backends implement it: a local JSON file (the embedded default) and PostgreSQL for teams
whose CI runners share one state. `open_state` picks one from `--state` / `RECONCILER_STATE`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Protocol

DEFAULT_STATE_PATH = ".reconciler/state.json"


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


class StateBackend(Protocol):
    """Where the last-applied state lives. Every write is atomic and bumps `serial` by one."""

    def describe(self) -> str:
        """A human name for messages (a path, or a DSN with the password masked)."""
        ...

    def lock(self, *, timeout: float) -> AbstractContextManager[None]:
        """Hold the exclusive apply lock; raise StateLockedError after `timeout` seconds.

        The operating system or database releases it if the holder dies, even by SIGKILL.
        """
        ...

    def read(self) -> Snapshot:
        """The current state; an empty Snapshot(None, 0, {}) when nothing was written yet."""
        ...

    def write(
        self, records: Iterable[LeadRecord] = (), *, forget: Iterable[int] = ()
    ) -> int:
        """Record and forget leads in one atomic step; return the new serial."""
        ...

    def close(self) -> None:
        """Release connections and files."""
        ...
