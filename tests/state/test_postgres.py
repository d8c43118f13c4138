"""The PostgreSQL backend: workspaces, per-lead transactions, schema, locks, masked passwords.

The semantics it shares with the local file are in test_backends.py, run against both.
"""

from __future__ import annotations

import os
import threading
from typing import Any
from urllib.parse import quote

import psycopg
import pytest
from click.testing import CliRunner

from reconciler.errors import StateError
from reconciler.state import mask_dsn, migrate, open_state
from reconciler.state.local import LocalState


def _rows(dsn: str, query: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(query).fetchall()


def test_workspaces_in_one_database_are_independent(postgres_dsn, record):
    team_a = open_state(f"{postgres_dsn}?workspace=team-a", env={})
    team_b = open_state(f"{postgres_dsn}?workspace=team-b", env={})
    team_a.write([record(1)])
    team_a.write([record(2)])
    team_b.write([record(1, firstName="B's own")])

    a, b = team_a.read(), team_b.read()
    assert a.lineage != b.lineage
    assert (a.serial, b.serial) == (2, 1)
    assert b.leads == {1: record(1, firstName="B's own")}
    assert open_state(postgres_dsn, env={}).read().lineage is None  # "default" is another one
    with team_a.lock(timeout=0), team_b.lock(timeout=0):
        pass  # each workspace has its own lock


def test_a_write_changes_only_the_leads_it_names(postgres_dsn, record):
    state = open_state(postgres_dsn, env={})
    state.write([record(n) for n in range(1, 101)])
    before = dict(_rows(postgres_dsn, "SELECT lead_id, xmin::text FROM reconciler_leads"))

    state.write([record(50, firstName="Changed")])

    after = dict(_rows(postgres_dsn, "SELECT lead_id, xmin::text FROM reconciler_leads"))
    assert [n for n in before if before[n] != after[n]] == [50]


def test_a_files_old_versions_are_dropped_once_no_lead_points_at_them(postgres_dsn, record):
    state = open_state(postgres_dsn, env={})
    state.write(
        [
            record(1, file="leads/a.yaml", source_hash="v1", file_leads=(1, 2)),
            record(2, file="leads/a.yaml", source_hash="v1", file_leads=(1, 2)),
        ]
    )
    state.write([record(1, file="leads/a.yaml", source_hash="v2", file_leads=(1, 2))])
    assert len(_rows(postgres_dsn, "SELECT * FROM reconciler_sources")) == 2  # 2 still at v1

    state.write([record(2, file="leads/moved.yaml", source_hash="v3")])
    state.write(forget=[1])

    assert _rows(postgres_dsn, "SELECT file, source_hash FROM reconciler_sources") == [
        ("leads/moved.yaml", "v3")
    ]


def test_the_schema_is_created_once_even_by_runners_starting_together(postgres_dsn, record):
    errors: list[BaseException] = []

    def first_use() -> None:
        try:
            open_state(postgres_dsn, env={}).read()
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=first_use) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert _rows(postgres_dsn, "SELECT version FROM reconciler_schema_version") == [(1,)]


def test_a_schema_newer_than_this_reconciler_is_refused_and_left_alone(postgres_dsn, record):
    open_state(postgres_dsn, env={}).write([record(1)])
    with psycopg.connect(postgres_dsn) as conn:
        conn.execute("UPDATE reconciler_schema_version SET version = 2")

    with pytest.raises(StateError, match="schema version 2.*left untouched"):
        open_state(postgres_dsn, env={}).write([record(2)])
    assert _rows(postgres_dsn, "SELECT lead_id FROM reconciler_leads") == [(1,)]


def test_a_dead_holders_row_is_replaced_by_the_next_holder(postgres_dsn, lock_held_elsewhere):
    with lock_held_elsewhere(postgres_dsn) as holder:
        holder.kill()
        holder.wait()
        assert _rows(postgres_dsn, "SELECT pid FROM reconciler_lock_holders") == [(holder.pid,)]

        with open_state(postgres_dsn, env={}).lock(timeout=5):
            assert _rows(postgres_dsn, "SELECT pid FROM reconciler_lock_holders") == [
                (os.getpid(),)
            ]
    assert _rows(postgres_dsn, "SELECT pid FROM reconciler_lock_holders") == []


def test_a_lock_held_outside_the_reconciler_names_no_stale_holder(postgres_dsn):
    state = open_state(postgres_dsn, env={})
    with state.lock(timeout=0):
        pass
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute(  # a stale row, and the lock held by a session that wrote none
            "INSERT INTO reconciler_lock_holders (workspace, backend_pid, pid, host) "
            "VALUES ('default', 1, 4242, 'gone')"
        )
        key = state._lock_key  # type: ignore[attr-defined]  # noqa: SLF001 - standing in for a foreign holder
        conn.execute("SELECT pg_advisory_lock(%s, %s)", (0x52454331, key))

        with pytest.raises(StateError) as raised, state.lock(timeout=0.2):
            pass
    assert "locked by another process" in str(raised.value)
    assert "4242" not in str(raised.value)


