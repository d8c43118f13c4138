"""What every state backend promises, checked against the local file and PostgreSQL alike."""

from __future__ import annotations

import socket
import threading
import time
import uuid
from pathlib import Path

import pytest

from reconciler.errors import StateError, StateLockedError
from reconciler.state import DEFAULT_STATE_PATH, Snapshot, open_state
from reconciler.state.local import LocalState
from reconciler.state.postgres import PostgresState


def test_a_state_never_written_reads_as_empty(open_backend):
    assert open_backend().read() == Snapshot(None, 0, {})


def test_records_read_back_exactly_from_a_fresh_open(open_backend, record):
    records = [
        record(1, firstName="Ann", emails=["ann@example.com"]),
        record(2, file="leads/b.yaml", source_hash="sha256:bb", file_leads=(2, 3), tags=["vip"]),
        record(3, file="leads/b.yaml", source_hash="sha256:bb", file_leads=(2, 3), stage="New"),
    ]
    assert open_backend().write(records) == 1

    snapshot = open_backend().read()
    assert snapshot.leads == {r.lead_id: r for r in records}
    assert snapshot.leads[2].applied == {"tags": ["vip"]}


def test_lineage_is_created_once_and_every_write_adds_one_to_serial(open_backend, record):
    writer = open_backend()
    assert writer.write([record(1)]) == 1
    lineage = open_backend().read().lineage
    assert lineage is not None
    uuid.UUID(lineage)  # an id, not a counter

    assert writer.write([record(2)]) == 2
    assert open_backend().write(forget=[1]) == 3
    snapshot = open_backend().read()
    assert (snapshot.lineage, snapshot.serial, set(snapshot.leads)) == (lineage, 3, {2})


def test_a_write_needs_no_read_first_and_keeps_the_other_leads(open_backend, record):
    open_backend().write([record(1), record(2), record(3)])

    assert open_backend().write([record(2, firstName="Changed")], forget=[3, 99]) == 2

    assert open_backend().read().leads == {1: record(1), 2: record(2, firstName="Changed")}


def test_a_files_lead_list_is_kept_once_and_the_latest_write_wins(open_backend, record):
    same = {"file": "leads/a.yaml", "source_hash": "sha256:aa"}
    open_backend().write(
        [record(1, file_leads=(1, 2), **same), record(2, file_leads=(1, 2), **same)]
    )
    open_backend().write([record(3, file_leads=(1, 2, 3), **same)])

    leads = open_backend().read().leads
    assert {r.file_leads for r in leads.values()} == {(1, 2, 3)}


def test_replace_all_stores_a_snapshot_exactly(open_backend, record):
    open_backend().write([record(9)])
    snapshot = Snapshot(
        "6f1c7d52-0000-4000-8000-000000000000",
        41,
        {1: record(1), 2: record(2, file="leads/b.yaml", source_hash="sha256:bb")},
    )

    open_backend().replace_all(snapshot)

    assert open_backend().read() == snapshot
    assert open_backend().write([record(3)]) == 42


def test_threads_of_one_apply_can_share_a_backend(open_backend, record):
    state = open_backend()

    def apply_some(first: int) -> None:
        for lead_id in range(first, first + 10):
            state.write([record(lead_id)])

    threads = [threading.Thread(target=apply_some, args=(n * 10 + 1,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    snapshot = open_backend().read()
    assert (snapshot.serial, sorted(snapshot.leads)) == (40, list(range(1, 41)))


def test_a_held_lock_fails_after_the_timeout_naming_its_holder(
    state_spec, open_backend, lock_held_elsewhere
):
    with lock_held_elsewhere(state_spec) as holder:
        started = time.monotonic()
        with pytest.raises(StateLockedError) as raised, open_backend().lock(timeout=0.5):
            pytest.fail("the lock was taken twice")
        waited = time.monotonic() - started

    assert 0.5 <= waited < 5
    message = str(raised.value)
    assert f"is locked by pid {holder.pid} on host {socket.gethostname()} since " in message
    assert "--lock-timeout" in message


def test_waiting_for_the_lock_says_who_holds_it(state_spec, open_backend, lock_held_elsewhere):
    heard: list[str] = []
    with (
        lock_held_elsewhere(state_spec) as holder,
        pytest.raises(StateLockedError),
        open_backend().lock(timeout=0.3, on_wait=heard.append),
    ):
        pytest.fail("the lock was taken twice")
    assert len(heard) == 1  # said once at the start, not on every poll
    assert heard[0].startswith("Waiting up to 0.3s for the lock on state ")
    assert f"held by pid {holder.pid} on host {socket.gethostname()} since " in heard[0]


def test_the_lock_of_a_holder_killed_by_sigkill_is_free_at_once(
    state_spec, open_backend, lock_held_elsewhere
):
    with lock_held_elsewhere(state_spec) as holder:
        holder.kill()
        holder.wait()
        started = time.monotonic()
        with open_backend().lock(timeout=5):
            assert time.monotonic() - started < 2


def test_the_lock_is_released_when_its_block_ends_even_by_an_error(open_backend):
    state = open_backend()
    with pytest.raises(RuntimeError), state.lock(timeout=0):
        raise RuntimeError("apply failed")
    with open_backend().lock(timeout=0):
        pass


# --- choosing a backend ----------------------------------------------------------------------


def test_the_default_state_is_the_local_file():
    state = open_state(None, env={})
    assert isinstance(state, LocalState)
    assert state.describe() == str(Path(DEFAULT_STATE_PATH))


def test_the_state_option_wins_over_the_environment(tmp_path):
    env = {"RECONCILER_STATE": str(tmp_path / "from-env.json")}
    assert open_state(None, env=env).describe() == str(tmp_path / "from-env.json")
    assert open_state(str(tmp_path / "opt.json"), env=env).describe() == str(tmp_path / "opt.json")


@pytest.mark.parametrize(
    ("spec", "workspace", "shown"),
    [
        ("postgresql://ci@db.example/state", "default", "postgresql://ci@db.example/state"),
        (
            "postgres://ci:hunter2@db.example/state?sslmode=require&workspace=team-a",
            "team-a",
            "postgres://ci:***@db.example/state?sslmode=require",
        ),
    ],
)
def test_a_postgresql_url_selects_the_database_and_its_workspace(spec, workspace, shown):
    state = open_state(None, env={"RECONCILER_STATE": spec})  # connects only when used

    assert isinstance(state, PostgresState)
    assert state.workspace == workspace
    assert state.describe() == f"{shown} (workspace {workspace})"


@pytest.mark.parametrize("name", ["", "team a", "x" * 64, "-leading-dash", "team/a"])
def test_an_invalid_workspace_name_is_refused(name):
    with pytest.raises(StateError, match="invalid workspace name"):
        open_state(f"postgresql://db.example/state?workspace={name}", env={})
