"""Fixtures for the state backends: each shared test runs against the file and PostgreSQL."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import pytest

from reconciler.state import LeadRecord, StateBackend, canonical_json, open_state

# Takes the lock, says so on stdout, then holds it until killed.
_HOLD_LOCK = """
import sys, time
from reconciler.state import open_state
state = open_state(sys.argv[1], env={})
with state.lock(timeout=10):
    print("locked", flush=True)
    time.sleep(300)
"""


def make_record(
    lead_id: int,
    file: str | None = None,
    source_hash: str | None = None,
    file_leads: tuple[int, ...] | None = None,
    **applied: object,
) -> LeadRecord:
    """A record as apply would write it, with applied values from keyword arguments.

    By default each lead has a file of its own.
    """
    return LeadRecord(
        lead_id,
        file or f"leads/lead-{lead_id}.yaml",
        source_hash or f"sha256:{lead_id:064x}",
        file_leads or (lead_id,),
        canonical_json(applied or {"firstName": f"Lead {lead_id}"}),
    )


@pytest.fixture
def record() -> Callable[..., LeadRecord]:
    """`record(lead_id, file=..., source_hash=..., file_leads=..., **applied)`."""
    return make_record


@pytest.fixture(params=["local", "postgres"])
def state_spec(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A `--state` value naming an empty state, in a file or in a fresh database."""
    if request.param == "local":
        return str(tmp_path / "nested" / "state.json")
    dsn: str = request.getfixturevalue("postgres_dsn")
    return dsn


@pytest.fixture
def open_backend(state_spec: str) -> Iterator[Callable[[], StateBackend]]:
    """Opens the state as a fresh process would (no cache shared); all are closed afterwards."""
    opened: list[StateBackend] = []

    def make() -> StateBackend:
        backend = open_state(state_spec, env={})
        opened.append(backend)
        return backend

    yield make
    for backend in opened:
        backend.close()


@pytest.fixture
def lock_held_elsewhere() -> Callable[[str], AbstractContextManager[subprocess.Popen[str]]]:
    """`with lock_held_elsewhere(spec) as process:` another process holds the lock."""
    return _lock_held_elsewhere


@contextmanager
def _lock_held_elsewhere(spec: str) -> Iterator[subprocess.Popen[str]]:
    """Another process holding the lock on `spec`; it is SIGKILLed on exit if still alive."""
    process = subprocess.Popen(
        [sys.executable, "-c", _HOLD_LOCK, spec],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None and process.stderr is not None
        line = process.stdout.readline()
        assert line == "locked\n", process.stderr.read()
        yield process
    finally:
        process.kill()
        process.wait(timeout=30)