# --- passwords -------------------------------------------------------------------------------


# Chosen to need escaping in a URL, and to contain ':' '@' '/' as DSN parsers' delimiters.
PASSWORD = "s3cr3t-Pa55:w@rd/%"


@pytest.fixture
def password_dsn(postgres_server, postgres_dsn) -> str:
    """The test database reached as a role that must give its password."""
    assert postgres_server.password == PASSWORD
    address = postgres_dsn.split("@", 1)[1]
    return f"postgresql://{postgres_server.password_role}:{quote(PASSWORD, safe='')}@{address}"


def test_the_password_is_used_but_never_shown(password_dsn, record):
    state = open_state(password_dsn, env={})
    state.write([record(1)])

    assert state.read().serial == 1
    for shown in (state.describe(), repr(state)):
        assert "***" in shown
        assert quote(PASSWORD, safe="") not in shown and PASSWORD not in shown


@pytest.mark.parametrize(
    "break_it",
    [
        lambda dsn: dsn.replace(quote(PASSWORD, safe=""), quote(PASSWORD + "x", safe="")),
        lambda dsn: dsn.replace("@127.0.0.1", "@[::1"),  # libpq quotes the whole URL back
        lambda dsn: dsn.replace("%", "%ZZ", 1),  # libpq quotes the raw password back
        lambda dsn: dsn.rsplit(":", 1)[0] + ":1/db",  # nothing listens there
    ],
    ids=["wrong password", "bad url", "bad escape", "refused"],
)
def test_errors_never_carry_the_password(password_dsn, record, break_it):
    state = open_state(break_it(password_dsn), env={})

    with pytest.raises(StateError) as raised:
        state.write([record(1)])

    message = str(raised.value)
    assert "***" in message
    for secret in (PASSWORD, quote(PASSWORD, safe=""), PASSWORD.split(":")[0]):
        assert secret not in message
    assert raised.value.__cause__ is None and raised.value.__suppress_context__


@pytest.mark.parametrize(
    ("dsn", "masked"),
    [
        ("postgresql://ci:hunter2@db/x", "postgresql://ci:***@db/x"),
        ("postgresql://ci@db/x", "postgresql://ci@db/x"),
        ("postgresql://db/x", "postgresql://db/x"),
        ("postgresql://ci:p@ss/w@rd@db:5432/x", "postgresql://ci:***@db:5432/x"),
        (
            "postgres://db/x?user=ci&password=hunter2&sslmode=require",
            "postgres://db/x?user=ci&password=***&sslmode=require",
        ),
        (
            "host=db password=hunter2 sslpassword='a b' user=ci",
            "host=db password=*** sslpassword=*** user=ci",
        ),
    ],
)
def test_mask_dsn_hides_every_password(dsn, masked):
    assert mask_dsn(dsn) == masked


# --- migrate ---------------------------------------------------------------------------------


def test_migrate_from_a_file_to_postgresql_and_back_is_exact(tmp_path, postgres_dsn, record):
    original = LocalState(tmp_path / "state.json")
    original.write(
        [
            record(1, firstName="Zoë"),
            record(2, file="leads/ab.yaml", file_leads=(2, 3)),
            record(3, file="leads/ab.yaml", file_leads=(2, 3)),
        ]
    )
    original.write(forget=[1])
    shared = open_state(f"{postgres_dsn}?workspace=team-a", env={})

    migrate(original, shared)
    assert shared.read() == original.read()
    back = LocalState(tmp_path / "back" / "state.json")
    migrate(shared, back)

    assert back.read() == original.read()
    original.compact()  # its last write is still in its journal
    assert (tmp_path / "back" / "state.json").read_bytes() == (tmp_path / "state.json").read_bytes()


def test_migrate_will_not_overwrite_another_teams_workspace(tmp_path, postgres_dsn, record):
    ours = LocalState(tmp_path / "state.json")
    ours.write([record(1)])
    theirs = open_state(postgres_dsn, env={})
    theirs.write([record(2)])

    with pytest.raises(StateError, match="another lineage"):
        migrate(ours, theirs)

    assert set(theirs.read().leads) == {2}


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://user:p@ss-W0rd@db.example.com:5432/crm",
        "postgresql://user:p@ss-W0rd@db.example.com/crm?workspace=team-a",
        "postgresql://user:pa/ss-W0rd@db.example.com/crm",
        "postgresql://us@er:ss-W0rd@db.example.com/crm",
    ],
)
def test_an_unencoded_delimiter_in_the_password_is_refused_without_echoing_it(url):
    from reconciler.cli import main

    result = CliRunner().invoke(main, ["state", "list", "--state", url])
    assert result.exit_code == 1
    assert "is not percent-encoded" in result.stderr
    for piece in ("ss-W0rd", "p@ss", "pa/ss", "us@er"):
        assert piece not in result.output + result.stderr
