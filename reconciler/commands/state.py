"""`reconciler state list | show | rm | migrate`: inspect and edit the last-applied state."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from reconciler.commands import EXIT_OK
from reconciler.console import Console
from reconciler.errors import StateError
from reconciler.state import migrate, open_state


@dataclass(frozen=True, kw_only=True)
class StateOptions:
    state: str | None = None
    lock_timeout: float = 0.0
    dir: Path = Path("leads")  # files are recorded relative to it, and shown under it

    def shown(self, file: str) -> str:
        """A recorded file as plan shows it: under the leads folder as the user names it."""
        return file if str(self.dir) in ("", ".") else f"{self.dir.as_posix()}/{file}"


def state_list(options: StateOptions, console: Console) -> int:
    """List the leads the state knows, with the file each came from."""
    backend = open_state(options.state, env=console.env)
    try:
        snapshot = backend.read()
    finally:
        backend.close()
    console.note(
        f"state {backend.describe()}: lineage {snapshot.lineage or '-'}, serial "
        f"{snapshot.serial}, {len(snapshot.leads)} lead{'s' * (len(snapshot.leads) != 1)}"
    )
    for record in sorted(snapshot.leads.values(), key=lambda r: (r.file, r.lead_id)):
        console.say(f"{record.lead_id}\t{options.shown(record.file)}")
    return EXIT_OK


def state_show(options: StateOptions, lead_id: int, console: Console) -> int:
    """Show what was last applied for one lead."""
    backend = open_state(options.state, env=console.env)
    try:
        record = backend.read().leads.get(lead_id)
    finally:
        backend.close()
    if record is None:
        raise StateError(f"lead {lead_id} is not in state {backend.describe()}")
    doc = {
        "lead_id": record.lead_id,
        "file": options.shown(record.file),
        "source_hash": record.source_hash,
        "file_leads": list(record.file_leads),
        "applied": record.applied,
    }
    console.say(json.dumps(doc, indent=2, ensure_ascii=False))
    return EXIT_OK


def state_rm(options: StateOptions, lead_id: int, console: Console) -> int:
    """Forget one lead; the next plan manages it again from scratch (every field sent)."""
    backend = open_state(options.state, env=console.env)
    try:
        with backend.lock(timeout=options.lock_timeout, on_wait=console.note):
            if lead_id not in backend.read().leads:
                raise StateError(f"lead {lead_id} is not in state {backend.describe()}")
            serial = backend.write(forget=[lead_id])
    finally:
        backend.close()
    console.say(
        f"Removed lead {lead_id} from the state (serial {serial}); nothing was changed in "
        "Lofty. The next plan sends every field of its file."
    )
    return EXIT_OK


@dataclass(frozen=True, kw_only=True)
class MigrateOptions:
    source: str
    destination: str
    force: bool = False
    lock_timeout: float = 0.0


def state_migrate(options: MigrateOptions, console: Console) -> int:
    """Copy a whole state to another backend (local file <-> PostgreSQL)."""
    src = open_state(options.source, env={})
    dst = open_state(options.destination, env={})
    try:
        copied = migrate(src, dst, force=options.force, lock_timeout=options.lock_timeout)
    finally:
        src.close()
        dst.close()
    console.say(
        f"Migrated {len(copied.leads)} leads (lineage {copied.lineage}, serial {copied.serial}) "
        f"from {src.describe()} to {dst.describe()}."
    )
    return EXIT_OK
