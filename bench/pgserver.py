"""A throwaway PostgreSQL server for benchmark F: a temporary cluster on 127.0.0.1.

The same recipe as the `postgres_server` fixture in tests/conftest.py (binaries from
RECONCILER_PG_BIN or the Debian package, trust authentication, a free port, the socket in the
cluster's own folder, `runuser -u postgres --` when run as root, `pg_ctl -m immediate stop`),
which is a pytest fixture and so cannot be called from here. One difference on purpose: the
server keeps `fsync` on, because the local state it is compared with fsyncs every write.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

_BIN_GLOBS = ("/usr/lib/postgresql/*/bin", "/usr/pgsql-*/bin", "/usr/local/pgsql/bin")


class PostgresUnavailable(Exception):
    """No PostgreSQL server binaries here, or the server would not start."""


@dataclass(frozen=True)
class Server:
    url: str  # postgresql://postgres@127.0.0.1:PORT/postgres
    version: str


def _bin_dir() -> Path:
    configured = os.environ.get("RECONCILER_PG_BIN")
    if configured and (Path(configured) / "initdb").exists():
        return Path(configured)
    for pattern in _BIN_GLOBS:
        for found in sorted(glob.glob(pattern), reverse=True):  # newest version first
            if (Path(found) / "initdb").exists() and (Path(found) / "pg_ctl").exists():
                return Path(found)
    if shutil.which("initdb") and shutil.which("pg_ctl"):
        return Path(shutil.which("initdb") or "").parent
    raise PostgresUnavailable("no PostgreSQL server binaries (initdb, pg_ctl) found")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def temporary_postgres() -> Iterator[Server]:
    """Start a new cluster, yield its URL, stop and delete it."""
    bin_dir = _bin_dir()
    as_postgres: list[str] = []
    root = Path(tempfile.mkdtemp(prefix="reconciler-bench-pg-"))
    if os.geteuid() == 0:
        if not shutil.which("runuser"):
            shutil.rmtree(root, ignore_errors=True)
            raise PostgresUnavailable("running as root without `runuser` to become postgres")
        shutil.chown(root, "postgres", "postgres")
        as_postgres = ["runuser", "-u", "postgres", "--"]
    data, sockets, log = root / "data", root / "sockets", root / "server.log"

    def run(*argv: str) -> str:
        done = subprocess.run(
            [*as_postgres, *argv], capture_output=True, text=True, timeout=120, check=False
        )
        if done.returncode != 0:
            raise PostgresUnavailable(f"`{Path(argv[0]).name}` failed: {done.stderr.strip()}")
        return done.stdout

    port = _free_port()
    started = False
    try:
        initdb = str(bin_dir / "initdb")
        run(
            initdb,
            "-D",
            str(data),
            "-A",
            "trust",
            "-U",
            "postgres",
            "-E",
            "UTF8",
            "--locale=C",
            "-N",
        )
        run("mkdir", "-p", str(sockets))
        options = f"-c listen_addresses=127.0.0.1 -p {port} -k {sockets}"
        run(str(bin_dir / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(log), "-w", "start")
        started = True
        version = run(str(bin_dir / "postgres"), "--version").strip()
        yield Server(f"postgresql://postgres@127.0.0.1:{port}/postgres", version)
    finally:
        if started:
            subprocess.run(
                [*as_postgres, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                capture_output=True,
                timeout=60,
                check=False,
            )
        shutil.rmtree(root, ignore_errors=True)
