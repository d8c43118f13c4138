"""Shared test fixtures, one section per concern."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

# ---------------------------------------------------------------------------------------------
# PostgreSQL: a throwaway PostgreSQL 15 cluster for the shared-state backend tests
#
# Started once per session from the Debian `postgresql` package's binaries (`.ci/run` installs
# it). Without them the tests skip locally, but fail under CI (CI=true), where a skip would
# hide that the backend went untested. The cluster listens on 127.0.0.1 only, on a free port,
# with its socket in its own temporary folder; it is stopped with `-m immediate` at the end.
# ---------------------------------------------------------------------------------------------

PG_BIN = Path(os.environ.get("RECONCILER_PG_BIN", "/usr/lib/postgresql/15/bin"))
# Authenticates with a password over TCP (everyone else is trusted), so masking is testable.
PG_PASSWORD_ROLE = "reconciler_pw"
PG_PASSWORD = "s3cr3t-Pa55:w@rd/%"

_PG_HBA = f"""\
local all all                     trust
host  all {PG_PASSWORD_ROLE} 127.0.0.1/32 scram-sha-256
host  all all                127.0.0.1/32 trust
"""


@dataclass(frozen=True)
class PostgresServer:
    """A running test cluster; `dsn` reaches its `postgres` database as the superuser.

    `password_role` logs in over TCP only with `password` (everyone else is trusted).
    """

    host: str
    port: int
    password_role: str = PG_PASSWORD_ROLE
    password: str = PG_PASSWORD

    @property
    def dsn(self) -> str:
        return self.dsn_for("postgres")

    def dsn_for(self, database: str) -> str:
        return f"postgresql://postgres@{self.host}:{self.port}/{database}"

    def create_database(self) -> str:
        """A new empty database (owned by the password role too), returning its name."""
        name = f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}" OWNER {PG_PASSWORD_ROLE}')
        return name


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    if not (PG_BIN / "initdb").exists():
        reason = (
            f"PostgreSQL 15 server binaries not found in {PG_BIN}: install the Debian "
            "`postgresql` package (`.ci/run` does) or set RECONCILER_PG_BIN"
        )
        if _in_ci():
            pytest.fail(f"{reason} (CI is set: the PostgreSQL tests must run, not skip)")
        pytest.skip(reason)
    # Not under pytest's basetemp: as root that folder is private to root, and the server
    # must run as `postgres` (initdb refuses to run as root).
    base = Path(tempfile.mkdtemp(prefix="reconciler-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:
        as_user = ["runuser", "-u", "postgres", "--"]
        shutil.chown(base, "postgres", "postgres")

    def run(*args: str) -> None:
        done = subprocess.run(
            [*as_user, *args], cwd=base, capture_output=True, text=True, timeout=120
        )
        if done.returncode != 0:
            log = base / "server.log"
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            pytest.fail(f"{' '.join(args[:2])} failed:\n{done.stdout}{done.stderr}{tail}")

    data = base / "data"
    port = _free_port()
    started = False
    try:
        run(
            str(PG_BIN / "initdb"),
            "-D",
            str(data),
            "-U",
            "postgres",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        )
        (data / "pg_hba.conf").write_text(_PG_HBA)
        options = (
            f"-c listen_addresses=127.0.0.1 -p {port} -k {base} -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off"
        )
        run(
            str(PG_BIN / "pg_ctl"),
            "-D",
            str(data),
            "-l",
            str(base / "server.log"),
            "-o",
            options,
            "-w",
            "-t",
            "60",
            "start",
        )
        started = True
        server = PostgresServer("127.0.0.1", port)
        with psycopg.connect(server.dsn, autocommit=True) as conn:
            conn.execute(f"CREATE ROLE {PG_PASSWORD_ROLE} LOGIN PASSWORD '{PG_PASSWORD}'")
        yield server
    finally:
        if started:
            subprocess.run(
                [*as_user, str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                cwd=base,
                capture_output=True,
                timeout=60,
            )
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def postgres_dsn(postgres_server: PostgresServer) -> str:
    """The DSN of a fresh, empty database of its own for one test."""
    return postgres_server.dsn_for(postgres_server.create_database())
